//! Workflow retry policies: failed runs are retried until one succeeds or maximum_attempts is
//! reached; a non-retryable failure is not retried.

use crate::common;
use crate::helpers::*;

use std::time::Duration;

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use serde::{Deserialize, Serialize};
use temporalio_client::{
    WorkflowExecutionStatus, WorkflowStartOptions, errors::WorkflowGetResultError,
};
use temporalio_common::{
    RetryPolicy,
    error::IncomingError,
    protos::temporal::api::{
        enums::v1::{ContinueAsNewInitiator, EventType, RetryState},
        history::v1::history_event::Attributes,
    },
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ApplicationFailure, WorkerOptions, WorkflowContext, WorkflowResult};

// ---- 3. workflow retry policy ---------------------------------------------------------------

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum FlakyMode {
    /// Fail (retryably) on every attempt before this one.
    SucceedOn(u32),
    /// Fail (retryably) on every attempt.
    AlwaysFail,
    /// Fail with a non-retryable failure.
    NonRetryable,
}

#[workflow]
#[derive(Default)]
pub struct FlakyWorkflow;

#[workflow_methods]
impl FlakyWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, mode: FlakyMode) -> WorkflowResult<u32> {
        let attempt = ctx.info().attempt();
        match mode {
            FlakyMode::SucceedOn(n) if attempt >= n => Ok(attempt),
            FlakyMode::SucceedOn(_) | FlakyMode::AlwaysFail => {
                Err(ApplicationFailure::new(format!("workflow failed on attempt {attempt}")).into())
            }
            FlakyMode::NonRetryable => Err(ApplicationFailure::non_retryable(format!(
                "fatal failure on attempt {attempt}"
            ))
            .into()),
        }
    }
}

pub(crate) fn workflow_retry_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(100))
        .backoff_coefficient(1.0)
        .maximum_attempts(max_attempts)
        .build()
}

/// 3. Workflow retry policy: a workflow failing on attempts 1 and 2 succeeds on attempt 3; a
/// workflow that always fails stops after maximum_attempts; a non-retryable failure is not
/// retried at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_retry_policy_retries_failed_runs() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-wf-retry");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<FlakyWorkflow>()
            .unwrap()
            .build(),
    );

    with_worker(&mut worker, async {
        // Succeeds on attempt 3 of 5.
        let id = unique("flaky");
        let handle = client
            .start_workflow(
                FlakyWorkflow::run,
                FlakyMode::SucceedOn(3),
                WorkflowStartOptions::new(tq.clone(), id.clone())
                    .retry_policy(workflow_retry_policy(5))
                    .build(),
            )
            .await
            .expect("start workflow");
        let first_run = handle.run_id().expect("run id").to_string();
        let attempt = within(
            20,
            "retried workflow result",
            handle.get_result(result_opts()),
        )
        .await
        .expect("workflow should succeed on its third attempt");
        assert_eq!(attempt, 3, "the successful attempt");

        let chain = run_chain(&client, &id, &first_run).await;
        assert_eq!(chain.len(), 3, "one run per attempt");
        for (i, (run, events)) in chain.iter().enumerate() {
            let started = started_attrs(events);
            assert_eq!(started.attempt, i as i32 + 1, "attempt of run {i}");
            assert_eq!(started.first_execution_run_id, first_run, "run {i}");
            if i + 1 < chain.len() {
                let desc = describe(&client, &id, Some(run)).await;
                assert_eq!(
                    desc.status(),
                    WorkflowExecutionStatus::Failed,
                    "attempt run {i}"
                );
                match events.last().and_then(|e| e.attributes.as_ref()) {
                    Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
                        assert_eq!(a.retry_state(), RetryState::InProgress, "run {i}");
                        assert_eq!(
                            a.failure.as_ref().map(|f| f.message.as_str()),
                            Some(format!("workflow failed on attempt {}", i + 1).as_str())
                        );
                    }
                    other => panic!("run {i} ({run}) should end failed, got {other:?}"),
                }
            } else {
                assert_eq!(
                    events.last().map(|e| e.event_type()),
                    Some(EventType::WorkflowExecutionCompleted)
                );
            }
            if i > 0 {
                assert_eq!(
                    started.initiator(),
                    ContinueAsNewInitiator::Retry,
                    "run {i}"
                );
                assert_eq!(
                    started.continued_execution_run_id,
                    chain[i - 1].0,
                    "run {i}"
                );
                let backoff = started
                    .first_workflow_task_backoff
                    .map(|d| (d.seconds, d.nanos));
                assert_eq!(
                    backoff,
                    Some((0, 100_000_000)),
                    "run {i} waits initial_interval (100ms, coefficient 1.0) before starting"
                );
            }
        }
        let latest = describe(&client, &id, None).await;
        assert_eq!(latest.status(), WorkflowExecutionStatus::Completed);
        assert_eq!(latest.run_id(), chain[2].0);

        // Always fails, at most 2 attempts: the client sees the last attempt's failure.
        let id = unique("doomed");
        let handle = client
            .start_workflow(
                FlakyWorkflow::run,
                FlakyMode::AlwaysFail,
                WorkflowStartOptions::new(tq.clone(), id.clone())
                    .retry_policy(workflow_retry_policy(2))
                    .build(),
            )
            .await
            .expect("start workflow");
        let first_run = handle.run_id().expect("run id").to_string();
        let outcome = within(
            20,
            "doomed workflow result",
            handle.get_result(result_opts()),
        )
        .await;
        match outcome {
            Err(WorkflowGetResultError::Failed(err)) => {
                assert!(
                    matches!(err.as_ref(), IncomingError::Application(_)),
                    "expected an application failure, got {err:?}"
                );
                assert_eq!(err.failure().message, "workflow failed on attempt 2");
            }
            other => panic!("expected a workflow failure, got {other:?}"),
        }
        let chain = run_chain(&client, &id, &first_run).await;
        assert_eq!(chain.len(), 2, "maximum_attempts = 2 means two runs");
        match chain[1].1.last().and_then(|e| e.attributes.as_ref()) {
            Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
                assert_eq!(a.retry_state(), RetryState::MaximumAttemptsReached);
                assert!(a.new_execution_run_id.is_empty());
            }
            other => panic!("last run should end failed, got {other:?}"),
        }
        let latest = describe(&client, &id, None).await;
        assert_eq!(latest.status(), WorkflowExecutionStatus::Failed);

        // Non-retryable failure: no retry despite the policy.
        let id = unique("fatal");
        let handle = client
            .start_workflow(
                FlakyWorkflow::run,
                FlakyMode::NonRetryable,
                WorkflowStartOptions::new(tq.clone(), id.clone())
                    .retry_policy(workflow_retry_policy(5))
                    .build(),
            )
            .await
            .expect("start workflow");
        let first_run = handle.run_id().expect("run id").to_string();
        let outcome = within(
            20,
            "fatal workflow result",
            handle.get_result(result_opts()),
        )
        .await;
        match outcome {
            Err(WorkflowGetResultError::Failed(err)) => {
                assert_eq!(err.failure().message, "fatal failure on attempt 1")
            }
            other => panic!("expected a workflow failure, got {other:?}"),
        }
        let chain = run_chain(&client, &id, &first_run).await;
        assert_eq!(chain.len(), 1, "a non-retryable failure is not retried");
        match chain[0].1.last().and_then(|e| e.attributes.as_ref()) {
            Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
                assert_eq!(a.retry_state(), RetryState::NonRetryableFailure)
            }
            other => panic!("run should end failed, got {other:?}"),
        }
    })
    .await;
}
