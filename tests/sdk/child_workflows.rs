//! Child workflows: a parent gets its child's result, sees its child's failure (caught or
//! propagated, and a child terminated by the client), signals and cancels its children, is
//! refused a second child on a running id, and waits for children that run as chains of runs
//! (continue-as-new, retries).
//!
//! `WaiterWorkflow` is defined here; the parent-close and external signal / cancel tests use it
//! too. Parent-close policies are in `parent_close_policies`.

use crate::common;
use crate::continue_as_new::{CounterOutcome, CounterWorkflow};
use crate::helpers::*;
use crate::parent_close_policies::{AbandonOrder, ClosePolicy, ShortLivedParent};
use crate::workflow_retries::{FlakyMode, FlakyWorkflow, workflow_retry_policy};

use std::time::Duration;

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use serde::{Deserialize, Serialize};
use temporalio_client::{
    WorkflowExecutionStatus, WorkflowTerminateOptions, errors::WorkflowGetResultError,
};
use temporalio_common::{
    error::IncomingError,
    protos::temporal::api::{enums::v1::EventType, history::v1::history_event::Attributes},
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ApplicationFailure, ChildWorkflowExecutionError, ChildWorkflowOptions, ChildWorkflowStartError,
    SignalWorkflowOptions, SyncWorkflowContext, WorkflowContext, WorkflowResult,
};

// ---- a workflow that waits for one signal (child, signal target, cancel target) ------------

/// Waits until signalled `release(message)` and returns `"released: <message>"`. If the
/// workflow is cancelled while waiting it reports itself cancelled.
#[workflow]
#[derive(Default)]
pub struct WaiterWorkflow {
    message: Option<String>,
}

#[workflow_methods]
impl WaiterWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        // A cancellation request makes the wait fail; `?` turns that into "cancelled".
        ctx.wait_condition(|s| s.message.is_some()).await?;
        Ok(format!(
            "released: {}",
            ctx.state(|s| s.message.clone().unwrap_or_default())
        ))
    }

    #[signal]
    pub fn release(&mut self, _ctx: &mut SyncWorkflowContext<Self>, message: String) {
        self.message = Some(message);
    }
}

// ---- 1a. child returns a value --------------------------------------------------------------

#[workflow]
#[derive(Default)]
pub struct SquareChild;

#[workflow_methods]
impl SquareChild {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, x: u64) -> WorkflowResult<String> {
        let parent = ctx
            .info()
            .parent()
            .map(|p| p.workflow_id().to_string())
            .unwrap_or_else(|| "<none>".to_string());
        Ok(format!("{x} squared is {} (parent {parent})", x * x))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComputeOrder {
    pub child_id: String,
    pub x: u64,
}

/// Starts `SquareChild` and returns exactly what the child returned.
#[workflow]
#[derive(Default)]
pub struct ComputeParent;

#[workflow_methods]
impl ComputeParent {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        order: ComputeOrder,
    ) -> WorkflowResult<String> {
        let child = ctx
            .start_child_workflow(
                SquareChild::run,
                order.x,
                ChildWorkflowOptions::workflow_id(order.child_id),
            )
            .await?;
        Ok(child.result().await?)
    }
}

/// 1a. A parent starts a child and returns the child's result; the histories of both show the
/// parent/child relationship.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_workflow_result_is_returned_by_parent() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-child");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));
    let parent_id = unique("compute-parent");
    let child_id = unique("square-child");

    with_worker(&mut worker, async {
        let parent = client
            .start_workflow(
                ComputeParent::run,
                ComputeOrder {
                    child_id: child_id.clone(),
                    x: 12,
                },
                start_opts(&tq, &parent_id),
            )
            .await
            .expect("start parent");
        let result = within(20, "parent result", parent.get_result(result_opts()))
            .await
            .expect("parent should complete with the child's result");
        assert_eq!(result, format!("12 squared is 144 (parent {parent_id})"));

        let parent_desc = parent.describe(Default::default()).await.expect("describe");
        assert_eq!(parent_desc.status(), WorkflowExecutionStatus::Completed);

        let child_desc = describe(&client, &child_id, None).await;
        assert_eq!(child_desc.status(), WorkflowExecutionStatus::Completed);
        assert_eq!(child_desc.workflow_type(), "SquareChild");
        assert_eq!(
            child_desc.task_queue(),
            tq.as_str(),
            "child inherits the task queue"
        );
        assert_eq!(child_desc.parent_id(), Some(parent_id.as_str()));
        assert_eq!(child_desc.parent_run_id(), parent.run_id());

        let parent_events = history(&client, &parent_id, None).await;
        assert_has_events(
            &parent_events,
            &[
                EventType::StartChildWorkflowExecutionInitiated,
                EventType::ChildWorkflowExecutionStarted,
                EventType::ChildWorkflowExecutionCompleted,
                EventType::WorkflowExecutionCompleted,
            ],
            "parent",
        );
        let child_completed = parent_events
            .iter()
            .find_map(|e| match &e.attributes {
                Some(Attributes::ChildWorkflowExecutionCompletedEventAttributes(a)) => Some(a),
                _ => None,
            })
            .expect("ChildWorkflowExecutionCompleted");
        assert_eq!(
            child_completed
                .workflow_execution
                .as_ref()
                .map(|e| (e.workflow_id.as_str(), e.run_id.as_str())),
            Some((child_id.as_str(), child_desc.run_id()))
        );

        let child_events = history(&client, &child_id, None).await;
        let started = started_attrs(&child_events);
        assert_eq!(
            started
                .parent_workflow_execution
                .as_ref()
                .map(|e| e.workflow_id.as_str()),
            Some(parent_id.as_str())
        );
        assert!(started.parent_initiated_event_id > 0);
    })
    .await;
}

// ---- 1b. child fails ------------------------------------------------------------------------

#[workflow]
#[derive(Default)]
pub struct FailingChild;

#[workflow_methods]
impl FailingChild {
    #[run]
    pub async fn run(_ctx: &mut WorkflowContext<Self>, what: String) -> WorkflowResult<String> {
        Err(ApplicationFailure::new(format!("child exploded: {what}")).into())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailOrder {
    pub child_id: String,
    /// Catch the child's failure inside the parent and describe it (instead of failing too).
    pub catch_failure: bool,
}

#[workflow]
#[derive(Default)]
pub struct FailParent;

#[workflow_methods]
impl FailParent {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, order: FailOrder) -> WorkflowResult<String> {
        let child = ctx
            .start_child_workflow(
                FailingChild::run,
                "kaboom".to_string(),
                ChildWorkflowOptions::workflow_id(order.child_id),
            )
            .await?;
        let outcome = child.result().await;
        if !order.catch_failure {
            return Ok(outcome?);
        }
        match outcome {
            Ok(v) => Ok(format!("child unexpectedly succeeded: {v}")),
            Err(ChildWorkflowExecutionError::Failed(f)) => Ok(format!(
                "caught child failure: type={} id={} cause={}",
                f.workflow_type().unwrap_or("?"),
                f.workflow_execution().map_or("?", |e| e.workflow_id()),
                f.cause()
                    .map_or("<no cause>", |c| c.failure().message.as_str()),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// 1b. A failing child: the parent sees a child-workflow failure whose cause is the child's
/// application failure — both inside the workflow (caught) and at the client (propagated).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_workflow_failure_reaches_parent() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-child-fail");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));

    with_worker(&mut worker, async {
        // Propagated: the parent fails with the child's failure.
        let parent_id = unique("fail-parent");
        let child_id = unique("failing-child");
        let parent = client
            .start_workflow(
                FailParent::run,
                FailOrder {
                    child_id: child_id.clone(),
                    catch_failure: false,
                },
                start_opts(&tq, &parent_id),
            )
            .await
            .expect("start parent");
        let outcome = within(20, "parent result", parent.get_result(result_opts())).await;
        match outcome {
            Err(WorkflowGetResultError::Failed(err)) => match err.as_ref() {
                IncomingError::ChildWorkflowExecution(child) => {
                    assert_eq!(child.workflow_type(), Some("FailingChild"));
                    assert_eq!(
                        child.workflow_execution().map(|e| e.workflow_id()),
                        Some(child_id.as_str())
                    );
                    match child.cause() {
                        Some(IncomingError::Application(app)) => assert_eq!(
                            app.failure().map(|f| f.message.as_str()),
                            Some("child exploded: kaboom")
                        ),
                        other => {
                            panic!("cause should be the child's application failure, got {other:?}")
                        }
                    }
                }
                other => panic!("expected a child-workflow failure, got {other:?}"),
            },
            other => panic!("expected the parent to fail, got {other:?}"),
        }
        let desc = parent.describe(Default::default()).await.expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Failed);
        let child_desc = describe(&client, &child_id, None).await;
        assert_eq!(child_desc.status(), WorkflowExecutionStatus::Failed);
        let parent_events = history(&client, &parent_id, None).await;
        assert_has_events(
            &parent_events,
            &[
                EventType::ChildWorkflowExecutionStarted,
                EventType::ChildWorkflowExecutionFailed,
                EventType::WorkflowExecutionFailed,
            ],
            "failing parent",
        );
        let failed = parent_events
            .iter()
            .find_map(|e| match &e.attributes {
                Some(Attributes::ChildWorkflowExecutionFailedEventAttributes(a)) => Some(a),
                _ => None,
            })
            .expect("ChildWorkflowExecutionFailed");
        assert_eq!(
            failed.failure.as_ref().map(|f| f.message.as_str()),
            Some("child exploded: kaboom")
        );

        // Caught: the parent observes the error type and cause and completes.
        let parent_id = unique("catch-parent");
        let child_id = unique("failing-child");
        let parent = client
            .start_workflow(
                FailParent::run,
                FailOrder {
                    child_id: child_id.clone(),
                    catch_failure: true,
                },
                start_opts(&tq, &parent_id),
            )
            .await
            .expect("start parent");
        let result = within(20, "parent result", parent.get_result(result_opts()))
            .await
            .expect("parent catching the failure should complete");
        assert_eq!(
            result,
            format!(
                "caught child failure: type=FailingChild id={child_id} cause=child exploded: kaboom"
            )
        );

        // A child terminated by the client: the waiting parent fails with a child-workflow
        // failure caused by the termination.
        let parent_id = unique("orphaned-parent");
        let child_id = unique("terminated-child");
        let parent = client
            .start_workflow(
                ShortLivedParent::run,
                AbandonOrder {
                    child_id: child_id.clone(),
                    policy: ClosePolicy::Default,
                    wait_for_child: true,
                },
                start_opts(&tq, &parent_id),
            )
            .await
            .expect("start parent");
        within(15, "child started", async {
            loop {
                let events = history(&client, &parent_id, None).await;
                if event_types(&events).contains(&EventType::ChildWorkflowExecutionStarted) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        client
            .get_workflow_handle::<WaiterWorkflow>(child_id.clone())
            .terminate(
                WorkflowTerminateOptions::builder()
                    .reason("child must go")
                    .build(),
            )
            .await
            .expect("terminate child");
        let outcome = within(20, "parent result", parent.get_result(result_opts())).await;
        match outcome {
            Err(WorkflowGetResultError::Failed(err)) => match err.as_ref() {
                IncomingError::ChildWorkflowExecution(child) => {
                    assert_eq!(
                        child.workflow_execution().map(|e| e.workflow_id()),
                        Some(child_id.as_str())
                    );
                    assert!(
                        matches!(child.cause(), Some(IncomingError::Terminated(_))),
                        "cause should be the termination, got {:?}",
                        child.cause()
                    );
                }
                other => panic!("expected a child-workflow failure, got {other:?}"),
            },
            other => panic!("expected the parent to fail, got {other:?}"),
        }
        assert_has_events(
            &history(&client, &parent_id, None).await,
            &[EventType::ChildWorkflowExecutionTerminated],
            "parent of a terminated child",
        );
    })
    .await;
}

// ---- 1d. parent signals / cancels its children; duplicate child id -----------------------

/// Signals one child, cancels another, and tries to start a child on an id that is already
/// running. Returns what it observed, in order.
#[workflow]
#[derive(Default)]
pub struct ChildOpsParent;

#[workflow_methods]
impl ChildOpsParent {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        prefix: String,
    ) -> WorkflowResult<Vec<String>> {
        let mut seen = Vec::new();

        let signalled = ctx
            .start_child_workflow(
                WaiterWorkflow::run,
                (),
                ChildWorkflowOptions::workflow_id(format!("{prefix}-signalled")),
            )
            .await?;
        signalled
            .signal(
                WaiterWorkflow::release,
                "from the parent".to_string(),
                SignalWorkflowOptions::default(),
            )
            .await?;
        seen.push(signalled.result().await?);

        let doomed = ctx
            .start_child_workflow(
                WaiterWorkflow::run,
                (),
                ChildWorkflowOptions::workflow_id(format!("{prefix}-cancelled")),
            )
            .await?;
        doomed.cancel("parent changed its mind".to_string());
        match doomed.result().await {
            Ok(v) => seen.push(format!("cancelled child returned {v}")),
            Err(e) if e.as_cancelled().is_some() => seen.push("child cancelled".to_string()),
            Err(e) => seen.push(format!("cancelled child failed otherwise: {e}")),
        }

        let running = ctx
            .start_child_workflow(
                WaiterWorkflow::run,
                (),
                ChildWorkflowOptions::workflow_id(format!("{prefix}-dup")),
            )
            .await?;
        match ctx
            .start_child_workflow(
                WaiterWorkflow::run,
                (),
                ChildWorkflowOptions::workflow_id(format!("{prefix}-dup")),
            )
            .await
        {
            Ok(_) => seen.push("duplicate child started".to_string()),
            Err(ChildWorkflowStartError::StartFailed { cause, .. }) => {
                seen.push(format!("duplicate child rejected: {cause:?}"))
            }
            Err(e) => seen.push(format!("duplicate child: other error {e}")),
        }
        running
            .signal(
                WaiterWorkflow::release,
                "first one wins".to_string(),
                SignalWorkflowOptions::default(),
            )
            .await?;
        seen.push(running.result().await?);
        Ok(seen)
    }
}

/// 1d. A parent signals a child, cancels a child, and fails to start a second child on an id
/// that is already running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_signals_and_cancels_children() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-child-ops");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));
    let parent_id = unique("ops-parent");
    let prefix = unique("ops-child");

    with_worker(&mut worker, async {
        let parent = client
            .start_workflow(
                ChildOpsParent::run,
                prefix.clone(),
                start_opts(&tq, &parent_id),
            )
            .await
            .expect("start parent");
        let seen = within(20, "parent result", parent.get_result(result_opts()))
            .await
            .expect("parent should complete");
        assert_eq!(
            seen,
            vec![
                "released: from the parent".to_string(),
                "child cancelled".to_string(),
                "duplicate child rejected: WorkflowAlreadyExists".to_string(),
                "released: first one wins".to_string(),
            ]
        );

        let cancelled = describe(&client, &format!("{prefix}-cancelled"), None).await;
        assert_eq!(cancelled.status(), WorkflowExecutionStatus::Canceled);
        let dup = describe(&client, &format!("{prefix}-dup"), None).await;
        assert_eq!(dup.status(), WorkflowExecutionStatus::Completed);
        assert_eq!(dup.parent_id(), Some(parent_id.as_str()));

        assert_has_events(
            &history(&client, &parent_id, None).await,
            &[
                EventType::SignalExternalWorkflowExecutionInitiated,
                EventType::ExternalWorkflowExecutionSignaled,
                EventType::RequestCancelExternalWorkflowExecutionInitiated,
                EventType::ExternalWorkflowExecutionCancelRequested,
                EventType::ChildWorkflowExecutionCanceled,
                EventType::StartChildWorkflowExecutionFailed,
                EventType::WorkflowExecutionCompleted,
            ],
            "parent",
        );
    })
    .await;
}

// ---- 1e. children that run as chains of runs ----------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainedChildren {
    pub counter: CounterOutcome,
    pub counter_started_run_id: String,
    pub flaky_attempt: u32,
}

/// Waits for a child that continues as new twice, then for a child that is retried once.
#[workflow]
#[derive(Default)]
pub struct ChainParent;

#[workflow_methods]
impl ChainParent {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        prefix: String,
    ) -> WorkflowResult<ChainedChildren> {
        let counter = ctx
            .start_child_workflow(
                CounterWorkflow::run,
                (0u32, 2u32),
                ChildWorkflowOptions::workflow_id(format!("{prefix}-counter")),
            )
            .await?;
        let counter_started_run_id = counter.run_id.clone();
        let counter = counter.result().await?;
        let flaky = ctx
            .start_child_workflow(
                FlakyWorkflow::run,
                FlakyMode::SucceedOn(2),
                ChildWorkflowOptions::builder()
                    .workflow_id(format!("{prefix}-flaky"))
                    .retry_policy(workflow_retry_policy(3))
                    .build(),
            )
            .await?;
        let flaky_attempt = flaky.result().await?;
        Ok(ChainedChildren {
            counter,
            counter_started_run_id,
            flaky_attempt,
        })
    }
}

/// 1e. Children that are chains of runs: the parent gets the result of a child that continued
/// as new (the final run's value) and of a child that succeeded on its second attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_waits_for_child_run_chains() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-child-chains");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));
    let parent_id = unique("chain-parent");
    let prefix = unique("chain-child");

    with_worker(&mut worker, async {
        let parent = client
            .start_workflow(
                ChainParent::run,
                prefix.clone(),
                start_opts(&tq, &parent_id),
            )
            .await
            .expect("start parent");
        let out = within(20, "parent result", parent.get_result(result_opts()))
            .await
            .expect("parent should complete");
        assert_eq!(
            out.counter.count, 2,
            "the counter child's final run's value"
        );
        assert_eq!(
            out.counter.first_execution_run_id,
            out.counter_started_run_id
        );
        assert_ne!(out.counter.run_id, out.counter_started_run_id);
        assert_eq!(
            out.flaky_attempt, 2,
            "the flaky child succeeds on attempt 2"
        );

        let counter_id = format!("{prefix}-counter");
        let chain = run_chain(&client, &counter_id, &out.counter_started_run_id).await;
        assert_eq!(chain.len(), 3, "counter 0..=2 takes 3 runs");
        assert_eq!(chain[2].0, out.counter.run_id);
        for (i, (_, events)) in chain.iter().enumerate() {
            assert_eq!(
                started_attrs(events)
                    .parent_workflow_execution
                    .as_ref()
                    .map(|e| e.workflow_id.as_str()),
                Some(parent_id.as_str()),
                "run {i} of the continued child keeps its parent"
            );
        }
        let latest = describe(&client, &counter_id, None).await;
        assert_eq!(latest.status(), WorkflowExecutionStatus::Completed);
        assert_eq!(latest.parent_id(), Some(parent_id.as_str()));

        let flaky = describe(&client, &format!("{prefix}-flaky"), None).await;
        assert_eq!(flaky.status(), WorkflowExecutionStatus::Completed);

        let parent_events = history(&client, &parent_id, None).await;
        let completed = event_types(&parent_events)
            .into_iter()
            .filter(|t| *t == EventType::ChildWorkflowExecutionCompleted)
            .count();
        assert_eq!(
            completed, 2,
            "one ChildWorkflowExecutionCompleted per child"
        );
        assert!(
            !event_types(&parent_events).contains(&EventType::ChildWorkflowExecutionFailed),
            "a retried child that finally succeeds must not be reported failed"
        );
    })
    .await;
}
