//! A handler's answer to an attempt (RespondNexusTaskCompleted / RespondNexusTaskFailed),
//! recorded in the caller's history as Temporal records it: a synchronous result completes the
//! operation, an asynchronous start starts it, an operation failure or cancellation ends it
//! (the handler's failure as the cause under Temporal's wrapper), and a handler error is
//! retried or ends it, by its retry behaviour.

use temporalio_protos::temporal::api::enums::v1::PendingNexusOperationState;
use temporalio_protos::temporal::api::failure::v1::{Failure, failure};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::history::v1::{
    NexusOperationCanceledEventAttributes, NexusOperationCompletedEventAttributes,
    NexusOperationStartedEventAttributes,
};
use temporalio_protos::temporal::api::nexus::v1::{
    HandlerError, response, start_operation_response,
};
use temporalio_protos::temporal::api::workflowservice::v1::{
    RespondNexusTaskCompletedRequest, RespondNexusTaskFailedRequest,
};

use super::inbound::InboundAnswer;
use super::{handler_failure, is_retryable, operation_failure};
use crate::engine::clock::ts_from_millis;
use crate::engine::state::NexusOperationInfo;
use crate::engine::{Core, Engine, Error, Result, RunKey};

/// Temporal's limit on an asynchronous operation's token.
const MAX_OPERATION_TOKEN_BYTES: usize = 4096;

impl Engine {
    pub async fn respond_nexus_task_completed(
        &self,
        req: RespondNexusTaskCompletedRequest,
    ) -> Result<()> {
        let answer = req
            .response
            .and_then(|r| r.variant)
            .ok_or_else(|| Error::InvalidArgument("the response is empty".into()))?;
        if let response::Variant::StartOperation(start) = &answer {
            check_start_answer(start)?;
        }
        let answer = match self.answer_inbound_nexus(
            &req.namespace,
            &req.task_token,
            InboundAnswer::Answered(answer),
        )? {
            Some(InboundAnswer::Answered(answer)) => answer,
            _ => return Ok(()),
        };
        self.transact(|core| {
            let (key, sched, cancel) = core.answered_nexus_task(&req.namespace, &req.task_token)?;
            match answer {
                response::Variant::StartOperation(start) if !cancel => {
                    if let Some(start) = start.variant {
                        core.nexus_start_answered(&key, sched, start);
                    }
                }
                response::Variant::CancelOperation(_) if cancel => {
                    core.nexus_cancel_succeeded(&key, sched)
                }
                _ => {
                    return Err(Error::InvalidArgument(
                        "the response does not answer the task's request".into(),
                    ));
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn respond_nexus_task_failed(
        &self,
        req: RespondNexusTaskFailedRequest,
    ) -> Result<()> {
        #[allow(deprecated)]
        let failure = match (req.failure, req.error) {
            (Some(f), _) => f,
            (None, Some(error)) => from_handler_error(error),
            (None, None) => {
                return Err(Error::InvalidArgument(
                    "request must contain error or failure".into(),
                ));
            }
        };
        let Some(failure::FailureInfo::NexusHandlerFailureInfo(about)) = &failure.failure_info
        else {
            return Err(Error::InvalidArgument(
                "request Failure must contain error or failure with NexusHandlerFailureInfo".into(),
            ));
        };
        let retryable = is_retryable(about);
        let failure = match self.answer_inbound_nexus(
            &req.namespace,
            &req.task_token,
            InboundAnswer::Failed(failure),
        )? {
            Some(InboundAnswer::Failed(failure)) => failure,
            _ => return Ok(()),
        };
        self.transact(|core| {
            let (key, sched, cancel) = core.answered_nexus_task(&req.namespace, &req.task_token)?;
            if cancel {
                core.nexus_cancel_attempt_failed(&key, sched, failure, retryable);
            } else {
                core.nexus_attempt_failed(&key, sched, failure, retryable);
            }
            Ok(())
        })
        .await
    }
}

/// Checks an asynchronous start's token: present and within Temporal's limit.
fn check_start_answer(
    start: &temporalio_protos::temporal::api::nexus::v1::StartOperationResponse,
) -> Result<()> {
    let a = match &start.variant {
        None => {
            return Err(Error::InvalidArgument(
                "the start operation response is empty".into(),
            ));
        }
        Some(start_operation_response::Variant::AsyncSuccess(a)) => a,
        Some(_) => return Ok(()),
    };
    if a.operation_token.is_empty() {
        return Err(Error::InvalidArgument(
            "missing opration token in response".into(),
        ));
    }
    if a.operation_token.len() > MAX_OPERATION_TOKEN_BYTES {
        return Err(Error::InvalidArgument(format!(
            "operation token length exceeds allowed limit ({}/{MAX_OPERATION_TOKEN_BYTES})",
            a.operation_token.len()
        )));
    }
    Ok(())
}

impl Core {
    /// The operation a Nexus task token names, if that attempt is the one in flight and a
    /// handler took it, and whether the task asked to cancel it.
    fn answered_nexus_task(&self, namespace: &str, token: &[u8]) -> Result<(RunKey, i64, bool)> {
        let (key, token) = self.tokens.check(namespace, token)?;
        let not_found = || Error::NotFound("Nexus task not found or already expired".into());
        if token.nexus_namespace.is_empty() || token.attempt == 0 {
            return Err(Error::InvalidArgument(
                "the task token is not a Nexus task's".into(),
            ));
        }
        let info = self
            .pending_nexus_operation(&key, token.scheduled_event_id)
            .ok_or_else(not_found)?;
        let call = super::call_in_flight(&info, token.nexus_cancel).ok_or_else(not_found)?;
        // An answer after the deadline the handler was given comes too late, as in Temporal
        // (its dispatch has given up): the attempt fails when its own deadline passes.
        let answer_deadline = call.deadline - super::poll::ANSWER_MARGIN_MS;
        if call.attempt != token.attempt || !call.dispatched || self.now() > answer_deadline {
            return Err(not_found());
        }
        Ok((key, token.scheduled_event_id, token.nexus_cancel))
    }

    pub(super) fn nexus_start_answered(
        &mut self,
        key: &RunKey,
        sched: i64,
        start: start_operation_response::Variant,
    ) {
        use start_operation_response::Variant as V;
        let Some(info) = self.pending_nexus_operation(key, sched) else {
            return;
        };
        match start {
            V::SyncSuccess(sync) => {
                let event = Attributes::NexusOperationCompletedEventAttributes(
                    NexusOperationCompletedEventAttributes {
                        scheduled_event_id: sched,
                        result: sync.payload,
                        request_id: info.request_id,
                    },
                );
                self.close_nexus_operation(key, sched, event, history_links(&sync.links));
            }
            V::AsyncSuccess(started) => self.nexus_operation_started(key, &info, started),
            V::Failure(f) => self.nexus_operation_unsuccessful(key, &info, f),
            #[allow(deprecated)]
            V::OperationError(e) => {
                let mut f = from_nexus_failure(e.failure.unwrap_or_default());
                if e.operation_state == "canceled"
                    && !matches!(
                        f.failure_info,
                        Some(failure::FailureInfo::CanceledFailureInfo(_))
                    )
                {
                    f.failure_info =
                        Some(failure::FailureInfo::CanceledFailureInfo(Default::default()));
                }
                self.nexus_operation_unsuccessful(key, &info, f)
            }
        }
    }

    /// The handler started the operation asynchronously: it ends when the handler's
    /// completion arrives (or a timeout).
    fn nexus_operation_started(
        &mut self,
        key: &RunKey,
        info: &NexusOperationInfo,
        started: start_operation_response::Async,
    ) {
        let now = self.now();
        let sched = info.scheduled_event_id;
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        let Some(op) = run.ms.nexus_operations.get_mut(&sched) else {
            return;
        };
        let links = started.links;
        op.state = PendingNexusOperationState::Started as i32;
        op.operation_token = started.operation_token.clone();
        op.started_time = Some(ts_from_millis(now));
        op.attempt += 1;
        op.last_attempt_complete_time = Some(ts_from_millis(now));
        op.last_attempt_failure = None;
        op.attempt_deadline = None;
        #[allow(deprecated)]
        let event = Attributes::NexusOperationStartedEventAttributes(
            NexusOperationStartedEventAttributes {
                scheduled_event_id: sched,
                operation_id: started.operation_token.clone(),
                request_id: info.request_id.clone(),
                operation_token: started.operation_token,
            },
        );
        let started = op.clone();
        let mut event = crate::engine::events::new_event(event, now);
        event.links = history_links(&links);
        self.record_nexus_events(key, vec![event]);
        // A start-to-close timeout counts from here.
        self.arm_nexus_timeouts(key, &started);
        // The workflow asked to cancel before the handler started it: ask the handler now.
        if started.cancel_requested_event_id != 0 {
            self.dispatch_nexus_cancel(key, sched);
        }
    }

    /// The handler said the operation failed or was canceled.
    fn nexus_operation_unsuccessful(
        &mut self,
        key: &RunKey,
        info: &NexusOperationInfo,
        f: Failure,
    ) {
        let sched = info.scheduled_event_id;
        if matches!(
            f.failure_info,
            Some(failure::FailureInfo::CanceledFailureInfo(_))
        ) {
            let event = Attributes::NexusOperationCanceledEventAttributes(
                NexusOperationCanceledEventAttributes {
                    scheduled_event_id: sched,
                    failure: Some(operation_failure(info, f)),
                    request_id: info.request_id.clone(),
                },
            );
            self.close_nexus_operation(key, sched, event, Vec::new());
        } else {
            self.fail_nexus_operation(key, sched, f);
        }
    }
}

/// A handler's links as history event links (links of other kinds are left out, as
/// Temporal leaves them).
fn history_links(
    links: &[temporalio_protos::temporal::api::nexus::v1::Link],
) -> Vec<temporalio_protos::temporal::api::common::v1::Link> {
    links.iter().filter_map(super::links::from_nexus).collect()
}

/// A deprecated `HandlerError` as the failure newer handlers send.
#[allow(deprecated)]
fn from_handler_error(error: HandlerError) -> Failure {
    let retryable = {
        use temporalio_protos::temporal::api::enums::v1::NexusHandlerErrorRetryBehavior as B;
        match B::try_from(error.retry_behavior).unwrap_or(B::Unspecified) {
            B::Retryable => Some(true),
            B::NonRetryable => Some(false),
            B::Unspecified => None,
        }
    };
    let inner = error.failure.unwrap_or_default();
    let mut f = handler_failure(&error.error_type, &inner.message, retryable);
    f.stack_trace = inner.stack_trace;
    f
}

/// A Nexus failure (the deprecated wire form) as a Temporal failure.
fn from_nexus_failure(f: temporalio_protos::temporal::api::nexus::v1::Failure) -> Failure {
    Failure {
        message: f.message,
        stack_trace: f.stack_trace,
        failure_info: Some(failure::FailureInfo::ApplicationFailureInfo(
            Default::default(),
        )),
        ..Default::default()
    }
}
