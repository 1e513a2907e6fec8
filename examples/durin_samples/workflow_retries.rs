//! workflow-retries: a workflow retry policy makes the server start a new run (attempt 2, 3, ...)
//! each time a run fails, until one succeeds; a workflow execution timeout bounds the whole
//! execution and ends it as TimedOut.

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use temporalio_client::{
    WorkflowExecutionStatus, WorkflowStartOptions, errors::WorkflowGetResultError,
};
use temporalio_common::{
    RetryPolicy,
    protos::temporal::api::history::v1::{HistoryEvent, history_event::Attributes},
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ApplicationFailure, WorkerOptions, WorkflowContext, WorkflowResult};

use crate::support::{Env, describe, event_names, history, unique, with_worker, within};

/// Fails on every attempt before `succeed_on`.
#[workflow]
#[derive(Default)]
pub struct FlakyImportWorkflow;

#[workflow_methods]
impl FlakyImportWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, succeed_on: u32) -> WorkflowResult<String> {
        let attempt = ctx.info().attempt();
        if attempt < succeed_on {
            // A retryable failure: the run ends Failed and the server schedules the next attempt.
            return Err(
                ApplicationFailure::new(format!("source not ready (attempt {attempt})")).into(),
            );
        }
        Ok(format!("imported on attempt {attempt}"))
    }
}

/// Sleeps (durably) for `secs` seconds.
#[workflow]
#[derive(Default)]
pub struct SlowReportWorkflow;

#[workflow_methods]
impl SlowReportWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, secs: u64) -> WorkflowResult<String> {
        ctx.timer(Duration::from_secs(secs)).await;
        Ok("report ready".to_string())
    }
}

/// The run a closed run continued into (a retry, here), if any.
fn next_run(events: &[HistoryEvent]) -> Option<String> {
    let run = match events.last()?.attributes.as_ref()? {
        Attributes::WorkflowExecutionFailedEventAttributes(a) => &a.new_execution_run_id,
        Attributes::WorkflowExecutionTimedOutEventAttributes(a) => &a.new_execution_run_id,
        _ => return None,
    };
    Some(run.clone()).filter(|r| !r.is_empty())
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("workflow-retries");
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<FlakyImportWorkflow>()?
            .register_workflow::<SlowReportWorkflow>()?
            .build(),
    )?;

    with_worker(&mut worker, async {
        // 1. Retry policy: at most 5 attempts, 200 ms apart. Attempts 1 and 2 fail.
        let workflow_id = unique("import");
        let handle = client
            .start_workflow(
                FlakyImportWorkflow::run,
                3u32,
                WorkflowStartOptions::new(task_queue.clone(), workflow_id.clone())
                    .retry_policy(
                        RetryPolicy::builder()
                            .initial_interval(Duration::from_millis(200))
                            .backoff_coefficient(1.0)
                            .maximum_attempts(5)
                            .build(),
                    )
                    .build(),
            )
            .await?;
        println!("started FlakyImportWorkflow {workflow_id} (succeeds on attempt 3)");
        let first_run = handle.run_id().unwrap_or_default().to_string();
        // get_result follows the chain of runs to the last one.
        let result = within(
            30,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        println!("workflow result: {result:?}");
        ensure!(
            result == "imported on attempt 3",
            "unexpected result {result:?}"
        );

        // Walk the chain of runs: each failed run names the run that retries it.
        let mut runs = Vec::new();
        let mut run = Some(first_run);
        while let Some(run_id) = run {
            ensure!(runs.len() < 10, "too many runs");
            let events = history(&client, &workflow_id, Some(&run_id)).await?;
            let status = describe(&client, &workflow_id, Some(&run_id))
                .await?
                .status();
            let last = event_names(&events).pop().unwrap_or_default();
            println!("  run {run_id}: {status:?} ({last})");
            run = next_run(&events);
            runs.push(status);
        }
        ensure!(
            runs == [
                WorkflowExecutionStatus::Failed,
                WorkflowExecutionStatus::Failed,
                WorkflowExecutionStatus::Completed
            ],
            "expected two failed runs and a completed one, got {runs:?}"
        );

        // 2. Execution timeout: the workflow would sleep 30 s, but may take 1 s in all.
        let workflow_id = unique("report");
        let started = Instant::now();
        let handle = client
            .start_workflow(
                SlowReportWorkflow::run,
                30u64,
                WorkflowStartOptions::new(task_queue.clone(), workflow_id.clone())
                    .execution_timeout(Duration::from_secs(1))
                    .build(),
            )
            .await?;
        println!("started SlowReportWorkflow {workflow_id} (sleeps 30 s, execution timeout 1 s)");
        let outcome = within(
            30,
            "the timed-out workflow",
            handle.get_result(Default::default()),
        )
        .await?;
        let waited = started.elapsed();
        println!("get_result after {} ms: {outcome:?}", waited.as_millis());
        ensure!(
            matches!(outcome, Err(WorkflowGetResultError::TimedOut)),
            "expected the workflow to time out, got {outcome:?}"
        );
        ensure!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
            "timed out after {waited:?}, expected about 1 s"
        );
        let status = describe(&client, &workflow_id, None).await?.status();
        let events = event_names(&history(&client, &workflow_id, None).await?);
        println!(
            "describe: {status:?}; last event {}",
            events.last().map(String::as_str).unwrap_or("?")
        );
        ensure!(status == WorkflowExecutionStatus::TimedOut);
        if events.last().map(String::as_str) != Some("WorkflowExecutionTimedOut") {
            bail!("the last event should be WorkflowExecutionTimedOut, got {events:?}");
        }
        Ok(())
    })
    .await
}
