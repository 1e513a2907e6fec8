//! The worker behind the manifests in `examples/k8s/`: the official Temporal Rust SDK polling
//! one task queue until stopped. In a cluster the `Worker` resource's pods get the three
//! variables below from the operator; locally, point it at `durin dev` or `durin operator`:
//!
//! ```text
//! TEMPORAL_ADDRESS=127.0.0.1:7233 cargo run --example k8s-worker
//! ```
//!
//! - `TEMPORAL_ADDRESS`    engine address (default `127.0.0.1:7233`)
//! - `TEMPORAL_NAMESPACE`  namespace (default `default`)
//! - `TEMPORAL_TASK_QUEUE` task queue (default `durin-k8s-examples`)
//!
//! It prints `worker ready` once it polls, and stops on SIGINT or SIGTERM.

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    Runtime, SyncWorkflowContext, TimerResult, Worker, WorkerOptions, WorkflowContext,
    WorkflowResult, WorkflowTermination,
};

/// Greets its argument: `Hello, <name>!`.
#[workflow]
#[derive(Default)]
pub struct HelloWorkflow;

#[workflow_methods]
impl HelloWorkflow {
    #[run]
    pub async fn run(_ctx: &mut WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        Ok(format!("Hello, {name}!"))
    }
}

/// Collects `deliver` signals; completes with them once `expected` have arrived.
#[workflow]
#[derive(Default)]
pub struct MailboxWorkflow {
    messages: Vec<String>,
}

#[workflow_methods]
impl MailboxWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        expected: u32,
    ) -> WorkflowResult<Vec<String>> {
        ctx.wait_condition(|s| s.messages.len() >= expected as usize)
            .await?;
        Ok(ctx.state(|s| s.messages.clone()))
    }

    #[signal]
    pub fn deliver(&mut self, _ctx: &mut SyncWorkflowContext<Self>, message: String) {
        self.messages.push(message);
    }
}

/// Sleeps for the given seconds on a durable timer; closes as Canceled when cancelled.
#[workflow]
#[derive(Default)]
pub struct SleeperWorkflow;

#[workflow_methods]
impl SleeperWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, secs: u64) -> WorkflowResult<String> {
        if ctx.timer(Duration::from_secs(secs)).await == TimerResult::Fired {
            Ok("slept".into())
        } else {
            Err(WorkflowTermination::cancelled())
        }
    }
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

async fn connect(address: &str, namespace: &str) -> Result<Client> {
    let url = if address.contains("://") {
        address.to_string()
    } else {
        format!("http://{address}")
    };
    let url = Url::parse(&url).with_context(|| format!("TEMPORAL_ADDRESS={address:?}"))?;
    // The engine may come up after the worker (pods start in any order): keep trying.
    let mut last = String::new();
    for _ in 0..60 {
        let options = ConnectionOptions::new(url.clone())
            .identity(format!("k8s-worker@{}", std::process::id()))
            .connect_timeout(Duration::from_secs(2))
            .build();
        match Connection::connect(options).await {
            Ok(conn) => {
                return Client::new(conn, ClientOptions::new(namespace).build())
                    .map_err(|e| anyhow!("client: {e:?}"));
            }
            Err(e) => last = format!("{e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(anyhow!("could not reach {url}: {last}"))
}

#[tokio::main]
async fn main() -> Result<()> {
    let address = env_or("TEMPORAL_ADDRESS", "127.0.0.1:7233");
    let namespace = env_or("TEMPORAL_NAMESPACE", "default");
    let task_queue = env_or("TEMPORAL_TASK_QUEUE", "durin-k8s-examples");
    let client = connect(&address, &namespace).await?;
    let runtime = Runtime::from_current_tokio(Default::default())
        .map_err(|e| anyhow!("SDK runtime: {e:?}"))?;
    let options = WorkerOptions::new(task_queue.clone())
        .register_workflow::<HelloWorkflow>()
        .map_err(|e| anyhow!("{e:?}"))?
        .register_workflow::<MailboxWorkflow>()
        .map_err(|e| anyhow!("{e:?}"))?
        .register_workflow::<SleeperWorkflow>()
        .map_err(|e| anyhow!("{e:?}"))?
        .build();
    let mut worker =
        Worker::new(&runtime, client, options).map_err(|e| anyhow!("worker: {e:?}"))?;
    let shutdown = worker.shutdown_handle();
    println!("worker ready: {address}, namespace {namespace}, task queue {task_queue}");
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    };
    tokio::select! {
        res = worker.run() => res.map_err(|e| anyhow!("worker stopped: {e:?}"))?,
        _ = stop => {
            shutdown();
        }
    }
    Ok(())
}
