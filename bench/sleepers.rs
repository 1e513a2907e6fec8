//! Many sleeping workflows on one Durin (issue #25: a million): `n` workflows started through
//! the protocol-level driver (`raw.rs`, type `RawTimer`), each asleep on one durable timer.
//! Measured: the server's memory while all of them sleep, a restart with all of them (time
//! until it answers again, memory after), and the server-side lateness of the fires
//! (TimerFired − TimerStarted − the sleep, from the histories of an evenly spread sample).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use temporalio_client::Client;
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::Request;
use temporalio_common::protos::temporal::api::{
    common::v1::{Payload, Payloads, WorkflowExecution, WorkflowType},
    enums::v1::EventType,
    workflowservice::v1::{
        CountWorkflowExecutionsRequest, GetWorkflowExecutionHistoryRequest,
        StartWorkflowExecutionRequest,
    },
};

use crate::raw;
use crate::server::{Binaries, NAMESPACE, Server, ServerKind, connect};

pub struct SleepersArgs {
    pub workflows: u64,
    /// The sleep of each workflow (default: long enough for all of them to be started and
    /// the server restarted before the first fires).
    pub sleep_secs: Option<u64>,
    /// Starts in flight.
    pub concurrency: usize,
    pub pollers: usize,
    /// Histories read for the lateness (evenly spread; all when at least `workflows`).
    pub sample: u64,
    pub restart: bool,
    /// How long after all are asleep their memory is read (not past the first fire).
    pub settle: Duration,
    pub out: Option<PathBuf>,
}

/// What one run measured.
#[derive(Debug, Default, serde::Serialize)]
struct Measured {
    workflows: u64,
    sleep_secs: u64,
    start_window_secs: f64,
    start_rate_wf_per_s: f64,
    asleep: u64,
    /// Seconds after all were asleep that the memory was read.
    settled_secs: u64,
    rss_asleep_mib: f64,
    peak_rss_mib: f64,
    bytes_per_sleeping_workflow: f64,
    data_dir_mib: f64,
    /// The clean stop before the restart (SIGTERM to exit; Durin compacts its log then).
    stop_secs: Option<f64>,
    restart_secs: Option<f64>,
    rss_after_restart_mib: Option<f64>,
    completed: u64,
    lateness_sample: usize,
    lateness_p50_ms: f64,
    lateness_p99_ms: f64,
    lateness_max_ms: f64,
    /// Log compactions while the server ran, and the longest time one held the engine lock
    /// to take its snapshot (requests wait meanwhile; the lateness tail follows it).
    compactions: usize,
    longest_compaction_snapshot_ms: u64,
    notes: Vec<String>,
}

const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(bins: &Binaries, args: SleepersArgs) -> Result<()> {
    let n = args.workflows;
    // Starts run at a few thousand a second here; give them 1 s per 1,000, doubled, plus a
    // minute for the restart.
    let sleep_secs = args.sleep_secs.unwrap_or(60 + n / 500);
    let mut server = Server::start(ServerKind::Durin, bins, false).await?;
    let baseline = server.sample();
    let task_queue = format!("sleepers-{}", uuid::Uuid::new_v4().simple());
    let worker_client = connect(server.url()?, "durin-bench-worker").await?;
    let worker = raw::start_worker(&worker_client, &task_queue, args.pollers);
    let mut m = Measured {
        workflows: n,
        sleep_secs,
        ..Default::default()
    };

    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(connect(server.url()?, "durin-bench-load").await?);
    }
    let started_at = Instant::now();
    let failed = start_all(&clients, &task_queue, n, sleep_secs, args.concurrency).await;
    m.start_window_secs = started_at.elapsed().as_secs_f64();
    m.start_rate_wf_per_s = n as f64 / m.start_window_secs.max(1e-9);
    if failed > 0 {
        bail!("{failed} of {n} starts failed");
    }
    eprintln!(
        "sleepers: {n} started in {:.1} s ({:.0}/s)",
        m.start_window_secs, m.start_rate_wf_per_s
    );

    // All asleep: every first workflow task answered with its timer.
    let asleep_by = started_at + Duration::from_secs(sleep_secs);
    while worker.timers_started.load(Ordering::Relaxed) < n && Instant::now() < asleep_by {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    m.asleep = worker.timers_started.load(Ordering::Relaxed);
    if m.asleep < n {
        m.notes.push(format!(
            "only {} of {n} were asleep when the first woke",
            m.asleep
        ));
    }
    // Durin freezes runs unused for a while: read the memory they settle at.
    let settle = args
        .settle
        .min(asleep_by.saturating_duration_since(Instant::now()));
    tokio::time::sleep(settle).await;
    m.settled_secs = settle.as_secs();
    let asleep = server.sample();
    m.rss_asleep_mib = asleep.rss_kib as f64 / 1024.0;
    m.peak_rss_mib = asleep.hwm_kib as f64 / 1024.0;
    m.bytes_per_sleeping_workflow =
        (asleep.rss_kib.saturating_sub(baseline.rss_kib) * 1024) as f64 / n.max(1) as f64;
    m.data_dir_mib = server.disk_bytes() as f64 / MIB;
    eprintln!(
        "sleepers: {} asleep; RSS {:.0} MiB ({:.0} B each), data {:.0} MiB",
        m.asleep, m.rss_asleep_mib, m.bytes_per_sleeping_workflow, m.data_dir_mib
    );

    if args.restart {
        let (stopped, took) = server.restart(bins, Duration::from_secs(60)).await?;
        m.stop_secs = Some(stopped.as_secs_f64());
        m.restart_secs = Some(took.as_secs_f64());
        m.rss_after_restart_mib = Some(server.sample().rss_kib as f64 / 1024.0);
        eprintln!(
            "sleepers: stopped in {:.1} s, restarted in {:.1} s",
            stopped.as_secs_f64(),
            took.as_secs_f64()
        );
        if Instant::now() > asleep_by {
            m.notes
                .push("the restart ended after the first timers were due".into());
        }
    }

    // Every workflow completes once its timer fired. Followed through the worker's own count
    // (a visibility count scans every run: polled, it would load the server it measures),
    // then checked once with the server.
    let deadline = asleep_by + Duration::from_secs(sleep_secs.max(600));
    while worker.timers_completed.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut client = connect(server.url()?, "durin-bench-check").await?;
    m.completed = count(&mut client, "ExecutionStatus=\"Completed\"").await?;
    if m.completed < n {
        m.notes
            .push(format!("{} not completed at the deadline", n - m.completed));
    }
    m.peak_rss_mib = m.peak_rss_mib.max(server.sample().hwm_kib as f64 / 1024.0);

    let mut late = lateness(&client, &task_queue, n, args.sample, sleep_secs).await;
    late.sort_by(|a, b| a.total_cmp(b));
    m.lateness_sample = late.len();
    let pct = |p: f64| {
        late.get(((late.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    m.lateness_p50_ms = pct(0.50);
    m.lateness_p99_ms = pct(0.99);
    m.lateness_max_ms = late.last().copied().unwrap_or(f64::NAN);
    drop(worker);
    let snapshots = compaction_snapshots_ms(&server.log_text());
    m.compactions = snapshots.len();
    m.longest_compaction_snapshot_ms = snapshots.into_iter().max().unwrap_or(0);
    server.stop(Duration::from_secs(30)).await;
    report(&m, args.out.as_ref())
}

/// The `snapshot_ms` of every "compacting the log" line Durin logged.
fn compaction_snapshots_ms(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains("compacting the log"))
        .filter_map(|l| l.split("snapshot_ms=").nth(1))
        .filter_map(|r| r.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .collect()
}

/// Starts workflows 0..n, `concurrency` in flight; returns how many failed.
async fn start_all(
    clients: &[Client],
    task_queue: &str,
    n: u64,
    sleep_secs: u64,
    concurrency: usize,
) -> u64 {
    let input = Payloads {
        payloads: vec![Payload {
            metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
            data: sleep_secs.to_string().into_bytes(),
            ..Default::default()
        }],
    };
    futures::stream::iter(0..n)
        .map(|i| {
            let mut client = clients[i as usize % clients.len()].clone();
            let request = StartWorkflowExecutionRequest {
                namespace: NAMESPACE.into(),
                workflow_id: format!("{task_queue}-{i}"),
                workflow_type: Some(WorkflowType {
                    name: raw::TIMER.into(),
                }),
                task_queue: raw::queue(task_queue),
                input: Some(input.clone()),
                request_id: uuid::Uuid::new_v4().to_string(),
                identity: "durin-bench-sleepers".into(),
                ..Default::default()
            };
            async move {
                client
                    .start_workflow_execution(Request::new(request))
                    .await
                    .is_ok()
            }
        })
        .buffer_unordered(concurrency.max(1))
        .fold(0, |failed, ok| async move { failed + u64::from(!ok) })
        .await
}

async fn count(client: &mut Client, query: &str) -> Result<u64> {
    let r = client
        .count_workflow_executions(Request::new(CountWorkflowExecutionsRequest {
            namespace: NAMESPACE.into(),
            query: query.into(),
        }))
        .await
        .with_context(|| format!("count {query}"))?;
    Ok(u64::try_from(r.into_inner().count).unwrap_or(0))
}

/// TimerFired − TimerStarted − the sleep, ms, from the histories of up to `sample` workflows
/// spread evenly over 0..n.
async fn lateness(client: &Client, task_queue: &str, n: u64, sample: u64, sleep: u64) -> Vec<f64> {
    let step = n.div_ceil(sample.max(1)).max(1);
    futures::stream::iter((0..n).step_by(step as usize))
        .map(|i| {
            let mut client = client.clone();
            let request = GetWorkflowExecutionHistoryRequest {
                namespace: NAMESPACE.into(),
                execution: Some(WorkflowExecution {
                    workflow_id: format!("{task_queue}-{i}"),
                    run_id: String::new(),
                }),
                ..Default::default()
            };
            async move {
                let events = client
                    .get_workflow_execution_history(Request::new(request))
                    .await
                    .ok()?
                    .into_inner()
                    .history?
                    .events;
                let time_of = |t: EventType| {
                    events
                        .iter()
                        .find(|e| e.event_type == t as i32)
                        .and_then(|e| e.event_time)
                        .map(|ts| ts.seconds as f64 * 1000.0 + f64::from(ts.nanos) / 1e6)
                };
                Some(
                    time_of(EventType::TimerFired)?
                        - time_of(EventType::TimerStarted)?
                        - sleep as f64 * 1000.0,
                )
            }
        })
        .buffer_unordered(50)
        .filter_map(|l| async move { l })
        .collect()
        .await
}

fn report(m: &Measured, out: Option<&PathBuf>) -> Result<()> {
    let mut md = format!(
        "# Sleeping workflows on one Durin\n\n\
         {} workflows, each asleep on one durable timer of {} s (protocol-level driver).\n\n\
         | Figure | Value |\n|---|---|\n\
         | Started in | {:.1} s ({:.0} wf/s) |\n\
         | Asleep at once | {} |\n\
         | RSS with all asleep, {} s after the last | {:.0} MiB ({:.0} B per workflow above the idle server) |\n\
         | Peak RSS | {:.0} MiB |\n\
         | Data on disk | {:.0} MiB |\n",
        m.workflows,
        m.sleep_secs,
        m.start_window_secs,
        m.start_rate_wf_per_s,
        m.asleep,
        m.settled_secs,
        m.rss_asleep_mib,
        m.bytes_per_sleeping_workflow,
        m.peak_rss_mib,
        m.data_dir_mib,
    );
    if let (Some(stop), Some(secs), Some(rss)) =
        (m.stop_secs, m.restart_secs, m.rss_after_restart_mib)
    {
        md.push_str(&format!(
            "| Clean stop before the restart (SIGTERM → exit) | {stop:.1} s |\n\
             | Restart with all of them (spawn → first answer) | {secs:.1} s |\n\
             | RSS after the restart | {rss:.0} MiB |\n"
        ));
    }
    md.push_str(&format!(
        "| Completed after their timer fired | {} |\n\
         | Fire lateness, server side (sample of {}) | p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms |\n\
         | Log compactions, longest snapshot under the engine lock | {}, {} ms |\n",
        m.completed,
        m.lateness_sample,
        m.lateness_p50_ms,
        m.lateness_p99_ms,
        m.lateness_max_ms,
        m.compactions,
        m.longest_compaction_snapshot_ms
    ));
    for note in &m.notes {
        md.push_str(&format!("\n- {note}"));
    }
    println!("{md}");
    if let Some(out) = out {
        std::fs::write(out, &md).with_context(|| format!("write {}", out.display()))?;
        let json = out.with_extension("json");
        std::fs::write(&json, serde_json::to_string_pretty(m)?)
            .with_context(|| format!("write {}", json.display()))?;
    }
    Ok(())
}
