//! The scale-out benchmark (issue #9): throughput of 1, 2 and 3 Durin replicas sharing one
//! PostgreSQL server, on this machine, and (issue #25) the production Temporal server on the
//! same PostgreSQL as the anchor.
//!
//! For each contender (interleaved over repetitions) fresh databases are created and the
//! servers are started on loopback; once they are ready (Durin's replicas have spread the
//! shards), one SDK worker per server process (each connected to its own, all on one task
//! queue) and a closed-loop load generator spread over them run `n` one-activity workflows.
//! Throughput, the CPU of the servers and of PostgreSQL (read from /proc), and how much the
//! servers' databases grew per workflow (`pg_database_size`) are reported per contender.

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

use crate::production::{TemporalBuild, TemporalServer};
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
    /// The production Temporal server to compare with, if any.
    pub temporal: Option<TemporalBuild>,
    /// Drive the load with the protocol-level driver (`raw.rs`) instead of the SDK.
    pub raw: bool,
}

/// What serves the workflows in one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    /// This many Durin replicas.
    Durin(usize),
    /// The production Temporal server, every service in one process.
    Temporal,
}

impl Contender {
    fn label(self, args: &ScaleArgs) -> String {
        match self {
            Contender::Durin(1) => "Durin, 1 replica".into(),
            Contender::Durin(n) => format!("Durin, {n} replicas"),
            Contender::Temporal => format!(
                "Temporal server {} (one process)",
                args.temporal.as_ref().map_or("?".into(), |t| t.version())
            ),
        }
    }

    fn key(self) -> String {
        match self {
            Contender::Durin(n) => format!("durin-{n}"),
            Contender::Temporal => "temporal".into(),
        }
    }
}

/// One measured run.
#[derive(Clone, Debug)]
struct ScaleRun {
    contender: Contender,
    completed: u64,
    wall_secs: f64,
    replica_cores: f64,
    postgres_cores: f64,
    other_cores: f64,
    /// How much the server's databases grew during the load, per completed workflow.
    db_bytes_per_wf: f64,
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

    /// The size on disk of these databases together (tables and indexes; the write-ahead
    /// log is the server's, shared).
    async fn size_of(&self, databases: &[String]) -> Result<u64> {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .context("connect to PostgreSQL")?;
        tokio::spawn(conn);
        let mut total = 0u64;
        for name in databases {
            let row = client
                .query_one("SELECT pg_database_size($1::text)", &[name])
                .await
                .with_context(|| format!("size of database {name}"))?;
            total += u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
        }
        Ok(total)
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

/// The server processes of one run, stopped when dropped.
enum Servers {
    Durin(Vec<Replica>),
    Temporal(TemporalServer),
}

impl Servers {
    fn ports(&self) -> Vec<u16> {
        match self {
            Servers::Durin(replicas) => replicas.iter().map(|r| r.port).collect(),
            Servers::Temporal(t) => vec![t.port],
        }
    }

    fn pids(&self) -> Vec<u32> {
        match self {
            Servers::Durin(replicas) => replicas
                .iter()
                .flat_map(|r| tree_pids(r.child.id()))
                .collect(),
            Servers::Temporal(t) => tree_pids(t.pid()),
        }
    }
}

/// Starts `n` Durin replicas on a fresh database; returns once they have spread the shards.
async fn start_durin(
    pg: &Postgres,
    args: &ScaleArgs,
    n: usize,
    db: &str,
    logs: &Path,
) -> Result<Servers> {
    let db = pg.database(db).await?;
    let mut replicas = Vec::new();
    for i in 0..n {
        replicas.push(start_replica(
            &args.durin,
            &db,
            i,
            args.shards,
            &logs.join(format!("replica-{i}.log")),
        )?);
        // The first replica creates the schema; the others join it.
        if i == 0 {
            wait_spread(&db, 1, args.shards).await?;
        }
    }
    wait_spread(&db, n, args.shards).await?;
    Ok(Servers::Durin(replicas))
}

async fn run_once(
    runtime: &Runtime,
    pg: &Postgres,
    args: &ScaleArgs,
    contender: Contender,
    rep: u32,
) -> Result<ScaleRun> {
    let db = format!(
        "scale_{}_{rep}_{}",
        contender.key().replace('-', "_"),
        std::process::id()
    );
    let logs = tempfile::Builder::new()
        .prefix("durin-bench-scale-")
        .tempdir()?;
    let servers = match contender {
        Contender::Durin(n) => start_durin(pg, args, n, &db, logs.path()).await?,
        Contender::Temporal => {
            let build = args
                .temporal
                .as_ref()
                .ok_or_else(|| anyhow!("no Temporal server build given"))?;
            Servers::Temporal(build.start(&pg.url, &db, logs.path()).await?)
        }
    };
    let mut urls = Vec::new();
    for port in servers.ports() {
        urls.push(temporalio_client::Url::parse(&format!(
            "http://127.0.0.1:{port}"
        ))?);
    }
    let task_queue = format!("scale-{}", uuid::Uuid::new_v4().simple());
    let mut workers = Vec::new();
    let mut raw_workers = Vec::new();
    for url in &urls {
        let client = connect(url.clone(), "durin-bench-worker").await?;
        if args.raw {
            raw_workers.push(crate::raw::start_worker(
                &client,
                &task_queue,
                args.settings.pollers,
            ));
            continue;
        }
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
    let databases = match contender {
        Contender::Durin(_) => vec![db.clone()],
        Contender::Temporal => vec![db.clone(), format!("{db}_visibility")],
    };
    let db_before = pg.size_of(&databases).await?;
    let replica_pids = servers.pids();
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
            let (next, done, tq, n, raw) = (
                next.clone(),
                done.clone(),
                task_queue.clone(),
                args.workflows,
                args.raw,
            );
            callers.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    if raw {
                        if crate::raw::one_workflow(client.clone(), &tq, i, true)
                            .await
                            .is_ok()
                        {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
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
        // PostgreSQL's processes again: backends the servers opened during the load count in
        // full, and those that ended count in the postmaster's reaped-children time.
        let pg_cpu = ProcSample::of_pids(&pg.pids()).cpu_secs - pg_before;
        let machine = machine_busy_secs() - machine_before;
        let own = self_cpu_secs() - self_before;
        let completed = done.load(Ordering::Relaxed);
        let db_after = pg.size_of(&databases).await.unwrap_or(db_before);
        ScaleRun {
            contender,
            completed,
            db_bytes_per_wf: db_after.saturating_sub(db_before) as f64 / completed.max(1) as f64,
            wall_secs: wall,
            replica_cores: replica_cpu / wall,
            postgres_cores: pg_cpu / wall,
            other_cores: ((machine - replica_cpu - pg_cpu - own) / wall).max(0.0),
        }
    };
    let sdk_workers = !workers.is_empty();
    let runs = async {
        let stopped = futures::future::join_all(workers.iter_mut().map(|w| w.run())).await;
        if !sdk_workers {
            // The raw driver's pollers run as tasks of their own.
            futures::future::pending::<()>().await;
        }
        stopped
    };
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
    drop(raw_workers);
    drop(servers);
    result
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// The medians of one contender's runs.
struct Summary {
    contender: Contender,
    throughput: f64,
    server_cores: f64,
    postgres_cores: f64,
    db_bytes_per_wf: f64,
    completed: u64,
}

impl Summary {
    fn of(contender: Contender, all: &[ScaleRun]) -> Self {
        let runs: Vec<&ScaleRun> = all.iter().filter(|r| r.contender == contender).collect();
        Summary {
            contender,
            throughput: median(
                runs.iter()
                    .map(|r| r.completed as f64 / r.wall_secs)
                    .collect(),
            ),
            server_cores: median(runs.iter().map(|r| r.replica_cores).collect()),
            postgres_cores: median(runs.iter().map(|r| r.postgres_cores).collect()),
            db_bytes_per_wf: median(runs.iter().map(|r| r.db_bytes_per_wf).collect()),
            completed: runs.iter().map(|r| r.completed).min().unwrap_or(0),
        }
    }

    /// Milliseconds of CPU per workflow at `cores`.
    fn ms_per_wf(&self, cores: f64) -> f64 {
        cores / self.throughput.max(1e-9) * 1000.0
    }

    fn json(&self, args: &ScaleArgs) -> serde_json::Value {
        serde_json::json!({
            "server": self.contender.key(),
            "label": self.contender.label(args),
            "throughput_wf_per_s": self.throughput,
            "server_cores": self.server_cores,
            "postgres_cores": self.postgres_cores,
            "server_cpu_ms_per_wf": self.ms_per_wf(self.server_cores),
            "postgres_cpu_ms_per_wf": self.ms_per_wf(self.postgres_cores),
            "database_bytes_per_wf": self.db_bytes_per_wf,
            "completed": self.completed,
            "requested": args.workflows,
        })
    }
}

fn contenders(args: &ScaleArgs) -> Vec<Contender> {
    let mut c: Vec<Contender> = args.replicas.iter().map(|&n| Contender::Durin(n)).collect();
    if args.temporal.is_some() {
        c.push(Contender::Temporal);
    }
    c
}

pub async fn run(runtime: &Runtime, args: ScaleArgs) -> Result<()> {
    let pg = Postgres::start()?;
    let mut all: Vec<ScaleRun> = Vec::new();
    for rep in 0..args.reps {
        for contender in contenders(&args) {
            let r = run_once(runtime, &pg, &args, contender, rep).await?;
            eprintln!(
                "[rep {rep}] {}: {}/{} in {:.1} s = {:.0} wf/s; server {:.2} cores, PostgreSQL {:.2}, other {:.2}",
                contender.label(&args),
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
    let summaries: Vec<Summary> = contenders(&args)
        .into_iter()
        .map(|c| Summary::of(c, &all))
        .collect();
    let md = markdown(&args, &summaries);
    println!("{md}");
    if let Some(out) = &args.out {
        std::fs::write(out, &md).with_context(|| format!("write {}", out.display()))?;
        let json = serde_json::json!({
            "driver": if args.raw { "raw" } else { "sdk" },
            "workflows": args.workflows,
            "concurrency": args.concurrency,
            "durin_shards": args.shards,
            "temporal_history_shards": args.temporal.as_ref().map(|t| t.shards()),
            "repetitions": args.reps,
            "results": summaries.iter().map(|s| s.json(&args)).collect::<Vec<_>>(),
            "runs": all.iter().map(|r| serde_json::json!({
                "server": r.contender.key(),
                "completed": r.completed,
                "wall_secs": r.wall_secs,
                "server_cores": r.replica_cores,
                "postgres_cores": r.postgres_cores,
                "other_cores": r.other_cores,
            })).collect::<Vec<_>>(),
        });
        let json_path = out.with_extension("json");
        std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("write {}", json_path.display()))?;
    }
    Ok(())
}

fn markdown(args: &ScaleArgs, summaries: &[Summary]) -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let anchor = match &args.temporal {
        Some(t) => format!(
            " The anchor is the Temporal server {} built from its Go module (all services in one \
             process, {} history shards, its own schema tool) on the same PostgreSQL server.",
            t.version(),
            t.shards()
        ),
        None => String::new(),
    };
    let mut md = format!(
        "# Scale-out: Durin replicas sharing one PostgreSQL\n\n\
         {} one-activity workflows per run, {} concurrent callers spread over the server \
         processes, one {} per process, Durin with {} shards, {} repetition(s), medians. \
         Machine: {cores} cores; the servers, PostgreSQL, the workers and the load generator all \
         share it.{anchor}\n\n\
         | Server | Throughput (wf/s) | Server CPU (cores) | PostgreSQL CPU (cores) | Server CPU per wf (ms) | PostgreSQL CPU per wf (ms) | Database growth per wf (KB) | Completed |\n\
         |---|---|---|---|---|---|---|---|\n",
        args.workflows,
        args.concurrency,
        if args.raw {
            "protocol-level worker (`bench/raw.rs`; the load generator is protocol-level too)"
        } else {
            "SDK worker"
        },
        args.shards,
        args.reps
    );
    for s in summaries {
        md.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {}/{} |\n",
            s.contender.label(args),
            s.throughput,
            s.server_cores,
            s.postgres_cores,
            s.ms_per_wf(s.server_cores),
            s.ms_per_wf(s.postgres_cores),
            s.db_bytes_per_wf / 1000.0,
            s.completed,
            args.workflows
        ));
    }
    let Some(anchor) = summaries
        .iter()
        .find(|s| s.contender == Contender::Temporal)
    else {
        return md;
    };
    md.push_str("\n## Against the Temporal server\n\n");
    md.push_str("| Durin | Throughput | Server CPU per wf | PostgreSQL CPU per wf | Both per wf | Database growth per wf |\n|---|---|---|---|---|---|\n");
    let ratio = |t: f64, d: f64| if d > 0.0 { t / d } else { f64::INFINITY };
    for s in summaries
        .iter()
        .filter(|s| s.contender != Contender::Temporal)
    {
        md.push_str(&format!(
            "| {} | {:.1}× | {:.1}× less | {:.1}× less | {:.1}× less | {:.1}× less |\n",
            s.contender.label(args),
            ratio(s.throughput, anchor.throughput),
            ratio(
                anchor.ms_per_wf(anchor.server_cores),
                s.ms_per_wf(s.server_cores)
            ),
            ratio(
                anchor.ms_per_wf(anchor.postgres_cores),
                s.ms_per_wf(s.postgres_cores)
            ),
            ratio(
                anchor.ms_per_wf(anchor.server_cores + anchor.postgres_cores),
                s.ms_per_wf(s.server_cores + s.postgres_cores)
            ),
            ratio(anchor.db_bytes_per_wf, s.db_bytes_per_wf),
        ));
    }
    md
}
