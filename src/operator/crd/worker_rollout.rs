//! `Worker.spec.rollout` and what the controller reports of it: with a rollout, each pod
//! template is a version of a worker deployment, run as its own Deployment, and a new template
//! is rolled out by worker versioning (ramped, made current, older versions drained).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;

/// How a new version takes over from the current one.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RolloutStrategy {
    /// The new version becomes current as soon as its workers poll.
    AllAtOnce,
    /// The new version is ramped through `steps`, then made current.
    #[default]
    Progressive,
    /// The controller runs each version's Deployment and reports; someone else (the
    /// `temporal worker deployment` commands) sets the current and ramping version.
    Manual,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.strategy != 'Progressive' || (has(self.steps) && size(self.steps) > 0)").message("the Progressive strategy needs at least one step"))]
#[x_kube(validation = Rule::new("!has(self.steps) || (self.steps.map(s, s.rampPercentage).isSorted() && self.steps.all(s, self.steps.exists_one(t, t.rampPercentage == s.rampPercentage)))").message("rampPercentage must increase from step to step"))]
pub struct Rollout {
    pub strategy: RolloutStrategy,
    /// Progressive: the share of new workflows sent to the new version, and how long each
    /// share holds before the next one (after the last step the version becomes current).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub steps: Vec<RolloutStep>,
    /// The version's build id. Unset, it is derived from the pod template (its first
    /// container's image tag and a hash of the whole template), so any template change is a
    /// new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$"))]
    pub build_id: Option<String>,
    /// Holds the rollout where it stands (the ramp stays; no step advances).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// What happens to a version once no workflow is pinned to it any more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sunset: Option<Sunset>,
    /// A workflow that must complete on a new version, pinned to it, before the version takes
    /// any traffic. Failing, it holds the rollout (`RolledOut=False`, reason `GateFailed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// The workflow type the new version's workers run (on the Worker's task queue).
    #[schemars(length(min = 1, max = 1000))]
    pub workflow_type: String,
    /// Its arguments, as JSON.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "schema::json_list")]
    pub input: Vec<serde_json::Value>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStep {
    #[schemars(range(min = 1, max = 99))]
    pub ramp_percentage: i32,
    #[schemars(schema_with = "schema::duration")]
    pub pause_duration: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sunset {
    /// How long a drained version keeps its pods before it is scaled to zero (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub scaledown_delay: Option<String>,
    /// How long a drained version's Deployment stays before it is deleted (default 24h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub delete_delay: Option<String>,
}

/// Where the rollout stands.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// The worker deployment's name in Durin (`<Kubernetes namespace>/<Worker name>`).
    pub deployment_name: String,
    /// The build id of the pod template in the spec: the version being rolled out.
    pub target_build_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_build_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramping_build_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp_percentage: Option<f32>,
    /// The Progressive step the target version is on (0-based) and when it began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<String>,
    /// The target version's gate workflow and how it stands (`Running`, `Passed`, `Failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_workflow_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    #[serde(default)]
    pub versions: Vec<VersionStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionStatus {
    pub build_id: String,
    /// The Deployment running this version's pods (none once it was deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(default)]
    pub replicas: i32,
    #[serde(default)]
    pub ready_replicas: i32,
    #[serde(default)]
    pub pollers: i32,
    /// `NotRegistered` (no worker of it polled yet), or the engine's status: `Inactive`,
    /// `Ramping`, `Current`, `Draining`, `Drained`.
    pub status: String,
    /// Open workflows running on this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_workflows: Option<i64>,
    /// When the controller first saw the version drained (sunset delays count from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drained_since: Option<String>,
}
