//! Search attributes: the system ones every namespace has, the custom ones registered per
//! namespace, their payload encoding (JSON with a `type` metadata entry that the SDKs
//! require), and reading a run's attributes as query values.

use std::collections::{BTreeMap, HashMap};

use temporalio_protos::temporal::api::common::v1::{Payload, SearchAttributes};
use temporalio_protos::temporal::api::enums::v1::{IndexedValueType, WorkflowExecutionStatus};

use super::query::{Record, Value};
use crate::store::state::MutableState;
use crate::time::opt_ts_millis;

use IndexedValueType as T;

/// Attributes the server maintains itself.
pub const SYSTEM: &[(&str, IndexedValueType)] = &[
    ("WorkflowId", T::Keyword),
    ("RunId", T::Keyword),
    ("WorkflowType", T::Keyword),
    ("StartTime", T::Datetime),
    ("ExecutionTime", T::Datetime),
    ("CloseTime", T::Datetime),
    ("ExecutionStatus", T::Keyword),
    ("TaskQueue", T::Keyword),
    ("HistoryLength", T::Int),
    ("HistorySizeBytes", T::Int),
    ("ExecutionDuration", T::Int),
    ("StateTransitionCount", T::Int),
    ("ParentWorkflowId", T::Keyword),
    ("ParentRunId", T::Keyword),
    ("RootWorkflowId", T::Keyword),
    ("RootRunId", T::Keyword),
    ("BuildIds", T::KeywordList),
    ("BatcherUser", T::Keyword),
    ("TemporalChangeVersion", T::KeywordList),
    ("TemporalScheduledStartTime", T::Datetime),
    ("TemporalScheduledById", T::Keyword),
    ("TemporalSchedulePaused", T::Bool),
    ("TemporalNamespaceDivision", T::Keyword),
    ("TemporalWorkerDeployment", T::Keyword),
    ("TemporalWorkerDeploymentVersion", T::Keyword),
    ("TemporalWorkflowVersioningBehavior", T::Keyword),
];

/// Custom attributes `durin dev` registers in every namespace it creates, like Temporal's dev
/// server, so samples and SDK test suites work out of the box.
pub const DEV_DEFAULTS: &[(&str, IndexedValueType)] = &[
    ("CustomKeywordField", T::Keyword),
    ("CustomStringField", T::Text),
    ("CustomTextField", T::Text),
    ("CustomIntField", T::Int),
    ("CustomDatetimeField", T::Datetime),
    ("CustomDoubleField", T::Double),
    ("CustomBoolField", T::Bool),
];

pub fn system_type(name: &str) -> Option<IndexedValueType> {
    SYSTEM.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The name SDKs expect in a payload's `type` metadata.
pub fn type_name(t: IndexedValueType) -> &'static str {
    match t {
        T::Text => "Text",
        T::Keyword => "Keyword",
        T::Int => "Int",
        T::Double => "Double",
        T::Bool => "Bool",
        T::Datetime => "Datetime",
        T::KeywordList => "KeywordList",
        T::Unspecified => "Unspecified",
    }
}

/// The type of `name` in a namespace with these custom attributes.
pub fn lookup(custom: &BTreeMap<String, i32>, name: &str) -> Option<IndexedValueType> {
    system_type(name).or_else(|| {
        custom
            .get(name)
            .and_then(|t| IndexedValueType::try_from(*t).ok())
    })
}

/// Checks that every attribute is registered and its value decodes as its type.
pub fn validate(custom: &BTreeMap<String, i32>, attrs: &SearchAttributes) -> Result<(), String> {
    for (name, payload) in &attrs.indexed_fields {
        let Some(t) = lookup(custom, name) else {
            return Err(format!("search attribute {name} is not defined"));
        };
        if is_removal(&payload.data) {
            continue;
        }
        if decode(t, &payload.data).is_none() {
            return Err(format!(
                "invalid value for search attribute {name} of type {}",
                type_name(t)
            ));
        }
    }
    Ok(())
}

/// A copy with `type` metadata set on every payload (the SDKs drop attributes without it).
pub fn with_type_metadata(
    custom: &BTreeMap<String, i32>,
    attrs: &SearchAttributes,
) -> SearchAttributes {
    let mut out = attrs.clone();
    for (name, payload) in out.indexed_fields.iter_mut() {
        if let Some(t) = lookup(custom, name) {
            payload
                .metadata
                .insert("type".into(), type_name(t).as_bytes().to_vec());
            payload
                .metadata
                .entry("encoding".into())
                .or_insert_with(|| b"json/plain".to_vec());
        }
    }
    out
}

fn is_removal(data: &[u8]) -> bool {
    data.is_empty() || data == b"null" || data == b"[]"
}

/// Decodes a JSON search-attribute payload as a query value of type `t`.
pub fn decode(t: IndexedValueType, data: &[u8]) -> Option<Value> {
    let json: serde_json::Value = serde_json::from_slice(data).ok()?;
    Some(match t {
        T::Keyword | T::Text => Value::Str(json.as_str()?.to_string()),
        T::Int => Value::Int(json.as_i64()?),
        T::Double => Value::Double(json.as_f64()?),
        T::Bool => Value::Bool(json.as_bool()?),
        T::Datetime => {
            let s = json.as_str()?;
            Value::Datetime(
                chrono::DateTime::parse_from_rfc3339(s)
                    .ok()?
                    .timestamp_millis(),
            )
        }
        T::KeywordList => match json {
            serde_json::Value::Array(items) => Value::List(
                items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()?,
            ),
            serde_json::Value::String(s) => Value::List(vec![s]),
            _ => return None,
        },
        T::Unspecified => return None,
    })
}

/// JSON payload for a search attribute value of type `type_name` (`Keyword`, `Bool`, ...).
pub fn typed_payload(type_name: &str, value: &impl serde::Serialize) -> Payload {
    Payload {
        metadata: HashMap::from([
            ("encoding".to_string(), b"json/plain".to_vec()),
            ("type".to_string(), type_name.as_bytes().to_vec()),
        ]),
        data: serde_json::to_vec(value).unwrap_or_default(),
        ..Default::default()
    }
}

/// JSON payload for a Keyword value (used for GROUP BY results).
pub fn keyword_payload(value: &str) -> Payload {
    typed_payload("Keyword", &value)
}

pub fn status_name(status: i32) -> &'static str {
    match WorkflowExecutionStatus::try_from(status).unwrap_or(WorkflowExecutionStatus::Unspecified)
    {
        WorkflowExecutionStatus::Running => "Running",
        WorkflowExecutionStatus::Completed => "Completed",
        WorkflowExecutionStatus::Failed => "Failed",
        WorkflowExecutionStatus::Canceled => "Canceled",
        WorkflowExecutionStatus::Terminated => "Terminated",
        WorkflowExecutionStatus::ContinuedAsNew => "ContinuedAsNew",
        WorkflowExecutionStatus::TimedOut => "TimedOut",
        WorkflowExecutionStatus::Paused => "Paused",
        WorkflowExecutionStatus::Unspecified => "Unspecified",
    }
}

/// A run seen through the query language.
pub struct RunRecord<'a> {
    pub ms: &'a MutableState,
    pub custom: &'a BTreeMap<String, i32>,
}

impl Record for RunRecord<'_> {
    fn get(&self, name: &str) -> Option<Value> {
        let ms = self.ms;
        let started = ms.started.as_ref();
        let keyword = |s: &str| (!s.is_empty()).then(|| Value::Str(s.to_string()));
        let time = |t: &Option<prost_wkt_types::Timestamp>| {
            t.as_ref().map(|_| Value::Datetime(opt_ts_millis(t)))
        };
        match name {
            "WorkflowId" => keyword(&ms.workflow_id),
            "RunId" => keyword(&ms.run_id),
            "WorkflowType" => started
                .and_then(|s| s.workflow_type.as_ref())
                .and_then(|t| keyword(&t.name)),
            "StartTime" => time(&ms.start_time),
            "ExecutionTime" => time(&ms.execution_time),
            "CloseTime" => time(&ms.close_time),
            "ExecutionStatus" => Some(Value::Str(status_name(ms.status).to_string())),
            "TaskQueue" => started
                .and_then(|s| s.task_queue.as_ref())
                .and_then(|t| keyword(&t.name)),
            "HistoryLength" => Some(Value::Int(ms.next_event_id - 1)),
            "HistorySizeBytes" => Some(Value::Int(ms.history_size_bytes)),
            "StateTransitionCount" => Some(Value::Int(ms.state_transition_count)),
            "ExecutionDuration" => ms.close_time.as_ref().map(|_| {
                let ms_duration = opt_ts_millis(&ms.close_time) - opt_ts_millis(&ms.execution_time);
                Value::Int(ms_duration.max(0) * 1_000_000)
            }),
            "ParentWorkflowId" => started
                .and_then(|s| s.parent_workflow_execution.as_ref())
                .and_then(|p| keyword(&p.workflow_id)),
            "ParentRunId" => started
                .and_then(|s| s.parent_workflow_execution.as_ref())
                .and_then(|p| keyword(&p.run_id)),
            "RootWorkflowId" => started
                .and_then(|s| s.root_workflow_execution.as_ref())
                .and_then(|p| keyword(&p.workflow_id))
                .or_else(|| keyword(&ms.workflow_id)),
            "RootRunId" => started
                .and_then(|s| s.root_workflow_execution.as_ref())
                .and_then(|p| keyword(&p.run_id))
                .or_else(|| keyword(&ms.run_id)),
            "TemporalWorkerDeployment"
            | "TemporalWorkerDeploymentVersion"
            | "TemporalWorkflowVersioningBehavior" => {
                crate::engine::deployments::search_attribute(ms.versioning.as_ref()?, name)
                    .map(Value::Str)
            }
            _ => {
                let t = lookup(self.custom, name)?;
                let payload = ms.search_attributes.as_ref()?.indexed_fields.get(name)?;
                decode(t, &payload.data)
            }
        }
    }
}
