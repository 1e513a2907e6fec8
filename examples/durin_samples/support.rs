//! Plumbing shared by the samples: connecting to the server, running a worker next to the
//! sample's client code, unique ids, and small helpers for waiting and reading history.

use std::{
    future::Future,
    pin::pin,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, anyhow, bail};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, NamespacedClient, UntypedWorkflowHandle,
    Url, WorkflowExecutionDescription, WorkflowExecutionInfo, WorkflowFetchHistoryOptions,
    WorkflowStartOptions,
};
use temporalio_common::{
    data_converters::DataConverter, protos::temporal::api::history::v1::HistoryEvent,
};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

const DEFAULT_ADDRESS: &str = "http://127.0.0.1:7233";
const DEFAULT_NAMESPACE: &str = "default";

/// Where the server is, plus the SDK runtime that workers run on.
pub struct Env {
    pub address: Url,
    pub namespace: String,
    runtime: Runtime,
}

impl Env {
    /// Reads `TEMPORAL_ADDRESS` (a URL or `host:port`) and `TEMPORAL_NAMESPACE`.
    pub fn from_env() -> Result<Self> {
        let raw = std::env::var("TEMPORAL_ADDRESS")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
        let with_scheme = if raw.contains("://") {
            raw.clone()
        } else {
            format!("http://{raw}")
        };
        let address = Url::parse(&with_scheme)
            .with_context(|| format!("TEMPORAL_ADDRESS={raw:?} is not a valid address"))?;
        let namespace = std::env::var("TEMPORAL_NAMESPACE")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        let runtime = Runtime::from_current_tokio(Default::default())
            .context("could not create the Temporal SDK runtime")?;
        Ok(Env {
            address,
            namespace,
            runtime,
        })
    }

    /// A client with the default data converter (JSON payloads, no codec).
    pub async fn client(&self) -> Result<Client> {
        self.client_with(DataConverter::default()).await
    }

    /// A client with a custom data converter. Workers built from this client use it too.
    pub async fn client_with(&self, data_converter: DataConverter) -> Result<Client> {
        let options = ConnectionOptions::new(self.address.clone())
            .identity(format!("durin-samples@{}", std::process::id()))
            .connect_timeout(Duration::from_secs(3))
            .build();
        let connection = tokio::time::timeout(
            Duration::from_secs(10),
            Connection::connect(options),
        )
        .await
        .map_err(|_| anyhow!("timed out connecting to {}", self.address))?
        .map_err(|e| {
            anyhow!(
                "could not connect to a Temporal server at {} ({e}); is `durin dev` running? \
                     (start it with `cargo run --release -- dev`)",
                self.address
            )
        })?;
        let options = ClientOptions::new(self.namespace.clone())
            .data_converter(data_converter)
            .build();
        Client::new(connection, options).map_err(|e| anyhow!("could not create the client: {e}"))
    }

    /// A worker polling `options.task_queue` through `client`.
    pub fn worker(&self, client: &Client, options: WorkerOptions) -> Result<Worker> {
        Worker::new(&self.runtime, client.clone(), options)
            .map_err(|e| anyhow!("could not create the worker: {e}"))
    }
}

/// Runs `worker` while `body` (the sample's client code) runs, then shuts the worker down.
///
/// `Worker::run()` is `!Send`, so it cannot be `tokio::spawn`ed: it is polled here, on the
/// current task, next to `body`.
pub async fn with_worker<T>(
    worker: &mut Worker,
    body: impl Future<Output = Result<T>>,
) -> Result<T> {
    let shutdown = worker.shutdown_handle();
    let mut run = pin!(worker.run());
    let mut body = pin!(body);
    tokio::select! {
        biased;
        stopped = &mut run => match stopped {
            Ok(()) => bail!("the worker stopped before the sample finished"),
            Err(e) => bail!("the worker failed: {e}"),
        },
        out = &mut body => {
            shutdown();
            match tokio::time::timeout(Duration::from_secs(15), run).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("warning: the worker reported an error on shutdown: {e}"),
                Err(_) => eprintln!("warning: the worker did not shut down within 15s"),
            }
            out
        }
    }
}

/// Awaits `fut`, failing with "timed out waiting for {what}" after `secs` seconds.
pub async fn within<F: Future>(secs: u64, what: &str, fut: F) -> Result<F::Output> {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .map_err(|_| anyhow!("timed out after {secs}s waiting for {what}"))
}

/// A name unique to this run of the samples, for task queues and workflow ids.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!(
        "{prefix}-{millis}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Start options for workflow `workflow_id` on `task_queue`.
pub fn start_options(task_queue: &str, workflow_id: &str) -> WorkflowStartOptions {
    WorkflowStartOptions::new(task_queue.to_string(), workflow_id.to_string()).build()
}

/// An untyped handle on one run of `workflow_id` (the latest run if `run_id` is `None`).
pub fn run_handle(
    client: &Client,
    workflow_id: &str,
    run_id: Option<&str>,
) -> UntypedWorkflowHandle<Client> {
    WorkflowExecutionInfo::builder()
        .namespace(client.namespace())
        .workflow_id(workflow_id)
        .maybe_run_id(run_id)
        .build()
        .bind_untyped(client.clone())
}

/// Describes a run of `workflow_id` (the latest run if `run_id` is `None`).
pub async fn describe(
    client: &Client,
    workflow_id: &str,
    run_id: Option<&str>,
) -> Result<WorkflowExecutionDescription> {
    within(
        10,
        "describe",
        run_handle(client, workflow_id, run_id).describe(Default::default()),
    )
    .await?
    .with_context(|| format!("describe {workflow_id}"))
}

/// The full history of a run of `workflow_id`, exactly as the server stores it (payloads are
/// not decoded).
pub async fn history(
    client: &Client,
    workflow_id: &str,
    run_id: Option<&str>,
) -> Result<Vec<HistoryEvent>> {
    within(
        10,
        "workflow history",
        run_handle(client, workflow_id, run_id)
            .fetch_history(WorkflowFetchHistoryOptions::builder().build())
            .into_events(),
    )
    .await?
    .with_context(|| format!("fetch the history of {workflow_id}"))
}

/// Event type names of `events`, e.g. `WorkflowExecutionStarted`.
pub fn event_names(events: &[HistoryEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{:?}", e.event_type()))
        .collect()
}
