//! Activities through the official SDK against a real `durin`: a workflow calling two
//! activities in sequence, a heartbeating activity cancelled by its workflow, asynchronous
//! completion by task token, server-side retries (retryable and non-retryable failures), and a
//! heartbeat timeout whose retry resumes from the last heartbeat details.
//!
//! Every test starts its own server (fresh temp dir, free port) and uses its own task queue.
//! The worker's `run()` future is `!Send`, so it is driven on the test's main task next to the
//! test body (see `common::with_worker`).

use crate::common;
use crate::helpers::*;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use temporalio_client::{
    ActivityIdentifier, RpcOptions, WorkflowExecutionStatus,
    errors::{AsyncActivityError, WorkflowGetResultError},
};
use temporalio_common::{
    RetryPolicy,
    protos::{
        TaskToken,
        temporal::api::{failure::v1::Failure, history::v1::history_event::Attributes},
    },
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityCancellationType, ActivityExecutionError, ActivityOptions, ApplicationFailure,
    CancellableFuture, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

// ---- 1. activity round trip ----------------------------------------------------------------

pub struct GreetingActivities;

#[activities]
impl GreetingActivities {
    /// Greets, and reports what the server told the activity about itself.
    #[activity]
    pub async fn greet(ctx: ActivityContext, name: String) -> Result<String, ActivityError> {
        let info = ctx.info();
        Ok(format!(
            "Hello, {name}! (workflow {}, attempt {})",
            info.workflow_id.clone().unwrap_or_default(),
            info.attempt
        ))
    }

    #[activity]
    pub async fn shout(_ctx: ActivityContext, text: String) -> Result<String, ActivityError> {
        Ok(text.to_uppercase())
    }
}

#[workflow]
#[derive(Default)]
pub struct GreetingWorkflow;

#[workflow_methods]
impl GreetingWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        let opts = ActivityOptions::start_to_close_timeout(Duration::from_secs(10));
        let greeting = ctx
            .execute_activity(GreetingActivities::greet, name, opts.clone())
            .await?;
        let loud = ctx
            .execute_activity(GreetingActivities::shout, greeting.clone(), opts)
            .await?;
        Ok(format!("{greeting} / {loud}"))
    }
}

/// 1. A workflow calls two activities in sequence and returns a value built from their results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_with_activity_returns_result() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-activity");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<GreetingWorkflow>()
            .unwrap()
            .register_activities(GreetingActivities)
            .build(),
    );
    let wf_id = unique("greeting");

    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(
                GreetingWorkflow::run,
                "Durin".to_string(),
                start_opts(&tq, &wf_id),
            )
            .await
            .expect("start workflow");
        assert!(handle.run_id().is_some_and(|r| !r.is_empty()));

        let result = within(20, "workflow result", handle.get_result(result_opts()))
            .await
            .expect("workflow should complete successfully");
        let greeting = format!("Hello, Durin! (workflow {wf_id}, attempt 1)");
        assert_eq!(result, format!("{greeting} / {}", greeting.to_uppercase()));

        let desc = handle.describe(Default::default()).await.expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Completed);
        assert_eq!(desc.workflow_type(), "GreetingWorkflow");
        assert_eq!(desc.task_queue(), tq.as_str());
        assert!(
            desc.close_time().is_some(),
            "completed workflow has a close time"
        );
    })
    .await;
}

// ---- 7. heartbeating activity cancelled by its workflow ------------------------------------

#[derive(Default)]
pub struct HeartbeatState {
    beats: AtomicU32,
    saw_cancel: AtomicBool,
}

pub struct HeartbeatActivities {
    state: Arc<HeartbeatState>,
}

#[activities]
impl HeartbeatActivities {
    /// Heartbeats every `interval_ms` until cancelled (gives up after ~200 beats).
    #[activity]
    pub async fn beat_until_cancelled(
        self: Arc<Self>,
        ctx: ActivityContext,
        interval_ms: u64,
    ) -> Result<String, ActivityError> {
        for i in 0..200u32 {
            ctx.record_heartbeat(i).await?;
            self.state.beats.fetch_add(1, Ordering::SeqCst);
            tokio::select! {
                _ = ctx.cancelled() => {
                    self.state.saw_cancel.store(true, Ordering::SeqCst);
                    return Err(ActivityError::cancelled());
                }
                _ = tokio::time::sleep(Duration::from_millis(interval_ms)) => {}
            }
        }
        Ok("finished without being cancelled".to_string())
    }
}

#[workflow]
#[derive(Default)]
pub struct HeartbeatCancelWorkflow;

#[workflow_methods]
impl HeartbeatCancelWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        let activity = ctx.execute_activity(
            HeartbeatActivities::beat_until_cancelled,
            100u64,
            ActivityOptions::with_start_to_close_timeout(Duration::from_secs(30))
                .heartbeat_timeout(Duration::from_secs(2))
                .cancellation_type(ActivityCancellationType::WaitCancellationCompleted)
                .build(),
        );
        ctx.timer(Duration::from_millis(1500)).await;
        activity.cancel();
        match activity.await {
            Err(ActivityExecutionError::Cancelled(_)) => Ok("activity cancelled".to_string()),
            Ok(v) => Ok(format!("activity completed: {v}")),
            Err(e) => Err(e.into()),
        }
    }
}

/// 7. A heartbeating activity is cancelled by its workflow; the activity observes the
/// cancellation through its context and the workflow sees the activity as cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeating_activity_cancelled_by_workflow() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-heartbeat");
    let state = Arc::new(HeartbeatState::default());
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<HeartbeatCancelWorkflow>()
            .unwrap()
            .register_activities(HeartbeatActivities {
                state: state.clone(),
            })
            .build(),
    );
    let id = unique("heartbeat-cancel");

    with_worker(&mut worker, async {
        let started = Instant::now();
        let handle = client
            .start_workflow(HeartbeatCancelWorkflow::run, (), start_opts(&tq, &id))
            .await
            .expect("start workflow");
        let result = within(25, "workflow result", handle.get_result(result_opts()))
            .await
            .expect("workflow should complete");
        assert_eq!(result, "activity cancelled");
        assert!(
            state.saw_cancel.load(Ordering::SeqCst),
            "activity never observed its cancellation"
        );
        let beats = state.beats.load(Ordering::SeqCst);
        assert!(beats >= 2, "activity heartbeated only {beats} times");
        assert!(started.elapsed() >= Duration::from_millis(1500));

        let events = full_history(&handle).await;
        for (name, found) in [
            (
                "ActivityTaskCancelRequested",
                events.iter().any(|e| {
                    matches!(
                        e.attributes,
                        Some(Attributes::ActivityTaskCancelRequestedEventAttributes(_))
                    )
                }),
            ),
            (
                "ActivityTaskCanceled",
                events.iter().any(|e| {
                    matches!(
                        e.attributes,
                        Some(Attributes::ActivityTaskCanceledEventAttributes(_))
                    )
                }),
            ),
        ] {
            assert!(found, "history is missing {name}");
        }
    })
    .await;
}

// ---- 8. asynchronous activity completion ---------------------------------------------------

pub struct AsyncCompletionActivities {
    tokens: tokio::sync::mpsc::UnboundedSender<(Vec<u8>, String)>,
}

#[activities]
impl AsyncCompletionActivities {
    /// Hands its task token to the test and asks the SDK to let it be completed externally.
    #[activity]
    pub async fn request_approval(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: String,
    ) -> Result<String, ActivityError> {
        let _ = self.tokens.send((ctx.info().task_token.clone(), request));
        Err(ActivityError::WillCompleteAsync)
    }
}

#[workflow]
#[derive(Default)]
pub struct ApprovalWorkflow;

#[workflow_methods]
impl ApprovalWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, request: String) -> WorkflowResult<String> {
        let answer = ctx
            .execute_activity(
                AsyncCompletionActivities::request_approval,
                request,
                ActivityOptions::start_to_close_timeout(Duration::from_secs(30)),
            )
            .await?;
        Ok(format!("approved: {answer}"))
    }
}

/// 8. Asynchronous activity completion: the activity returns "will complete async"; the test
/// completes it with the client using the task token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_activity_completion_by_task_token() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-async");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<ApprovalWorkflow>()
            .unwrap()
            .register_activities(AsyncCompletionActivities { tokens: tx })
            .build(),
    );
    let id = unique("approval");

    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(
                ApprovalWorkflow::run,
                "raise budget".to_string(),
                start_opts(&tq, &id),
            )
            .await
            .expect("start workflow");

        let (token, request) = within(20, "activity to hand over its task token", rx.recv())
            .await
            .expect("token channel closed");
        assert_eq!(request, "raise budget");
        assert!(!token.is_empty(), "task token must not be empty");

        // The activity has returned to the SDK, but the workflow must keep waiting.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let desc = handle.describe(Default::default()).await.expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Running);

        let activity = client.get_async_activity_handle(ActivityIdentifier::from_task_token(
            TaskToken::from(token.clone()),
        ));
        activity
            .complete(Some("granted by test".to_string()), RpcOptions::default())
            .await
            .expect("complete activity by task token");

        let result = within(20, "workflow result", handle.get_result(result_opts()))
            .await
            .expect("workflow should complete");
        assert_eq!(result, "approved: granted by test");

        // Completing the same activity again is rejected: it is no longer pending.
        let again = client
            .get_async_activity_handle(ActivityIdentifier::from_task_token(TaskToken::from(token)))
            .complete(Some("second answer".to_string()), RpcOptions::default())
            .await;
        assert!(
            matches!(again, Err(AsyncActivityError::NotFound(_))),
            "second completion should fail with NotFound, got {again:?}"
        );
    })
    .await;
}

// ---- 11. activity retries and non-retryable failures ---------------------------------------

#[derive(Default)]
pub struct RetryCounters {
    flaky_calls: AtomicU32,
    doomed_calls: AtomicU32,
}

pub struct RetryActivities {
    counters: Arc<RetryCounters>,
}

#[activities]
impl RetryActivities {
    /// Fails (retryably) until attempt `succeed_on`.
    #[activity]
    pub async fn flaky(
        self: Arc<Self>,
        ctx: ActivityContext,
        succeed_on: u32,
    ) -> Result<String, ActivityError> {
        self.counters.flaky_calls.fetch_add(1, Ordering::SeqCst);
        let attempt = ctx.info().attempt;
        if attempt < succeed_on {
            return Err(anyhow::anyhow!("transient failure on attempt {attempt}").into());
        }
        Ok(format!("succeeded on attempt {attempt}"))
    }

    /// Always fails with a non-retryable application failure.
    #[activity]
    pub async fn doomed(self: Arc<Self>, _ctx: ActivityContext) -> Result<String, ActivityError> {
        self.counters.doomed_calls.fetch_add(1, Ordering::SeqCst);
        Err(ActivityError::application(
            ApplicationFailure::non_retryable("permanently broken"),
        ))
    }
}

fn fast_retry_options() -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(Duration::from_millis(100))
                .backoff_coefficient(1.0)
                .maximum_attempts(5)
                .build(),
        )
        .build()
}

#[workflow]
#[derive(Default)]
pub struct RetryingWorkflow;

#[workflow_methods]
impl RetryingWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, succeed_on: u32) -> WorkflowResult<String> {
        Ok(ctx
            .execute_activity(RetryActivities::flaky, succeed_on, fast_retry_options())
            .await?)
    }
}

#[workflow]
#[derive(Default)]
pub struct DoomedWorkflow;

#[workflow_methods]
impl DoomedWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        Ok(ctx
            .execute_activity(RetryActivities::doomed, (), fast_retry_options())
            .await?)
    }
}

/// 11. Activity retries: a retryable failure is retried by the server per the retry policy
/// until it succeeds; a non-retryable failure is not retried and fails the workflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_retries_and_non_retryable_failure() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-retry");
    let counters = Arc::new(RetryCounters::default());
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<RetryingWorkflow>()
            .unwrap()
            .register_workflow::<DoomedWorkflow>()
            .unwrap()
            .register_activities(RetryActivities {
                counters: counters.clone(),
            })
            .build(),
    );

    with_worker(&mut worker, async {
        let retrying = client
            .start_workflow(
                RetryingWorkflow::run,
                3u32,
                start_opts(&tq, &unique("retrying")),
            )
            .await
            .expect("start workflow");
        let result = within(
            20,
            "retrying workflow result",
            retrying.get_result(result_opts()),
        )
        .await
        .expect("workflow should complete after activity retries");
        assert_eq!(result, "succeeded on attempt 3");
        assert_eq!(counters.flaky_calls.load(Ordering::SeqCst), 3);

        let doomed = client
            .start_workflow(DoomedWorkflow::run, (), start_opts(&tq, &unique("doomed")))
            .await
            .expect("start workflow");
        let outcome = within(
            20,
            "doomed workflow result",
            doomed.get_result(result_opts()),
        )
        .await;
        match outcome {
            Err(WorkflowGetResultError::Failed(err)) => {
                let messages = failure_messages(err.failure());
                assert!(
                    messages.iter().any(|m| m.contains("permanently broken")),
                    "workflow failure should carry the activity's error, got {messages:?}"
                );
            }
            other => panic!("expected the workflow to fail, got {other:?}"),
        }
        assert_eq!(
            counters.doomed_calls.load(Ordering::SeqCst),
            1,
            "a non-retryable failure must not be retried"
        );
        let desc = doomed.describe(Default::default()).await.expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Failed);
    })
    .await;
}

/// Messages of a failure and all its causes, outermost first.
fn failure_messages(failure: &Failure) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = Some(failure);
    while let Some(f) = cur {
        out.push(f.message.clone());
        cur = f.cause.as_deref();
    }
    out
}

// ---- 12. heartbeat timeout and resuming from heartbeat details ------------------------------

/// (attempt, heartbeat details the attempt started from), one entry per attempt.
type AttemptLog = Arc<Mutex<Vec<(u32, Option<u32>)>>>;

pub struct ResumableActivities {
    attempts_seen: AttemptLog,
}

#[activities]
impl ResumableActivities {
    /// Attempt 1 heartbeats progress 1..=3 and then hangs without heartbeating, so the server
    /// must time it out (heartbeat timeout) and retry. Later attempts resume from the last
    /// heartbeat details recorded by attempt 1.
    #[activity]
    pub async fn resumable(
        self: Arc<Self>,
        ctx: ActivityContext,
        _input: (),
    ) -> Result<String, ActivityError> {
        let attempt = ctx.info().attempt;
        let resume_from: Option<u32> = ctx.heartbeat_details().deserialize()?;
        self.attempts_seen
            .lock()
            .unwrap()
            .push((attempt, resume_from));
        if attempt == 1 {
            for progress in 1..=3u32 {
                ctx.record_heartbeat(progress).await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // Stuck: no more heartbeats. Give up well after the heartbeat timeout.
            tokio::time::sleep(Duration::from_secs(4)).await;
            return Err(anyhow::anyhow!("attempt 1 was stuck").into());
        }
        Ok(format!(
            "resumed from {} on attempt {attempt}",
            resume_from.map_or("nothing".to_string(), |p| p.to_string())
        ))
    }
}

#[workflow]
#[derive(Default)]
pub struct ResumableWorkflow;

#[workflow_methods]
impl ResumableWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        Ok(ctx
            .execute_activity(
                ResumableActivities::resumable,
                (),
                ActivityOptions::with_start_to_close_timeout(Duration::from_secs(20))
                    .heartbeat_timeout(Duration::from_secs(1))
                    .retry_policy(
                        RetryPolicy::builder()
                            .initial_interval(Duration::from_millis(100))
                            .backoff_coefficient(1.0)
                            .maximum_attempts(3)
                            .build(),
                    )
                    .build(),
            )
            .await?)
    }
}

/// 12. An activity that stops heartbeating is timed out by the server (heartbeat timeout) and
/// retried; the retry sees the last heartbeat details of the timed-out attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_timeout_retries_with_last_details() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-hb-timeout");
    let attempts_seen = Arc::new(Mutex::new(Vec::new()));
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<ResumableWorkflow>()
            .unwrap()
            .register_activities(ResumableActivities {
                attempts_seen: attempts_seen.clone(),
            })
            .build(),
    );

    with_worker(&mut worker, async {
        let started = Instant::now();
        let handle = client
            .start_workflow(
                ResumableWorkflow::run,
                (),
                start_opts(&tq, &unique("resumable")),
            )
            .await
            .expect("start workflow");
        let result = within(20, "workflow result", handle.get_result(result_opts()))
            .await
            .expect("workflow should complete once the retried activity succeeds");
        assert_eq!(result, "resumed from 3 on attempt 2");
        assert_eq!(
            attempts_seen.lock().unwrap().clone(),
            vec![(1, None), (2, Some(3))]
        );
        // Attempt 2 can only start after attempt 1 missed its 1 s heartbeat deadline.
        assert!(started.elapsed() >= Duration::from_secs(1));
    })
    .await;
}
