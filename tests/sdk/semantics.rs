//! End-to-end tests of user-visible Temporal semantics beyond the basics: workflow updates
//! (validators, idempotency by update id, updates while the workflow is busy, update-with-start),
//! visibility (search attributes, list / count queries, registering new attributes through the
//! operator service), timeouts and retries (workflow run / execution timeouts, activity
//! schedule-to-close timeouts, non-retryable error types, `next_retry_delay`) and delayed
//! workflow starts.
//!
//! Like the other SDK tests, every test starts its own `durin` process and drives it with the official
//! Temporal Rust SDK (client + worker), asserting what a user observes.

use crate::common;
use crate::helpers::*;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::{DurinServer, NAMESPACE, new_worker, sdk_runtime, unique, with_worker, within};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use temporalio_client::{
    Client, WorkflowCountOptions, WorkflowExecuteUpdateOptions, WorkflowExecutionStatus,
    WorkflowIdConflictPolicy, WorkflowListOptions, WorkflowQueryOptions, WorkflowStartOptions,
    WorkflowUpdateWithStartOptions,
    errors::{
        ClientError, WorkflowGetResultError, WorkflowStartError, WorkflowUpdateError,
        WorkflowUpdateWithStartError,
    },
    grpc::{OperatorService, WorkflowService},
    tonic::{Code, Request},
};
use temporalio_common::{
    RetryPolicy,
    error::IncomingError,
    protos::temporal::api::{
        common::v1::WorkflowType,
        enums::v1::{EventType, IndexedValueType, RetryState, TimeoutType},
        failure::v1::failure::FailureInfo,
        history::v1::{HistoryEvent, history_event::Attributes},
        operatorservice::v1::{AddSearchAttributesRequest, ListSearchAttributesRequest},
        taskqueue::v1::TaskQueue,
        update::v1::outcome,
        workflowservice::v1::StartWorkflowExecutionRequest,
    },
    search_attributes::{SearchAttributeKey, SearchAttributes, Timestamp},
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ActivityOptions, ApplicationFailure, SyncWorkflowContext,
    WorkerOptions, WorkflowContext, WorkflowContextView, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// =============================================================================================
// Workflow and activity definitions
// =============================================================================================

// ---- 1. updates -----------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerSummary {
    pub balance: i64,
    /// How many times a deposit / withdraw handler body ran.
    pub handled: u32,
}

/// A ledger driven by updates: `deposit` (validated: positive amounts only), `withdraw`
/// (accepted, but fails on insufficient funds) and `close` (ends the workflow).
#[workflow]
#[derive(Default)]
pub struct LedgerWorkflow {
    balance: i64,
    handled: u32,
    closed: bool,
}

#[workflow_methods]
impl LedgerWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<LedgerSummary> {
        ctx.wait_condition(|s| s.closed).await?;
        Ok(ctx.state(|s| LedgerSummary {
            balance: s.balance,
            handled: s.handled,
        }))
    }

    #[update_validator(deposit)]
    fn validate_deposit(&self, _ctx: &WorkflowContextView, amount: &i64) -> Result<(), BoxError> {
        if *amount <= 0 {
            return Err(format!("deposit must be positive, got {amount}").into());
        }
        Ok(())
    }

    /// Adds `amount`; returns the new balance.
    #[update]
    pub fn deposit(&mut self, _ctx: &mut SyncWorkflowContext<Self>, amount: i64) -> i64 {
        self.handled += 1;
        self.balance += amount;
        self.balance
    }

    /// Subtracts `amount`; fails (after being accepted) if the balance is too low.
    #[update]
    pub fn withdraw(
        &mut self,
        _ctx: &mut SyncWorkflowContext<Self>,
        amount: i64,
    ) -> Result<i64, BoxError> {
        self.handled += 1;
        if amount > self.balance {
            return Err(format!(
                "insufficient funds: balance {}, requested {amount}",
                self.balance
            )
            .into());
        }
        self.balance -= amount;
        Ok(self.balance)
    }

    /// Closes the ledger (the workflow then completes); returns the final balance.
    #[update]
    pub fn close(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _: ()) -> i64 {
        self.closed = true;
        self.balance
    }

    #[query]
    pub fn handled(&self, _ctx: &WorkflowContextView) -> u32 {
        self.handled
    }

    #[query]
    pub fn balance(&self, _ctx: &WorkflowContextView) -> i64 {
        self.balance
    }
}

// ---- 1b. an update while the workflow waits on an activity ---------------------------------

#[derive(Default)]
pub struct SlowFlags {
    started: AtomicBool,
    finished: AtomicBool,
}

pub struct SlowActivities {
    flags: Arc<SlowFlags>,
}

#[activities]
impl SlowActivities {
    /// Takes `millis` ms.
    #[activity]
    pub async fn slow_step(
        self: Arc<Self>,
        _ctx: ActivityContext,
        millis: u64,
    ) -> Result<String, ActivityError> {
        self.flags.started.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        self.flags.finished.store(true, Ordering::SeqCst);
        Ok("slow step done".to_string())
    }
}

/// Runs one slow activity; `note` updates append to the same list the activity result goes to.
#[workflow]
#[derive(Default)]
pub struct BusyWorkflow {
    notes: Vec<String>,
}

#[workflow_methods]
impl BusyWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, millis: u64) -> WorkflowResult<Vec<String>> {
        let done = ctx
            .execute_activity(
                SlowActivities::slow_step,
                millis,
                ActivityOptions::start_to_close_timeout(Duration::from_secs(30)),
            )
            .await?;
        ctx.state_mut(|s| s.notes.push(done));
        Ok(ctx.state(|s| s.notes.clone()))
    }

    /// Appends a note; returns how many notes there are now.
    #[update]
    pub fn note(&mut self, _ctx: &mut SyncWorkflowContext<Self>, text: String) -> u32 {
        self.notes.push(format!("note: {text}"));
        self.notes.len() as u32
    }
}

// ---- 2. visibility --------------------------------------------------------------------------

const KEYWORD: SearchAttributeKey<String> = SearchAttributeKey::keyword("CustomKeywordField");
const INT: SearchAttributeKey<i64> = SearchAttributeKey::int("CustomIntField");
const TEXT: SearchAttributeKey<String> = SearchAttributeKey::text("CustomTextField");
const DOUBLE: SearchAttributeKey<f64> = SearchAttributeKey::float("CustomDoubleField");
const BOOL: SearchAttributeKey<bool> = SearchAttributeKey::bool("CustomBoolField");
const DATETIME: SearchAttributeKey<Timestamp> = SearchAttributeKey::datetime("CustomDatetimeField");
/// Registered by `register_search_attribute_through_operator_service`.
const REGION: SearchAttributeKey<String> = SearchAttributeKey::keyword("DurinTestRegion");
/// Registered by `register_search_attribute_through_operator_service`.
const PRIORITY: SearchAttributeKey<i64> = SearchAttributeKey::int("DurinTestPriority");

/// What a `TaggedWorkflow` upserts, and whether it then waits for `finish`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TagPlan {
    pub int: Option<i64>,
    pub keyword: Option<String>,
    pub boolean: Option<bool>,
    pub double: Option<f64>,
    pub priority: Option<i64>,
    pub wait: bool,
}

#[workflow]
#[derive(Default)]
pub struct TaggedWorkflow {
    finish: bool,
}

#[workflow_methods]
impl TaggedWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, plan: TagPlan) -> WorkflowResult<String> {
        let mut updates = Vec::new();
        if let Some(v) = plan.int {
            updates.push(INT.value_set(v));
        }
        if let Some(v) = plan.keyword.clone() {
            updates.push(KEYWORD.value_set(v));
        }
        if let Some(v) = plan.boolean {
            updates.push(BOOL.value_set(v));
        }
        if let Some(v) = plan.double {
            updates.push(DOUBLE.value_set(v));
        }
        if let Some(v) = plan.priority {
            updates.push(PRIORITY.value_set(v));
        }
        if !updates.is_empty() {
            ctx.upsert_search_attributes(updates);
        }
        if plan.wait {
            ctx.wait_condition(|s| s.finish).await?;
        }
        Ok("tagged".to_string())
    }

    #[signal]
    pub fn finish(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _: ()) {
        self.finish = true;
    }
}

/// A second workflow type, to filter on `WorkflowType`.
#[workflow]
#[derive(Default)]
pub struct OtherWorkflow;

#[workflow_methods]
impl OtherWorkflow {
    #[run]
    pub async fn run(_ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        Ok("other".to_string())
    }
}

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

// ---- 4. delayed start -----------------------------------------------------------------------

/// Returns the workflow time (ms since the epoch) of its first workflow task.
#[workflow]
#[derive(Default)]
pub struct DelayedWorkflow;

#[workflow_methods]
impl DelayedWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<u64> {
        Ok(ctx.workflow_time().map(epoch_ms).unwrap_or(0))
    }
}

// =============================================================================================
// Helpers
// =============================================================================================

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn update_id(id: &str) -> WorkflowExecuteUpdateOptions {
    WorkflowExecuteUpdateOptions::builder()
        .update_id(id.to_string())
        .build()
}

/// Event time in ms since the epoch.
fn event_ms(e: &HistoryEvent) -> i64 {
    let t = e.event_time.as_ref().expect("event has a time");
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

/// Workflow ids matching `query`, sorted (duplicates kept, so they show up as a failure).
async fn list_ids(client: &Client, query: &str) -> Result<Vec<String>, ClientError> {
    let mut stream = client.list_workflows(query, WorkflowListOptions::default());
    let mut ids = Vec::new();
    while let Some(item) = within(10, "list page", stream.next()).await {
        ids.push(item?.id().to_string());
    }
    ids.sort();
    Ok(ids)
}

/// Poll `query` until it returns exactly `expected` (visibility may lag a little behind).
async fn assert_list(client: &Client, query: &str, expected: &[&String]) {
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = list_ids(client, query)
            .await
            .unwrap_or_else(|e| panic!("list `{query}` failed: {e:?}"));
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            panic!("list `{query}`: expected {want:?}, got {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Poll until the count of `query` is `expected`.
async fn assert_count(client: &Client, query: &str, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = within(
            10,
            "count",
            client.count_workflows(query, WorkflowCountOptions::default()),
        )
        .await
        .unwrap_or_else(|e| panic!("count `{query}` failed: {e:?}"))
        .count();
        if got == expected {
            return;
        }
        if Instant::now() > deadline {
            panic!("count `{query}`: expected {expected}, got {got}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_invalid_argument<T: std::fmt::Debug>(res: Result<T, ClientError>, what: &str) {
    match res {
        Err(ClientError::Rpc(status)) => assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{what}: expected InvalidArgument, got {status:?}"
        ),
        other => panic!("{what}: expected an InvalidArgument error, got {other:?}"),
    }
}

// =============================================================================================
// 1. Updates
// =============================================================================================

/// Updates: results, idempotency by update id, validator rejection, handler failure, and what
/// history records about them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_results_dedup_rejection_and_history() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-update");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<LedgerWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("ledger");

    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(LedgerWorkflow::run, (), start_opts(&tq, &id))
            .await
            .expect("start workflow");

        // A plain update returns the handler's result.
        let first = within(
            15,
            "deposit dep-1",
            handle.execute_update(LedgerWorkflow::deposit, 10, update_id("dep-1")),
        )
        .await
        .expect("deposit should succeed");
        assert_eq!(first, 10);

        // Same update id again: the first outcome is returned, the handler does not run again.
        let again = within(
            15,
            "deposit dep-1 again",
            handle.execute_update(LedgerWorkflow::deposit, 10, update_id("dep-1")),
        )
        .await
        .expect("a repeated update id should return the recorded outcome");
        assert_eq!(
            again, 10,
            "a duplicate update id must not run the handler again"
        );
        // The outcome can also be fetched by update id alone.
        let by_handle = within(
            15,
            "update handle result",
            handle
                .get_update_handle(LedgerWorkflow::deposit, "dep-1")
                .get_result(Default::default()),
        )
        .await
        .expect("poll update dep-1");
        assert_eq!(by_handle, 10);
        let handled = handle
            .query(LedgerWorkflow::handled, (), WorkflowQueryOptions::default())
            .await
            .expect("query");
        assert_eq!(handled, 1, "the deposit handler ran exactly once");

        // A second, different update applies on top of the first.
        let second = within(
            15,
            "deposit dep-2",
            handle.execute_update(LedgerWorkflow::deposit, 5, update_id("dep-2")),
        )
        .await
        .expect("deposit should succeed");
        assert_eq!(second, 15);

        // Rejected by the validator: the client gets the validator's failure.
        let rejected = within(
            15,
            "rejected deposit",
            handle.execute_update(LedgerWorkflow::deposit, -5, update_id("dep-bad")),
        )
        .await;
        match rejected {
            Err(WorkflowUpdateError::Failed(failure)) => assert!(
                failure.message.contains("deposit must be positive, got -5"),
                "rejection should carry the validator's message, got {failure:?}"
            ),
            other => panic!("expected the update to be rejected, got {other:?}"),
        }

        // Accepted, but the handler fails: the client gets the handler's failure.
        let failed = within(
            15,
            "failing withdraw",
            handle.execute_update(LedgerWorkflow::withdraw, 1000, update_id("wd-1")),
        )
        .await;
        match failed {
            Err(WorkflowUpdateError::Failed(failure)) => assert!(
                failure
                    .message
                    .contains("insufficient funds: balance 15, requested 1000"),
                "failure should carry the handler's message, got {failure:?}"
            ),
            other => panic!("expected the withdraw update to fail, got {other:?}"),
        }
        let balance = handle
            .query(LedgerWorkflow::balance, (), WorkflowQueryOptions::default())
            .await
            .expect("query");
        assert_eq!(
            balance, 15,
            "neither the rejection nor the failure changed state"
        );

        let closing = within(
            15,
            "close",
            handle.execute_update(LedgerWorkflow::close, (), update_id("close-1")),
        )
        .await
        .expect("close should succeed");
        assert_eq!(closing, 15);
        let summary = within(15, "ledger result", handle.get_result(result_opts()))
            .await
            .expect("ledger completes after close");
        assert_eq!(
            summary,
            LedgerSummary {
                balance: 15,
                handled: 3
            }
        );

        // An update to a closed workflow is refused.
        let late = within(
            15,
            "update after close",
            handle.execute_update(LedgerWorkflow::deposit, 1, update_id("dep-late")),
        )
        .await;
        assert!(
            matches!(late, Err(WorkflowUpdateError::NotFound(_))),
            "an update to a completed workflow should be NotFound, got {late:?}"
        );

        // History: one Accepted + one Completed event per accepted update, none for the rejected
        // one, none for the duplicate.
        let events = history(&client, &id, None).await;
        let mut accepted: Vec<String> = Vec::new();
        let mut completed: Vec<(String, String)> = Vec::new();
        let mut accepted_event_ids: HashMap<String, i64> = HashMap::new();
        for e in &events {
            match e.attributes.as_ref() {
                Some(Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a)) => {
                    let uid = a
                        .accepted_request
                        .as_ref()
                        .and_then(|r| r.meta.as_ref())
                        .map(|m| m.update_id.clone())
                        .unwrap_or_default();
                    accepted_event_ids.insert(uid.clone(), e.event_id);
                    accepted.push(uid);
                }
                Some(Attributes::WorkflowExecutionUpdateCompletedEventAttributes(a)) => {
                    let uid = a
                        .meta
                        .as_ref()
                        .map(|m| m.update_id.clone())
                        .unwrap_or_default();
                    assert_eq!(
                        Some(&a.accepted_event_id),
                        accepted_event_ids.get(&uid),
                        "completed event of {uid} should point at its accepted event"
                    );
                    let outcome = match a.outcome.as_ref().and_then(|o| o.value.as_ref()) {
                        Some(outcome::Value::Success(p)) => format!(
                            "ok {}",
                            p.payloads
                                .first()
                                .map(|p| String::from_utf8_lossy(&p.data).to_string())
                                .unwrap_or_default()
                        ),
                        Some(outcome::Value::Failure(f)) => format!("failed {}", f.message),
                        None => "no outcome".to_string(),
                    };
                    completed.push((uid, outcome));
                }
                _ => {}
            }
        }
        assert_eq!(
            accepted,
            vec!["dep-1", "dep-2", "wd-1", "close-1"],
            "accepted updates in history; all events: {:?}",
            event_types(&events)
        );
        let completed_ids: Vec<&str> = completed.iter().map(|(u, _)| u.as_str()).collect();
        assert_eq!(completed_ids, vec!["dep-1", "dep-2", "wd-1", "close-1"]);
        assert_eq!(completed[0].1, "ok 10");
        assert_eq!(completed[1].1, "ok 15");
        assert!(
            completed[2]
                .1
                .starts_with("failed insufficient funds: balance 15, requested 1000"),
            "withdraw outcome: {}",
            completed[2].1
        );
        assert_eq!(completed[3].1, "ok 15");
        assert!(
            !event_types(&events).contains(&EventType::WorkflowExecutionUpdateRejected),
            "a rejected update leaves no trace in history"
        );
        assert_eq!(
            events.last().map(|e| e.event_type()),
            Some(EventType::WorkflowExecutionCompleted)
        );
    })
    .await;
}

/// An update sent while the workflow is waiting on a long activity is handled right away (the
/// activity is still running when the client gets the result).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_completes_while_activity_runs() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-busy");
    let flags = Arc::new(SlowFlags::default());
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<BusyWorkflow>()
            .unwrap()
            .register_activities(SlowActivities {
                flags: flags.clone(),
            })
            .build(),
    );
    let id = unique("busy");

    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(BusyWorkflow::run, 4000u64, start_opts(&tq, &id))
            .await
            .expect("start workflow");
        within(10, "activity start", async {
            while !flags.started.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;

        let sent = Instant::now();
        let count = within(
            10,
            "update during activity",
            handle.execute_update(
                BusyWorkflow::note,
                "hello".to_string(),
                WorkflowExecuteUpdateOptions::default(),
            ),
        )
        .await
        .expect("update during an activity should complete");
        let took = sent.elapsed();
        assert_eq!(count, 1);
        assert!(
            !flags.finished.load(Ordering::SeqCst),
            "the update should complete while the activity is still running (took {took:?})"
        );

        let notes = within(15, "busy result", handle.get_result(result_opts()))
            .await
            .expect("workflow completes");
        assert_eq!(
            notes,
            vec!["note: hello".to_string(), "slow step done".to_string()]
        );
        let types = event_types(&history(&client, &id, None).await);
        let accepted = types
            .iter()
            .position(|t| *t == EventType::WorkflowExecutionUpdateAccepted)
            .expect("history has UpdateAccepted");
        let completed = types
            .iter()
            .position(|t| *t == EventType::WorkflowExecutionUpdateCompleted)
            .expect("history has UpdateCompleted");
        let activity_done = types
            .iter()
            .position(|t| *t == EventType::ActivityTaskCompleted)
            .expect("history has ActivityTaskCompleted");
        assert!(
            accepted < completed && completed < activity_done,
            "update accepted and completed before the activity completed: {types:?}"
        );
    })
    .await;
}

/// Update-with-start: starts the workflow and runs the update in one call; with UseExisting it
/// updates the running workflow; with Fail it reports that the workflow is already running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_with_start() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-uws");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<LedgerWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("uws");
    let uws_opts = |policy| {
        WorkflowUpdateWithStartOptions::new(tq.clone(), id.clone(), policy)
            .execution_timeout(Duration::from_secs(60))
            .build()
    };

    with_worker(&mut worker, async {
        // Nothing running: the workflow is started and the update applied.
        let update = within(
            15,
            "update-with-start (new)",
            client.start_update_with_start_workflow(
                LedgerWorkflow::run,
                (),
                LedgerWorkflow::deposit,
                42,
                uws_opts(WorkflowIdConflictPolicy::Fail),
            ),
        )
        .await
        .expect("update-with-start should start the workflow");
        let run_id = update
            .workflow_run_id()
            .expect("update-with-start reports the run id")
            .to_string();
        let first = within(
            15,
            "first update result",
            update.get_result(Default::default()),
        )
        .await
        .expect("update result");
        assert_eq!(first, 42);
        let desc = describe(&client, &id, None).await;
        assert_eq!(desc.status(), WorkflowExecutionStatus::Running);
        assert_eq!(desc.run_id(), run_id);

        // Running, UseExisting: the update goes to the same run.
        let second = within(
            15,
            "update-with-start (existing)",
            client.execute_update_with_start_workflow(
                LedgerWorkflow::run,
                (),
                LedgerWorkflow::deposit,
                8,
                uws_opts(WorkflowIdConflictPolicy::UseExisting),
            ),
        )
        .await
        .expect("update-with-start on a running workflow with UseExisting");
        assert_eq!(second, 50);
        assert_eq!(describe(&client, &id, None).await.run_id(), run_id);

        // Running, Fail: the start part fails with AlreadyStarted; no update is applied.
        let conflict = within(
            15,
            "update-with-start (conflict)",
            client.execute_update_with_start_workflow(
                LedgerWorkflow::run,
                (),
                LedgerWorkflow::deposit,
                1000,
                uws_opts(WorkflowIdConflictPolicy::Fail),
            ),
        )
        .await;
        match conflict {
            Err(WorkflowUpdateWithStartError::Start(WorkflowStartError::AlreadyStarted {
                run_id: existing,
                ..
            })) => assert_eq!(existing.as_deref(), Some(run_id.as_str())),
            other => panic!("expected AlreadyStarted from update-with-start, got {other:?}"),
        }

        let handle = client.get_workflow_handle::<LedgerWorkflow>(id.clone());
        let closing = within(
            15,
            "close",
            handle.execute_update(
                LedgerWorkflow::close,
                (),
                WorkflowExecuteUpdateOptions::default(),
            ),
        )
        .await
        .expect("close");
        assert_eq!(closing, 50);
        let summary = within(15, "result", handle.get_result(result_opts()))
            .await
            .expect("workflow completes");
        assert_eq!(
            summary,
            LedgerSummary {
                balance: 50,
                handled: 2
            }
        );
        let types = event_types(&history(&client, &id, None).await);
        let accepted = types
            .iter()
            .filter(|t| **t == EventType::WorkflowExecutionUpdateAccepted)
            .count();
        assert_eq!(
            accepted, 3,
            "two deposits and the close were accepted: {types:?}"
        );
    })
    .await;
}

// =============================================================================================
// 2. Visibility
// =============================================================================================

/// Search attributes set at start and upserted by workflows, queried through list and count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visibility_list_and_count_with_search_attributes() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-vis");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<TaggedWorkflow>()
            .unwrap()
            .register_workflow::<OtherWorkflow>()
            .unwrap()
            .build(),
    );
    let p = unique("vis");
    let [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map(|s| format!("{p}-{s}"));

    with_worker(&mut worker, async {
        let start_tagged = |id: &String, attrs: Option<SearchAttributes>, plan: TagPlan| {
            let mut opts = start_opts(&tq, id);
            opts.search_attributes = attrs;
            client.start_workflow(TaggedWorkflow::run, plan, opts)
        };
        // a: completes; int 3, keyword pre-alpha, text, datetime 2024-01-01.
        let ha = start_tagged(
            &a,
            Some(SearchAttributes::new([
                INT.value_set(3),
                KEYWORD.value_set("pre-alpha".to_string()),
                TEXT.value_set("the quick brown fox".to_string()),
                DATETIME.value_set(Timestamp::new(1_704_067_200, 0)),
            ])),
            TagPlan::default(),
        )
        .await
        .expect("start a");
        // b: keeps running; int 7, keyword pre-beta.
        start_tagged(
            &b,
            Some(SearchAttributes::new([
                INT.value_set(7),
                KEYWORD.value_set("pre-beta".to_string()),
            ])),
            TagPlan {
                wait: true,
                ..Default::default()
            },
        )
        .await
        .expect("start b");
        // c: keeps running; starts with int 1 / pre-gamma, then upserts new values.
        start_tagged(
            &c,
            Some(SearchAttributes::new([
                INT.value_set(1),
                KEYWORD.value_set("pre-gamma".to_string()),
            ])),
            TagPlan {
                int: Some(10),
                keyword: Some("upserted-gamma".to_string()),
                boolean: Some(true),
                double: Some(2.5),
                wait: true,
                ..Default::default()
            },
        )
        .await
        .expect("start c");
        // d: another workflow type; completes.
        let mut d_opts = start_opts(&tq, &d);
        d_opts.search_attributes = Some(SearchAttributes::new([
            INT.value_set(9),
            KEYWORD.value_set("pre-delta".to_string()),
        ]));
        let hd = client
            .start_workflow(OtherWorkflow::run, (), d_opts)
            .await
            .expect("start d");
        // e: no search attributes; completes.
        let he = start_tagged(&e, None, TagPlan::default())
            .await
            .expect("start e");

        for (name, r) in [
            (
                "a",
                within(15, "a result", ha.get_result(result_opts())).await,
            ),
            (
                "e",
                within(15, "e result", he.get_result(result_opts())).await,
            ),
        ] {
            assert_eq!(
                r.unwrap_or_else(|e| panic!("{name} failed: {e:?}")),
                "tagged"
            );
        }
        within(15, "d result", hd.get_result(result_opts()))
            .await
            .expect("d completes");
        // Wait until c's upsert has been applied (describe reads the live execution).
        within(15, "c upsert", async {
            loop {
                let sa = describe(&client, &c, None).await.search_attributes();
                if sa.get(&INT) == Some(10) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;

        // describe shows start-time and upserted attributes, typed.
        let a_sa = describe(&client, &a, None).await.search_attributes();
        assert_eq!(a_sa.get(&INT), Some(3));
        assert_eq!(a_sa.get(&KEYWORD).as_deref(), Some("pre-alpha"));
        assert_eq!(a_sa.get(&TEXT).as_deref(), Some("the quick brown fox"));
        assert_eq!(
            a_sa.get(&DATETIME).map(|t| t.seconds()),
            Some(1_704_067_200)
        );
        let c_sa = describe(&client, &c, None).await.search_attributes();
        assert_eq!(c_sa.get(&INT), Some(10));
        assert_eq!(c_sa.get(&KEYWORD).as_deref(), Some("upserted-gamma"));
        assert_eq!(c_sa.get(&BOOL), Some(true));
        assert_eq!(c_sa.get(&DOUBLE), Some(2.5));
        assert!(
            describe(&client, &e, None)
                .await
                .search_attributes()
                .get(&INT)
                .is_none()
        );

        let tagged = "WorkflowType = 'TaggedWorkflow'";
        assert_list(&client, "", &[&a, &b, &c, &d, &e]).await;
        assert_list(
            &client,
            &format!("{tagged} AND CustomIntField > 5"),
            &[&b, &c],
        )
        .await;
        assert_list(&client, &format!("WorkflowId IN ('{a}', '{d}')"), &[&a, &d]).await;
        assert_list(&client, "ExecutionStatus = 'Running'", &[&b, &c]).await;
        assert_list(
            &client,
            &format!("ExecutionStatus = 'Completed' AND {tagged}"),
            &[&a, &e],
        )
        .await;
        assert_list(&client, "WorkflowType = 'OtherWorkflow'", &[&d]).await;
        assert_list(
            &client,
            "CustomKeywordField STARTS_WITH 'pre'",
            &[&a, &b, &d],
        )
        .await;
        assert_list(&client, "CustomKeywordField = 'pre-gamma'", &[]).await;
        assert_list(&client, "CustomKeywordField = 'upserted-gamma'", &[&c]).await;
        assert_list(
            &client,
            "CustomBoolField = true AND CustomDoubleField > 2.0",
            &[&c],
        )
        .await;
        assert_list(
            &client,
            "CustomDatetimeField > '2023-06-01T00:00:00Z'",
            &[&a],
        )
        .await;
        assert_list(
            &client,
            &format!("(CustomIntField >= 3 AND CustomIntField <= 9) OR WorkflowId = '{e}'"),
            &[&a, &b, &d, &e],
        )
        .await;

        // A listed execution carries its current search attributes and status.
        let listed = {
            let mut stream = client.list_workflows(
                format!("WorkflowId = '{c}'"),
                WorkflowListOptions::default(),
            );
            let mut items = Vec::new();
            while let Some(item) = stream.next().await {
                items.push(item.expect("list item"));
            }
            items
        };
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].workflow_type(), "TaggedWorkflow");
        assert_eq!(listed[0].status(), WorkflowExecutionStatus::Running);
        assert_eq!(listed[0].search_attributes().get(&INT), Some(10));

        // The list limit caps the number of results.
        let limited: Vec<_> = client
            .list_workflows("", WorkflowListOptions::builder().limit(2).build())
            .collect()
            .await;
        assert_eq!(limited.len(), 2, "limit 2: {limited:?}");

        // Counts.
        assert_count(&client, "", 5).await;
        assert_count(&client, tagged, 4).await;
        assert_count(&client, "CustomIntField > 5", 3).await;
        let grouped = within(
            10,
            "grouped count",
            client.count_workflows("GROUP BY ExecutionStatus", WorkflowCountOptions::default()),
        )
        .await
        .expect("count with GROUP BY ExecutionStatus");
        assert_eq!(grouped.count(), 5);
        let groups: BTreeMap<String, usize> = grouped
            .groups()
            .iter()
            .map(|g| (g.get::<String>(0).unwrap_or_default(), g.count()))
            .collect();
        assert_eq!(
            groups,
            BTreeMap::from([("Completed".to_string(), 3), ("Running".to_string(), 2)])
        );

        // Invalid queries are InvalidArgument errors.
        assert_invalid_argument(
            list_ids(&client, "NoSuchAttribute = 'x'").await,
            "list with an unknown attribute",
        );
        assert_invalid_argument(
            client
                .count_workflows("NoSuchAttribute = 'x'", WorkflowCountOptions::default())
                .await,
            "count with an unknown attribute",
        );
        assert_invalid_argument(
            list_ids(&client, "WorkflowId = ").await,
            "list with a syntax error",
        );
    })
    .await;
}

/// A new search attribute registered through the operator service can be set at start,
/// upserted, seen in describe() and queried; before registration it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_search_attribute_through_operator_service() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-sa-reg");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<TaggedWorkflow>()
            .unwrap()
            .build(),
    );
    let mut op = client.clone();

    with_worker(&mut worker, async {
        let listed = OperatorService::list_search_attributes(
            &mut op,
            Request::new(ListSearchAttributesRequest {
                namespace: NAMESPACE.to_string(),
            }),
        )
        .await
        .expect("list search attributes")
        .into_inner();
        for (name, ty) in [
            ("CustomKeywordField", IndexedValueType::Keyword),
            ("CustomIntField", IndexedValueType::Int),
            ("CustomTextField", IndexedValueType::Text),
            ("CustomDoubleField", IndexedValueType::Double),
            ("CustomBoolField", IndexedValueType::Bool),
            ("CustomDatetimeField", IndexedValueType::Datetime),
        ] {
            assert_eq!(
                listed.custom_attributes.get(name).copied(),
                Some(ty as i32),
                "pre-registered {name}: {:?}",
                listed.custom_attributes
            );
        }
        assert!(!listed.custom_attributes.contains_key(REGION.name()));

        // Not registered yet: starting with it is refused.
        let mut opts = start_opts(&tq, &unique("too-early"));
        opts.search_attributes = Some(SearchAttributes::new([
            REGION.value_set("eu-west".to_string())
        ]));
        let early = client
            .start_workflow(TaggedWorkflow::run, TagPlan::default(), opts)
            .await;
        match early {
            Err(WorkflowStartError::Rpc(status)) => {
                assert_eq!(status.code(), Code::InvalidArgument, "{status:?}")
            }
            Err(other) => {
                panic!("expected InvalidArgument for an unregistered attribute, got {other:?}")
            }
            Ok(h) => panic!(
                "start with an unregistered attribute should fail, but started run {:?}",
                h.run_id()
            ),
        }

        OperatorService::add_search_attributes(
            &mut op,
            Request::new(AddSearchAttributesRequest {
                search_attributes: HashMap::from([
                    (REGION.name().to_string(), IndexedValueType::Keyword as i32),
                    (PRIORITY.name().to_string(), IndexedValueType::Int as i32),
                ]),
                namespace: NAMESPACE.to_string(),
            }),
        )
        .await
        .expect("add search attributes");
        let listed = OperatorService::list_search_attributes(
            &mut op,
            Request::new(ListSearchAttributesRequest {
                namespace: NAMESPACE.to_string(),
            }),
        )
        .await
        .expect("list search attributes")
        .into_inner();
        assert_eq!(
            listed.custom_attributes.get(REGION.name()).copied(),
            Some(IndexedValueType::Keyword as i32)
        );
        assert_eq!(
            listed.custom_attributes.get(PRIORITY.name()).copied(),
            Some(IndexedValueType::Int as i32)
        );

        let id = unique("regional");
        let mut opts = start_opts(&tq, &id);
        opts.search_attributes = Some(SearchAttributes::new([
            REGION.value_set("eu-west".to_string())
        ]));
        let handle = client
            .start_workflow(
                TaggedWorkflow::run,
                TagPlan {
                    priority: Some(4),
                    ..Default::default()
                },
                opts,
            )
            .await
            .expect("start with the newly registered attribute");
        within(15, "result", handle.get_result(result_opts()))
            .await
            .expect("workflow upserting the new attribute completes");
        let sa = describe(&client, &id, None).await.search_attributes();
        assert_eq!(sa.get(&REGION).as_deref(), Some("eu-west"));
        assert_eq!(sa.get(&PRIORITY), Some(4));
        assert_list(
            &client,
            "DurinTestRegion = 'eu-west' AND DurinTestPriority > 3",
            &[&id],
        )
        .await;
        assert_list(&client, "DurinTestPriority > 4", &[]).await;
    })
    .await;
}

// =============================================================================================
// 3. Timeouts and retries
// =============================================================================================

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

// =============================================================================================
// 4. Delayed start
// =============================================================================================

/// A workflow started with a start delay has no workflow task until the delay has passed; then
/// it runs and completes. (The Rust client's `WorkflowStartOptions` has no start delay, so the
/// start request is sent through the raw workflow service.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_delay_postpones_first_workflow_task() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-delay");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<DelayedWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("delayed");
    let delay = Duration::from_secs(2);

    with_worker(&mut worker, async {
        let mut raw = client.clone();
        let sent = Instant::now();
        let started = WorkflowService::start_workflow_execution(
            &mut raw,
            Request::new(StartWorkflowExecutionRequest {
                namespace: NAMESPACE.to_string(),
                workflow_id: id.clone(),
                workflow_type: Some(WorkflowType {
                    name: "DelayedWorkflow".to_string(),
                }),
                task_queue: Some(TaskQueue {
                    name: tq.clone(),
                    ..Default::default()
                }),
                identity: "durin-sdk-test".to_string(),
                request_id: unique("req"),
                workflow_start_delay: Some(delay.try_into().expect("duration")),
                ..Default::default()
            }),
        )
        .await
        .expect("start with a start delay")
        .into_inner();
        assert!(!started.run_id.is_empty());

        // During the delay: running, execution time = start time + delay, history is just the
        // started event (no workflow task scheduled yet).
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let desc = describe(&client, &id, None).await;
        assert_eq!(desc.status(), WorkflowExecutionStatus::Running);
        let start = desc.start_time().expect("start time");
        let exec = desc.execution_time().expect("execution time");
        let offset = exec.duration_since(start).unwrap_or_default();
        assert!(
            offset >= Duration::from_millis(1990) && offset <= Duration::from_millis(2010),
            "execution time should be start time + 2 s, is start + {offset:?}"
        );
        let events = history(&client, &id, None).await;
        if sent.elapsed() < delay {
            assert_eq!(
                event_types(&events),
                vec![EventType::WorkflowExecutionStarted],
                "no workflow task before the start delay has passed"
            );
        }
        match events[0].attributes.as_ref() {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => assert_eq!(
                a.first_workflow_task_backoff
                    .as_ref()
                    .map(|d| (d.seconds, d.nanos)),
                Some((2, 0))
            ),
            other => panic!("first event should be WorkflowExecutionStarted, got {other:?}"),
        }

        let handle = client.get_workflow_handle::<DelayedWorkflow>(id.clone());
        let first_task_ms = within(15, "delayed result", handle.get_result(result_opts()))
            .await
            .expect("delayed workflow completes");
        assert!(
            sent.elapsed() >= delay,
            "completed before its start delay passed"
        );
        let start_ms = epoch_ms(start);
        assert!(
            first_task_ms >= start_ms + 2000 && first_task_ms < start_ms + 5000,
            "first workflow task ran {} ms after the start; expected at least 2000",
            first_task_ms as i64 - start_ms as i64
        );
        let desc = describe(&client, &id, None).await;
        assert_eq!(desc.status(), WorkflowExecutionStatus::Completed);
    })
    .await;
}
