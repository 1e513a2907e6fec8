//! `Workflow`: one workflow execution, declared as a resource.
// kube-derive repeats `type_ = ...` across `printcolumn(...)` entries, which clippy reads
// as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::schema;

/// What a workflow start needs; shared by `Workflow` and a `Schedule`'s action.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowTemplate {
    /// The workflow type (the name the worker registered).
    #[schemars(length(min = 1, max = 1000))]
    pub workflow_type: String,
    /// The task queue the workers poll.
    #[schemars(length(min = 1, max = 1000))]
    pub task_queue: String,
    /// Workflow id; defaults to the resource name (a schedule appends the nominal time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1000))]
    pub workflow_id: Option<String>,
    /// Arguments, each sent as a JSON payload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::json_list")]
    pub input: Vec<Value>,
    /// Memo fields (not indexed), values as JSON.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "schema::json_map")]
    pub memo: BTreeMap<String, Value>,
    /// Search attributes by name; values are JSON (strings, numbers, booleans, lists of strings).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "schema::json_map")]
    pub search_attributes: BTreeMap<String, Value>,
    /// Limit for the whole chain of runs (retries, continue-as-new, cron), e.g. `1h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub execution_timeout: Option<String>,
    /// Limit for one run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub run_timeout: Option<String>,
    /// Limit for one workflow task (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub task_timeout: Option<String>,
    /// Retries of the whole workflow when a run fails (none by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub initial_interval: Option<String>,
    /// Multiplier applied to the interval after each attempt (>= 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0))]
    pub backoff_coefficient: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub maximum_interval: Option<String>,
    /// 0 means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub maximum_attempts: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_retryable_error_types: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum IdReusePolicy {
    AllowDuplicate,
    AllowDuplicateFailedOnly,
    RejectDuplicate,
    TerminateIfRunning,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum IdConflictPolicy {
    Fail,
    UseExisting,
    TerminateExisting,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DesiredState {
    #[default]
    Running,
    Canceled,
    Terminated,
}

/// What deleting the resource does to a still-running execution.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Leave it running in the engine.
    Abandon,
    /// Request cancellation (the workflow may clean up).
    #[default]
    Cancel,
    /// Terminate it at once.
    Terminate,
}

/// A signal to deliver; each id is delivered exactly once.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignalSpec {
    #[schemars(length(min = 1, max = 63))]
    pub id: String,
    #[schemars(length(min = 1, max = 1000))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::json_list")]
    pub input: Vec<Value>,
}

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "durin.dev",
    version = "v1alpha1",
    kind = "Workflow",
    namespaced,
    status = "WorkflowStatus",
    shortname = "dwf",
    category = "durin",
    doc = "A durable workflow execution on the Durin engine",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.workflowType"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(name = "Duration", type_ = "string", json_path = ".status.duration"),
    printcolumn(
        name = "RunID",
        type_ = "string",
        json_path = ".status.runId",
        priority = 1
    ),
    selectable = ".spec.workflowType",
    selectable = ".spec.taskQueue"
)]
#[x_kube(validation = Rule::new("self.workflowType == oldSelf.workflowType && self.taskQueue == oldSelf.taskQueue && (has(self.workflowId) == has(oldSelf.workflowId)) && (!has(self.workflowId) || self.workflowId == oldSelf.workflowId) && (has(self.__namespace__) == has(oldSelf.__namespace__)) && (!has(self.__namespace__) || self.__namespace__ == oldSelf.__namespace__)").message("workflowType, taskQueue, workflowId and namespace cannot change once the workflow exists"))]
#[x_kube(validation = Rule::new("!has(oldSelf.signals) || (has(self.signals) && oldSelf.signals.all(o, self.signals.exists(s, s.id == o.id)))").message("signals are append-only: an entry cannot be removed once added"))]
#[x_kube(validation = Rule::new("!has(self.signals) || self.signals.all(s, self.signals.exists_one(t, t.id == s.id))").message("signal ids must be unique"))]
#[x_kube(validation = Rule::new("!has(oldSelf.desiredState) || oldSelf.desiredState != 'Terminated' || self.desiredState == 'Terminated'").message("a Terminated workflow cannot be brought back"))]
#[x_kube(validation = Rule::new("!has(self.reason) || (has(self.desiredState) && self.desiredState != 'Running')").message("reason applies only when desiredState is Canceled or Terminated"))]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSpec {
    #[serde(flatten)]
    pub template: WorkflowTemplate,
    /// Durin namespace; defaults to the resource's Kubernetes namespace. Another one needs a
    /// grant from a cluster administrator: the `durin.dev/allowed-namespaces` annotation on
    /// the Kubernetes Namespace (else Accepted=False, reason NamespaceNotAllowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,
    /// Cron schedule: five fields (minute hour day-of-month month day-of-week; when both day
    /// fields are restricted a day matching either one fires, as in classic cron), a
    /// descriptor such as `@hourly`, or `@every 10m`; prefix `CRON_TZ=<zone> ` for a time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_schedule: Option<String>,
    /// Delay before the first workflow task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub start_delay: Option<String>,
    /// Whether the workflow id may be used again after a closed run (default AllowDuplicate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_reuse_policy: Option<IdReusePolicy>,
    /// What happens when a run with this id is still open (default Fail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_conflict_policy: Option<IdConflictPolicy>,
    /// Signals to deliver, append-only; each entry is delivered exactly once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub signals: Vec<SignalSpec>,
    /// Set to Canceled (graceful) or Terminated (immediate) to stop the workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_state: Option<DesiredState>,
    /// Reason recorded with a cancellation or termination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Delete the resource this many seconds after the workflow closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum WorkflowPhase {
    Pending,
    Running,
    Completed,
    Failed,
    Canceled,
    Terminated,
    TimedOut,
    ContinuedAsNew,
}

impl WorkflowPhase {
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::Canceled => "Canceled",
            Self::Terminated => "Terminated",
            Self::TimedOut => "TimedOut",
            Self::ContinuedAsNew => "ContinuedAsNew",
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureSummary {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
    /// True when the message or stack trace was cut to keep status small.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<WorkflowPhase>,
    /// The Durin namespace the execution lives in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// The current (latest) run of the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_time: Option<String>,
    /// Run time so far or in total, e.g. `1m3s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// The result, decoded from JSON payloads; omitted and flagged when too large.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::any_json")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub result_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_length: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_activities: Option<i32>,
    /// Ids of `spec.signals` entries the engine has accepted.
    #[serde(default)]
    pub signals_delivered: Vec<String>,
    /// The `spec.desiredState` the controller has applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_state: Option<DesiredState>,
    #[serde(default)]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
