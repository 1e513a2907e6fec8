//! Workflow updates: results, validators, idempotency by update id, handler failures and what
//! history records about them; an update handled while the workflow waits on an activity; and
//! update-with-start.

use crate::common;
use crate::helpers::*;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use serde::{Deserialize, Serialize};
use temporalio_client::{
    WorkflowExecuteUpdateOptions, WorkflowExecutionStatus, WorkflowIdConflictPolicy,
    WorkflowQueryOptions, WorkflowUpdateWithStartOptions,
    errors::{WorkflowStartError, WorkflowUpdateError, WorkflowUpdateWithStartError},
};
use temporalio_common::protos::temporal::api::{
    enums::v1::EventType, history::v1::history_event::Attributes, update::v1::outcome,
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, SyncWorkflowContext, WorkerOptions, WorkflowContext, WorkflowContextView,
    WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

fn update_id(id: &str) -> WorkflowExecuteUpdateOptions {
    WorkflowExecuteUpdateOptions::builder()
        .update_id(id.to_string())
        .build()
}

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

// ---- update-with-start (LedgerWorkflow, above) ----------------------------------------------

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
