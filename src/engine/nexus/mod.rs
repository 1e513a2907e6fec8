//! Nexus operations, the caller's side and the handler's, both in this server: a workflow
//! schedules an operation on an endpoint (`commands/nexus.rs`); each attempt is a task on the
//! endpoint's handler task queue, taken by a handler worker's poll (`poll.rs`) and answered
//! with the operation's outcome or a handler error (`respond.rs`); an attempt that fails
//! retryably, or gets no answer before its deadline, is retried with backoff until the
//! operation's timeouts end it (`attempts.rs`). Temporal makes each attempt an HTTP call
//! through its frontend; Durin hands it to the handler's queue directly and keeps what the
//! SDKs see of that call: the request headers with its deadline, the failure shapes, the
//! retry rules and the history events.

mod attempts;
pub(crate) mod callback_delivery;
pub(crate) mod callbacks;
pub(crate) mod cancel;
mod completion;
pub(crate) mod http;
pub(crate) mod inbound;
pub(crate) mod links;
mod poll;
mod respond;
pub(crate) mod standalone;
pub(crate) mod system;

use std::collections::BTreeMap;

use temporalio_protos::temporal::api::command::v1::{Command, command};
use temporalio_protos::temporal::api::failure::v1::{
    Failure, NexusHandlerFailureInfo, NexusOperationFailureInfo, failure,
};

use super::Core;
use crate::engine::state::NexusOperationInfo;

/// Handler error types that are not retried unless the handler says otherwise (the Nexus
/// specification's defaults; any other type is retried).
const NON_RETRYABLE_HANDLER_ERRORS: &[&str] = &[
    "BAD_REQUEST",
    "UNAUTHENTICATED",
    "UNAUTHORIZED",
    "NOT_FOUND",
    "NOT_IMPLEMENTED",
    "CONFLICT",
];

impl Core {
    /// The endpoints `commands` schedule operations on that exist: name -> id.
    pub(crate) fn endpoints_named_by(&self, commands: &[Command]) -> BTreeMap<String, String> {
        commands
            .iter()
            .filter_map(|c| match &c.attributes {
                Some(command::Attributes::ScheduleNexusOperationCommandAttributes(a)) => self
                    .endpoint_by_name(&a.endpoint)
                    .map(|e| (a.endpoint.clone(), e.id.clone())),
                _ => None,
            })
            .collect()
    }
}

/// The attempt in flight of one of an operation's calls: its start or its cancellation.
pub(super) struct Call {
    /// This attempt's number (from 1).
    pub attempt: i32,
    pub deadline: i64,
    /// A handler took it.
    pub dispatched: bool,
}

/// The attempt of the operation's start (or cancellation) waiting for the handler, if one
/// is.
pub(super) fn call_in_flight(info: &NexusOperationInfo, cancel: bool) -> Option<Call> {
    use crate::engine::clock::opt_ts_millis;
    use temporalio_protos::temporal::api::enums::v1::{
        NexusOperationCancellationState as CancelState, PendingNexusOperationState,
    };
    if cancel {
        let c = info.cancellation.as_ref()?;
        (c.state == CancelState::Scheduled as i32).then(|| Call {
            attempt: c.attempt + 1,
            deadline: opt_ts_millis(&c.attempt_deadline),
            dispatched: c.dispatched,
        })
    } else {
        (info.state == PendingNexusOperationState::Scheduled as i32).then(|| Call {
            attempt: info.attempt + 1,
            deadline: opt_ts_millis(&info.attempt_deadline),
            dispatched: info.dispatched,
        })
    }
}

/// Notes that a handler took the attempt in flight of the start (or cancellation).
fn mark_dispatched(info: &mut NexusOperationInfo, cancel: bool) {
    if !cancel {
        info.dispatched = true;
    } else if let Some(c) = info.cancellation.as_mut() {
        c.dispatched = true;
    }
}

/// An operation as DescribeWorkflowExecution shows it.
pub(crate) fn pending_info(
    info: &NexusOperationInfo,
) -> temporalio_protos::temporal::api::workflow::v1::PendingNexusOperationInfo {
    #[allow(deprecated)]
    temporalio_protos::temporal::api::workflow::v1::PendingNexusOperationInfo {
        endpoint: info.endpoint.clone(),
        service: info.service.clone(),
        operation: info.operation.clone(),
        operation_id: info.operation_token.clone(),
        schedule_to_close_timeout: info.schedule_to_close_timeout,
        scheduled_time: info.scheduled_time,
        state: info.state,
        attempt: info.attempt,
        last_attempt_complete_time: info.last_attempt_complete_time,
        last_attempt_failure: info.last_attempt_failure.clone(),
        next_attempt_schedule_time: info.next_attempt_schedule_time,
        cancellation_info: info.cancellation.as_ref().map(cancel::cancellation_info),
        scheduled_event_id: info.scheduled_event_id,
        blocked_reason: String::new(),
        operation_token: info.operation_token.clone(),
        schedule_to_start_timeout: info.schedule_to_start_timeout,
        start_to_close_timeout: info.start_to_close_timeout,
    }
}

/// The failure recorded when an operation fails, is canceled or times out: Temporal's
/// wrapper naming the operation, with what happened as its cause.
fn operation_failure(info: &NexusOperationInfo, cause: Failure) -> Failure {
    #[allow(deprecated)]
    let about = NexusOperationFailureInfo {
        scheduled_event_id: info.scheduled_event_id,
        endpoint: info.endpoint.clone(),
        service: info.service.clone(),
        operation: info.operation.clone(),
        operation_id: info.operation_token.clone(),
        operation_token: info.operation_token.clone(),
    };
    Failure {
        message: "nexus operation completed unsuccessfully".into(),
        failure_info: Some(failure::FailureInfo::NexusOperationExecutionFailureInfo(
            about,
        )),
        cause: Some(Box::new(cause)),
        ..Default::default()
    }
}

/// A handler error as a failure (what a retry records and a non-retryable error ends with).
fn handler_failure(error_type: &str, message: &str, retryable: Option<bool>) -> Failure {
    use temporalio_protos::temporal::api::enums::v1::NexusHandlerErrorRetryBehavior as B;
    let retry_behavior = match retryable {
        Some(true) => B::Retryable,
        Some(false) => B::NonRetryable,
        None => B::Unspecified,
    };
    Failure {
        message: message.into(),
        failure_info: Some(failure::FailureInfo::NexusHandlerFailureInfo(
            NexusHandlerFailureInfo {
                r#type: error_type.into(),
                retry_behavior: retry_behavior as i32,
            },
        )),
        ..Default::default()
    }
}

/// Whether a handler error is retried: as the handler said, else by its type.
fn is_retryable(info: &NexusHandlerFailureInfo) -> bool {
    use temporalio_protos::temporal::api::enums::v1::NexusHandlerErrorRetryBehavior as B;
    match B::try_from(info.retry_behavior).unwrap_or(B::Unspecified) {
        B::Retryable => true,
        B::NonRetryable => false,
        B::Unspecified => !NON_RETRYABLE_HANDLER_ERRORS.contains(&info.r#type.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_errors_retry_by_type_unless_told() {
        let info = |t: &str, b: i32| NexusHandlerFailureInfo {
            r#type: t.into(),
            retry_behavior: b,
        };
        assert!(is_retryable(&info("INTERNAL", 0)));
        assert!(is_retryable(&info("UPSTREAM_TIMEOUT", 0)));
        assert!(is_retryable(&info("SOMETHING_NEW", 0)));
        assert!(!is_retryable(&info("BAD_REQUEST", 0)));
        assert!(!is_retryable(&info("INTERNAL", 2)));
        assert!(is_retryable(&info("NOT_FOUND", 1)));
    }
}
