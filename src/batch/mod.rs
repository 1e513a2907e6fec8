//! The batch runner: works through the running batch operations of the shards this replica
//! serves. It is a client of the frontend, as Temporal's batcher is: targets come from
//! ListWorkflowExecutions (merged across replicas), and each workflow is terminated,
//! signalled, reset… by the ordinary RPC, which routes to the replica serving it.
//!
//! Targets are done in (workflow id, run id) order, listed a round of at most [`ROUND`] at a
//! time. Each is recorded as in flight before its action and as done after it, so after a
//! restart (or a shard move) the job acts once more on the one in flight, then resumes after
//! the last one done, and counts each target once. The repeated action is harmless: signals,
//! resets and cancellations carry a request id derived from the job and the target, and a
//! terminate or delete of a workflow already gone counts as done (NOT_FOUND is success, as in
//! Temporal).

mod actions;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use temporalio_protos::temporal::api::workflowservice::v1::{
    CountWorkflowExecutionsRequest, ListWorkflowExecutionsRequest, StartBatchOperationRequest,
    start_batch_operation_request::Operation,
};

use crate::engine::Engine;
use crate::engine::batch::BatchProgress;
use crate::operator::frontend::{Frontend, Local};
use crate::store::records::BatchJobRecord;

/// Targets per round (and per progress record).
const ROUND: usize = 100;
/// Temporal's batcher default rate (`worker.batcherRPS`), used when a job names none.
const DEFAULT_RATE: f32 = 50.0;
/// How often an idle runner looks for jobs (a new job wakes it at once).
const IDLE_WAIT: Duration = Duration::from_secs(5);
/// Attempts per target before it counts as failed.
const ATTEMPTS: usize = 3;

/// Starts the runner; it stops when the engine shuts down.
pub fn spawn(
    engine: Arc<Engine>,
    cluster: Option<Arc<crate::cluster::Cluster>>,
) -> tokio::task::JoinHandle<()> {
    let frontend = Local::new(engine.clone(), cluster);
    let wake = engine.batch_wake();
    let mut shutdown = engine.shutdown_signal();
    tokio::spawn(async move {
        loop {
            let jobs = engine.running_batches();
            for job in &jobs {
                if let Err(e) = run_round(&engine, &frontend, job).await {
                    tracing::warn!(job_id = %job.job_id, error = %e, "batch operation round failed; retrying");
                }
            }
            if jobs.is_empty() {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_WAIT) => {}
                    _ = shutdown.changed() => return,
                }
            }
            if *shutdown.borrow() {
                return;
            }
        }
    })
}

/// One round of a job: the target left in flight, if any, then up to [`ROUND`] more, paced
/// at the job's rate. Ends early when the job stopped meanwhile.
async fn run_round(
    engine: &Engine,
    frontend: &Local,
    job: &BatchJobRecord,
) -> Result<(), tonic::Status> {
    let req = job.request.clone().unwrap_or_default();
    let record = |progress: BatchProgress| async move {
        engine
            .record_batch_progress(&job.namespace, &job.job_id, progress)
            .await
            .map_err(crate::rpc::errors::to_status)
    };
    if !job.counted {
        let total = count(frontend, &req).await?;
        record(BatchProgress {
            total: Some(total),
            ..Default::default()
        })
        .await?;
    }
    let mut targets = Vec::new();
    if !job.in_flight_workflow_id.is_empty() {
        targets.push((
            job.in_flight_workflow_id.clone(),
            job.in_flight_run_id.clone(),
        ));
    }
    let after = (
        job.done_through_workflow_id.clone(),
        job.done_through_run_id.clone(),
    );
    let listed = next_targets(frontend, &req, &after).await?;
    let finished = listed.len() < ROUND;
    let again = targets.first().cloned();
    targets.extend(listed.into_iter().filter(|t| Some(t) != again.as_ref()));
    let rate = match req.max_operations_per_second {
        r if r > 0.0 => r,
        _ => DEFAULT_RATE,
    };
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for target in targets {
        pace.tick().await;
        let in_flight = BatchProgress {
            in_flight: Some(target.clone()),
            ..Default::default()
        };
        if !record(in_flight).await? {
            return Ok(());
        }
        let ok = apply_with_retries(frontend, job, &req, &target).await;
        let done = BatchProgress {
            completed: ok as i64,
            failed: !ok as i64,
            done_through: Some(target).filter(|t| *t > after),
            ..Default::default()
        };
        if !record(done).await? {
            return Ok(());
        }
    }
    if finished {
        record(BatchProgress {
            finished: true,
            ..Default::default()
        })
        .await?;
    }
    Ok(())
}

async fn apply_with_retries(
    frontend: &Local,
    job: &BatchJobRecord,
    req: &StartBatchOperationRequest,
    target: &(String, String),
) -> bool {
    for attempt in 1..=ATTEMPTS {
        match actions::apply(frontend, job, req, target).await {
            Ok(()) => return true,
            Err(status) if status.code() == tonic::Code::NotFound => return true,
            Err(status) if is_final(&status) || attempt == ATTEMPTS => {
                tracing::info!(job_id = %job.job_id, workflow_id = %target.0, error = %status.message(), "batch operation failed for a workflow");
                return false;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100 * attempt as u64)).await,
        }
    }
    false
}

/// Errors a retry cannot mend.
fn is_final(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::InvalidArgument
            | tonic::Code::FailedPrecondition
            | tonic::Code::AlreadyExists
            | tonic::Code::PermissionDenied
    )
}

/// The query the job's targets match: an operation on running workflows only looks at
/// running ones, as Temporal's batcher does.
fn effective_query(req: &StartBatchOperationRequest) -> String {
    let only_running = !matches!(
        req.operation,
        Some(Operation::DeletionOperation(_) | Operation::ResetOperation(_))
    );
    match (req.visibility_query.trim(), only_running) {
        ("", true) => "ExecutionStatus = 'Running'".into(),
        (q, true) => format!("({q}) AND ExecutionStatus = 'Running'"),
        (q, false) => q.to_string(),
    }
}

#[allow(deprecated)]
async fn count(frontend: &Local, req: &StartBatchOperationRequest) -> Result<i64, tonic::Status> {
    if !req.executions.is_empty() {
        return Ok(req.executions.len() as i64);
    }
    let resp = frontend
        .count_workflow_executions(CountWorkflowExecutionsRequest {
            namespace: req.namespace.clone(),
            query: effective_query(req),
        })
        .await?;
    Ok(resp.count)
}

/// The next targets after `after`, in (workflow id, run id) order: from the request's list
/// of executions, or the smallest of everything the query matches now (memory stays at one
/// round however many match).
#[allow(deprecated)]
async fn next_targets(
    frontend: &Local,
    req: &StartBatchOperationRequest,
    after: &(String, String),
) -> Result<Vec<(String, String)>, tonic::Status> {
    let mut smallest = BTreeSet::new();
    let mut keep = |target: (String, String)| {
        if target > *after {
            smallest.insert(target);
            if smallest.len() > ROUND {
                smallest.pop_last();
            }
        }
    };
    if !req.executions.is_empty() {
        for e in &req.executions {
            keep((e.workflow_id.clone(), e.run_id.clone()));
        }
        return Ok(smallest.into_iter().collect());
    }
    let query = effective_query(req);
    let mut token = Vec::new();
    loop {
        let page = frontend
            .list_workflow_executions(ListWorkflowExecutionsRequest {
                namespace: req.namespace.clone(),
                page_size: 1000,
                next_page_token: token,
                query: query.clone(),
            })
            .await?;
        for info in page.executions {
            if let Some(e) = info.execution {
                keep((e.workflow_id, e.run_id));
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    Ok(smallest.into_iter().collect())
}
