//! The scale-out benchmark (issue #9): throughput of 1, 2 and 3 Durin replicas sharing one
//! PostgreSQL server, on this machine.
//!
//! For each replica count (interleaved over repetitions) a fresh database is created and the
//! replicas are started on loopback; once they have spread the shards, one SDK worker per
//! replica (each connected to its own replica, all on one task queue) and a closed-loop load
//! generator spread over the replicas run `n` one-activity workflows. Throughput, and the CPU
//! of the replicas and of PostgreSQL (read from /proc), are reported per replica count.

use std::{
    path::{Path, PathBuf},
    pin::pin,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use temporalio_client::{Client, WorkflowStartOptions};
use temporalio_sdk::{Runtime, Worker};

use crate::server::{ProcSample, connect, free_port, machine_busy_secs, self_cpu_secs, tree_pids};
use crate::workloads::{ActivityWorkflow, WorkerSettings, worker_options};

pub struct ScaleArgs {
    pub durin: PathBuf,
    pub replicas: Vec<usize>,
    pub reps: u32,
    pub workflows: u64,
    pub concurrency: usize,
    pub shards: u32,
    pub settings: WorkerSettings,
    pub out: Option<PathBuf>,
}

/// One measured run.
#[derive(Clone, Debug)]
struct ScaleRun {
    replicas: usize,
    completed: u64,
    wall_secs: f64,
    replica_cores: f64,
    postgres_cores: f64,
    other_cores: f64,
}

/// A private PostgreSQL server (`scripts/pg-env`), stopped on drop.
struct Postgres {
    dir: tempfile::TempDir,
    url: String,
}

impl Postgres {
    fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("durin-bench-pg-")
            .tempdir()
            .context("temp dir")?;
        let out = Command::new("scripts/pg-env")
            .arg("start")
            .arg(dir.path())
            .output()
            .context("run scripts/pg-env")?;
        if !out.status.success() {
            bail!(
                "scripts/pg-env failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(Self { dir, url })
    }

    fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            .map(tree_pids)
            .unwrap_or_default()
    }

    /// A fresh database on this server; its URL.
    async fn database(&self, name: &str) -> Result<String> {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .context("connect to PostgreSQL")?;
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .context("create database")?;
        Ok(match self.url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => bail!("unexpected URL {}", self.url),
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("scripts/pg-env")
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

struct Replica {
    child: Child,
    port: u16,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_replica(durin: &Path, db: &str, id: usize, shards: u32, log: &Path) -> Result<Replica> {
    let port = free_port()?;
    let log = std::fs::File::create(log).context("replica log")?;
    let child = Command::new(durin)
        .args(["dev", "--ip", "127.0.0.1", "--port", &port.to_string()])
        .args(["--postgres", db, "--replica-id", &format!("bench-{id}")])
        .args(["--shards", &shards.to_string()])
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().context("log")?))
        .stderr(Stdio::from(log))
        .spawn()
        .context("spawn durin")?;
    Ok(Replica { child, port })
}

/// Waits until the shards are spread over `replicas` as balancing leaves them (every shard
/// held, none above its share), so that no shard moves during the measurement.
async fn wait_spread(db: &str, replicas: usize, shards: u32) -> Result<()> {
    let (client, conn) = tokio_postgres::connect(db, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let counts: Vec<i64> = client
            .query(
                "SELECT count(*) FROM durin_shards WHERE lease_until > now() GROUP BY owner",
                &[],
            )
            .await
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default();
        let held: i64 = counts.iter().sum();
        let hi = counts.iter().max().copied().unwrap_or(0);
        // Each replica takes up to its share, rounded up (16 over 3: 6, 6, 4).
        let share = (shards as usize).div_ceil(replicas.max(1)) as i64;
        if counts.len() == replicas && held == i64::from(shards) && hi <= share {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the shards did not spread over {replicas} replicas");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run_once(
    runtime: &Runtime,
    pg: &Postgres,
    args: &ScaleArgs,
    n_replicas: usize,
    rep: u32,
) -> Result<ScaleRun> {
    let db = pg
        .database(&format!("scale_{n_replicas}_{rep}_{}", std::process::id()))
        .await?;
    let logs = tempfile::Builder::new()
        .prefix("durin-bench-scale-")
        .tempdir()?;
    let mut replicas = Vec::new();
    for i in 0..n_replicas {
        replicas.push(start_replica(
            &args.durin,
            &db,
            i,
            args.shards,
            &logs.path().join(format!("replica-{i}.log")),
        )?);
        // The first replica creates the schema; the others join it.
        if i == 0 {
            wait_spread(&db, 1, args.shards).await?;
        }
    }
    wait_spread(&db, n_replicas, args.shards).await?;
    let mut urls = Vec::new();
    for r in &replicas {
        urls.push(temporalio_client::Url::parse(&format!(
            "http://127.0.0.1:{}",
            r.port
        ))?);
    }
    let task_queue = format!("scale-{}", uuid::Uuid::new_v4().simple());
    let mut workers = Vec::new();
    for url in &urls {
        let client = connect(url.clone(), "durin-bench-worker").await?;
        workers.push(
            Worker::new(runtime, client, worker_options(&task_queue, args.settings)?)
                .map_err(|e| anyhow!("worker: {e:?}"))?,
        );
    }
    let mut clients: Vec<Client> = Vec::new();
    for url in &urls {
        for _ in 0..2 {
            clients.push(connect(url.clone(), "durin-bench-load").await?);
        }
    }
    let shutdowns: Vec<_> = workers.iter().map(|w| w.shutdown_handle()).collect();
    let replica_pids: Vec<u32> = replicas
        .iter()
        .flat_map(|r| tree_pids(r.child.id()))
        .collect();
    let pg_pids = pg.pids();

    let load = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let replica_before = ProcSample::of_pids(&replica_pids).cpu_secs;
        let pg_before = ProcSample::of_pids(&pg_pids).cpu_secs;
        let machine_before = machine_busy_secs();
        let self_before = self_cpu_secs();
        let started = Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let mut callers = Vec::new();
        for c in 0..args.concurrency {
            let client = clients[c % clients.len()].clone();
            let (next, done, tq, n) = (
                next.clone(),
                done.clone(),
                task_queue.clone(),
                args.workflows,
            );
            callers.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    let input = format!("input-{i}");
                    let options =
                        WorkflowStartOptions::new(tq.clone(), format!("{tq}-{i}")).build();
                    let Ok(h) = client
                        .start_workflow(ActivityWorkflow::run, input.clone(), options)
                        .await
                    else {
                        continue;
                    };
                    if h.get_result(Default::default()).await.ok() == Some(input) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for c in callers {
            let _ = c.await;
        }
        let wall = started.elapsed().as_secs_f64();
        let replica_cpu = ProcSample::of_pids(&replica_pids).cpu_secs - replica_before;
        let pg_cpu = ProcSample::of_pids(&pg_pids).cpu_secs - pg_before;
        let machine = machine_busy_secs() - machine_before;
        let own = self_cpu_secs() - self_before;
        ScaleRun {
            replicas: n_replicas,
            completed: done.load(Ordering::Relaxed),
            wall_secs: wall,
            replica_cores: replica_cpu / wall,
            postgres_cores: pg_cpu / wall,
            other_cores: ((machine - replica_cpu - pg_cpu - own) / wall).max(0.0),
        }
    };
    let runs = futures::future::join_all(workers.iter_mut().map(|w| w.run()));
    let mut runs = pin!(runs);
    let mut load = pin!(load);
    let result = tokio::select! {
        biased;
        _ = &mut runs => Err(anyhow!("a worker stopped during the load")),
        r = &mut load => Ok(r),
    };
    for s in shutdowns {
        s();
    }
    let _ = tokio::time::timeout(Duration::from_secs(20), runs).await;
    drop(replicas);
    result
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

pub async fn run(runtime: &Runtime, args: ScaleArgs) -> Result<()> {
    let pg = Postgres::start()?;
    let mut all: Vec<ScaleRun> = Vec::new();
    for rep in 0..args.reps {
        for &n in &args.replicas {
            let r = run_once(runtime, &pg, &args, n, rep).await?;
            eprintln!(
                "[rep {rep}] {n} replica(s): {}/{} in {:.1} s = {:.0} wf/s; replicas {:.2} cores, PostgreSQL {:.2}, other {:.2}",
                r.completed,
                args.workflows,
                r.wall_secs,
                r.completed as f64 / r.wall_secs,
                r.replica_cores,
                r.postgres_cores,
                r.other_cores
            );
            all.push(r);
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut md = format!(
        "# Scale-out: Durin replicas sharing one PostgreSQL\n\n\
         {} one-activity workflows per run, {} concurrent callers spread over the replicas, one \
         SDK worker per replica, {} shards, {} repetition(s), medians. Machine: {cores} cores; \
         the replicas, PostgreSQL, the workers and the load generator all share it.\n\n\
         | Replicas | Throughput (wf/s) | Replicas' CPU (cores) | PostgreSQL CPU (cores) | CPU per 1,000 wf (s) | Completed |\n\
         |---|---|---|---|---|---|\n",
        args.workflows, args.concurrency, args.shards, args.reps
    );
    for &n in &args.replicas {
        let runs: Vec<&ScaleRun> = all.iter().filter(|r| r.replicas == n).collect();
        let tput = median(
            runs.iter()
                .map(|r| r.completed as f64 / r.wall_secs)
                .collect(),
        );
        let rc = median(runs.iter().map(|r| r.replica_cores).collect());
        let pc = median(runs.iter().map(|r| r.postgres_cores).collect());
        let per_k = (rc + pc) / tput.max(1e-9) * 1000.0;
        let completed: u64 = runs.iter().map(|r| r.completed).min().unwrap_or(0);
        md.push_str(&format!(
            "| {n} | {tput:.0} | {rc:.2} | {pc:.2} | {per_k:.2} | {completed}/{} |\n",
            args.workflows
        ));
    }
    println!("{md}");
    if let Some(out) = &args.out {
        std::fs::write(out, &md).with_context(|| format!("write {}", out.display()))?;
    }
    Ok(())
}
