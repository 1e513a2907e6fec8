//! Temporal's system Nexus endpoint, `__temporal_system`: operations the server itself
//! handles, with no endpoint in the registry and no handler worker. SDKs use it for what a
//! workflow asks of the WorkflowService, today `SignalWithStartWorkflowExecution` (the Python
//! SDK's workflow-side `signal_with_start_workflow`). The request travels as the operation's
//! input, a binary protobuf payload; the operation completes with the response as one, and
//! the link to the signal, as Temporal completes it. The target may live in a shard another
//! replica serves: the signal-with-start then goes through the transfer outbox.

use prost::Message;
use temporalio_protos::temporal::api::common::v1::Payload;
use temporalio_protos::temporal::api::enums::v1::EventType;
use temporalio_protos::temporal::api::failure::v1::{Failure, ServerFailureInfo, failure};
use temporalio_protos::temporal::api::history::v1::NexusOperationCompletedEventAttributes;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::workflowservice::v1::{
    SignalWithStartWorkflowExecutionRequest, SignalWithStartWorkflowExecutionResponse,
};

use super::links::{event_link, signal_link};
use crate::engine::state::{SystemSignalWithStartTransfer, TransferKind};
use crate::engine::{Core, RunKey};

/// The endpoint name SDKs schedule system operations on.
pub(crate) const SYSTEM_ENDPOINT: &str = "__temporal_system";
const WORKFLOW_SERVICE: &str = "temporal.api.workflowservice.v1.WorkflowService";
const SIGNAL_WITH_START: &str = "SignalWithStartWorkflowExecution";
/// Payload metadata marking a system operation's request or response.
const SYSTEM_PAYLOAD_KEY: &str = "__temporal_system_payload";

/// The signal-with-start a system operation asks for, checked as Temporal checks it; Err is
/// the message of the failed workflow task (the command is refused).
pub(crate) fn request_of(
    caller_namespace: &str,
    service: &str,
    operation: &str,
    input: Option<&Payload>,
) -> Result<SignalWithStartWorkflowExecutionRequest, String> {
    if service != WORKFLOW_SERVICE {
        return Err(format!("service {service:?} not found"));
    }
    if operation != SIGNAL_WITH_START {
        return Err(format!("operation {operation:?} not found"));
    }
    let decode_error = || "failed to decode input payload".to_string();
    let payload = input.ok_or_else(decode_error)?;
    let binary = payload
        .metadata
        .get("encoding")
        .is_some_and(|e| e == b"binary/protobuf");
    if !binary {
        return Err(decode_error());
    }
    let mut req = SignalWithStartWorkflowExecutionRequest::decode(payload.data.as_slice())
        .map_err(|_| decode_error())?;
    if req.namespace.is_empty() {
        req.namespace = caller_namespace.to_string();
    } else if req.namespace != caller_namespace {
        return Err(format!(
            "Namespace in request {:?} does not match namespace in context {caller_namespace:?}",
            req.namespace
        ));
    }
    if !req.request_id.is_empty() {
        return Err("RequestID should not be set on the request".into());
    }
    if !req.links.is_empty() {
        return Err("Links should not be set on the request".into());
    }
    Ok(req)
}

/// A system payload holding `message`.
fn system_payload(message: &impl Message, message_type: &str) -> Payload {
    Payload {
        metadata: [
            ("encoding".to_string(), b"binary/protobuf".to_vec()),
            ("messageType".to_string(), message_type.as_bytes().to_vec()),
            (SYSTEM_PAYLOAD_KEY.to_string(), b"true".to_vec()),
        ]
        .into(),
        data: message.encode_to_vec(),
        ..Default::default()
    }
}

impl Core {
    /// Runs the system operation `sched` of the caller `key`: here when this replica serves
    /// the target, else through the outbox. Its request was checked when it was scheduled.
    pub(super) fn run_system_operation(&mut self, key: &RunKey, sched: i64) {
        let Some(info) = self.pending_nexus_operation(key, sched) else {
            return;
        };
        self.arm_nexus_timeouts(key, &info);
        let mut req = match request_of(
            &key.namespace,
            &info.service,
            &info.operation,
            info.input.as_ref(),
        ) {
            Ok(req) => req,
            Err(message) => return self.fail_nexus_operation(key, sched, server_failure(message)),
        };
        // Retries of the operation are one signal-with-start, and the target links back.
        req.request_id = info.request_id.clone();
        req.links = vec![event_link(key, sched, EventType::NexusOperationScheduled)];
        if self.owns(&req.namespace, &req.workflow_id) {
            let outcome = self
                .signal_with_start(req.clone())
                .map(|r| (r.run_id, r.started))
                .map_err(|e| e.to_string());
            self.system_operation_done(key, sched, &req, outcome);
        } else {
            self.push_transfer(
                key,
                TransferKind::SystemSignalWithStart(SystemSignalWithStartTransfer {
                    scheduled_event_id: sched,
                    request: Some(Box::new(req)),
                }),
            );
            self.changed(key);
        }
    }

    /// Ends the system operation with the signal-with-start's outcome: its response (run id,
    /// whether it started, the link to the signal), or its error as a non-retryable failure.
    pub(crate) fn system_operation_done(
        &mut self,
        key: &RunKey,
        sched: i64,
        req: &SignalWithStartWorkflowExecutionRequest,
        outcome: Result<(String, bool), String>,
    ) {
        let Some(info) = self.pending_nexus_operation(key, sched) else {
            return;
        };
        let (run_id, started) = match outcome {
            Ok(done) => done,
            Err(message) => return self.fail_nexus_operation(key, sched, server_failure(message)),
        };
        let target = RunKey {
            namespace: req.namespace.clone(),
            workflow_id: req.workflow_id.clone(),
            run_id: run_id.clone(),
        };
        let signal_link = signal_link(&target, &req.request_id);
        let response = SignalWithStartWorkflowExecutionResponse {
            run_id,
            started,
            signal_link: Some(signal_link.clone()),
            ..Default::default()
        };
        let event = Attributes::NexusOperationCompletedEventAttributes(
            NexusOperationCompletedEventAttributes {
                scheduled_event_id: sched,
                result: Some(system_payload(
                    &response,
                    "temporal.api.workflowservice.v1.SignalWithStartWorkflowExecutionResponse",
                )),
                request_id: info.request_id,
            },
        );
        self.close_nexus_operation(key, sched, event, vec![signal_link]);
    }
}

/// How Temporal reports an error of a system operation: a non-retryable server failure.
fn server_failure(message: String) -> Failure {
    Failure {
        message,
        failure_info: Some(failure::FailureInfo::ServerFailureInfo(ServerFailureInfo {
            non_retryable: true,
        })),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(req: &SignalWithStartWorkflowExecutionRequest) -> Payload {
        system_payload(
            req,
            "temporal.api.workflowservice.v1.SignalWithStartWorkflowExecutionRequest",
        )
    }

    #[test]
    fn a_signal_with_start_is_read_from_its_payload_in_the_callers_namespace() {
        let req = SignalWithStartWorkflowExecutionRequest {
            workflow_id: "target".into(),
            signal_name: "go".into(),
            ..Default::default()
        };
        let read = request_of(
            "ns",
            WORKFLOW_SERVICE,
            SIGNAL_WITH_START,
            Some(&input(&req)),
        );
        assert_eq!(
            read.map(|r| (r.namespace, r.workflow_id)),
            Ok(("ns".into(), "target".into()))
        );
    }

    #[test]
    fn what_temporal_refuses_is_refused() {
        let ok = SignalWithStartWorkflowExecutionRequest::default();
        let other_ns = SignalWithStartWorkflowExecutionRequest {
            namespace: "other".into(),
            ..Default::default()
        };
        let with_id = SignalWithStartWorkflowExecutionRequest {
            request_id: "mine".into(),
            ..Default::default()
        };
        let json = Payload {
            metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
            ..Default::default()
        };
        for (service, operation, payload, message) in [
            (
                "Other",
                SIGNAL_WITH_START,
                Some(input(&ok)),
                "service \"Other\" not found",
            ),
            (
                WORKFLOW_SERVICE,
                "Start",
                Some(input(&ok)),
                "operation \"Start\" not found",
            ),
            (
                WORKFLOW_SERVICE,
                SIGNAL_WITH_START,
                Some(json),
                "failed to decode input payload",
            ),
            (
                WORKFLOW_SERVICE,
                SIGNAL_WITH_START,
                None,
                "failed to decode input payload",
            ),
            (
                WORKFLOW_SERVICE,
                SIGNAL_WITH_START,
                Some(input(&other_ns)),
                "Namespace in request \"other\" does not match namespace in context \"ns\"",
            ),
            (
                WORKFLOW_SERVICE,
                SIGNAL_WITH_START,
                Some(input(&with_id)),
                "RequestID should not be set on the request",
            ),
        ] {
            assert_eq!(
                request_of("ns", service, operation, payload.as_ref()).map(|_| ()),
                Err(message.to_string())
            );
        }
    }
}
