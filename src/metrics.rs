//! Prometheus metrics on `/metrics`: RPC counts and latencies, workflow starts and closes,
//! task-queue backlogs, reconciles, and how long resource status lags the engine.
//!
//! Counters live in one process-wide registry; the text format is written by hand (it is a
//! few lines) and served by a minimal HTTP responder, so no web framework is needed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::engine::matching::QueueKind;
use crate::engine::{ChangeKind, Engine};

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{l}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

/// Counts by status code and latencies of one RPC method.
#[derive(Default)]
struct MethodStats {
    by_code: BTreeMap<&'static str, u64>,
    latency: Histogram,
}

#[derive(Default)]
struct Registry {
    rpcs: BTreeMap<String, MethodStats>,
    workflows_started: u64,
    workflows_closed: BTreeMap<String, u64>,
    reconciles: BTreeMap<(String, &'static str), u64>,
    reflection_lag: Histogram,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Registry::default()))
}

/// One finished RPC: its method (last path segment) and gRPC status code name. Runs on every
/// request, so the common case (a method seen before) allocates nothing.
pub fn record_rpc(method: &str, code: &'static str, elapsed: Duration) {
    let mut r = registry().lock();
    if !r.rpcs.contains_key(method) {
        r.rpcs.insert(method.to_string(), MethodStats::default());
    }
    if let Some(stats) = r.rpcs.get_mut(method) {
        *stats.by_code.entry(code).or_default() += 1;
        stats.latency.observe(elapsed.as_secs_f64());
    }
}

/// The label Prometheus sees for a gRPC status code (the code's name).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "Ok",
        Cancelled => "Cancelled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
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

/// Counts workflow starts and closes from the engine's change feed, until the engine goes.
pub fn spawn_engine_counters(engine: &Arc<Engine>) -> tokio::task::JoinHandle<()> {
    let mut changes = engine.subscribe();
    tokio::spawn(async move {
        loop {
            match changes.recv().await {
                Ok(c) => match c.kind {
                    ChangeKind::Started => registry().lock().workflows_started += 1,
                    ChangeKind::Closed { status } => {
                        let name = crate::visibility::search_attributes::status_name(status);
                        *registry()
                            .lock()
                            .workflows_closed
                            .entry(name.to_string())
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

/// The exposition text.
pub fn render(engine: &Engine) -> String {
    let mut out = String::new();
    let r = registry().lock();
    out.push_str("# HELP durin_rpc_requests_total gRPC requests by method and status code.\n");
    out.push_str("# TYPE durin_rpc_requests_total counter\n");
    for (method, stats) in &r.rpcs {
        for (code, n) in &stats.by_code {
            let _ = writeln!(
                out,
                "durin_rpc_requests_total{{method=\"{}\",code=\"{code}\"}} {n}",
                escape(method)
            );
        }
    }
    out.push_str("# HELP durin_rpc_duration_seconds gRPC request latency (long polls included).\n");
    out.push_str("# TYPE durin_rpc_duration_seconds histogram\n");
    for (method, stats) in &r.rpcs {
        stats.latency.render(
            &mut out,
            "durin_rpc_duration_seconds",
            &format!("method=\"{}\"", escape(method)),
        );
    }
    out.push_str("# HELP durin_workflows_started_total Workflow runs started.\n");
    out.push_str("# TYPE durin_workflows_started_total counter\n");
    let _ = writeln!(out, "durin_workflows_started_total {}", r.workflows_started);
    out.push_str("# HELP durin_workflows_closed_total Workflow runs closed, by status.\n");
    out.push_str("# TYPE durin_workflows_closed_total counter\n");
    for (status, n) in &r.workflows_closed {
        let _ = writeln!(
            out,
            "durin_workflows_closed_total{{status=\"{status}\"}} {n}"
        );
    }
    out.push_str("# HELP durin_reconciles_total Controller reconciles, by outcome.\n");
    out.push_str("# TYPE durin_reconciles_total counter\n");
    for ((controller, outcome), n) in &r.reconciles {
        let _ = writeln!(
            out,
            "durin_reconciles_total{{controller=\"{controller}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    out.push_str("# HELP durin_status_reflection_lag_seconds Engine change to resource status.\n");
    out.push_str("# TYPE durin_status_reflection_lag_seconds histogram\n");
    r.reflection_lag
        .render(&mut out, "durin_status_reflection_lag_seconds", "");
    drop(r);
    let (backlogs, open) = engine.load_snapshot();
    out.push_str("# HELP durin_open_workflows Workflow runs currently open.\n");
    out.push_str("# TYPE durin_open_workflows gauge\n");
    let _ = writeln!(out, "durin_open_workflows {open}");
    let (archived, failed_rounds) = engine.archive_snapshot();
    out.push_str("# HELP durin_archived_runs Closed runs kept in the on-disk archive.\n");
    out.push_str("# TYPE durin_archived_runs gauge\n");
    let _ = writeln!(out, "durin_archived_runs {archived}");
    out.push_str(
        "# HELP durin_archive_write_failures_total Archive writes that failed (disk full or I/O \
         errors); the runs stay in memory and are retried.\n",
    );
    out.push_str("# TYPE durin_archive_write_failures_total counter\n");
    let _ = writeln!(out, "durin_archive_write_failures_total {failed_rounds}");
    let (shards, transfers) = engine.cluster_snapshot();
    out.push_str(
        "# HELP durin_shards_owned Shards this replica serves (1 with the embedded store).\n",
    );
    out.push_str("# TYPE durin_shards_owned gauge\n");
    let _ = writeln!(out, "durin_shards_owned {shards}");
    out.push_str(
        "# HELP durin_transfers_pending Operations owed to runs another replica serves, not yet acknowledged.\n",
    );
    out.push_str("# TYPE durin_transfers_pending gauge\n");
    let _ = writeln!(out, "durin_transfers_pending {transfers}");
    out.push_str("# HELP durin_task_queue_backlog Tasks waiting for a poller.\n");
    out.push_str("# TYPE durin_task_queue_backlog gauge\n");
    for (q, n) in backlogs {
        let kind = match q.kind {
            QueueKind::Workflow => "workflow",
            QueueKind::Activity => "activity",
        };
        let _ = writeln!(
            out,
            "durin_task_queue_backlog{{namespace=\"{}\",task_queue=\"{}\",kind=\"{kind}\"}} {n}",
            escape(&q.namespace),
            escape(&q.name)
        );
    }
    out
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

include!(concat!(env!("OUT_DIR"), "/rpc_paths.rs"));

/// The method label of a call: its method name when the path is one Durin serves, else
/// `unknown` (so a client cannot add labels).
fn method_label(path: &str) -> &str {
    match RPC_PATHS.binary_search(&path) {
        Ok(_) => path.rsplit('/').next().unwrap_or("unknown"),
        Err(_) => "unknown",
    }
}

/// A tower layer that records every gRPC call's method, status code and latency.
#[derive(Clone, Default)]
pub struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics { inner }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = method_label(req.uri().path()).to_string();
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            // Handler errors come back trailers-only: the status is in the headers.
            let code = match &res {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map(|c| code_name(tonic::Code::from_i32(c)))
                    .unwrap_or("Ok"),
                Err(_) => "Transport",
            };
            record_rpc(&method, code, started.elapsed());
            res
        })
    }
}

#[cfg(test)]
mod tests {
    use super::method_label;

    #[test]
    fn only_served_methods_become_labels() {
        assert_eq!(
            method_label("/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"),
            "StartWorkflowExecution"
        );
        assert_eq!(
            method_label("/temporal.api.operatorservice.v1.OperatorService/ListSearchAttributes"),
            "ListSearchAttributes"
        );
        assert_eq!(method_label("/grpc.health.v1.Health/Check"), "Check");
        assert_eq!(
            method_label("/temporal.api.workflowservice.v1.WorkflowService/NoSuchMethod1"),
            "unknown"
        );
        assert_eq!(method_label("/made.up.Service/Anything"), "unknown");
        assert_eq!(method_label(""), "unknown");
    }
}
