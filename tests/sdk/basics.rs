//! End-to-end tests: a real `durin` server process driven by the official Temporal Rust SDK
//! (client + worker), exactly as a user would.
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

use common::{
    DurinServer, new_worker, sdk_runtime, unique, with_worker, with_worker_strict, within,
};
use serde::{Deserialize, Serialize};
use temporalio_client::{
    ActivityIdentifier, Client, QueryRejectCondition, RpcOptions, WorkflowCancelOptions,
    WorkflowExecutionStatus, WorkflowFetchHistoryOptions, WorkflowIdConflictPolicy,
    WorkflowQueryOptions, WorkflowSignalOptions, WorkflowStartOptions, WorkflowTerminateOptions,
    errors::{
        AsyncActivityError, WorkflowGetResultError, WorkflowInteractionError, WorkflowQueryError,
        WorkflowStartError,
    },
};
use temporalio_common::{
    RetryPolicy,
    protos::{
        TaskToken,
        temporal::api::{
            failure::v1::Failure,
            history::v1::{HistoryEvent, history_event::Attributes},
        },
    },
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityCancellationType, ActivityExecutionError, ActivityOptions, ApplicationFailure,
    CancellableFuture, SyncWorkflowContext, TimerResult, WorkerOptions, WorkflowCancellationToken,
    WorkflowContext, WorkflowContextView, WorkflowResult, WorkflowTermination,
    activities::{ActivityContext, ActivityError},
};

// =============================================================================================
// Workflow and activity definitions
// =============================================================================================

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

// ---- 2. durable timer ----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerOutcome {
    pub fired: bool,
    /// Workflow time that passed across the timer, in ms.
    pub workflow_elapsed_ms: u64,
}

#[workflow]
#[derive(Default)]
pub struct SleepyWorkflow;

#[workflow_methods]
impl SleepyWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, millis: u64) -> WorkflowResult<TimerOutcome> {
        let before = ctx.workflow_time();
        let fired = ctx.timer(Duration::from_millis(millis)).await == TimerResult::Fired;
        let after = ctx.workflow_time();
        let workflow_elapsed_ms = match (before, after) {
            (Some(b), Some(a)) => a
                .duration_since(b)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            _ => 0,
        };
        Ok(TimerOutcome {
            fired,
            workflow_elapsed_ms,
        })
    }
}

// ---- 3/4/6/9. signals, queries, terminate, id conflicts ------------------------------------

/// Collects signalled messages; completes once `expected` messages have arrived.
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

    #[query]
    pub fn inbox(&self, _ctx: &WorkflowContextView) -> Vec<String> {
        self.messages.clone()
    }

    #[query]
    pub fn inbox_size(&self, _ctx: &WorkflowContextView) -> u32 {
        self.messages.len() as u32
    }
}

// ---- 5. workflow cancellation with cleanup --------------------------------------------------

pub struct CleanupActivities {
    log: Arc<Mutex<Vec<String>>>,
}

#[activities]
impl CleanupActivities {
    #[activity]
    pub async fn cleanup(
        self: Arc<Self>,
        _ctx: ActivityContext,
        what: String,
    ) -> Result<String, ActivityError> {
        self.log.lock().unwrap().push(what.clone());
        Ok(format!("cleaned up {what}"))
    }
}

/// Waits on a long timer. When cancelled, runs a cleanup activity (on a detached cancellation
/// token so it is not itself cancelled), then either reports the workflow as cancelled or
/// returns a value describing the cleanup.
#[workflow]
#[derive(Default)]
pub struct CancellableWorkflow;

#[workflow_methods]
impl CancellableWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        report_as_cancelled: bool,
    ) -> WorkflowResult<String> {
        if ctx.timer(Duration::from_secs(300)).await == TimerResult::Fired {
            return Ok("timer fired; never cancelled".to_string());
        }
        let reason = ctx.cancellation_token().reason().unwrap_or_default();
        let cleaned = ctx
            .execute_activity(
                CleanupActivities::cleanup,
                ctx.workflow_id().to_string(),
                ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
                    .cancellation_token(WorkflowCancellationToken::new())
                    .build(),
            )
            .await?;
        if report_as_cancelled {
            Err(WorkflowTermination::cancelled())
        } else {
            Ok(format!("{cleaned} (reason: {reason})"))
        }
    }
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

// ---- 10. durability across a server crash --------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepInput {
    pub name: String,
    pub step: String,
    pub delay_ms: u64,
}

pub struct DurableActivities {
    /// "<workflow name>:<step>" for every completed execution of `step`.
    runs: Arc<Mutex<Vec<String>>>,
}

#[activities]
impl DurableActivities {
    #[activity]
    pub async fn step(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: StepInput,
    ) -> Result<String, ActivityError> {
        tokio::time::sleep(Duration::from_millis(input.delay_ms)).await;
        self.runs
            .lock()
            .unwrap()
            .push(format!("{}:{}", input.name, input.step));
        Ok(format!("{}:{}", input.step, input.name))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DurableInput {
    pub name: String,
    /// How long the first activity takes.
    pub pre_delay_ms: u64,
    /// Timer between the two activities.
    pub timer_ms: u64,
}

/// activity("pre") -> timer -> activity("post"); returns "pre:<name>|post:<name>".
#[workflow]
#[derive(Default)]
pub struct DurableWorkflow;

#[workflow_methods]
impl DurableWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: DurableInput,
    ) -> WorkflowResult<String> {
        let opts = ActivityOptions::start_to_close_timeout(Duration::from_secs(5));
        let pre = ctx
            .execute_activity(
                DurableActivities::step,
                StepInput {
                    name: input.name.clone(),
                    step: "pre".to_string(),
                    delay_ms: input.pre_delay_ms,
                },
                opts.clone(),
            )
            .await?;
        ctx.timer(Duration::from_millis(input.timer_ms)).await;
        let post = ctx
            .execute_activity(
                DurableActivities::step,
                StepInput {
                    name: input.name.clone(),
                    step: "post".to_string(),
                    delay_ms: 0,
                },
                opts,
            )
            .await?;
        Ok(format!("{pre}|{post}"))
    }
}

// =============================================================================================
// Helpers
// =============================================================================================

async fn full_history<W>(handle: &temporalio_client::WorkflowHandle<Client, W>) -> Vec<HistoryEvent>
where
    W: temporalio_common::HasWorkflowDefinition,
{
    within(
        10,
        "workflow history",
        handle
            .fetch_history(WorkflowFetchHistoryOptions::builder().build())
            .into_events(),
    )
    .await
    .expect("fetch history")
}

/// Poll `cond` every 50 ms until it holds, panicking after `secs` seconds.
async fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    within(secs, what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

// =============================================================================================
// Tests
// =============================================================================================

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

/// 2. A durable timer: the workflow sleeps 1.5 s and then returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_timer_fires_after_its_duration() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-timer");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<SleepyWorkflow>()
            .unwrap()
            .build(),
    );
    let wf_id = unique("sleepy");

    with_worker(&mut worker, async {
        let started = Instant::now();
        let handle = client
            .start_workflow(SleepyWorkflow::run, 1500u64, start_opts(&tq, &wf_id))
            .await
            .expect("start workflow");
        let outcome = within(
            20,
            "timer workflow result",
            handle.get_result(result_opts()),
        )
        .await
        .expect("workflow should complete successfully");
        let wall = started.elapsed();

        assert!(outcome.fired, "timer must report Fired, got {outcome:?}");
        assert!(
            wall >= Duration::from_millis(1500),
            "workflow completed after {wall:?}, before its 1.5 s timer could fire"
        );
        assert!(
            wall < Duration::from_secs(15),
            "timer took far too long: {wall:?}"
        );
        assert!(
            outcome.workflow_elapsed_ms >= 1500,
            "workflow time advanced only {} ms across a 1.5 s timer",
            outcome.workflow_elapsed_ms
        );

        let events = full_history(&handle).await;
        let timer_started = events
            .iter()
            .find_map(|e| match &e.attributes {
                Some(Attributes::TimerStartedEventAttributes(a)) => Some(a.clone()),
                _ => None,
            })
            .expect("history has a TimerStarted event");
        let fire_after = timer_started
            .start_to_fire_timeout
            .expect("TimerStarted has start_to_fire_timeout");
        assert_eq!((fire_after.seconds, fire_after.nanos), (1, 500_000_000));
        assert!(
            events
                .iter()
                .any(|e| matches!(e.attributes, Some(Attributes::TimerFiredEventAttributes(_)))),
            "history has a TimerFired event"
        );
        assert!(matches!(
            events.last().and_then(|e| e.attributes.as_ref()),
            Some(Attributes::WorkflowExecutionCompletedEventAttributes(_))
        ));
    })
    .await;
}

/// 3. Signals: a workflow waits for signals and returns their payloads; signal-with-start
/// starts a new workflow with a signal, and signals (without restarting) a running one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_and_signal_with_start() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-signal");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<MailboxWorkflow>()
            .unwrap()
            .build(),
    );

    with_worker(&mut worker, async {
        // Plain signals.
        let id = unique("mailbox");
        let handle = client
            .start_workflow(MailboxWorkflow::run, 2u32, start_opts(&tq, &id))
            .await
            .expect("start workflow");
        for msg in ["first", "second"] {
            handle
                .signal(
                    MailboxWorkflow::deliver,
                    msg.to_string(),
                    WorkflowSignalOptions::default(),
                )
                .await
                .expect("signal");
        }
        let result = within(
            20,
            "signalled workflow result",
            handle.get_result(result_opts()),
        )
        .await
        .expect("workflow should complete");
        assert_eq!(result, vec!["first".to_string(), "second".to_string()]);

        // Signal-with-start on a workflow id that does not exist yet: starts it.
        let id = unique("sws-new");
        let handle = client
            .signal_with_start_workflow(
                MailboxWorkflow::run,
                1u32,
                MailboxWorkflow::deliver,
                "via signal-with-start".to_string(),
                start_opts(&tq, &id),
            )
            .await
            .expect("signal-with-start (new workflow)");
        let result = within(
            20,
            "signal-with-start result",
            handle.get_result(result_opts()),
        )
        .await
        .expect("workflow should complete");
        assert_eq!(result, vec!["via signal-with-start".to_string()]);

        // Signal-with-start on a running workflow: signals it, does not start another run.
        let id = unique("sws-running");
        let first = client
            .start_workflow(MailboxWorkflow::run, 2u32, start_opts(&tq, &id))
            .await
            .expect("start workflow");
        first
            .signal(
                MailboxWorkflow::deliver,
                "one".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal");
        let second = client
            .signal_with_start_workflow(
                MailboxWorkflow::run,
                2u32,
                MailboxWorkflow::deliver,
                "two".to_string(),
                start_opts(&tq, &id),
            )
            .await
            .expect("signal-with-start (running workflow)");
        assert_eq!(
            second.run_id(),
            first.run_id(),
            "signal-with-start on a running workflow must target the existing run"
        );
        let result = within(20, "workflow result", first.get_result(result_opts()))
            .await
            .expect("workflow should complete");
        assert_eq!(result, vec!["one".to_string(), "two".to_string()]);
    })
    .await;
}

/// 4. Queries against a running workflow (seeing state after a signal) and a completed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_on_running_and_completed_workflows() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-query");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<MailboxWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("queried");

    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(MailboxWorkflow::run, 2u32, start_opts(&tq, &id))
            .await
            .expect("start workflow");

        let empty = within(
            15,
            "query on fresh workflow",
            handle.query(MailboxWorkflow::inbox, (), WorkflowQueryOptions::default()),
        )
        .await
        .expect("query running workflow");
        assert!(empty.is_empty(), "no signals yet, got {empty:?}");

        handle
            .signal(
                MailboxWorkflow::deliver,
                "alpha".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal");
        // A query issued after the signal was accepted must observe it.
        let inbox = within(
            15,
            "query after signal",
            handle.query(MailboxWorkflow::inbox, (), WorkflowQueryOptions::default()),
        )
        .await
        .expect("query running workflow");
        assert_eq!(inbox, vec!["alpha".to_string()]);
        let size = within(
            15,
            "second query",
            handle.query(
                MailboxWorkflow::inbox_size,
                (),
                WorkflowQueryOptions::default(),
            ),
        )
        .await
        .expect("query running workflow");
        assert_eq!(size, 1);
        let desc = handle.describe(Default::default()).await.expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Running);

        handle
            .signal(
                MailboxWorkflow::deliver,
                "beta".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal");
        let result = within(20, "workflow result", handle.get_result(result_opts()))
            .await
            .expect("workflow should complete");
        assert_eq!(result, vec!["alpha".to_string(), "beta".to_string()]);

        // Query the completed workflow: the worker replays it and answers.
        let inbox = within(
            15,
            "query on completed workflow",
            handle.query(MailboxWorkflow::inbox, (), WorkflowQueryOptions::default()),
        )
        .await
        .expect("query completed workflow");
        assert_eq!(inbox, vec!["alpha".to_string(), "beta".to_string()]);

        // With reject condition NOT_OPEN the server rejects queries on a closed workflow.
        let rejected = within(
            15,
            "query with reject condition",
            handle.query(
                MailboxWorkflow::inbox,
                (),
                WorkflowQueryOptions::builder()
                    .reject_condition(QueryRejectCondition::NotOpen)
                    .build(),
            ),
        )
        .await;
        match rejected {
            Err(WorkflowQueryError::Rejected { status }) => {
                assert_eq!(status, Some(WorkflowExecutionStatus::Completed))
            }
            other => panic!("expected query to be rejected (NotOpen), got {other:?}"),
        }
    })
    .await;
}

/// 5. Cancellation: the workflow catches the cancel, runs a cleanup activity, and then either
/// reports itself CANCELED or returns a value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_cancellation_runs_cleanup() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-cancel");
    let cleanup_log = Arc::new(Mutex::new(Vec::<String>::new()));
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<CancellableWorkflow>()
            .unwrap()
            .register_activities(CleanupActivities {
                log: cleanup_log.clone(),
            })
            .build(),
    );
    let cancelled_id = unique("cancel-report");
    let value_id = unique("cancel-value");

    with_worker(&mut worker, async {
        let reports = client
            .start_workflow(
                CancellableWorkflow::run,
                true,
                start_opts(&tq, &cancelled_id),
            )
            .await
            .expect("start workflow");
        let returns = client
            .start_workflow(CancellableWorkflow::run, false, start_opts(&tq, &value_id))
            .await
            .expect("start workflow");
        // Let both workflows reach their timer.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        for h in [&reports, &returns] {
            let desc = h.describe(Default::default()).await.expect("describe");
            assert_eq!(desc.status(), WorkflowExecutionStatus::Running);
        }

        for h in [&reports, &returns] {
            h.cancel(
                WorkflowCancelOptions::builder()
                    .reason("test-cancel")
                    .build(),
            )
            .await
            .expect("request cancellation");
        }

        // Workflow that reports cancellation: CANCELED status, Cancelled error from get_result.
        let outcome = within(
            20,
            "cancelled workflow result",
            reports.get_result(result_opts()),
        )
        .await;
        assert!(
            matches!(outcome, Err(WorkflowGetResultError::Cancelled { .. })),
            "expected Cancelled from get_result, got {outcome:?}"
        );
        let desc = reports
            .describe(Default::default())
            .await
            .expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Canceled);

        // Workflow that swallows the cancellation and returns a value: COMPLETED.
        let value = within(20, "workflow result", returns.get_result(result_opts()))
            .await
            .expect("workflow handling cancellation should complete");
        assert_eq!(
            value,
            format!("cleaned up {value_id} (reason: test-cancel)")
        );
        let desc = returns
            .describe(Default::default())
            .await
            .expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Completed);

        // Cleanup ran exactly once for each workflow.
        let mut log = cleanup_log.lock().unwrap().clone();
        log.sort();
        let mut expected = vec![cancelled_id.clone(), value_id.clone()];
        expected.sort();
        assert_eq!(log, expected);

        // History of the cancelled workflow: cancel requested (with reason), then canceled.
        let events = full_history(&reports).await;
        let cause = events.iter().find_map(|e| match &e.attributes {
            Some(Attributes::WorkflowExecutionCancelRequestedEventAttributes(a)) => {
                Some(a.cause.clone())
            }
            _ => None,
        });
        assert_eq!(cause.as_deref(), Some("test-cancel"));
        assert!(matches!(
            events.last().and_then(|e| e.attributes.as_ref()),
            Some(Attributes::WorkflowExecutionCanceledEventAttributes(_))
        ));
    })
    .await;
}

/// 6. Terminate a running workflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_running_workflow() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-terminate");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<MailboxWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("terminated");

    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(MailboxWorkflow::run, 5u32, start_opts(&tq, &id))
            .await
            .expect("start workflow");
        tokio::time::sleep(Duration::from_millis(500)).await;
        handle
            .terminate(
                WorkflowTerminateOptions::builder()
                    .reason("test-terminate")
                    .build(),
            )
            .await
            .expect("terminate");

        let outcome = within(
            20,
            "terminated workflow result",
            handle.get_result(result_opts()),
        )
        .await;
        assert!(
            matches!(outcome, Err(WorkflowGetResultError::Terminated { .. })),
            "expected Terminated from get_result, got {outcome:?}"
        );
        let desc = handle.describe(Default::default()).await.expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Terminated);
        assert!(desc.close_time().is_some());

        let events = full_history(&handle).await;
        match events.last().and_then(|e| e.attributes.as_ref()) {
            Some(Attributes::WorkflowExecutionTerminatedEventAttributes(a)) => {
                assert_eq!(a.reason, "test-terminate")
            }
            other => panic!("last event should be WorkflowExecutionTerminated, got {other:?}"),
        }

        // A closed workflow can no longer be signalled.
        let signal = handle
            .signal(
                MailboxWorkflow::deliver,
                "too late".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await;
        assert!(
            matches!(signal, Err(WorkflowInteractionError::NotFound(_))),
            "signalling a terminated workflow should fail with NotFound, got {signal:?}"
        );
    })
    .await;
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

/// 9. Starting a workflow id that is already running fails with WorkflowAlreadyStarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_start_of_running_workflow_fails() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-dup");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<MailboxWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("dup");

    with_worker(&mut worker, async {
        let first = client
            .start_workflow(MailboxWorkflow::run, 1u32, start_opts(&tq, &id))
            .await
            .expect("first start");

        let second = client
            .start_workflow(MailboxWorkflow::run, 1u32, start_opts(&tq, &id))
            .await;
        match second {
            Err(WorkflowStartError::AlreadyStarted { run_id, source }) => {
                assert_eq!(source.code(), tonic_code_already_exists());
                assert_eq!(
                    run_id.as_deref(),
                    first.run_id(),
                    "AlreadyStarted should carry the running run's id"
                );
            }
            Err(other) => panic!("expected AlreadyStarted, got error {other:?}"),
            Ok(h) => panic!(
                "second start unexpectedly succeeded with run {:?}",
                h.run_id()
            ),
        }

        // The original run is unaffected.
        first
            .signal(
                MailboxWorkflow::deliver,
                "still here".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal original run");
        let result = within(20, "workflow result", first.get_result(result_opts()))
            .await
            .expect("workflow should complete");
        assert_eq!(result, vec!["still here".to_string()]);
    })
    .await;
}

fn tonic_code_already_exists() -> temporalio_client::tonic::Code {
    temporalio_client::tonic::Code::AlreadyExists
}

/// 9b. Id conflict policy USE_EXISTING returns the running run; a closed id can be reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_conflict_and_reuse_policies() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-policies");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<MailboxWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("policy");

    with_worker(&mut worker, async {
        let first = client
            .start_workflow(MailboxWorkflow::run, 1u32, start_opts(&tq, &id))
            .await
            .expect("first start");
        let existing = client
            .start_workflow(
                MailboxWorkflow::run,
                1u32,
                WorkflowStartOptions::new(tq.clone(), id.clone())
                    .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
                    .build(),
            )
            .await
            .expect("start with UseExisting should succeed");
        assert_eq!(existing.run_id(), first.run_id());

        first
            .signal(
                MailboxWorkflow::deliver,
                "run 1".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal");
        let r1 = within(20, "first run result", first.get_result(result_opts()))
            .await
            .expect("first run completes");
        assert_eq!(r1, vec!["run 1".to_string()]);

        // Default reuse policy allows a new run once the previous one is closed.
        let second = client
            .start_workflow(MailboxWorkflow::run, 1u32, start_opts(&tq, &id))
            .await
            .expect("start after close should succeed");
        assert_ne!(second.run_id(), first.run_id());
        second
            .signal(
                MailboxWorkflow::deliver,
                "run 2".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal");
        let r2 = within(20, "second run result", second.get_result(result_opts()))
            .await
            .expect("second run completes");
        assert_eq!(r2, vec!["run 2".to_string()]);
    })
    .await;
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

fn durable_worker_options(tq: &str, runs: &Arc<Mutex<Vec<String>>>) -> WorkerOptions {
    WorkerOptions::new(tq.to_string())
        .register_workflow::<DurableWorkflow>()
        .unwrap()
        .register_workflow::<MailboxWorkflow>()
        .unwrap()
        .register_activities(DurableActivities { runs: runs.clone() })
        .build()
}

fn durable_input(name: &str, pre_delay_ms: u64, timer_ms: u64) -> DurableInput {
    DurableInput {
        name: name.to_string(),
        pre_delay_ms,
        timer_ms,
    }
}

fn count(runs: &Arc<Mutex<Vec<String>>>, entry: &str) -> usize {
    runs.lock().unwrap().iter().filter(|r| *r == entry).count()
}

/// 10a. The server is SIGKILLed while workflows wait on timers, an activity and a signal; the
/// worker (a separate "process" from the server's point of view) keeps running and reconnects
/// once the server is restarted on the same data dir. Every workflow completes correctly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_survive_server_kill_with_running_worker() {
    let mut server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-durable-a");
    let runs = Arc::new(Mutex::new(Vec::new()));
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, durable_worker_options(&tq, &runs));

    with_worker(&mut worker, async {
        // d1, d2: waiting on a timer at kill time. d3: its first activity is executing.
        let specs = [("d1", 0u64, 3000u64), ("d2", 0, 4500), ("d3", 2500, 300)];
        let mut handles = Vec::new();
        for (name, pre, timer) in specs {
            let h = client
                .start_workflow(
                    DurableWorkflow::run,
                    durable_input(name, pre, timer),
                    start_opts(&tq, &unique(name)),
                )
                .await
                .expect("start durable workflow");
            handles.push((name, h));
        }
        let mailbox = client
            .start_workflow(MailboxWorkflow::run, 2u32, start_opts(&tq, &unique("mbox")))
            .await
            .expect("start mailbox workflow");
        mailbox
            .signal(
                MailboxWorkflow::deliver,
                "before crash".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal before crash");

        wait_until(15, "d1/d2 first activities", || {
            count(&runs, "d1:pre") >= 1 && count(&runs, "d2:pre") >= 1
        })
        .await;
        // Give the worker time to report the activity results and start the timers.
        tokio::time::sleep(Duration::from_millis(700)).await;

        server.kill();
        assert!(
            !server.is_accepting(),
            "durin still accepting after SIGKILL"
        );
        tokio::time::sleep(Duration::from_millis(1000)).await;
        server.restart().await;

        mailbox
            .signal(
                MailboxWorkflow::deliver,
                "after restart".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal after restart");

        for (name, h) in &handles {
            let result = within(
                25,
                &format!("{name} result after restart"),
                h.get_result(result_opts()),
            )
            .await
            .unwrap_or_else(|e| panic!("{name} should complete after restart: {e:?}"));
            assert_eq!(result, format!("pre:{name}|post:{name}"));
            let desc = h.describe(Default::default()).await.expect("describe");
            assert_eq!(desc.status(), WorkflowExecutionStatus::Completed);
        }
        let inbox = within(
            25,
            "mailbox result after restart",
            mailbox.get_result(result_opts()),
        )
        .await
        .expect("mailbox should complete after restart");
        assert_eq!(
            inbox,
            vec!["before crash".to_string(), "after restart".to_string()]
        );
        // Activities whose completion was acknowledged before the crash are not re-run.
        assert_eq!(
            count(&runs, "d1:pre"),
            1,
            "runs: {:?}",
            runs.lock().unwrap()
        );
        assert_eq!(
            count(&runs, "d2:pre"),
            1,
            "runs: {:?}",
            runs.lock().unwrap()
        );
    })
    .await;
}

/// 10b. The worker is stopped, the server is SIGKILLed while workflows wait on timers, and
/// then both come back: a restarted server on the same data dir and a brand-new worker (new
/// connection, empty workflow cache) that has to rebuild every workflow from its persisted
/// history. Completed workflows stay completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_survive_server_kill_and_new_worker() {
    let mut server = DurinServer::start().await;
    let tq = unique("tq-durable-b");
    let runs = Arc::new(Mutex::new(Vec::new()));
    let ids: Vec<(&str, String)> = ["d0", "d4", "d5"]
        .into_iter()
        .map(|n| (n, unique(n)))
        .collect();

    // ---- before the crash ----
    {
        let client = server.client().await;
        let runtime = sdk_runtime();
        let mut worker = new_worker(&runtime, &client, durable_worker_options(&tq, &runs));
        with_worker_strict(&mut worker, async {
            // d0 completes entirely before the crash.
            let d0 = client
                .start_workflow(
                    DurableWorkflow::run,
                    durable_input("d0", 0, 100),
                    start_opts(&tq, &ids[0].1),
                )
                .await
                .expect("start d0");
            let r = within(20, "d0 result", d0.get_result(result_opts()))
                .await
                .expect("d0 completes");
            assert_eq!(r, "pre:d0|post:d0");

            // d4, d5 will be waiting on timers when the server dies.
            for ((name, id), timer) in ids[1..].iter().zip([3000u64, 4000]) {
                client
                    .start_workflow(
                        DurableWorkflow::run,
                        durable_input(name, 0, timer),
                        start_opts(&tq, id),
                    )
                    .await
                    .expect("start durable workflow");
            }
            wait_until(15, "d4/d5 first activities", || {
                count(&runs, "d4:pre") >= 1 && count(&runs, "d5:pre") >= 1
            })
            .await;
            tokio::time::sleep(Duration::from_millis(700)).await;
        })
        .await;
        // Worker (and its connection) are gone before the server dies.
    }

    server.kill();
    assert!(
        !server.is_accepting(),
        "durin still accepting after SIGKILL"
    );
    server.restart().await;

    // ---- after the crash: new connection, new worker ----
    let client = server.client().await;
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, durable_worker_options(&tq, &runs));
    with_worker(&mut worker, async {
        let d0 = client.get_workflow_handle::<DurableWorkflow>(ids[0].1.clone());
        let desc = within(10, "describe d0", d0.describe(Default::default()))
            .await
            .expect("describe d0 after restart");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Completed);
        let r = within(10, "d0 result after restart", d0.get_result(result_opts()))
            .await
            .expect("d0 result after restart");
        assert_eq!(r, "pre:d0|post:d0");

        for (name, id) in &ids[1..] {
            let h = client.get_workflow_handle::<DurableWorkflow>(id.clone());
            let result = within(
                25,
                &format!("{name} result after restart"),
                h.get_result(result_opts()),
            )
            .await
            .unwrap_or_else(|e| panic!("{name} should complete after restart: {e:?}"));
            assert_eq!(result, format!("pre:{name}|post:{name}"));
            let desc = h.describe(Default::default()).await.expect("describe");
            assert_eq!(desc.status(), WorkflowExecutionStatus::Completed);
        }

        // Nothing acknowledged before the crash was executed again.
        let snapshot = runs.lock().unwrap().clone();
        for entry in [
            "d0:pre", "d0:post", "d4:pre", "d5:pre", "d4:post", "d5:post",
        ] {
            assert_eq!(
                snapshot.iter().filter(|r| *r == entry).count(),
                1,
                "{entry} should have run exactly once; runs: {snapshot:?}"
            );
        }
    })
    .await;
}
