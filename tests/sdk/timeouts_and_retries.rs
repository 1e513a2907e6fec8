//! Timeouts and retries: workflow run and execution timeouts (with and without a workflow retry
//! policy), activity schedule-to-close timeouts while retrying, non-retryable error types and
//! `next_retry_delay`.

use crate::common;
use crate::helpers::*;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use serde::{Deserialize, Serialize};
use temporalio_client::{
    WorkflowExecutionStatus, WorkflowStartOptions, errors::WorkflowGetResultError,
};
use temporalio_common::{
    RetryPolicy,
    error::IncomingError,
    protos::temporal::api::{
        enums::v1::{EventType, RetryState, TimeoutType},
        failure::v1::failure::FailureInfo,
        history::v1::{HistoryEvent, history_event::Attributes},
    },
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, ApplicationFailure, WorkerOptions, WorkflowContext,
    WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

// ---- 3a/3b. workflow timeouts ---------------------------------------------------------------

/// Sleeps (durable timer) for `secs` seconds.
#[workflow]
#[derive(Default)]
pub struct SleeperWorkflow;

#[workflow_methods]
impl SleeperWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, secs: u64) -> WorkflowResult<String> {
        ctx.timer(Duration::from_secs(secs)).await;
        Ok("woke up".to_string())
    }
}

/// Event time in ms since the epoch.
fn event_ms(e: &HistoryEvent) -> i64 {
    let t = e.event_time.as_ref().expect("event has a time");
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

/// 3a. A run timeout ends the run as timed out; the client's get_result says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_run_timeout() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-run-timeout");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<SleeperWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("sleeper");

    with_worker(&mut worker, async {
        let started = Instant::now();
        let handle = client
            .start_workflow(
                SleeperWorkflow::run,
                10u64,
                WorkflowStartOptions::new(tq.clone(), id.clone())
                    .run_timeout(Duration::from_secs(1))
                    .build(),
            )
            .await
            .expect("start workflow");
        let outcome = within(10, "timed-out result", handle.get_result(result_opts())).await;
        let waited = started.elapsed();
        assert!(
            matches!(outcome, Err(WorkflowGetResultError::TimedOut)),
            "expected a timed-out workflow, got {outcome:?}"
        );
        assert!(
            waited >= Duration::from_millis(950) && waited < Duration::from_secs(5),
            "the run should time out after about 1 s, took {waited:?}"
        );

        let desc = handle.describe(Default::default()).await.expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::TimedOut);
        let events = history(&client, &id, None).await;
        let timed_out = match events.last().and_then(|e| e.attributes.as_ref()) {
            Some(Attributes::WorkflowExecutionTimedOutEventAttributes(a)) => a,
            other => panic!("last event should be WorkflowExecutionTimedOut, got {other:?}"),
        };
        assert!(
            timed_out.new_execution_run_id.is_empty(),
            "no retry without a policy"
        );
        let run_ms = event_ms(events.last().unwrap()) - event_ms(&events[0]);
        assert!(
            (1000..2000).contains(&run_ms),
            "timed out {run_ms} ms after start, expected about 1000"
        );
        // Without a retry policy Temporal records RETRY_STATE_RETRY_POLICY_NOT_SET on the
        // timed-out event (TIMEOUT is for an execution timeout that stops a retry chain).
        assert_eq!(
            timed_out.retry_state(),
            RetryState::RetryPolicyNotSet,
            "retry state of a run timeout without a retry policy"
        );
    })
    .await;
}

/// 3b. With a retry policy, a run that times out is retried — but never past the workflow
/// execution timeout, which ends the whole chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_execution_timeout_stops_retries() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-exec-timeout");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<SleeperWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("sleeper-exec");

    with_worker(&mut worker, async {
        // Run 1: 0 → 1.0 s (run timeout), retried after 100 ms. Run 2: 1.1 s → would time out at
        // 2.1 s, but the execution timeout (1.6 s) comes first and ends the execution.
        let handle = client
            .start_workflow(
                SleeperWorkflow::run,
                10u64,
                WorkflowStartOptions::new(tq.clone(), id.clone())
                    .run_timeout(Duration::from_secs(1))
                    .execution_timeout(Duration::from_millis(1600))
                    .retry_policy(
                        RetryPolicy::builder()
                            .initial_interval(Duration::from_millis(100))
                            .backoff_coefficient(1.0)
                            .maximum_attempts(10)
                            .build(),
                    )
                    .build(),
            )
            .await
            .expect("start workflow");
        let first_run = handle.run_id().expect("run id").to_string();
        let outcome = within(15, "timed-out result", handle.get_result(result_opts())).await;
        assert!(
            matches!(outcome, Err(WorkflowGetResultError::TimedOut)),
            "expected a timed-out workflow, got {outcome:?}"
        );

        let chain = run_chain(&client, &id, &first_run).await;
        let summary: Vec<Vec<EventType>> = chain.iter().map(|(_, ev)| event_types(ev)).collect();
        assert_eq!(
            chain.len(),
            2,
            "one retry after the first run timeout, none after the execution timeout: {summary:?}"
        );
        match chain[0].1.last().and_then(|e| e.attributes.as_ref()) {
            Some(Attributes::WorkflowExecutionTimedOutEventAttributes(a)) => {
                assert_eq!(a.retry_state(), RetryState::InProgress)
            }
            other => panic!("run 1 should end timed out, got {other:?}"),
        }
        match chain[1].1.last().and_then(|e| e.attributes.as_ref()) {
            Some(Attributes::WorkflowExecutionTimedOutEventAttributes(a)) => {
                assert_eq!(a.retry_state(), RetryState::Timeout);
                assert!(a.new_execution_run_id.is_empty());
            }
            other => panic!("run 2 should end timed out, got {other:?}"),
        }
        // The chain ends at the execution timeout, not at run 2's own run timeout.
        let first_start = event_ms(&chain[0].1[0]);
        let run1_end = event_ms(chain[0].1.last().unwrap());
        let last_end = event_ms(chain[1].1.last().unwrap());
        assert!(
            (1000..1400).contains(&(run1_end - first_start)),
            "run 1 timed out {} ms after start, expected about 1000",
            run1_end - first_start
        );
        assert!(
            (1600..1950).contains(&(last_end - first_start)),
            "the execution timed out {} ms after start, expected about 1600 (the execution \
             timeout), not about 2100 (run 2's run timeout)",
            last_end - first_start
        );
        // Both runs carry the same execution expiration time.
        let expiration = |events: &[HistoryEvent]| match events[0].attributes.as_ref() {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a
                .workflow_execution_expiration_time
                .as_ref()
                .map(|t| (t.seconds, t.nanos)),
            other => panic!("first event should be WorkflowExecutionStarted, got {other:?}"),
        };
        assert!(expiration(&chain[0].1).is_some());
        assert_eq!(expiration(&chain[0].1), expiration(&chain[1].1));

        let latest = describe(&client, &id, None).await;
        assert_eq!(latest.run_id(), chain[1].0);
        assert_eq!(latest.status(), WorkflowExecutionStatus::TimedOut);
    })
    .await;
}

// ---- 3c/3d/3e. activity retries and timeouts ------------------------------------------------

/// One activity attempt as seen by the worker.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub activity: &'static str,
    pub attempt: u32,
    pub started: Instant,
    pub failed: Instant,
}

type AttemptLog = Arc<Mutex<Vec<Attempt>>>;

pub struct ProbeActivities {
    log: AttemptLog,
}

impl ProbeActivities {
    fn record(&self, activity: &'static str, attempt: u32, started: Instant) {
        self.log.lock().unwrap().push(Attempt {
            activity,
            attempt,
            started,
            failed: Instant::now(),
        });
    }
}

#[activities]
impl ProbeActivities {
    /// Every attempt works for `millis` ms and then fails retryably with "attempt N failed".
    #[activity]
    pub async fn keeps_failing(
        self: Arc<Self>,
        ctx: ActivityContext,
        millis: u64,
    ) -> Result<String, ActivityError> {
        let attempt = ctx.info().attempt;
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(millis)).await;
        self.record("keeps_failing", attempt, started);
        Err(ApplicationFailure::new(format!("attempt {attempt} failed")).into())
    }

    /// Every attempt fails with an application failure of type `type_name`.
    #[activity]
    pub async fn typed_failure(
        self: Arc<Self>,
        ctx: ActivityContext,
        type_name: String,
    ) -> Result<String, ActivityError> {
        let attempt = ctx.info().attempt;
        self.record("typed_failure", attempt, Instant::now());
        Err(
            ApplicationFailure::builder(format!("{type_name} on attempt {attempt}"))
                .type_name(type_name)
                .build()
                .into(),
        )
    }

    /// Attempt 1 fails asking the server to wait `delay_ms` before the next attempt; attempt 2
    /// fails plainly (the retry policy's interval applies); attempt 3 succeeds.
    #[activity]
    pub async fn asks_for_delay(
        self: Arc<Self>,
        ctx: ActivityContext,
        delay_ms: u64,
    ) -> Result<String, ActivityError> {
        let attempt = ctx.info().attempt;
        self.record("asks_for_delay", attempt, Instant::now());
        match attempt {
            1 => Err(ApplicationFailure::builder("slow down")
                .next_retry_delay(Duration::from_millis(delay_ms))
                .build()
                .into()),
            2 => Err(ApplicationFailure::new("still failing").into()),
            n => Ok(format!("succeeded on attempt {n}")),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Probe {
    /// `keeps_failing` under a schedule-to-close timeout with a constant retry interval.
    ScheduleToClose {
        attempt_ms: u64,
        schedule_to_close_ms: u64,
        retry_interval_ms: u64,
    },
    /// `typed_failure(type_name)`; the retry policy lists `FatalConfigError` as non-retryable.
    TypedFailure {
        type_name: String,
        max_attempts: u32,
    },
    /// `asks_for_delay(delay_ms)` with a 100 ms retry interval.
    NextRetryDelay { delay_ms: u64 },
}

/// What the workflow saw when its activity finished.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActivityOutcome {
    pub result: Option<String>,
    /// `None` on success; "failed" for an activity failure; otherwise a description.
    pub error: Option<String>,
    /// `RetryState` of the activity failure, as `{:?}`.
    pub retry_state: Option<String>,
    /// Causes of the activity failure, outermost first: `"timeout[<TimeoutType>]: <message>"`
    /// or `"application[<type>]: <message>"`.
    pub causes: Vec<String>,
}

fn cause_label(e: &IncomingError) -> String {
    match e {
        IncomingError::Application(a) => format!(
            "application[{}]: {}",
            a.type_name().unwrap_or(""),
            e.failure().message
        ),
        IncomingError::Timeout(t) => {
            format!("timeout[{:?}]: {}", t.timeout_type(), e.failure().message)
        }
        other => format!("other: {}", other.failure().message),
    }
}

fn activity_outcome(res: Result<String, ActivityExecutionError>) -> ActivityOutcome {
    match res {
        Ok(v) => ActivityOutcome {
            result: Some(v),
            ..Default::default()
        },
        Err(ActivityExecutionError::Failed(f)) => {
            let mut causes = Vec::new();
            let mut cur = f.cause();
            while let Some(c) = cur {
                causes.push(cause_label(c));
                cur = c.cause();
            }
            ActivityOutcome {
                result: None,
                error: Some("failed".to_string()),
                retry_state: Some(format!("{:?}", f.retry_state())),
                causes,
            }
        }
        Err(e) => ActivityOutcome {
            error: Some(format!("unexpected activity error: {e}")),
            ..Default::default()
        },
    }
}

/// Runs one activity per `Probe` and reports what it saw (never fails itself).
#[workflow]
#[derive(Default)]
pub struct ProbeWorkflow;

#[workflow_methods]
impl ProbeWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        probe: Probe,
    ) -> WorkflowResult<ActivityOutcome> {
        let res = match probe {
            Probe::ScheduleToClose {
                attempt_ms,
                schedule_to_close_ms,
                retry_interval_ms,
            } => {
                ctx.execute_activity(
                    ProbeActivities::keeps_failing,
                    attempt_ms,
                    ActivityOptions::with_schedule_to_close_timeout(Duration::from_millis(
                        schedule_to_close_ms,
                    ))
                    .retry_policy(
                        RetryPolicy::builder()
                            .initial_interval(Duration::from_millis(retry_interval_ms))
                            .backoff_coefficient(1.0)
                            .build(),
                    )
                    .build(),
                )
                .await
            }
            Probe::TypedFailure {
                type_name,
                max_attempts,
            } => {
                ctx.execute_activity(
                    ProbeActivities::typed_failure,
                    type_name,
                    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
                        .retry_policy(
                            RetryPolicy::builder()
                                .initial_interval(Duration::from_millis(100))
                                .backoff_coefficient(1.0)
                                .maximum_attempts(max_attempts)
                                .non_retryable_error_types(["FatalConfigError"])
                                .build(),
                        )
                        .build(),
                )
                .await
            }
            Probe::NextRetryDelay { delay_ms } => {
                ctx.execute_activity(
                    ProbeActivities::asks_for_delay,
                    delay_ms,
                    ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
                        .retry_policy(
                            RetryPolicy::builder()
                                .initial_interval(Duration::from_millis(100))
                                .backoff_coefficient(1.0)
                                .maximum_attempts(5)
                                .build(),
                        )
                        .build(),
                )
                .await
            }
        };
        Ok(activity_outcome(res))
    }
}

fn probe_worker_options(tq: &str, log: &AttemptLog) -> WorkerOptions {
    WorkerOptions::new(tq.to_string())
        .register_workflow::<ProbeWorkflow>()
        .unwrap()
        .register_activities(ProbeActivities { log: log.clone() })
        .build()
}

fn attempts_of(log: &AttemptLog, activity: &str) -> Vec<Attempt> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|a| a.activity == activity)
        .cloned()
        .collect()
}

/// 3c. An activity that keeps failing is retried until its schedule-to-close timeout expires
/// during an attempt: the workflow sees an activity failure (retry state NON_RETRYABLE_FAILURE)
/// caused by a SCHEDULE_TO_CLOSE timeout, itself caused by the last attempt's failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_schedule_to_close_timeout_while_retrying() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-s2c");
    let log: AttemptLog = Arc::default();
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, probe_worker_options(&tq, &log));
    let id = unique("s2c");

    with_worker(&mut worker, async {
        // Attempts run [0, 0.8], [1.0, 1.8], [2.0, 2.8] s; the 2.4 s deadline hits attempt 3.
        let handle = client
            .start_workflow(
                ProbeWorkflow::run,
                Probe::ScheduleToClose {
                    attempt_ms: 800,
                    schedule_to_close_ms: 2400,
                    retry_interval_ms: 200,
                },
                start_opts(&tq, &id),
            )
            .await
            .expect("start workflow");
        let outcome = within(20, "probe result", handle.get_result(result_opts()))
            .await
            .expect("the workflow catches the activity failure and completes");
        assert_eq!(outcome.result, None, "{outcome:?}");
        assert_eq!(outcome.error.as_deref(), Some("failed"), "{outcome:?}");
        // Temporal never retries a SCHEDULE_TO_CLOSE timeout, so the activity failure's retry
        // state is NON_RETRYABLE_FAILURE (not TIMEOUT, which is for a retry that would start
        // after the deadline).
        assert_eq!(
            outcome.retry_state.as_deref(),
            Some("NonRetryableFailure"),
            "{outcome:?}"
        );
        assert_eq!(outcome.causes.len(), 2, "{outcome:?}");
        assert!(
            outcome.causes[0].starts_with("timeout[ScheduleToClose]"),
            "the activity failure's cause should be a SCHEDULE_TO_CLOSE timeout: {outcome:?}"
        );
        assert_eq!(
            outcome.causes[1], "application[]: attempt 2 failed",
            "the timeout's cause should be the last failed attempt: {outcome:?}"
        );
        let attempts: Vec<u32> = attempts_of(&log, "keeps_failing")
            .iter()
            .map(|a| a.attempt)
            .collect();
        // Attempt 3 records itself when it ends (after the timeout), so wait for it.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let attempts_after: Vec<u32> = attempts_of(&log, "keeps_failing")
            .iter()
            .map(|a| a.attempt)
            .collect();
        assert!(attempts.len() >= 2, "attempts: {attempts:?}");
        assert_eq!(
            attempts_after,
            vec![1, 2, 3],
            "no attempt after the timeout"
        );

        let events = history(&client, &id, None).await;
        let timed_out = events
            .iter()
            .find_map(|e| match e.attributes.as_ref() {
                Some(Attributes::ActivityTaskTimedOutEventAttributes(a)) => Some(a),
                _ => None,
            })
            .unwrap_or_else(|| {
                panic!(
                    "history should have ActivityTaskTimedOut: {:?}",
                    event_types(&events)
                )
            });
        assert_eq!(timed_out.retry_state(), RetryState::NonRetryableFailure);
        let failure = timed_out.failure.as_ref().expect("timeout failure");
        match failure.failure_info.as_ref() {
            Some(FailureInfo::TimeoutFailureInfo(info)) => {
                assert_eq!(info.timeout_type(), TimeoutType::ScheduleToClose)
            }
            other => panic!("expected timeout failure info, got {other:?}"),
        }
        assert!(
            !event_types(&events).contains(&EventType::ActivityTaskFailed),
            "retried failures are not recorded as ActivityTaskFailed"
        );
    })
    .await;
}

/// 3d. A failure whose type is listed in the retry policy's non-retryable error types is not
/// retried; any other type is retried up to maximum_attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_non_retryable_error_types() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-nonretry");
    let log: AttemptLog = Arc::default();
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, probe_worker_options(&tq, &log));

    with_worker(&mut worker, async {
        let fatal = client
            .start_workflow(
                ProbeWorkflow::run,
                Probe::TypedFailure {
                    type_name: "FatalConfigError".to_string(),
                    max_attempts: 5,
                },
                start_opts(&tq, &unique("fatal")),
            )
            .await
            .expect("start workflow");
        let outcome = within(20, "fatal probe", fatal.get_result(result_opts()))
            .await
            .expect("probe completes");
        assert_eq!(outcome.error.as_deref(), Some("failed"), "{outcome:?}");
        assert_eq!(
            outcome.retry_state.as_deref(),
            Some("NonRetryableFailure"),
            "{outcome:?}"
        );
        assert_eq!(
            outcome.causes,
            vec!["application[FatalConfigError]: FatalConfigError on attempt 1".to_string()]
        );
        let fatal_attempts: Vec<u32> = attempts_of(&log, "typed_failure")
            .iter()
            .map(|a| a.attempt)
            .collect();
        assert_eq!(
            fatal_attempts,
            vec![1],
            "a non-retryable type is not retried"
        );

        log.lock().unwrap().clear();
        let transient = client
            .start_workflow(
                ProbeWorkflow::run,
                Probe::TypedFailure {
                    type_name: "TransientGlitch".to_string(),
                    max_attempts: 3,
                },
                start_opts(&tq, &unique("transient")),
            )
            .await
            .expect("start workflow");
        let outcome = within(20, "transient probe", transient.get_result(result_opts()))
            .await
            .expect("probe completes");
        assert_eq!(
            outcome.retry_state.as_deref(),
            Some("MaximumAttemptsReached"),
            "{outcome:?}"
        );
        assert_eq!(
            outcome.causes,
            vec!["application[TransientGlitch]: TransientGlitch on attempt 3".to_string()]
        );
        let transient_attempts: Vec<u32> = attempts_of(&log, "typed_failure")
            .iter()
            .map(|a| a.attempt)
            .collect();
        assert_eq!(transient_attempts, vec![1, 2, 3]);
    })
    .await;
}

/// 3e. `next_retry_delay` on an activity's application failure replaces the retry policy's
/// interval for that retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_next_retry_delay_overrides_interval() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-next-delay");
    let log: AttemptLog = Arc::default();
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, probe_worker_options(&tq, &log));

    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(
                ProbeWorkflow::run,
                Probe::NextRetryDelay { delay_ms: 1500 },
                start_opts(&tq, &unique("next-delay")),
            )
            .await
            .expect("start workflow");
        let outcome = within(20, "probe result", handle.get_result(result_opts()))
            .await
            .expect("probe completes");
        assert_eq!(
            outcome.result.as_deref(),
            Some("succeeded on attempt 3"),
            "{outcome:?}"
        );
        let attempts = attempts_of(&log, "asks_for_delay");
        assert_eq!(
            attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let gap1 = attempts[1].started.duration_since(attempts[0].failed);
        let gap2 = attempts[2].started.duration_since(attempts[1].failed);
        assert!(
            gap1 >= Duration::from_millis(1450) && gap1 < Duration::from_millis(3500),
            "attempt 2 should start about 1.5 s (next_retry_delay) after attempt 1 failed, \
             started after {gap1:?}"
        );
        assert!(
            gap2 < Duration::from_millis(1000),
            "attempt 3 should follow the policy's 100 ms interval, started after {gap2:?}"
        );
    })
    .await;
}
