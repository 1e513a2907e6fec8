//! Standalone activities: activities a client starts, watches and manages on its own
//! (StartActivityExecution and its siblings), with no workflow around them.
//!
//! A standalone activity execution is kept as a [`Run`] with no history and no workflow task:
//! its mutable state carries a [`StandaloneActivity`] and its one activity in
//! `activities[STANDALONE_SCHEDULED_ID]`. So the activity machinery of `activity.rs` —
//! dispatch, heartbeats, retries, the four timeouts, completion by token or by id, pause and
//! reset — serves it unchanged, and it is stored, sharded, archived, retained and deleted as
//! runs are. What differs is where it ends: [`Core::activity_closed`] closes the execution
//! with the activity's outcome instead of telling a workflow.
//!
//! Activity ids have a key space of their own (an activity and a workflow may share an id):
//! the run's key holds [`storage_id`] of the activity id, which no workflow id can be — the
//! RPC checks refuse a workflow id in that space (`crate::rpc::check_route_key`).
//!
//! - `start.rs`: StartActivityExecution, with the id reuse and conflict policies;
//! - `info.rs`: what Describe, Poll and List report of an execution;
//! - `api.rs`: the other operations (describe and poll long polls, cancel, terminate, delete).

pub(crate) mod api;
pub mod info;
pub(crate) mod start;

use temporalio_protos::temporal::api::activity::v1::{
    ActivityExecutionOutcome, activity_execution_outcome,
};
use temporalio_protos::temporal::api::enums::v1::{RetryState, WorkflowExecutionStatus};
use temporalio_protos::temporal::api::failure::v1::{
    CanceledFailureInfo, Failure, TerminatedFailureInfo, failure,
};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;

use super::state::{ActivityInfo, STANDALONE_SCHEDULED_ID};
use super::{ChangeKind, Core, Error, Result, Run, RunKey};
use crate::engine::clock::ts_from_millis;

/// Marks a run key's id as an activity id. A NUL byte never starts a workflow id a client
/// can use (they are refused), so the two key spaces cannot meet.
const KEY_PREFIX: &str = "\0activity:";

/// The id a standalone activity's runs are keyed and sharded by.
pub fn storage_id(activity_id: &str) -> String {
    format!("{KEY_PREFIX}{activity_id}")
}

/// Whether a workflow id lies in a standalone execution's key space (activities and Nexus
/// operations both start with a NUL byte) and must be refused as one.
pub fn is_reserved(workflow_id: &str) -> bool {
    workflow_id.starts_with('\0')
}

impl Core {
    /// The run of a standalone activity: the given run, or the activity id's latest run.
    /// An archived run is brought back into memory.
    pub(crate) fn resolve_activity_execution(
        &mut self,
        namespace: &str,
        activity_id: &str,
        run_id: &str,
    ) -> Result<RunKey> {
        check_ids(activity_id, run_id)?;
        let found = self.resolve_run(namespace, &storage_id(activity_id), run_id);
        self.standalone_key(found, activity_id)
    }

    /// As [`Self::resolve_activity_execution`], among the runs in memory only (enough for
    /// what acts on a running activity).
    pub(crate) fn resolve_resident_activity_execution(
        &self,
        namespace: &str,
        activity_id: &str,
        run_id: &str,
    ) -> Result<RunKey> {
        check_ids(activity_id, run_id)?;
        let found = self.resolve_resident(namespace, &storage_id(activity_id), run_id);
        self.standalone_key(found, activity_id)
    }

    /// A resolved key, if it is a standalone activity's, with the activity's not-found error.
    fn standalone_key(&self, found: Result<RunKey>, activity_id: &str) -> Result<RunKey> {
        let not_found = || {
            Error::NotFound(format!(
                "activity execution not found for ID: {activity_id}"
            ))
        };
        let key = match found {
            Err(Error::NotFound(_)) => return Err(not_found()),
            other => other?,
        };
        if !self.run(&key)?.is_standalone_activity() {
            return Err(not_found());
        }
        Ok(key)
    }

    /// The activity has ended for good (`events` are what a workflow's history would get):
    /// it leaves the run's pending activities; a workflow hears of it, a standalone activity
    /// execution closes with its outcome.
    pub(crate) fn activity_closed(&mut self, key: &RunKey, sched: i64, events: Vec<Attributes>) {
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        let info = run.ms.activities.remove(&sched);
        if !run.is_standalone_activity() {
            self.add_events(key, events);
            return;
        }
        let Some((outcome, status)) = events.last().and_then(outcome_of) else {
            return;
        };
        let mut info = info.unwrap_or_default();
        if let Some(activity_execution_outcome::Value::Failure(f)) = &outcome.value {
            info.last_failure = Some(f.clone());
        }
        self.close_activity_execution(key, info, outcome, status);
    }

    /// Closes a standalone activity execution with its outcome.
    pub(crate) fn close_activity_execution(
        &mut self,
        key: &RunKey,
        mut info: ActivityInfo,
        outcome: ActivityExecutionOutcome,
        status: WorkflowExecutionStatus,
    ) {
        let now = self.now();
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        let Some(standalone) = run.ms.standalone_activity.as_mut() else {
            return;
        };
        if info.started_time.is_some() {
            // The attempt that was running when it closed ended with it.
            info.last_attempt_complete_time = Some(ts_from_millis(now));
        }
        standalone.outcome = Some(outcome);
        standalone.closed = Some(info);
        run.ms.activities.clear();
        run.ms.status = status as i32;
        run.ms.close_time = Some(ts_from_millis(now));
        run.changes.push(ChangeKind::Closed {
            status: status as i32,
        });
        self.changed(key);
        self.arm_retention(key);
        // A Nexus operation the activity backs hears of its end.
        self.deliver_completion_callbacks(key);
    }

    /// Terminates a running standalone activity execution.
    pub(crate) fn terminate_activity_execution_now(
        &mut self,
        key: &RunKey,
        reason: &str,
        identity: &str,
    ) -> Result<()> {
        let failure = terminated_failure(reason, identity);
        self.end_activity_execution(key, failure, WorkflowExecutionStatus::Terminated)
    }

    /// Ends a running standalone activity execution now, as `failure` says (termination, or
    /// cancellation of an activity no worker holds).
    fn end_activity_execution(
        &mut self,
        key: &RunKey,
        failure: Failure,
        status: WorkflowExecutionStatus,
    ) -> Result<()> {
        let run = self.run_mut(key)?;
        let info = run
            .ms
            .activities
            .get(&STANDALONE_SCHEDULED_ID)
            .cloned()
            .unwrap_or_default();
        let outcome = ActivityExecutionOutcome {
            value: Some(activity_execution_outcome::Value::Failure(failure)),
            retry_state: RetryState::NonRetryableFailure as i32,
        };
        self.close_activity_execution(key, info, outcome, status);
        Ok(())
    }
}

/// The outcome and status an activity's closing event stands for.
fn outcome_of(event: &Attributes) -> Option<(ActivityExecutionOutcome, WorkflowExecutionStatus)> {
    use activity_execution_outcome::Value;
    let failed = |failure: &Option<Failure>, retry_state: i32| ActivityExecutionOutcome {
        value: Some(Value::Failure(failure.clone().unwrap_or_default())),
        retry_state,
    };
    Some(match event {
        Attributes::ActivityTaskCompletedEventAttributes(a) => (
            ActivityExecutionOutcome {
                value: Some(Value::Result(a.result.clone().unwrap_or_default())),
                retry_state: 0,
            },
            WorkflowExecutionStatus::Completed,
        ),
        Attributes::ActivityTaskFailedEventAttributes(a) => (
            failed(&a.failure, a.retry_state),
            WorkflowExecutionStatus::Failed,
        ),
        Attributes::ActivityTaskTimedOutEventAttributes(a) => (
            failed(&a.failure, a.retry_state),
            WorkflowExecutionStatus::TimedOut,
        ),
        Attributes::ActivityTaskCanceledEventAttributes(a) => (
            failed(
                &Some(canceled_failure(a.details.clone())),
                RetryState::CancelRequested as i32,
            ),
            WorkflowExecutionStatus::Canceled,
        ),
        _ => return None,
    })
}

/// An activity id is required; a run id, if given, must be a UUID.
fn check_ids(activity_id: &str, run_id: &str) -> Result<()> {
    if activity_id.is_empty() {
        return Err(Error::InvalidArgument(
            "ActivityId is not set on request.".into(),
        ));
    }
    if !run_id.is_empty() && uuid::Uuid::parse_str(run_id).is_err() {
        return Err(Error::InvalidArgument(
            "invalid run id: must be a valid UUID".into(),
        ));
    }
    Ok(())
}

/// The failure a canceled activity execution reports.
fn canceled_failure(
    details: Option<temporalio_protos::temporal::api::common::v1::Payloads>,
) -> Failure {
    Failure {
        message: "Activity canceled".into(),
        failure_info: Some(failure::FailureInfo::CanceledFailureInfo(
            CanceledFailureInfo {
                details,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// The failure a terminated activity execution reports.
fn terminated_failure(reason: &str, identity: &str) -> Failure {
    Failure {
        message: reason.to_string(),
        failure_info: Some(failure::FailureInfo::TerminatedFailureInfo(
            TerminatedFailureInfo {
                identity: identity.to_string(),
            },
        )),
        ..Default::default()
    }
}

impl Core {
    /// Keeps a new standalone execution's run as its id's current run.
    pub(crate) fn insert_standalone_run(
        &mut self,
        key: &RunKey,
        ms: crate::engine::state::MutableState,
    ) {
        let mut run = Run::new(ms);
        run.changes.push(ChangeKind::Started);
        self.runs.insert(key.clone(), Box::new(run));
        self.current.insert(
            (key.namespace.clone(), key.workflow_id.clone()),
            key.run_id.clone(),
        );
    }
}

/// Whether a cancellation request needs doing, under the rules both kinds of standalone
/// execution share: Ok(false) for a retry of the request already taken (even after the
/// execution closed), `closed` for a closed execution, FAILED_PRECONDITION when another
/// request came first; Ok(true) to go on.
pub(crate) fn cancel_needed(
    run: &Run,
    request_id: &str,
    closed: impl FnOnce() -> Error,
) -> Result<bool> {
    if !request_id.is_empty() && run.ms.cancel_request_id == request_id {
        return Ok(false);
    }
    if !run.is_open() {
        return Err(closed());
    }
    if run.ms.cancel_requested {
        return Err(Error::FailedPrecondition(format!(
            "cancellation already requested with request ID {}",
            run.ms.cancel_request_id
        )));
    }
    Ok(true)
}

/// Whether a termination needs doing: Ok(true) while the execution runs; for a closed one,
/// Ok(false) if the termination `recorded` that closed it is this request's retry, else an
/// error (`closed` unless it was terminated).
pub(crate) fn termination_needed(
    open: bool,
    terminated: bool,
    recorded: &str,
    request_id: &str,
    closed: impl FnOnce() -> Error,
) -> Result<bool> {
    if open {
        return Ok(true);
    }
    if !terminated {
        return Err(closed());
    }
    if recorded == request_id {
        return Ok(false);
    }
    Err(Error::FailedPrecondition(format!(
        "already terminated with request ID {recorded}"
    )))
}

/// A standalone activity run's record (None for a workflow run).
pub(crate) fn standalone(run: &Run) -> Option<&super::state::StandaloneActivity> {
    run.ms.standalone_activity.as_deref()
}
