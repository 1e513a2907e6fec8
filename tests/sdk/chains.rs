//! End-to-end tests for workflows that involve more than one execution: child workflows and
//! parent-close policies, continue-as-new, workflow retry policies, cron schedules, and
//! signals / cancellation requests sent from one workflow to another.
//!
//! Like the other SDK tests, every test starts its own `durin` process and drives it with the
//! official Temporal Rust SDK (client + worker), asserting what a user observes: results,
//! error types and causes, `describe()` status, and history events where they matter.

use crate::common;
use crate::helpers::*;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use serde::{Deserialize, Serialize};
use temporalio_client::{
    Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowGetResultOptions,
    WorkflowSignalOptions, WorkflowStartOptions, WorkflowTerminateOptions,
    errors::WorkflowGetResultError,
};
use temporalio_common::{
    RetryPolicy,
    error::IncomingError,
    protos::temporal::api::{
        enums::v1::{ContinueAsNewInitiator, EventType, RetryState},
        history::v1::{
            HistoryEvent, WorkflowExecutionStartedEventAttributes, history_event::Attributes,
        },
    },
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, ApplicationFailure, CancelExternalWorkflowError, ChildWorkflowExecutionError,
    ChildWorkflowOptions, ChildWorkflowStartError, ContinueAsNewOptions, ParentClosePolicy,
    SignalWorkflowOptions, SyncWorkflowContext, WorkerOptions, WorkflowContext, WorkflowResult,
    WorkflowSignalError,
    activities::{ActivityContext, ActivityError},
};

// =============================================================================================
// Workflow and activity definitions
// =============================================================================================

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

// ---- 1c. parent-close policies -------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ClosePolicy {
    /// Leave the policy unset: the server's default (TERMINATE) applies.
    Default,
    Terminate,
    Abandon,
    RequestCancel,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AbandonOrder {
    pub child_id: String,
    pub policy: ClosePolicy,
    /// Wait for the child's result instead of completing as soon as it has started.
    pub wait_for_child: bool,
}

/// Starts a `WaiterWorkflow` child with the given parent-close policy, waits until the child
/// has started, and completes (with the child's run id) while the child is still waiting —
/// or, with `wait_for_child`, waits for the child's result.
#[workflow]
#[derive(Default)]
pub struct ShortLivedParent;

#[workflow_methods]
impl ShortLivedParent {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        order: AbandonOrder,
    ) -> WorkflowResult<String> {
        let policy = match order.policy {
            ClosePolicy::Default => ParentClosePolicy::Unspecified,
            ClosePolicy::Terminate => ParentClosePolicy::Terminate,
            ClosePolicy::Abandon => ParentClosePolicy::Abandon,
            ClosePolicy::RequestCancel => ParentClosePolicy::RequestCancel,
        };
        let child = ctx
            .start_child_workflow(
                WaiterWorkflow::run,
                (),
                ChildWorkflowOptions::builder()
                    .workflow_id(order.child_id)
                    .parent_close_policy(policy)
                    .build(),
            )
            .await?;
        if order.wait_for_child {
            return Ok(child.result().await?);
        }
        Ok(child.run_id.clone())
    }
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

// ---- 2. continue-as-new --------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterOutcome {
    pub count: u32,
    pub run_id: String,
    pub first_execution_run_id: String,
    pub continued_from_run_id: Option<String>,
}

/// Continues as new with `count + 1` until `count == target`, then returns what it knows.
#[workflow]
#[derive(Default)]
pub struct CounterWorkflow;

#[workflow_methods]
impl CounterWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: (u32, u32),
    ) -> WorkflowResult<CounterOutcome> {
        let (count, target) = input;
        if count < target {
            ctx.continue_as_new((count + 1, target), ContinueAsNewOptions::default())?;
        }
        let info = ctx.info();
        Ok(CounterOutcome {
            count,
            run_id: ctx.run_id().to_string(),
            first_execution_run_id: info.first_execution_run_id().to_string(),
            continued_from_run_id: info.continued_from_run_id().map(str::to_string),
        })
    }
}

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

fn workflow_retry_policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(100))
        .backoff_coefficient(1.0)
        .maximum_attempts(max_attempts)
        .build()
}

// ---- 4. cron --------------------------------------------------------------------------------

/// `(workflow id, run id)` of every execution of the `tick` activity.
type TickLog = Arc<Mutex<Vec<(String, String)>>>;

pub struct TickActivities {
    ticks: TickLog,
}

#[activities]
impl TickActivities {
    #[activity]
    pub async fn tick(self: Arc<Self>, ctx: ActivityContext) -> Result<String, ActivityError> {
        let info = ctx.info();
        let wf = info.workflow_id.clone().unwrap_or_default();
        let run = info.workflow_run_id.clone().unwrap_or_default();
        self.ticks.lock().unwrap().push((wf, run.clone()));
        Ok(run)
    }
}

/// Runs one `tick` activity and returns.
#[workflow]
#[derive(Default)]
pub struct CronWorkflow;

#[workflow_methods]
impl CronWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        let run = ctx
            .execute_activity(
                TickActivities::tick,
                (),
                ActivityOptions::start_to_close_timeout(Duration::from_secs(5)),
            )
            .await?;
        Ok(format!("ticked in {run}"))
    }
}

// ---- 5. signal and cancel from workflow to workflow ----------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignalOrder {
    pub target_id: String,
    pub payload: String,
}

/// Signals `WaiterWorkflow::release(payload)` to another workflow through an external handle.
#[workflow]
#[derive(Default)]
pub struct SignallerWorkflow;

#[workflow_methods]
impl SignallerWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        order: SignalOrder,
    ) -> WorkflowResult<String> {
        let target = ctx.external_workflow(order.target_id, None);
        match target
            .signal(
                WaiterWorkflow::release,
                order.payload,
                SignalWorkflowOptions::default(),
            )
            .await
        {
            Ok(()) => Ok("signal delivered".to_string()),
            Err(WorkflowSignalError::NotFound(_)) => Ok("signal target not found".to_string()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Requests cancellation of another workflow through an external handle.
#[workflow]
#[derive(Default)]
pub struct CancellerWorkflow;

#[workflow_methods]
impl CancellerWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, target_id: String) -> WorkflowResult<String> {
        let target = ctx.external_workflow(target_id, None);
        match target
            .cancel(Some("stop, says the canceller".to_string()))
            .await
        {
            Ok(()) => Ok("cancel requested".to_string()),
            Err(CancelExternalWorkflowError::NotFound(_)) => {
                Ok("cancel target not found".to_string())
            }
            Err(e) => Err(e.into()),
        }
    }
}

// =============================================================================================
// Helpers
// =============================================================================================

fn assert_has_events(events: &[HistoryEvent], wanted: &[EventType], whose: &str) {
    let types = event_types(events);
    for w in wanted {
        assert!(
            types.contains(w),
            "history of {whose} is missing {w:?}; it has {types:?}"
        );
    }
}

fn started_attrs(events: &[HistoryEvent]) -> &WorkflowExecutionStartedEventAttributes {
    match events.first().and_then(|e| e.attributes.as_ref()) {
        Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a,
        other => panic!("first event should be WorkflowExecutionStarted, got {other:?}"),
    }
}

/// Poll `describe` (latest run of `workflow_id`) until its status is `want`.
async fn wait_for_status(
    client: &Client,
    workflow_id: &str,
    want: WorkflowExecutionStatus,
    secs: u64,
) -> WorkflowExecutionDescription {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let desc = describe(client, workflow_id, None).await;
        if desc.status() == want {
            return desc;
        }
        if Instant::now() > deadline {
            panic!(
                "{workflow_id} did not reach {want:?} within {secs}s; status is {:?}\nhistory: {:?}",
                desc.status(),
                event_types(&history(client, workflow_id, None).await)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn chains_worker_options(tq: &str) -> WorkerOptions {
    WorkerOptions::new(tq.to_string())
        .register_workflow::<WaiterWorkflow>()
        .unwrap()
        .register_workflow::<SquareChild>()
        .unwrap()
        .register_workflow::<ComputeParent>()
        .unwrap()
        .register_workflow::<FailingChild>()
        .unwrap()
        .register_workflow::<FailParent>()
        .unwrap()
        .register_workflow::<ShortLivedParent>()
        .unwrap()
        .register_workflow::<SignallerWorkflow>()
        .unwrap()
        .register_workflow::<CancellerWorkflow>()
        .unwrap()
        .register_workflow::<ChildOpsParent>()
        .unwrap()
        .register_workflow::<ChainParent>()
        .unwrap()
        .register_workflow::<CounterWorkflow>()
        .unwrap()
        .register_workflow::<FlakyWorkflow>()
        .unwrap()
        .build()
}

/// Start a `ShortLivedParent` with `policy`, wait for it to complete, and return the child's
/// run id (checked against `describe` of the child's workflow id).
async fn run_short_lived_parent(
    client: &Client,
    tq: &str,
    policy: ClosePolicy,
    child_id: &str,
) -> String {
    let parent_id = unique("short-parent");
    let parent = client
        .start_workflow(
            ShortLivedParent::run,
            AbandonOrder {
                child_id: child_id.to_string(),
                policy,
                wait_for_child: false,
            },
            start_opts(tq, &parent_id),
        )
        .await
        .expect("start parent");
    let child_run = within(20, "parent result", parent.get_result(result_opts()))
        .await
        .unwrap_or_else(|e| panic!("parent ({policy:?}) should complete: {e:?}"));
    assert!(
        !child_run.is_empty(),
        "parent returned an empty child run id"
    );
    let parent_desc = parent
        .describe(Default::default())
        .await
        .expect("describe parent");
    assert_eq!(parent_desc.status(), WorkflowExecutionStatus::Completed);

    let child_desc = describe(client, child_id, None).await;
    assert_eq!(
        child_desc.run_id(),
        child_run,
        "child id resolves to the run the parent started"
    );
    assert_eq!(child_desc.parent_id(), Some(parent_id.as_str()));
    child_run
}

// =============================================================================================
// Tests
// =============================================================================================

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

/// 1c. Parent-close policy TERMINATE (the default, and explicit): the child still waiting for
/// a signal is terminated when the parent completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_close_policy_terminate() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-pcp-terminate");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));

    with_worker(&mut worker, async {
        for policy in [ClosePolicy::Default, ClosePolicy::Terminate] {
            let child_id = unique("terminated-child");
            run_short_lived_parent(&client, &tq, policy, &child_id).await;
            wait_for_status(&client, &child_id, WorkflowExecutionStatus::Terminated, 10).await;
            let events = history(&client, &child_id, None).await;
            assert_eq!(
                events.last().map(|e| e.event_type()),
                Some(EventType::WorkflowExecutionTerminated),
                "{policy:?}: child history {:?}",
                event_types(&events)
            );
            let outcome = within(
                10,
                "child result",
                client
                    .get_workflow_handle::<WaiterWorkflow>(child_id.clone())
                    .get_result(result_opts()),
            )
            .await;
            assert!(
                matches!(outcome, Err(WorkflowGetResultError::Terminated { .. })),
                "{policy:?}: expected Terminated, got {outcome:?}"
            );
        }
    })
    .await;
}

/// 1c. Parent-close policies also apply when the parent is terminated (not completed) while
/// it waits for its child: TERMINATE (default) terminates the child, REQUEST_CANCEL cancels it,
/// ABANDON leaves it running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_close_policy_applies_when_parent_is_terminated() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-pcp-parent-terminated");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));

    with_worker(&mut worker, async {
        let cases = [
            (ClosePolicy::Default, WorkflowExecutionStatus::Terminated),
            (
                ClosePolicy::RequestCancel,
                WorkflowExecutionStatus::Canceled,
            ),
            (ClosePolicy::Abandon, WorkflowExecutionStatus::Running),
        ];
        let mut started = Vec::new();
        for (policy, want) in cases {
            let parent_id = unique("waiting-parent");
            let child_id = unique("orphan");
            let parent = client
                .start_workflow(
                    ShortLivedParent::run,
                    AbandonOrder {
                        child_id: child_id.clone(),
                        policy,
                        wait_for_child: true,
                    },
                    start_opts(&tq, &parent_id),
                )
                .await
                .expect("start parent");
            started.push((policy, want, parent, child_id));
        }
        for (policy, _, parent, child_id) in &started {
            // Wait until the parent has recorded the child as started.
            within(15, "child started", async {
                loop {
                    let events = history(&client, parent.info().workflow_id.as_str(), None).await;
                    if event_types(&events).contains(&EventType::ChildWorkflowExecutionStarted) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .await;
            let child = describe(&client, child_id, None).await;
            assert_eq!(
                child.status(),
                WorkflowExecutionStatus::Running,
                "{policy:?}"
            );
            parent
                .terminate(
                    WorkflowTerminateOptions::builder()
                        .reason("parent goes away")
                        .build(),
                )
                .await
                .expect("terminate parent");
        }
        for (policy, want, parent, child_id) in &started {
            let outcome = within(10, "parent result", parent.get_result(result_opts())).await;
            assert!(
                matches!(outcome, Err(WorkflowGetResultError::Terminated { .. })),
                "{policy:?}: parent should be terminated, got {outcome:?}"
            );
            if *want == WorkflowExecutionStatus::Running {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let desc = describe(&client, child_id, None).await;
                assert_eq!(
                    desc.status(),
                    WorkflowExecutionStatus::Running,
                    "{policy:?}: abandoned child must keep running"
                );
                client
                    .get_workflow_handle::<WaiterWorkflow>(child_id.clone())
                    .terminate(
                        WorkflowTerminateOptions::builder()
                            .reason("cleanup")
                            .build(),
                    )
                    .await
                    .expect("terminate abandoned child");
            } else {
                wait_for_status(&client, child_id, *want, 10).await;
            }
        }
    })
    .await;
}

/// 1c. Parent-close policy ABANDON: the child keeps running after the parent completes, and
/// can still be signalled to completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_close_policy_abandon() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-pcp-abandon");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));

    with_worker(&mut worker, async {
        let child_id = unique("abandoned-child");
        let child_run = run_short_lived_parent(&client, &tq, ClosePolicy::Abandon, &child_id).await;
        // Give the server ample time to (wrongly) act on the parent's close.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let desc = describe(&client, &child_id, None).await;
        assert_eq!(
            desc.status(),
            WorkflowExecutionStatus::Running,
            "abandoned child must keep running; history: {:?}",
            event_types(&history(&client, &child_id, None).await)
        );
        assert_eq!(desc.run_id(), child_run);

        let child = client.get_workflow_handle::<WaiterWorkflow>(child_id.clone());
        child
            .signal(
                WaiterWorkflow::release,
                "after the parent left".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal abandoned child");
        let result = within(
            20,
            "abandoned child result",
            child.get_result(result_opts()),
        )
        .await
        .expect("abandoned child should complete once signalled");
        assert_eq!(result, "released: after the parent left");
        let desc = describe(&client, &child_id, None).await;
        assert_eq!(desc.status(), WorkflowExecutionStatus::Completed);
    })
    .await;
}

/// 1c. Parent-close policy REQUEST_CANCEL: the child receives a cancellation request when the
/// parent completes; it handles it by reporting itself cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_close_policy_request_cancel() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-pcp-cancel");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));

    with_worker(&mut worker, async {
        let child_id = unique("cancelled-child");
        run_short_lived_parent(&client, &tq, ClosePolicy::RequestCancel, &child_id).await;
        wait_for_status(&client, &child_id, WorkflowExecutionStatus::Canceled, 10).await;
        let events = history(&client, &child_id, None).await;
        assert_has_events(
            &events,
            &[EventType::WorkflowExecutionCancelRequested],
            "cancelled child",
        );
        assert_eq!(
            events.last().map(|e| e.event_type()),
            Some(EventType::WorkflowExecutionCanceled)
        );
        let outcome = within(
            10,
            "child result",
            client
                .get_workflow_handle::<WaiterWorkflow>(child_id.clone())
                .get_result(result_opts()),
        )
        .await;
        assert!(
            matches!(outcome, Err(WorkflowGetResultError::Cancelled { .. })),
            "expected Cancelled, got {outcome:?}"
        );
    })
    .await;
}

/// 2. Continue-as-new: the workflow continues as new 3 times carrying a counter; the client's
/// `get_result` follows the runs to the final value; every earlier run is CONTINUED_AS_NEW and
/// hands over to the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_as_new_chain_returns_final_counter() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-can");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<CounterWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("counter");

    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(CounterWorkflow::run, (0u32, 3u32), start_opts(&tq, &id))
            .await
            .expect("start workflow");
        let first_run = handle.run_id().expect("start returns a run id").to_string();
        let outcome = within(20, "final run result", handle.get_result(result_opts()))
            .await
            .expect("workflow chain should complete");
        assert_eq!(outcome.count, 3);
        assert_eq!(
            outcome.first_execution_run_id, first_run,
            "every run of the chain knows the first run id"
        );

        let first = handle
            .describe(Default::default())
            .await
            .expect("describe first run");
        assert_eq!(first.run_id(), first_run);
        assert_eq!(first.status(), WorkflowExecutionStatus::ContinuedAsNew);
        // Without following runs, the first run's outcome is "continued as new".
        let unfollowed = within(
            10,
            "first run result",
            handle.get_result(
                WorkflowGetResultOptions::builder()
                    .follow_runs(false)
                    .build(),
            ),
        )
        .await;
        assert!(
            matches!(unfollowed, Err(WorkflowGetResultError::ContinuedAsNew)),
            "expected ContinuedAsNew for the first run alone, got {unfollowed:?}"
        );

        let latest = describe(&client, &id, None).await;
        assert_eq!(latest.status(), WorkflowExecutionStatus::Completed);
        assert_eq!(latest.run_id(), outcome.run_id);

        let chain = run_chain(&client, &id, &first_run).await;
        let runs: Vec<&str> = chain.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(runs.len(), 4, "counter 0..=3 takes 4 runs: {runs:?}");
        assert_eq!(
            runs.iter().collect::<BTreeSet<_>>().len(),
            4,
            "run ids are distinct"
        );
        assert_eq!(runs.last().copied(), Some(outcome.run_id.as_str()));
        assert_eq!(
            outcome.continued_from_run_id.as_deref(),
            Some(runs[2]),
            "the last run was continued from the third"
        );
        for (i, (run, events)) in chain.iter().enumerate() {
            let started = started_attrs(events);
            assert_eq!(started.first_execution_run_id, first_run, "run {i}");
            let last = events.last().map(|e| e.event_type());
            if i + 1 < chain.len() {
                assert_eq!(
                    last,
                    Some(EventType::WorkflowExecutionContinuedAsNew),
                    "run {i} ({run}) should end continued-as-new"
                );
                let desc = describe(&client, &id, Some(run)).await;
                assert_eq!(
                    desc.status(),
                    WorkflowExecutionStatus::ContinuedAsNew,
                    "run {i}"
                );
            } else {
                assert_eq!(last, Some(EventType::WorkflowExecutionCompleted));
            }
            if i > 0 {
                assert_eq!(started.continued_execution_run_id, runs[i - 1], "run {i}");
                assert_eq!(
                    started.initiator(),
                    ContinueAsNewInitiator::Workflow,
                    "run {i}"
                );
            }
        }
    })
    .await;
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

/// 4. Cron: a workflow started with `@every 1s` runs again and again (each run a new run id
/// linked from the previous one) until the workflow id is terminated; then no more runs happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_workflow_runs_repeatedly_until_terminated() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-cron");
    let ticks: TickLog = Arc::new(Mutex::new(Vec::new()));
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<CronWorkflow>()
            .unwrap()
            .register_activities(TickActivities {
                ticks: ticks.clone(),
            })
            .build(),
    );
    let id = unique("cron");
    let distinct_runs = |ticks: &TickLog| -> BTreeSet<String> {
        ticks
            .lock()
            .unwrap()
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    };

    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(
                CronWorkflow::run,
                (),
                WorkflowStartOptions::new(tq.clone(), id.clone())
                    .cron_schedule("@every 1s".to_string())
                    .build(),
            )
            .await
            .expect("start cron workflow");
        let first_run = handle.run_id().expect("run id").to_string();

        within(12, "two cron runs", async {
            while distinct_runs(&ticks).len() < 2 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(
            ticks.lock().unwrap().iter().all(|(w, _)| *w == id),
            "every tick belongs to the cron workflow id"
        );

        // The first run completed and handed over to the next one.
        let first_desc = handle
            .describe(Default::default())
            .await
            .expect("describe first run");
        assert_eq!(first_desc.status(), WorkflowExecutionStatus::Completed);
        // A cron run's execution time is when its schedule let it start, after its start time.
        match (first_desc.start_time(), first_desc.execution_time()) {
            (Some(start), Some(exec)) => {
                let wait = exec.duration_since(start).unwrap_or_default();
                assert!(
                    wait > Duration::ZERO && wait <= Duration::from_secs(1),
                    "first cron run should wait for its schedule: start {start:?}, execution {exec:?}"
                );
            }
            other => panic!("describe should report start and execution time, got {other:?}"),
        }
        let chain = run_chain(&client, &id, &first_run).await;
        assert!(
            chain.len() >= 2,
            "at least two linked runs, got {}",
            chain.len()
        );
        for (i, (run, events)) in chain.iter().enumerate() {
            let started = started_attrs(events);
            assert_eq!(
                started.cron_schedule, "@every 1s",
                "run {i} keeps the schedule"
            );
            let backoff = started
                .first_workflow_task_backoff
                .map(|d| Duration::new(d.seconds as u64, d.nanos as u32));
            assert!(
                backoff.is_some_and(|b| b > Duration::ZERO && b <= Duration::from_secs(1)),
                "run {i} should wait for its schedule (0 < backoff <= 1s), got {backoff:?}"
            );
            if i > 0 {
                assert_eq!(
                    started.initiator(),
                    ContinueAsNewInitiator::CronSchedule,
                    "run {i}"
                );
                assert_eq!(
                    started.continued_execution_run_id,
                    chain[i - 1].0,
                    "run {i}"
                );
            }
            if i + 1 < chain.len() {
                assert_eq!(
                    events.last().map(|e| e.event_type()),
                    Some(EventType::WorkflowExecutionCompleted),
                    "run {i} ({run})"
                );
            }
        }
        let ticked: BTreeSet<String> = distinct_runs(&ticks);
        for run in ticked.iter() {
            assert!(
                chain.iter().any(|(r, _)| r == run),
                "ticking run {run} is not in the chain linked from the first run"
            );
        }

        // Terminating the workflow id stops the schedule.
        client
            .get_workflow_handle::<CronWorkflow>(id.clone())
            .terminate(
                WorkflowTerminateOptions::builder()
                    .reason("enough ticks")
                    .build(),
            )
            .await
            .expect("terminate cron workflow");
        let desc = describe(&client, &id, None).await;
        assert_eq!(desc.status(), WorkflowExecutionStatus::Terminated);
        // get_result from the first run follows the chain to the terminated run.
        let outcome = within(10, "cron result", handle.get_result(result_opts())).await;
        assert!(
            matches!(outcome, Err(WorkflowGetResultError::Terminated { .. })),
            "expected Terminated, got {outcome:?}"
        );

        let runs_at_termination = distinct_runs(&ticks).len();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(
            distinct_runs(&ticks).len(),
            runs_at_termination,
            "no cron run may start after termination"
        );
        let desc = describe(&client, &id, None).await;
        assert_eq!(desc.status(), WorkflowExecutionStatus::Terminated);
    })
    .await;
}

/// 5a. Workflow A signals workflow B through an external handle; B returns the payload.
/// Signalling a workflow that does not exist reports "not found" to the sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_signals_another_workflow() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-ext-signal");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));

    with_worker(&mut worker, async {
        let b_id = unique("receiver");
        let b = client
            .start_workflow(WaiterWorkflow::run, (), start_opts(&tq, &b_id))
            .await
            .expect("start receiver");
        let a_id = unique("signaller");
        let a = client
            .start_workflow(
                SignallerWorkflow::run,
                SignalOrder {
                    target_id: b_id.clone(),
                    payload: "hello from A".to_string(),
                },
                start_opts(&tq, &a_id),
            )
            .await
            .expect("start signaller");
        let a_result = within(20, "signaller result", a.get_result(result_opts()))
            .await
            .expect("signaller should complete");
        assert_eq!(a_result, "signal delivered");
        let b_result = within(20, "receiver result", b.get_result(result_opts()))
            .await
            .expect("receiver should complete");
        assert_eq!(b_result, "released: hello from A");

        assert_has_events(
            &history(&client, &a_id, None).await,
            &[
                EventType::SignalExternalWorkflowExecutionInitiated,
                EventType::ExternalWorkflowExecutionSignaled,
            ],
            "signaller",
        );
        let b_events = history(&client, &b_id, None).await;
        let signaled = b_events
            .iter()
            .find_map(|e| match &e.attributes {
                Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) => Some(a),
                _ => None,
            })
            .expect("receiver has a WorkflowExecutionSignaled event");
        assert_eq!(signaled.signal_name, "release");

        // Signalling a workflow id that does not exist.
        let a_id = unique("signaller-lost");
        let a = client
            .start_workflow(
                SignallerWorkflow::run,
                SignalOrder {
                    target_id: unique("nobody-home"),
                    payload: "anyone?".to_string(),
                },
                start_opts(&tq, &a_id),
            )
            .await
            .expect("start signaller");
        let a_result = within(20, "signaller result", a.get_result(result_opts()))
            .await
            .expect("signaller should complete");
        assert_eq!(a_result, "signal target not found");
        assert_has_events(
            &history(&client, &a_id, None).await,
            &[EventType::SignalExternalWorkflowExecutionFailed],
            "signaller of a missing workflow",
        );
    })
    .await;
}

/// 5b. Workflow A requests cancellation of workflow C through an external handle; C handles
/// the request by reporting itself cancelled. Cancelling a missing workflow reports "not found".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_cancels_another_workflow() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-ext-cancel");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));

    with_worker(&mut worker, async {
        let c_id = unique("victim");
        let c = client
            .start_workflow(WaiterWorkflow::run, (), start_opts(&tq, &c_id))
            .await
            .expect("start victim");
        let a_id = unique("canceller");
        let a = client
            .start_workflow(CancellerWorkflow::run, c_id.clone(), start_opts(&tq, &a_id))
            .await
            .expect("start canceller");
        let a_result = within(20, "canceller result", a.get_result(result_opts()))
            .await
            .expect("canceller should complete");
        assert_eq!(a_result, "cancel requested");

        let outcome = within(20, "victim result", c.get_result(result_opts())).await;
        assert!(
            matches!(outcome, Err(WorkflowGetResultError::Cancelled { .. })),
            "expected the victim to be cancelled, got {outcome:?}"
        );
        let desc = c.describe(Default::default()).await.expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Canceled);

        assert_has_events(
            &history(&client, &a_id, None).await,
            &[
                EventType::RequestCancelExternalWorkflowExecutionInitiated,
                EventType::ExternalWorkflowExecutionCancelRequested,
            ],
            "canceller",
        );
        let c_events = history(&client, &c_id, None).await;
        let requested = c_events
            .iter()
            .find_map(|e| match &e.attributes {
                Some(Attributes::WorkflowExecutionCancelRequestedEventAttributes(a)) => Some(a),
                _ => None,
            })
            .expect("victim has a WorkflowExecutionCancelRequested event");
        assert_eq!(
            requested
                .external_workflow_execution
                .as_ref()
                .map(|e| e.workflow_id.as_str()),
            Some(a_id.as_str()),
            "the cancel request names the workflow that sent it"
        );
        assert_eq!(
            c_events.last().map(|e| e.event_type()),
            Some(EventType::WorkflowExecutionCanceled)
        );

        // Cancelling a workflow id that does not exist.
        let a_id = unique("canceller-lost");
        let a = client
            .start_workflow(
                CancellerWorkflow::run,
                unique("nobody-home"),
                start_opts(&tq, &a_id),
            )
            .await
            .expect("start canceller");
        let a_result = within(20, "canceller result", a.get_result(result_opts()))
            .await
            .expect("canceller should complete");
        assert_eq!(a_result, "cancel target not found");
        assert_has_events(
            &history(&client, &a_id, None).await,
            &[EventType::RequestCancelExternalWorkflowExecutionFailed],
            "canceller of a missing workflow",
        );
    })
    .await;
}
