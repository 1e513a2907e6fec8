//! An asynchronous operation's completion, the caller's side: the handler's workflow closed
//! and its callback arrived (see `callbacks.rs`). The operation ends as Temporal ends it: a
//! completed workflow's first result payload completes it; a failed one fails it with the
//! workflow's failure; a canceled, terminated or timed-out one ends it with Temporal's cause.
//! If the completion beats the handler's answer to the start, the start is recorded first
//! (with the token and the link to the handler's workflow), and the late answer is refused.

use temporalio_protos::temporal::api::enums::v1::PendingNexusOperationState;
use temporalio_protos::temporal::api::failure::v1::{
    CanceledFailureInfo, Failure, TerminatedFailureInfo, TimeoutFailureInfo, failure,
};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::history::v1::{
    NexusOperationCanceledEventAttributes, NexusOperationCompletedEventAttributes,
    NexusOperationFailedEventAttributes, NexusOperationStartedEventAttributes,
};

use super::operation_failure;
use crate::engine::state::{NexusCompletionTransfer, NexusOperationInfo};
use crate::engine::{Core, RunKey, events};

impl Core {
    /// Ends the caller's operation `t` names with the handler workflow's outcome; Err when
    /// the operation is not pending any more (it ended, or its run closed).
    pub(crate) fn complete_nexus_operation(
        &mut self,
        t: &NexusCompletionTransfer,
    ) -> std::result::Result<(), String> {
        let key = RunKey {
            namespace: t.caller_namespace.clone(),
            workflow_id: t.caller_workflow_id.clone(),
            run_id: t.caller_run_id.clone(),
        };
        let sched = t.scheduled_event_id;
        let not_found = || "operation not found".to_string();
        let mut info = self
            .pending_nexus_operation(&key, sched)
            .ok_or_else(not_found)?;
        let close = t
            .close
            .as_ref()
            .and_then(|e| e.attributes.clone())
            .ok_or_else(|| "the completion has no outcome".to_string())?;
        let now = self.now();
        let mut recorded = Vec::new();
        if info.state != PendingNexusOperationState::Started as i32 {
            info.operation_token = t.operation_token.clone();
            #[allow(deprecated)]
            let mut started = events::new_event(
                Attributes::NexusOperationStartedEventAttributes(
                    NexusOperationStartedEventAttributes {
                        scheduled_event_id: sched,
                        operation_id: t.operation_token.clone(),
                        request_id: info.request_id.clone(),
                        operation_token: t.operation_token.clone(),
                    },
                ),
                now,
            );
            started.links = t.start_link.clone().into_iter().collect();
            recorded.push(started);
        }
        let canceled_failure = t.canceled_failure.as_deref().cloned();
        let mut outcome = outcome_of(&info, close, canceled_failure)
            .ok_or_else(|| "the handler workflow's last event is not a close".to_string())?;
        if self.runs.get(&key).is_some_and(|r| r.is_standalone_nexus()) {
            outcome = super::standalone::as_completion(outcome);
        }
        recorded.push(events::new_event(outcome, now));
        self.end_nexus_operation(&key, sched, recorded);
        Ok(())
    }
}

/// The caller's event for a handler workflow that closed with `close`.
fn outcome_of(
    info: &NexusOperationInfo,
    close: Attributes,
    canceled_failure: Option<Failure>,
) -> Option<Attributes> {
    let sched = info.scheduled_event_id;
    let request_id = info.request_id.clone();
    let failed = |cause: Failure| {
        Attributes::NexusOperationFailedEventAttributes(NexusOperationFailedEventAttributes {
            scheduled_event_id: sched,
            failure: Some(operation_failure(info, cause)),
            request_id: request_id.clone(),
        })
    };
    let cause = |message: &str, about: failure::FailureInfo| Failure {
        message: message.into(),
        failure_info: Some(about),
        ..Default::default()
    };
    Some(match close {
        Attributes::WorkflowExecutionCompletedEventAttributes(c) => {
            Attributes::NexusOperationCompletedEventAttributes(
                NexusOperationCompletedEventAttributes {
                    scheduled_event_id: sched,
                    result: c.result.and_then(|r| r.payloads.into_iter().next()),
                    request_id,
                },
            )
        }
        Attributes::WorkflowExecutionFailedEventAttributes(f) => {
            failed(f.failure.unwrap_or_default())
        }
        Attributes::WorkflowExecutionCanceledEventAttributes(c) => {
            Attributes::NexusOperationCanceledEventAttributes(
                NexusOperationCanceledEventAttributes {
                    scheduled_event_id: sched,
                    failure: Some(operation_failure(
                        info,
                        canceled_failure.unwrap_or_else(|| {
                            cause(
                                "operation canceled",
                                failure::FailureInfo::CanceledFailureInfo(CanceledFailureInfo {
                                    details: c.details,
                                    ..Default::default()
                                }),
                            )
                        }),
                    )),
                    request_id,
                },
            )
        }
        Attributes::WorkflowExecutionTerminatedEventAttributes(_) => failed(cause(
            "operation terminated",
            failure::FailureInfo::TerminatedFailureInfo(TerminatedFailureInfo::default()),
        )),
        Attributes::WorkflowExecutionTimedOutEventAttributes(_) => failed(cause(
            "operation exceeded internal timeout",
            failure::FailureInfo::TimeoutFailureInfo(TimeoutFailureInfo::default()),
        )),
        _ => return None,
    })
}
