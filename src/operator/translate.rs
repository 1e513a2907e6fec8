//! Resource specs to WorkflowService requests, and engine payloads back to JSON for status.
//! Shared by the controllers and `durin apply`, so a manifest means the same thing in both.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::go_duration;
use crate::proto::api::common::v1::{
    Header, Memo, Payload, Payloads, RetryPolicy as ProtoRetryPolicy, SearchAttributes,
    WorkflowExecution, WorkflowType,
};
use crate::proto::api::enums::v1::{
    TaskQueueKind, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
};
use crate::proto::api::failure::v1::Failure;
use crate::proto::api::taskqueue::v1::TaskQueue;
use crate::proto::api::workflowservice::v1::StartWorkflowExecutionRequest;

use super::crd::workflow::{
    IdConflictPolicy, IdReusePolicy, RetryPolicy, WorkflowSpec, WorkflowTemplate,
};

/// Largest result kept in status (serialized JSON); larger ones are flagged as truncated.
pub const MAX_STATUS_RESULT_BYTES: usize = 4 * 1024;
const MAX_FAILURE_MESSAGE: usize = 2 * 1024;
const MAX_STACK_TRACE: usize = 2 * 1024;

/// A spec the engine cannot take, with a message for the resource's condition.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSpec(pub String);

pub const IDENTITY: &str = "durin-operator";

pub fn duration(
    field: &str,
    value: &Option<String>,
) -> Result<Option<prost_wkt_types::Duration>, InvalidSpec> {
    let Some(text) = value else { return Ok(None) };
    let ms = go_duration::parse_millis(text).ok_or_else(|| {
        InvalidSpec(format!(
            "{field}: {text:?} is not a duration (use forms like 30s, 5m, 1h30m)"
        ))
    })?;
    Ok(Some(prost_wkt_types::Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }))
}

pub fn json_payload(value: &Value) -> Payload {
    Payload {
        metadata: HashMap::from([("encoding".to_string(), b"json/plain".to_vec())]),
        data: serde_json::to_vec(value).unwrap_or_default(),
        ..Default::default()
    }
}

pub fn json_payloads(values: &[Value]) -> Option<Payloads> {
    if values.is_empty() {
        return None;
    }
    Some(Payloads {
        payloads: values.iter().map(json_payload).collect(),
    })
}

fn json_map(values: &BTreeMap<String, Value>) -> HashMap<String, Payload> {
    values
        .iter()
        .map(|(k, v)| (k.clone(), json_payload(v)))
        .collect()
}

/// A payload as JSON: JSON payloads decode, `binary/null` is null, anything else (protobuf,
/// encrypted by a codec) is described rather than guessed at.
pub fn payload_to_json(p: &Payload) -> Value {
    let encoding = p
        .metadata
        .get("encoding")
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .unwrap_or_default();
    match encoding.as_str() {
        "json/plain" => serde_json::from_slice(&p.data).unwrap_or(Value::Null),
        "binary/null" => Value::Null,
        _ => serde_json::json!({ "encoding": encoding, "bytes": p.data.len() }),
    }
}

/// One payload as its value, several as a list; `None` when the result is too big for status.
pub fn payloads_to_status(p: Option<&Payloads>) -> (Option<Value>, bool) {
    let values: Vec<Value> = p
        .map(|p| p.payloads.iter().map(payload_to_json).collect())
        .unwrap_or_default();
    let value = match values.len() {
        0 => return (None, false),
        1 => values.into_iter().next().unwrap_or(Value::Null),
        _ => Value::Array(values),
    };
    let size = serde_json::to_vec(&value)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_STATUS_RESULT_BYTES {
        (None, true)
    } else {
        (Some(value), false)
    }
}

pub fn truncate(s: &str, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s.to_string(), false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (s[..end].to_string(), true)
}

pub fn failure_summary(f: &Failure) -> super::crd::workflow::FailureSummary {
    use crate::proto::api::failure::v1::failure::FailureInfo;
    let type_ = match &f.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(a)) if !a.r#type.is_empty() => {
            Some(a.r#type.clone())
        }
        Some(FailureInfo::TimeoutFailureInfo(_)) => Some("TimeoutError".into()),
        Some(FailureInfo::CanceledFailureInfo(_)) => Some("CanceledError".into()),
        Some(FailureInfo::TerminatedFailureInfo(_)) => Some("TerminatedError".into()),
        Some(FailureInfo::ActivityFailureInfo(_)) => Some("ActivityError".into()),
        Some(FailureInfo::ChildWorkflowExecutionFailureInfo(_)) => {
            Some("ChildWorkflowError".into())
        }
        _ => None,
    };
    let mut message = f.message.clone();
    if let Some(cause) = &f.cause
        && !cause.message.is_empty()
    {
        message = format!("{message}: {}", cause.message);
    }
    let (message, cut_message) = truncate(&message, MAX_FAILURE_MESSAGE);
    let (stack, cut_stack) = truncate(&f.stack_trace, MAX_STACK_TRACE);
    super::crd::workflow::FailureSummary {
        message,
        type_,
        stack_trace: (!stack.is_empty()).then_some(stack),
        truncated: cut_message || cut_stack,
    }
}

fn retry_policy(p: &RetryPolicy) -> Result<ProtoRetryPolicy, InvalidSpec> {
    Ok(ProtoRetryPolicy {
        initial_interval: duration("retryPolicy.initialInterval", &p.initial_interval)?,
        backoff_coefficient: p.backoff_coefficient.unwrap_or(0.0),
        maximum_interval: duration("retryPolicy.maximumInterval", &p.maximum_interval)?,
        maximum_attempts: p.maximum_attempts.unwrap_or(0),
        non_retryable_error_types: p.non_retryable_error_types.clone(),
    })
}

/// The memo key naming the resource an execution was started for, so that the Web UI (and
/// `temporal workflow describe`) lead from an execution to `kubectl get <kind> -n <ns> <name>`.
pub const RESOURCE_MEMO_KEY: &str = "durin.dev/resource";

/// `memo` with the resource's identity added under [`RESOURCE_MEMO_KEY`].
pub fn with_resource_memo(memo: Option<Memo>, kind: &str, meta: &ObjectMeta) -> Option<Memo> {
    let identity = serde_json::json!({
        "apiVersion": "durin.dev/v1alpha1",
        "kind": kind,
        "namespace": meta.namespace.as_deref().unwrap_or("default"),
        "name": meta.name.as_deref().unwrap_or_default(),
    });
    let mut memo = memo.unwrap_or_default();
    memo.fields
        .insert(RESOURCE_MEMO_KEY.to_string(), json_payload(&identity));
    Some(memo)
}

/// The start request for a workflow template (without id reuse/conflict policies).
pub fn start_request(
    namespace: &str,
    workflow_id: &str,
    request_id: &str,
    t: &WorkflowTemplate,
) -> Result<StartWorkflowExecutionRequest, InvalidSpec> {
    Ok(StartWorkflowExecutionRequest {
        namespace: namespace.to_string(),
        workflow_id: workflow_id.to_string(),
        workflow_type: Some(WorkflowType {
            name: t.workflow_type.clone(),
        }),
        task_queue: Some(TaskQueue {
            name: t.task_queue.clone(),
            kind: TaskQueueKind::Normal as i32,
            ..Default::default()
        }),
        input: json_payloads(&t.input),
        workflow_execution_timeout: duration("executionTimeout", &t.execution_timeout)?,
        workflow_run_timeout: duration("runTimeout", &t.run_timeout)?,
        workflow_task_timeout: duration("taskTimeout", &t.task_timeout)?,
        identity: IDENTITY.to_string(),
        request_id: request_id.to_string(),
        retry_policy: t.retry_policy.as_ref().map(retry_policy).transpose()?,
        memo: (!t.memo.is_empty()).then(|| Memo {
            fields: json_map(&t.memo),
        }),
        search_attributes: (!t.search_attributes.is_empty()).then(|| SearchAttributes {
            indexed_fields: json_map(&t.search_attributes),
        }),
        header: Some(Header::default()),
        ..Default::default()
    })
}

/// The start request a `Workflow` resource stands for.
pub fn workflow_start_request(
    namespace: &str,
    workflow_id: &str,
    request_id: &str,
    spec: &WorkflowSpec,
) -> Result<StartWorkflowExecutionRequest, InvalidSpec> {
    let mut req = start_request(namespace, workflow_id, request_id, &spec.template)?;
    req.cron_schedule = spec.cron_schedule.clone().unwrap_or_default();
    req.workflow_start_delay = duration("startDelay", &spec.start_delay)?;
    req.workflow_id_reuse_policy = match spec.id_reuse_policy {
        None => WorkflowIdReusePolicy::Unspecified,
        Some(IdReusePolicy::AllowDuplicate) => WorkflowIdReusePolicy::AllowDuplicate,
        Some(IdReusePolicy::AllowDuplicateFailedOnly) => {
            WorkflowIdReusePolicy::AllowDuplicateFailedOnly
        }
        Some(IdReusePolicy::RejectDuplicate) => WorkflowIdReusePolicy::RejectDuplicate,
        #[allow(deprecated)]
        Some(IdReusePolicy::TerminateIfRunning) => WorkflowIdReusePolicy::TerminateIfRunning,
    } as i32;
    req.workflow_id_conflict_policy = match spec.id_conflict_policy {
        None => WorkflowIdConflictPolicy::Unspecified,
        Some(IdConflictPolicy::Fail) => WorkflowIdConflictPolicy::Fail,
        Some(IdConflictPolicy::UseExisting) => WorkflowIdConflictPolicy::UseExisting,
        Some(IdConflictPolicy::TerminateExisting) => WorkflowIdConflictPolicy::TerminateExisting,
    } as i32;
    Ok(req)
}

pub fn execution(workflow_id: &str, run_id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: workflow_id.to_string(),
        run_id: run_id.to_string(),
    })
}

/// RFC 3339 for a protobuf timestamp.
pub fn rfc3339(ts: &prost_wkt_types::Timestamp) -> String {
    chrono::DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

pub fn millis(ts: &prost_wkt_types::Timestamp) -> i64 {
    ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_durations_name_the_field() {
        let err = duration("runTimeout", &Some("5 minutes".into())).unwrap_err();
        assert!(err.0.contains("runTimeout"), "{err}");
        assert_eq!(
            duration("x", &Some("1m30s".into())).unwrap(),
            Some(prost_wkt_types::Duration {
                seconds: 90,
                nanos: 0
            })
        );
    }

    #[test]
    fn results_are_bounded() {
        let small = json_payloads(&[serde_json::json!({"ok": true})]);
        assert_eq!(
            payloads_to_status(small.as_ref()),
            (Some(serde_json::json!({"ok": true})), false)
        );
        let big = json_payloads(&[Value::String("x".repeat(10_000))]);
        assert_eq!(payloads_to_status(big.as_ref()), (None, true));
        let (cut, flagged) = truncate("héllo", 2);
        assert_eq!((cut.as_str(), flagged), ("h", true));
    }
}
