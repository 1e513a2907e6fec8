//! Prometheus metrics on `/metrics`, under the names and labels the Temporal server uses
//! wherever Durin has the same quantity (so Temporal's dashboards and alerts read them):
//! `service_requests`, `service_latency`, `service_error_with_type`, `service_errors`,
//! `workflow_success` and its siblings, `approximate_backlog_count`,
//! `task_schedule_to_start_latency`, `activity_eager_execution`, `persistence_requests`/`_latency`/`_errors`,
//! `build_information`, `restarts`; long polls in `long_poll_latency`, apart from the calls
//! whose latency is the server's; the standard `process_*` metrics; and Durin's own as
//! `durin_*` (controllers, archive, shards). Temporal's counters carry no `_total` suffix, as
//! the Temporal server exports them; Durin's own follow Prometheus' naming.
//!
//! Counters live in one process-wide registry; the text format is written by hand (it is a
//! few lines) and served by a minimal HTTP responder, so no web framework is needed. Every
//! label value that a client could choose is bounded: namespaces become labels once a call in
//! them succeeded, and at most [`MAX_LABEL_VALUES`] namespaces and task queues are named.

mod histogram;
mod process;
mod rpc;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::engine::matching::QueueKind;
use crate::engine::{ChangeKind, Engine};
use histogram::Histogram;
pub use rpc::{CallLabels, RpcMetricsLayer, label_call};

mod labels;

use labels::{LabelId, LabelValues, UNKNOWN_ID};

/// Requests, errors and latency of one operation in one namespace.
#[derive(Default)]
struct CallStats {
    requests: u64,
    errors_by_type: BTreeMap<&'static str, u64>,
    unexpected_errors: u64,
    latency: Histogram,
    long_poll: bool,
}

#[derive(Default)]
struct PersistenceStats {
    requests: u64,
    errors: u64,
    latency: Histogram,
}

#[derive(Default)]
struct Registry {
    /// By (namespace, operation).
    calls: BTreeMap<(LabelId, &'static str), CallStats>,
    workflows_started: u64,
    /// By (Temporal's metric name, namespace).
    workflows_closed: BTreeMap<(&'static str, String), u64>,
    /// By (namespace, task queue, task type).
    schedule_to_start: BTreeMap<(LabelId, LabelId, &'static str), Histogram>,
    /// Activity tasks handed to the worker completing a workflow task, by (namespace, task
    /// queue).
    eager_activities: BTreeMap<(LabelId, LabelId), u64>,
    persistence: BTreeMap<&'static str, PersistenceStats>,
    reconciles: BTreeMap<(String, &'static str), u64>,
    reflection_lag: Histogram,
    namespaces: LabelValues,
    task_queues: LabelValues,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(|| {
        process::mark_start();
        Mutex::new(Registry::default())
    })
}

/// One finished gRPC call. A namespace becomes a label only once a call in it succeeded (a
/// client cannot mint labels by naming namespaces that do not exist).
fn record_call(method: &'static str, labels: CallLabels, code: tonic::Code, elapsed: Duration) {
    let mut r = registry().lock();
    let namespace = match &labels.namespace {
        Some(ns) => r.namespaces.id(ns, code == tonic::Code::Ok),
        None => UNKNOWN_ID,
    };
    let operation = labels.operation.unwrap_or(method);
    let stats = r.calls.entry((namespace, operation)).or_default();
    stats.requests += 1;
    stats.long_poll = labels.long_poll;
    if let Some(error_type) = rpc::error_type(code) {
        *stats.errors_by_type.entry(error_type).or_default() += 1;
    }
    // What Temporal counts in `service_errors`: failures that are the server's, not the
    // caller's.
    if matches!(
        code,
        tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::DataLoss
    ) {
        stats.unexpected_errors += 1;
    }
    stats.latency.observe(elapsed.as_secs_f64());
}

/// A task handed to a poller `waited` after it was scheduled (`kind` names the queue's type;
/// `task_queue` is the normal queue's name, also for sticky tasks).
pub fn record_schedule_to_start(
    namespace: &str,
    task_queue: &str,
    kind: QueueKind,
    waited_ms: i64,
) {
    let mut r = registry().lock();
    // Tasks are handed out in namespaces that exist: a namespace label is admitted here.
    let namespace = r.namespaces.id(namespace, true);
    let task_queue = r.task_queues.id(task_queue, true);
    let task_type = task_type(kind);
    r.schedule_to_start
        .entry((namespace, task_queue, task_type))
        .or_default()
        .observe(waited_ms.max(0) as f64 / 1000.0);
}

/// An activity task started for the worker that scheduled it and returned with its workflow
/// task's completion (eager execution), without going through the queue.
pub fn record_eager_activity(namespace: &str, task_queue: &str) {
    let mut r = registry().lock();
    let namespace = r.namespaces.id(namespace, true);
    let task_queue = r.task_queues.id(task_queue, true);
    *r.eager_activities
        .entry((namespace, task_queue))
        .or_default() += 1;
}

/// One write to the store: `operation` is `AppendLog` (the embedded log's group commit:
/// write and fdatasync) or `CommitTransaction` (PostgreSQL).
pub fn record_persistence(operation: &'static str, ok: bool, elapsed: Duration) {
    let mut r = registry().lock();
    let stats = r.persistence.entry(operation).or_default();
    stats.requests += 1;
    if !ok {
        stats.errors += 1;
    }
    stats.latency.observe(elapsed.as_secs_f64());
}

fn task_type(kind: QueueKind) -> &'static str {
    match kind {
        QueueKind::Workflow => "Workflow",
        QueueKind::Activity => "Activity",
        QueueKind::Nexus => "Nexus",
    }
}

/// One reconcile of `controller`, successful or not.
pub fn record_reconcile(controller: &str, ok: bool) {
    let mut r = registry().lock();
    *r.reconciles
        .entry((controller.to_string(), if ok { "ok" } else { "error" }))
        .or_default() += 1;
}

/// Time from an engine change to the resource status that shows it.
pub fn record_reflection_lag(lag: Duration) {
    registry().lock().reflection_lag.observe(lag.as_secs_f64());
}

/// Temporal's counter for a run that closed with `status`.
fn close_metric(status: i32) -> &'static str {
    match crate::visibility::search_attributes::status_name(status) {
        "Completed" => "workflow_success",
        "Failed" => "workflow_failed",
        "TimedOut" => "workflow_timeout",
        "Canceled" => "workflow_cancel",
        "Terminated" => "workflow_terminate",
        "ContinuedAsNew" => "workflow_continued_as_new",
        _ => "workflow_closed_other",
    }
}

/// Counts workflow starts and closes from the engine's change feed, until the engine goes.
pub fn spawn_engine_counters(engine: &Arc<Engine>) -> tokio::task::JoinHandle<()> {
    let mut changes = engine.subscribe();
    tokio::spawn(async move {
        loop {
            match changes.recv().await {
                // Standalone executions (activities, Nexus operations) are not workflows.
                Ok(c) if crate::engine::standalone::is_reserved(&c.key.workflow_id) => {}
                Ok(c) => match c.kind {
                    ChangeKind::Started => registry().lock().workflows_started += 1,
                    ChangeKind::Closed { status } => {
                        *registry()
                            .lock()
                            .workflows_closed
                            .entry((close_metric(status), c.key.namespace.clone()))
                            .or_default() += 1;
                    }
                    _ => {}
                },
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The exposition text.
pub fn render(engine: &Engine) -> String {
    let mut out = String::new();
    let r = registry().lock();
    render_calls(&mut out, &r);
    render_workflows(&mut out, &r);
    render_persistence(&mut out, &r);
    header(
        &mut out,
        "durin_reconciles_total",
        "counter",
        "Controller reconciles, by outcome.",
    );
    for ((controller, outcome), n) in &r.reconciles {
        let _ = writeln!(
            out,
            "durin_reconciles_total{{controller=\"{controller}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    header(
        &mut out,
        "durin_status_reflection_lag_seconds",
        "histogram",
        "Engine change to resource status, in seconds.",
    );
    r.reflection_lag
        .render(&mut out, "durin_status_reflection_lag_seconds", "");
    drop(r);
    render_engine(&mut out, engine);
    render_build(&mut out);
    process::render(&mut out);
    out
}

fn render_calls(out: &mut String, r: &Registry) {
    let labels = |ns: &LabelId, op: &str| {
        format!(
            "namespace=\"{}\",operation=\"{op}\",service_name=\"frontend\"",
            escape(r.namespaces.name(*ns))
        )
    };
    header(
        out,
        "service_requests",
        "counter",
        "gRPC requests received, by namespace and operation.",
    );
    for ((ns, op), stats) in &r.calls {
        let _ = writeln!(
            out,
            "service_requests{{{}}} {}",
            labels(ns, op),
            stats.requests
        );
    }
    header(
        out,
        "service_error_with_type",
        "counter",
        "Failed gRPC requests, by error type.",
    );
    for ((ns, op), stats) in &r.calls {
        for (error_type, n) in &stats.errors_by_type {
            let _ = writeln!(
                out,
                "service_error_with_type{{error_type=\"{error_type}\",{}}} {n}",
                labels(ns, op)
            );
        }
    }
    header(
        out,
        "service_errors",
        "counter",
        "Requests that failed through the server's fault (internal, unknown, data loss).",
    );
    for ((ns, op), stats) in r.calls.iter().filter(|(_, s)| s.unexpected_errors > 0) {
        let _ = writeln!(
            out,
            "service_errors{{{}}} {}",
            labels(ns, op),
            stats.unexpected_errors
        );
    }
    header(
        out,
        "service_latency",
        "histogram",
        "Latency of gRPC requests that do not wait for work by design, in seconds.",
    );
    for ((ns, op), stats) in r.calls.iter().filter(|(_, s)| !s.long_poll) {
        stats
            .latency
            .render(out, "service_latency", &labels(ns, op));
    }
    header(
        out,
        "long_poll_latency",
        "histogram",
        "Latency of long polls (task-queue polls, history and update waits), in seconds: how long they waited for work.",
    );
    for ((ns, op), stats) in r.calls.iter().filter(|(_, s)| s.long_poll) {
        stats
            .latency
            .render(out, "long_poll_latency", &labels(ns, op));
    }
}

fn render_workflows(out: &mut String, r: &Registry) {
    header(
        out,
        "durin_workflows_started_total",
        "counter",
        "Workflow runs started.",
    );
    let _ = writeln!(out, "durin_workflows_started_total {}", r.workflows_started);
    let mut last = "";
    for ((metric, ns), n) in &r.workflows_closed {
        if *metric != last {
            header(out, metric, "counter", "Workflow runs closed this way.");
            last = metric;
        }
        let _ = writeln!(out, "{metric}{{namespace=\"{}\"}} {n}", escape(ns));
    }
    header(
        out,
        "task_schedule_to_start_latency",
        "histogram",
        "Time from a task's scheduling to a poller taking it, in seconds.",
    );
    for ((ns, tq, task_type), h) in &r.schedule_to_start {
        let labels = format!(
            "namespace=\"{}\",taskqueue=\"{}\",task_type=\"{task_type}\"",
            escape(r.namespaces.name(*ns)),
            escape(r.task_queues.name(*tq))
        );
        h.render(out, "task_schedule_to_start_latency", &labels);
    }
    header(
        out,
        "activity_eager_execution",
        "counter",
        "Activity tasks returned with the workflow task completion that scheduled them.",
    );
    for ((ns, tq), n) in &r.eager_activities {
        let _ = writeln!(
            out,
            "activity_eager_execution{{namespace=\"{}\",taskqueue=\"{}\"}} {n}",
            escape(r.namespaces.name(*ns)),
            escape(r.task_queues.name(*tq))
        );
    }
}

fn render_persistence(out: &mut String, r: &Registry) {
    header(
        out,
        "persistence_requests",
        "counter",
        "Writes to the store.",
    );
    for (op, s) in &r.persistence {
        let _ = writeln!(
            out,
            "persistence_requests{{operation=\"{op}\"}} {}",
            s.requests
        );
    }
    header(
        out,
        "persistence_errors",
        "counter",
        "Writes to the store that failed.",
    );
    for (op, s) in &r.persistence {
        let _ = writeln!(out, "persistence_errors{{operation=\"{op}\"}} {}", s.errors);
    }
    header(
        out,
        "persistence_latency",
        "histogram",
        "Latency of writes to the store until durable, in seconds.",
    );
    for (op, s) in &r.persistence {
        s.latency
            .render(out, "persistence_latency", &format!("operation=\"{op}\""));
    }
}

fn render_engine(out: &mut String, engine: &Engine) {
    let (backlogs, open, frozen) = engine.load_snapshot();
    header(
        out,
        "durin_open_workflows",
        "gauge",
        "Workflow runs currently open.",
    );
    let _ = writeln!(out, "durin_open_workflows {open}");
    header(
        out,
        "durin_frozen_runs",
        "gauge",
        "Open workflow runs held frozen in memory (compressed; see --freeze-idle-after).",
    );
    let _ = writeln!(out, "durin_frozen_runs {frozen}");
    let (archived, failed_rounds) = engine.archive_snapshot();
    header(
        out,
        "durin_archived_runs",
        "gauge",
        "Closed runs kept in the on-disk archive.",
    );
    let _ = writeln!(out, "durin_archived_runs {archived}");
    header(
        out,
        "durin_archive_write_failures_total",
        "counter",
        "Archive writes that failed (disk full or I/O errors); the runs stay in memory and are retried.",
    );
    let _ = writeln!(out, "durin_archive_write_failures_total {failed_rounds}");
    let (shards, transfers) = engine.cluster_snapshot();
    header(
        out,
        "durin_shards_owned",
        "gauge",
        "Shards this replica serves (1 with the embedded store).",
    );
    let _ = writeln!(out, "durin_shards_owned {shards}");
    header(
        out,
        "durin_transfers_pending",
        "gauge",
        "Operations owed to runs another replica serves, not yet acknowledged.",
    );
    let _ = writeln!(out, "durin_transfers_pending {transfers}");
    header(
        out,
        "approximate_backlog_count",
        "gauge",
        "Tasks waiting for a poller, by task queue.",
    );
    // (The engine's own queues: as many as it holds in memory, not a client's choice.)
    for (q, n) in backlogs {
        let _ = writeln!(
            out,
            "approximate_backlog_count{{namespace=\"{}\",taskqueue=\"{}\",task_type=\"{}\"}} {n}",
            escape(&q.namespace),
            escape(&q.name),
            task_type(q.kind)
        );
    }
}

fn render_build(out: &mut String) {
    header(
        out,
        "build_information",
        "gauge",
        "The running build: version, commit, platform.",
    );
    let _ = writeln!(
        out,
        "build_information{{build_version=\"{}\",git_revision=\"{}\",build_platform=\"{}\",service_name=\"durin\"}} 1",
        crate::api::SERVER_VERSION,
        crate::api::COMMIT,
        std::env::consts::ARCH
    );
    header(
        out,
        "restarts",
        "counter",
        "Starts of this process (always 1: a restart resets it, which is what a rate shows).",
    );
    let _ = writeln!(out, "restarts{{service_name=\"durin\"}} 1");
}

/// Serves `GET /metrics` (and `/healthz`) over plain HTTP/1.1, one response per connection.
pub async fn serve(engine: Arc<Engine>, listener: tokio::net::TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut len = 0;
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while len < buf.len() {
                    let n = stream.read(&mut buf[len..]).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    len += n;
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let path = head.split_whitespace().nth(1).unwrap_or("");
            let (status, body, kind) = match path {
                "/metrics" => ("200 OK", render(&engine), "text/plain; version=0.0.4"),
                "/healthz" => ("200 OK", "ok\n".to_string(), "text/plain"),
                _ => ("404 Not Found", "not found\n".to_string(), "text/plain"),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
