//! Standalone Nexus operations: operations a client starts on an endpoint, watches and
//! manages on its own (StartNexusOperationExecution and its siblings), with no workflow
//! around them.
//!
//! As a standalone activity is, a standalone operation is kept as a [`Run`] with no history
//! and no workflow task: its mutable state carries a [`StandaloneNexusOperation`] and its one
//! operation in `nexus_operations[STANDALONE_SCHEDULED_ID]`. So the caller's machinery of
//! `engine/nexus/` — attempts on the handler's queue, retries, the three timeouts, the
//! handler's asynchronous completion through a callback, cancellation — serves it unchanged,
//! and it is stored, sharded, archived, retained and deleted as runs are. What differs is
//! where it ends: where a workflow's history would get the operation's events, the
//! execution records what they say ([`Core::nexus_execution_ended`]).
//!
//! Operation ids have a key space of their own: the run's key holds [`storage_id`] of the
//! operation id, which no workflow id can be (ids starting with NUL are refused).
//!
//! - `start.rs`: StartNexusOperationExecution, with the id reuse and conflict policies;
//! - `info.rs`: what Describe, Poll and List report of an execution;
//! - `api.rs`: the other operations (describe and poll long polls, cancel, terminate, delete).

mod api;
pub mod info;
mod start;

use temporalio_protos::temporal::api::common::v1::Link;
use temporalio_protos::temporal::api::enums::v1::{
    PendingNexusOperationState, WorkflowExecutionStatus,
};
use temporalio_protos::temporal::api::failure::v1::{
    ApplicationFailureInfo, CanceledFailureInfo, Failure, TerminatedFailureInfo, failure,
};
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;

use crate::engine::clock::ts_from_millis;
use crate::engine::state::{NexusOperationInfo, STANDALONE_SCHEDULED_ID};
use crate::engine::{ChangeKind, Core, Error, Result, Run, RunKey};

/// Marks a run key's id as a Nexus operation id (see `standalone::is_reserved`).
const KEY_PREFIX: &str = "\0nexus:";

/// The id a standalone Nexus operation's runs are keyed and sharded by.
pub fn storage_id(operation_id: &str) -> String {
    format!("{KEY_PREFIX}{operation_id}")
}

/// How a standalone operation ended: its result or failure, and the status that says so.
pub(crate) struct Outcome {
    pub result: Option<temporalio_protos::temporal::api::common::v1::Payload>,
    pub failure: Option<Failure>,
    pub status: WorkflowExecutionStatus,
}

impl Core {
    /// The run of a standalone operation: the given run, or the operation id's latest run.
    /// An archived run is brought back into memory.
    pub(crate) fn resolve_nexus_execution(
        &mut self,
        namespace: &str,
        operation_id: &str,
        run_id: &str,
    ) -> Result<RunKey> {
        check_ids(operation_id, run_id)?;
        let found = self.resolve_run(namespace, &storage_id(operation_id), run_id);
        let not_found = || Error::NotFound(format!("operation not found for ID: {operation_id}"));
        let key = match found {
            Err(Error::NotFound(_)) => return Err(not_found()),
            other => other?,
        };
        if !self.run(&key)?.is_standalone_nexus() {
            return Err(not_found());
        }
        Ok(key)
    }

    /// The operation of the standalone execution `key` ended with `recorded` (the events a
    /// caller's history would get: perhaps its start, then its end): the execution closes
    /// with what they say.
    pub(crate) fn nexus_execution_ended(
        &mut self,
        key: &RunKey,
        mut info: NexusOperationInfo,
        recorded: Vec<HistoryEvent>,
    ) {
        let mut outcome = None;
        let mut links = Vec::new();
        for event in recorded {
            links.extend(event.links);
            match event.attributes {
                Some(Attributes::NexusOperationStartedEventAttributes(s)) => {
                    info.operation_token = s.operation_token;
                    info.state = PendingNexusOperationState::Started as i32;
                }
                Some(close) => outcome = outcome_of(close).or(outcome),
                None => {}
            }
        }
        let Some(outcome) = outcome else {
            return;
        };
        self.note_nexus_links(key, links);
        self.close_nexus_execution(key, info, outcome);
    }

    /// Keeps the handler's links to what it started (Describe shows them).
    pub(crate) fn note_nexus_links(&mut self, key: &RunKey, links: Vec<Link>) {
        if let Some(record) = self
            .runs
            .get_mut(key)
            .and_then(|r| r.ms.standalone_nexus.as_mut())
        {
            record.links.extend(links);
        }
    }

    /// Closes a standalone operation with its outcome.
    pub(crate) fn close_nexus_execution(
        &mut self,
        key: &RunKey,
        mut info: NexusOperationInfo,
        outcome: Outcome,
    ) {
        let now = self.now();
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        let Some(record) = run.ms.standalone_nexus.as_mut() else {
            return;
        };
        if info.state == PendingNexusOperationState::Scheduled as i32 {
            // The attempt in flight ended it.
            info.attempt += 1;
            info.last_attempt_complete_time = Some(ts_from_millis(now));
        }
        info.attempt_deadline = None;
        info.next_attempt_schedule_time = None;
        record.result = outcome.result;
        record.failure = outcome.failure;
        record.closed = Some(info);
        run.ms.nexus_operations.clear();
        run.ms.status = outcome.status as i32;
        run.ms.close_time = Some(ts_from_millis(now));
        run.changes.push(ChangeKind::Closed {
            status: outcome.status as i32,
        });
        self.changed(key);
        self.arm_retention(key);
    }

    /// Terminates a running standalone operation (the handler is not told, as in Temporal).
    pub(crate) fn terminate_nexus_execution_now(
        &mut self,
        key: &RunKey,
        reason: &str,
        identity: &str,
    ) -> Result<()> {
        let run = self.run_mut(key)?;
        let info = run
            .ms
            .nexus_operations
            .get(&STANDALONE_SCHEDULED_ID)
            .cloned()
            .unwrap_or_default();
        let failure = Failure {
            message: reason.to_string(),
            failure_info: Some(failure::FailureInfo::TerminatedFailureInfo(
                TerminatedFailureInfo {
                    identity: identity.to_string(),
                },
            )),
            ..Default::default()
        };
        let outcome = Outcome {
            result: None,
            failure: Some(failure),
            status: WorkflowExecutionStatus::Terminated,
        };
        // Termination is not an attempt's end.
        let mut info = info;
        if info.state == PendingNexusOperationState::Scheduled as i32 {
            info.state = PendingNexusOperationState::Unspecified as i32;
        }
        self.close_nexus_execution(key, info, outcome);
        Ok(())
    }
}

/// What an operation's closing event says, as a standalone execution's outcome: the failure
/// without the wrapper a workflow caller gets (Temporal reports the handler's failure, or
/// the timeout, itself).
fn outcome_of(close: Attributes) -> Option<Outcome> {
    let unwrapped = |f: Option<Failure>| {
        let f = f.unwrap_or_default();
        match f.failure_info {
            Some(failure::FailureInfo::NexusOperationExecutionFailureInfo(_)) => {
                f.cause.map(|c| *c)
            }
            _ => Some(f),
        }
    };
    let failed = |failure, status| Outcome {
        result: None,
        failure: unwrapped(failure),
        status,
    };
    use WorkflowExecutionStatus as S;
    Some(match close {
        Attributes::NexusOperationCompletedEventAttributes(c) => Outcome {
            result: Some(c.result.unwrap_or_default()),
            failure: None,
            status: S::Completed,
        },
        Attributes::NexusOperationFailedEventAttributes(f) => failed(f.failure, S::Failed),
        Attributes::NexusOperationCanceledEventAttributes(c) => failed(c.failure, S::Canceled),
        Attributes::NexusOperationTimedOutEventAttributes(t) => failed(t.failure, S::TimedOut),
        _ => return None,
    })
}

/// A handler's asynchronous completion as a standalone operation reports it: an unsuccessful
/// one under the `OperationError` wrapper Temporal's completion endpoint puts around what the
/// handler sent (canceled, or a non-retryable application failure).
pub(crate) fn as_completion(close: Attributes) -> Attributes {
    let wrap = |f: &mut Option<Failure>, canceled: bool| {
        let Some(outer) = f.as_mut() else {
            return;
        };
        let Some(cause) = outer.cause.take() else {
            return;
        };
        let info = if canceled {
            failure::FailureInfo::CanceledFailureInfo(CanceledFailureInfo::default())
        } else {
            failure::FailureInfo::ApplicationFailureInfo(ApplicationFailureInfo {
                r#type: "OperationError".into(),
                non_retryable: true,
                ..Default::default()
            })
        };
        outer.cause = Some(Box::new(Failure {
            message: "nexus operation completed unsuccessfully".into(),
            failure_info: Some(info),
            cause: Some(cause),
            ..Default::default()
        }));
    };
    let mut close = close;
    match &mut close {
        Attributes::NexusOperationFailedEventAttributes(a) => wrap(&mut a.failure, false),
        Attributes::NexusOperationCanceledEventAttributes(a) => wrap(&mut a.failure, true),
        _ => {}
    }
    close
}

/// An operation id is required; a run id, if given, must be a UUID.
fn check_ids(operation_id: &str, run_id: &str) -> Result<()> {
    if operation_id.is_empty() {
        return Err(Error::InvalidArgument("operation_id is required".into()));
    }
    if !run_id.is_empty() && uuid::Uuid::parse_str(run_id).is_err() {
        return Err(Error::InvalidArgument("run_id is not a valid UUID".into()));
    }
    Ok(())
}

/// A standalone operation run's record (None for a workflow run).
pub(crate) fn standalone(run: &Run) -> Option<&crate::engine::state::StandaloneNexusOperation> {
    run.ms.standalone_nexus.as_deref()
}
