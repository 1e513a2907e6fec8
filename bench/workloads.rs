//! The workloads: workflow and activity definitions, the worker, and the load generator. The
//! same code drives every server.

use std::{
    future::Future,
    pin::pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use temporalio_client::{
    Client, WorkflowFetchHistoryOptions, WorkflowQueryOptions, WorkflowSignalOptions,
    WorkflowStartOptions,
};
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, Runtime, SyncWorkflowContext, Worker, WorkerOptions, WorkflowContext,
    WorkflowContextView, WorkflowResult,
    activities::{ActivityContext, ActivityError},
    runtime::{
        PollerBehavior,
        worker_tuner::{FixedSizeSlotSupplier, TunerHolder},
    },
};

use crate::{
    server::{ProcSample, Server, connect, machine_busy_secs, self_cpu_secs},
    stats::{WorkloadRun, percentile},
};

// ---------------------------------------------------------------------------------------------
// Workflows and activities
// ---------------------------------------------------------------------------------------------

pub struct BenchActivities;

#[activities]
impl BenchActivities {
    /// Returns its input.
    #[activity]
    pub async fn echo(_ctx: ActivityContext, input: String) -> Result<String, ActivityError> {
        Ok(input)
    }
}

fn activity_options() -> ActivityOptions {
    ActivityOptions::start_to_close_timeout(Duration::from_secs(60))
}

/// Does nothing.
#[workflow]
#[derive(Default)]
pub struct EmptyWorkflow;

#[workflow_methods]
impl EmptyWorkflow {
    #[run]
    pub async fn run(_ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }
}

/// Runs one activity and returns its result.
#[workflow]
#[derive(Default)]
pub struct ActivityWorkflow;

#[workflow_methods]
impl ActivityWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: String) -> WorkflowResult<String> {
        Ok(ctx
            .execute_activity(BenchActivities::echo, input, activity_options())
            .await?)
    }
}

/// Runs `n` activities one after the other; returns how many ran.
#[workflow]
#[derive(Default)]
pub struct ChainWorkflow;

#[workflow_methods]
impl ChainWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, n: u32) -> WorkflowResult<u32> {
        let mut done = 0;
        for i in 0..n {
            let out = ctx
                .execute_activity(
                    BenchActivities::echo,
                    format!("step-{i}"),
                    activity_options(),
                )
                .await?;
            if out == format!("step-{i}") {
                done += 1;
            }
        }
        Ok(done)
    }
}

/// Completes once `expected` `ping` signals have arrived; `count` answers how many so far.
#[workflow]
#[derive(Default)]
pub struct SignalWorkflow {
    pings: u32,
}

#[workflow_methods]
impl SignalWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, expected: u32) -> WorkflowResult<u32> {
        ctx.wait_condition(|s| s.pings >= expected).await?;
        Ok(ctx.state(|s| s.pings))
    }

    #[signal]
    pub fn ping(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _n: u32) {
        self.pings += 1;
    }

    #[query]
    pub fn count(&self, _ctx: &WorkflowContextView) -> u32 {
        self.pings
    }
}

fn unix_ms(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i128,
        Err(e) => -(e.duration().as_millis() as i128),
    }
}

/// Sleeps `secs` on a durable timer; returns how late it woke up, in ms of workflow time:
/// (workflow time at wake-up) - (workflow time at start + secs).
#[workflow]
#[derive(Default)]
pub struct TimerWorkflow;

#[workflow_methods]
impl TimerWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, secs: u64) -> WorkflowResult<i64> {
        let start = ctx.workflow_time();
        ctx.timer(Duration::from_secs(secs)).await;
        let woke = ctx.workflow_time();
        Ok(match (start, woke) {
            (Some(s), Some(w)) => (unix_ms(w) - unix_ms(s) - secs as i128 * 1000) as i64,
            _ => i64::MAX,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Workload definitions
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    EmptyC1,
    EmptyC100,
    ActivityC100,
    Chain10,
    SignalQuery,
    Timers,
    /// Protocol-level (see `raw.rs`): an empty workflow, 200 callers.
    RawEmpty,
    /// Protocol-level: one activity, 200 callers.
    RawActivity,
}

pub const ALL: &[Kind] = &[
    Kind::EmptyC1,
    Kind::EmptyC100,
    Kind::ActivityC100,
    Kind::Chain10,
    Kind::SignalQuery,
    Kind::Timers,
    Kind::RawEmpty,
    Kind::RawActivity,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::EmptyC1 => "empty-c1",
            Kind::EmptyC100 => "empty-c100",
            Kind::ActivityC100 => "activity-c100",
            Kind::Chain10 => "chain10",
            Kind::SignalQuery => "signal-query",
            Kind::Timers => "timers",
            Kind::RawEmpty => "raw-empty",
            Kind::RawActivity => "raw-activity",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        ALL.iter()
            .copied()
            .find(|k| k.name() == s.trim())
            .ok_or_else(|| {
                anyhow!(
                    "unknown workload {s:?}; known: {}",
                    ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
                )
            })
    }

    /// (workflows, concurrency) by default.
    pub fn defaults(self) -> (u64, usize) {
        match self {
            Kind::EmptyC1 => (200, 1),
            Kind::EmptyC100 => (2000, 100),
            Kind::ActivityC100 => (2000, 100),
            Kind::Chain10 => (500, 100),
            Kind::SignalQuery => (500, 100),
            // Concurrency of the starts.
            Kind::Timers => (1000, 100),
            Kind::RawEmpty | Kind::RawActivity => (5000, 200),
        }
    }

    /// Driven at the protocol level (no SDK worker).
    pub fn is_raw(self) -> bool {
        matches!(self, Kind::RawEmpty | Kind::RawActivity)
    }
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub kind: Kind,
    pub n: u64,
    pub concurrency: usize,
    /// Timers: how long each workflow sleeps.
    pub timer_secs: u64,
    /// Timers: how many histories to read for the server-side fire lateness (evenly spread).
    pub timer_histories: u64,
    /// Overall limit; timers get `timer_secs` on top.
    pub timeout: Duration,
    /// How long after the load the server's CPU is still counted for the workload.
    pub settle: Duration,
}

/// Worker settings, the same for every server: slots and pollers generous enough that the
/// worker is not what limits the server.
#[derive(Clone, Copy, Debug)]
pub struct WorkerSettings {
    pub slots: usize,
    pub pollers: usize,
    pub cache: usize,
}

pub fn worker_options(task_queue: &str, s: WorkerSettings) -> Result<WorkerOptions> {
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(s.slots))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(s.slots))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(s.slots))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(10))
        .build();
    Ok(WorkerOptions::new(task_queue.to_string())
        .register_workflow::<EmptyWorkflow>()
        .map_err(|e| anyhow!("{e:?}"))?
        .register_workflow::<ActivityWorkflow>()
        .map_err(|e| anyhow!("{e:?}"))?
        .register_workflow::<ChainWorkflow>()
        .map_err(|e| anyhow!("{e:?}"))?
        .register_workflow::<SignalWorkflow>()
        .map_err(|e| anyhow!("{e:?}"))?
        .register_workflow::<TimerWorkflow>()
        .map_err(|e| anyhow!("{e:?}"))?
        .register_activities(BenchActivities)
        .tuner(tuner)
        .max_cached_workflows(s.cache)
        .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(s.pollers))
        .activity_task_poller_behavior(PollerBehavior::SimpleMaximum(s.pollers))
        .build())
}

/// What the load produced, shared with the measuring code so a timed-out run still reports
/// what it did.
#[derive(Default)]
struct Progress {
    next: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    latencies_ms: Mutex<Vec<f64>>,
    errors: Mutex<Vec<String>>,
    /// Timers: lateness per workflow, ms of workflow time.
    lateness_ms: Mutex<Vec<f64>>,
    /// Timers: lateness from the server's TimerStarted/TimerFired events.
    fire_lateness_ms: Mutex<Vec<f64>>,
    start_window_s: Mutex<Option<f64>>,
    notes: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Progress {
    fn fail(&self, e: anyhow::Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut errors = lock(&self.errors);
        if errors.len() < 5 {
            errors.push(format!("{e:#}"));
        }
    }
}

/// Runs one workload against `server` with a fresh worker on a fresh task queue.
pub async fn run(
    runtime: &Runtime,
    server: &Server,
    spec: &Spec,
    settings: WorkerSettings,
) -> WorkloadRun {
    let mut out = WorkloadRun {
        workload: spec.kind.name().to_string(),
        requested: spec.n,
        ..Default::default()
    };
    if let Err(e) = run_inner(runtime, server, spec, settings, &mut out).await {
        out.ok = false;
        out.error = Some(format!("{e:#}"));
    }
    out
}

async fn run_inner(
    runtime: &Runtime,
    server: &Server,
    spec: &Spec,
    settings: WorkerSettings,
    out: &mut WorkloadRun,
) -> Result<()> {
    let url = server.url()?;
    let task_queue = format!(
        "bench-{}-{}",
        spec.kind.name(),
        uuid::Uuid::new_v4().simple()
    );
    let worker_client = connect(url.clone(), "durin-bench-worker").await?;
    // Load generator connections: one per 50 concurrent callers.
    let pool = spec.concurrency.div_ceil(50).clamp(1, 20);
    let mut clients = Vec::with_capacity(pool);
    for _ in 0..pool {
        clients.push(connect(url.clone(), "durin-bench-load").await?);
    }
    if spec.kind.is_raw() {
        let progress = Arc::new(Progress::default());
        let _worker = crate::raw::start_worker(&worker_client, &task_queue, settings.pollers);
        tokio::time::sleep(Duration::from_millis(300)).await;
        return measure(server, spec, &clients, &task_queue, &progress, out).await;
    }
    let mut worker = Worker::new(
        runtime,
        worker_client,
        worker_options(&task_queue, settings)?,
    )
    .map_err(|e| anyhow!("create the worker: {e:?}"))?;
    let shutdown = worker.shutdown_handle();
    let progress = Arc::new(Progress::default());

    let measured = async {
        // Let the pollers reach the server before the clock starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        measure(server, spec, &clients, &task_queue, &progress, out).await
    };
    let mut run = pin!(worker.run());
    let mut measured = pin!(measured);
    tokio::select! {
        biased;
        stopped = &mut run => match stopped {
            Ok(()) => Err(anyhow!("the worker stopped during the workload")),
            Err(e) => Err(anyhow!("the worker failed: {e:?}")),
        },
        r = &mut measured => {
            shutdown();
            match tokio::time::timeout(Duration::from_secs(30), &mut run).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("worker error on shutdown: {e:?}"),
                Err(_) => tracing::warn!("the worker did not shut down within 30 s"),
            }
            r
        }
    }
}

/// Runs the load between two snapshots of the server's CPU, memory and disk.
async fn measure(
    server: &Server,
    spec: &Spec,
    clients: &[Client],
    task_queue: &str,
    progress: &Arc<Progress>,
    out: &mut WorkloadRun,
) -> Result<()> {
    let pids = server.pids();
    let hwm_reset = server.reset_peak_rss();
    let before = ProcSample::of_pids(&pids);
    let disk_before = server.disk_bytes();
    let self_before = self_cpu_secs();
    let machine_before = machine_busy_secs();
    let started = Instant::now();

    // RSS sampler: the max of VmRSS every 100 ms (VmHWM covers the peaks in between when the
    // kernel let us reset it).
    let peak_rss = Arc::new(AtomicU64::new(before.rss_kib));
    let stop_sampler = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pids, peak, stop) = (pids.clone(), peak_rss.clone(), stop_sampler.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(ProcSample::of_pids(&pids).rss_kib, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let limit = match spec.kind {
        Kind::Timers => spec.timeout + Duration::from_secs(spec.timer_secs),
        _ => spec.timeout,
    };
    let load = drive(spec, clients, task_queue, progress);
    let outcome = tokio::time::timeout(limit, load).await;

    let wall = started.elapsed().as_secs_f64();
    let self_cpu = self_cpu_secs() - self_before;
    let machine_cpu = machine_busy_secs() - machine_before;
    let after = ProcSample::of_pids(&pids);
    let disk_after = server.disk_bytes();
    // What the server still does for these workflows (Durin archives them once closed for
    // 10 s) is their cost too; the next workload's figures then count only its own.
    tokio::time::sleep(spec.settle).await;
    let settled = ProcSample::of_pids(&pids);
    stop_sampler.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let mut peak_kib = peak_rss.load(Ordering::Relaxed).max(after.rss_kib);
    if hwm_reset {
        peak_kib = peak_kib.max(after.hwm_kib);
    }

    let completed = progress.completed.load(Ordering::Relaxed);
    let failed = progress.failed.load(Ordering::Relaxed);
    out.completed = completed;
    out.failed = failed;
    out.wall_secs = wall;
    out.notes = lock(&progress.notes).clone();
    let errors = lock(&progress.errors).clone();
    let mut problems = Vec::new();
    match outcome {
        Err(_) => problems.push(format!("timed out after {limit:?}")),
        Ok(Err(e)) => problems.push(format!("{e:#}")),
        Ok(Ok(())) => {}
    }
    if failed > 0 {
        problems.push(format!(
            "{failed} workflows failed; first errors: {}",
            errors.join(" | ")
        ));
    }
    if completed < spec.n && problems.is_empty() {
        problems.push(format!("only {completed} of {} completed", spec.n));
    }
    out.ok = problems.is_empty();
    if !problems.is_empty() {
        let mut e = problems.join("; ");
        if let Err(dead) = server_alive(server) {
            e.push_str(&format!("; {dead}"));
        }
        out.error = Some(e);
    }

    let server_cpu = (after.cpu_secs - before.cpu_secs).max(0.0);
    // Everything else on the machine: a busy neighbour (a build, another benchmark) makes the
    // figures of this run unreliable.
    let other = ((machine_cpu - server_cpu - self_cpu) / wall.max(1e-9)).max(0.0);
    if other > 0.25 && wall > 1.0 {
        out.notes.push(format!(
            "other processes used {other:.2} cores during this run: its figures are unreliable"
        ));
    }
    let f = &mut out.figures;
    f.insert("peak_rss_mib".into(), peak_kib as f64 / 1024.0);
    f.insert("server_cpu_cores".into(), server_cpu / wall.max(1e-9));
    f.insert("bench_cpu_cores".into(), self_cpu / wall.max(1e-9));
    f.insert("other_cpu_cores".into(), other);
    if completed > 0 {
        let server_cpu_settled = (settled.cpu_secs - before.cpu_secs).max(0.0);
        f.insert(
            "server_cpu_per_1k".into(),
            server_cpu_settled / completed as f64 * 1000.0,
        );
        f.insert(
            "disk_bytes_per_wf".into(),
            (disk_after as f64 - disk_before as f64) / completed as f64,
        );
    }
    if spec.kind == Kind::Timers {
        let lateness = lock(&progress.lateness_ms).clone();
        if let Some(v) = percentile(&lateness, 0.5) {
            f.insert("timer_late_p50_ms".into(), v);
        }
        if let Some(v) = percentile(&lateness, 0.99) {
            f.insert("timer_late_p99_ms".into(), v);
        }
        if let Some(v) = percentile(&lateness, 1.0) {
            f.insert("timer_late_max_ms".into(), v);
        }
        if !lateness.is_empty() {
            let late = lateness.iter().filter(|&&l| l > 1000.0).count();
            f.insert("timers_late_over_1s".into(), late as f64);
        }
        let fire = lock(&progress.fire_lateness_ms).clone();
        for (key, p) in [
            ("timer_fire_late_p50_ms", 0.5),
            ("timer_fire_late_p99_ms", 0.99),
            ("timer_fire_late_max_ms", 1.0),
        ] {
            if let Some(v) = percentile(&fire, p) {
                f.insert(key.into(), v);
            }
        }
        if !fire.is_empty() {
            let late = fire.iter().filter(|&&l| l > 1000.0).count();
            f.insert("timers_fired_over_1s".into(), late as f64);
            f.insert("timer_histories".into(), fire.len() as f64);
        }
        if let Some(v) = *lock(&progress.start_window_s) {
            f.insert("start_window_s".into(), v);
        }
    } else {
        if completed > 0 {
            f.insert("wf_per_sec".into(), completed as f64 / wall.max(1e-9));
        }
        let lat = lock(&progress.latencies_ms).clone();
        if let Some(v) = percentile(&lat, 0.5) {
            f.insert("p50_ms".into(), v);
        }
        if let Some(v) = percentile(&lat, 0.99) {
            f.insert("p99_ms".into(), v);
        }
    }
    debug_assert!(f.keys().all(|k| crate::stats::is_known(k)));
    Ok(())
}

fn server_alive(server: &Server) -> Result<()> {
    match server.pid() {
        Some(pid) if std::path::Path::new(&format!("/proc/{pid}")).exists() => Ok(()),
        _ => bail!("the server process is gone"),
    }
}

async fn drive(
    spec: &Spec,
    clients: &[Client],
    task_queue: &str,
    progress: &Arc<Progress>,
) -> Result<()> {
    let tq = task_queue.to_string();
    match spec.kind {
        Kind::EmptyC1 | Kind::EmptyC100 => {
            closed_loop(spec, clients, progress, move |client, i| {
                let tq = tq.clone();
                async move {
                    let h = client
                        .start_workflow(EmptyWorkflow::run, (), start_options(&tq, i))
                        .await
                        .context("start")?;
                    h.get_result(Default::default()).await.context("result")?;
                    Ok(())
                }
            })
            .await
        }
        Kind::ActivityC100 => {
            closed_loop(spec, clients, progress, move |client, i| {
                let tq = tq.clone();
                async move {
                    let input = format!("input-{i}");
                    let h = client
                        .start_workflow(ActivityWorkflow::run, input.clone(), start_options(&tq, i))
                        .await
                        .context("start")?;
                    let out = h.get_result(Default::default()).await.context("result")?;
                    if out != input {
                        bail!("activity returned {out:?}, expected {input:?}");
                    }
                    Ok(())
                }
            })
            .await
        }
        Kind::Chain10 => {
            closed_loop(spec, clients, progress, move |client, i| {
                let tq = tq.clone();
                async move {
                    let h = client
                        .start_workflow(ChainWorkflow::run, 10, start_options(&tq, i))
                        .await
                        .context("start")?;
                    let done = h.get_result(Default::default()).await.context("result")?;
                    if done != 10 {
                        bail!("{done} of 10 activities returned their input");
                    }
                    Ok(())
                }
            })
            .await
        }
        Kind::SignalQuery => {
            closed_loop(spec, clients, progress, move |client, i| {
                let tq = tq.clone();
                async move {
                    let h = client
                        .start_workflow(SignalWorkflow::run, 3, start_options(&tq, i))
                        .await
                        .context("start")?;
                    for n in 0..2 {
                        h.signal(SignalWorkflow::ping, n, WorkflowSignalOptions::default())
                            .await
                            .context("signal")?;
                    }
                    let seen = h
                        .query(SignalWorkflow::count, (), WorkflowQueryOptions::default())
                        .await
                        .context("query")?;
                    if seen != 2 {
                        bail!("query after 2 signals answered {seen}");
                    }
                    h.signal(SignalWorkflow::ping, 2, WorkflowSignalOptions::default())
                        .await
                        .context("signal")?;
                    let pings = h.get_result(Default::default()).await.context("result")?;
                    if pings != 3 {
                        bail!("workflow saw {pings} signals, expected 3");
                    }
                    Ok(())
                }
            })
            .await
        }
        Kind::Timers => timers(spec, clients, &tq, progress).await,
        Kind::RawEmpty | Kind::RawActivity => {
            let with_activity = spec.kind == Kind::RawActivity;
            closed_loop(spec, clients, progress, move |client, i| {
                let tq = tq.clone();
                async move { crate::raw::one_workflow(client, &tq, i, with_activity).await }
            })
            .await
        }
    }
}

fn start_options(task_queue: &str, i: u64) -> WorkflowStartOptions {
    WorkflowStartOptions::new(task_queue.to_string(), format!("{task_queue}-{i}")).build()
}

/// `spec.concurrency` callers, each running `op` to completion and then the next, until
/// `spec.n` have been started. Stops taking new work after too many failures.
async fn closed_loop<F, Fut>(
    spec: &Spec,
    clients: &[Client],
    progress: &Arc<Progress>,
    op: F,
) -> Result<()>
where
    F: Fn(Client, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let n = spec.n;
    let max_failures = (n / 10).max(10);
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..spec.concurrency.min(n as usize) {
        let client = clients[lane % clients.len()].clone();
        let (op, progress) = (op.clone(), progress.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                if progress.failed.load(Ordering::Relaxed) > max_failures {
                    break;
                }
                let i = progress.next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                match op(client.clone(), i).await {
                    Ok(()) => {
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                        progress.completed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => progress.fail(e),
                }
                // Publish as we go, so a timed-out run still has its latencies.
                if latencies.len() >= 64 {
                    lock(&progress.latencies_ms).append(&mut latencies);
                }
            }
            lock(&progress.latencies_ms).append(&mut latencies);
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a load task panicked")?;
    }
    Ok(())
}

/// Timer fan-out: starts `spec.n` workflows that each sleep `spec.timer_secs`, then collects
/// how late each woke up.
async fn timers(spec: &Spec, clients: &[Client], tq: &str, progress: &Arc<Progress>) -> Result<()> {
    let n = spec.n;
    let secs = spec.timer_secs;
    let first_start = Instant::now();
    // Phase 1: start them all, `spec.concurrency` starts in flight.
    let starts = futures::stream::iter(0..n)
        .map(|i| {
            let client = clients[i as usize % clients.len()].clone();
            async move {
                client
                    .start_workflow(TimerWorkflow::run, secs, start_options(tq, i))
                    .await
                    .with_context(|| format!("start timer workflow {i}"))
            }
        })
        .buffer_unordered(spec.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let window = first_start.elapsed().as_secs_f64();
    *lock(&progress.start_window_s) = Some(window);
    if window >= secs as f64 {
        lock(&progress.notes).push(format!(
            "starting {n} workflows took {window:.1} s >= the {secs} s sleep: not all were \
             asleep at once"
        ));
    }
    let mut handles = Vec::with_capacity(starts.len());
    for s in starts {
        match s {
            Ok(h) => handles.push(h),
            Err(e) => progress.fail(e),
        }
    }

    // Phase 2: the results (the lateness each workflow measured).
    let results = futures::stream::iter(handles.iter())
        .map(|h| async move { h.get_result(Default::default()).await })
        .buffer_unordered(200);
    let mut results = pin!(results);
    while let Some(r) = results.next().await {
        match r {
            Ok(late) => {
                progress.completed.fetch_add(1, Ordering::Relaxed);
                lock(&progress.lateness_ms).push(late as f64);
            }
            Err(e) => progress.fail(anyhow!("timer workflow result: {e}")),
        }
    }

    // Phase 3: the server's own record, TimerFired - (TimerStarted + secs), for every workflow
    // or an evenly spread sample.
    let wanted = usize::try_from(spec.timer_histories)
        .unwrap_or(usize::MAX)
        .max(1);
    let step = handles.len().div_ceil(wanted).max(1);
    let sample: Vec<_> = handles.iter().step_by(step).collect();
    let fetched = futures::stream::iter(sample)
        .map(|h| async move {
            h.fetch_history(WorkflowFetchHistoryOptions::builder().build())
                .into_events()
                .await
        })
        .buffer_unordered(20)
        .collect::<Vec<_>>()
        .await;
    for events in fetched.into_iter().flatten() {
        let time_of = |t: EventType| {
            events
                .iter()
                .find(|e| e.event_type() == t)
                .and_then(|e| e.event_time)
                .map(|ts| ts.seconds as f64 * 1000.0 + ts.nanos as f64 / 1e6)
        };
        if let (Some(started), Some(fired)) = (
            time_of(EventType::TimerStarted),
            time_of(EventType::TimerFired),
        ) {
            lock(&progress.fire_lateness_ms).push(fired - started - secs as f64 * 1000.0);
        }
    }
    Ok(())
}
