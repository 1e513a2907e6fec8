//! `Schedule`: an engine schedule kept as YAML.
// kube-derive repeats `type_ = ...` across `printcolumn(...)` entries, which clippy reads
// as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;
use super::workflow::WorkflowTemplate;

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "durin.dev",
    version = "v1alpha1",
    kind = "Schedule",
    namespaced,
    status = "ScheduleStatus",
    shortname = "dsch",
    category = "durin",
    doc = "A schedule that starts workflows on a timetable",
    // What the engine reports (the Paused condition), not what the spec asks for: a pause
    // that has not been applied yet must not show as one.
    printcolumn(
        name = "Paused",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Paused")].status"#
    ),
    printcolumn(
        name = "Next",
        type_ = "string",
        json_path = ".status.nextActionTimes[0]"
    ),
    printcolumn(name = "Last", type_ = "string", json_path = ".status.lastActionTime"),
    printcolumn(
        name = "Running",
        type_ = "integer",
        json_path = ".status.runningCount"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("(has(self.schedule.cronExpressions) && size(self.schedule.cronExpressions) > 0) || (has(self.schedule.intervals) && size(self.schedule.intervals) > 0) || (has(self.schedule.calendars) && size(self.schedule.calendars) > 0)").message("schedule needs at least one of cronExpressions, intervals or calendars"))]
#[x_kube(validation = Rule::new("!has(oldSelf.triggers) || (has(self.triggers) && oldSelf.triggers.all(o, self.triggers.exists(t, t.id == o.id)))").message("triggers are append-only"))]
#[x_kube(validation = Rule::new("!has(oldSelf.backfills) || (has(self.backfills) && oldSelf.backfills.all(o, self.backfills.exists(b, b.id == o.id)))").message("backfills are append-only"))]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// Schedule id in the engine; defaults to the resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1000))]
    pub schedule_id: Option<String>,
    /// Durin namespace; defaults to the resource's Kubernetes namespace. Another one needs a
    /// grant from a cluster administrator: the `durin.dev/allowed-namespaces` annotation on
    /// the Kubernetes Namespace (else Accepted=False, reason NamespaceNotAllowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,
    /// When actions happen.
    pub schedule: ScheduleTimes,
    pub action: ScheduleAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<SchedulePolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ScheduleState>,
    /// Immediate actions; each id runs once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub triggers: Vec<TriggerSpec>,
    /// Ranges of past times to run as if the schedule had been there; each id runs once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub backfills: Vec<BackfillSpec>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleTimes {
    /// Cron strings (5–7 fields, `@daily` style descriptors, optional `CRON_TZ=`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cron_expressions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<IntervalSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calendars: Vec<CalendarSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_calendars: Vec<CalendarSpec>,
    /// RFC 3339 times bounding the schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub jitter: Option<String>,
    /// IANA time zone for calendars and cron strings (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntervalSpec {
    #[schemars(schema_with = "schema::duration")]
    pub every: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub offset: Option<String>,
}

/// Calendar fields take Temporal's range syntax (`*`, `1-5`, `0/15`, `mon-fri`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CalendarSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hour: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_of_month: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub month: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_of_week: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleAction {
    pub start_workflow: WorkflowTemplate,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum OverlapPolicy {
    Skip,
    BufferOne,
    BufferAll,
    CancelOther,
    TerminateOther,
    AllowAll,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulePolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<OverlapPolicy>,
    /// How late a missed action may still run after downtime (default 1y).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub catchup_window: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_on_failure: Option<bool>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Stop after `remainingActions` actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_actions: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub remaining_actions: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerSpec {
    #[schemars(length(min = 1, max = 63))]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<OverlapPolicy>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackfillSpec {
    #[schemars(length(min = 1, max = 63))]
    pub id: String,
    /// RFC 3339.
    pub start_at: String,
    pub end_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap: Option<OverlapPolicy>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecentAction {
    pub scheduled_time: String,
    pub actual_time: String,
    pub workflow_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunningWorkflow {
    pub workflow_id: String,
    pub run_id: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default)]
    pub next_action_times: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_action_time: Option<String>,
    #[serde(default)]
    pub recent_actions: Vec<RecentAction>,
    #[serde(default)]
    pub running_workflows: Vec<RunningWorkflow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed_catchup_window: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_skipped: Option<i64>,
    #[serde(default)]
    pub triggers_done: Vec<String>,
    #[serde(default)]
    pub backfills_done: Vec<String>,
    #[serde(default)]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
