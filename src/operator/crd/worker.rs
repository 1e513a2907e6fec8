//! `Worker`: a Deployment of workflow/activity workers polling one task queue.
// kube-derive repeats `type_ = ...` across `printcolumn(...)` entries, which clippy reads
// as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;
pub use super::worker_rollout::{Rollout, RolloutStatus, RolloutStrategy, VersionStatus};

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "durin.dev",
    version = "v1alpha1",
    kind = "Worker",
    namespaced,
    status = "WorkerStatus",
    shortname = "dwk",
    category = "durin",
    doc = "Workers for one task queue, run as a Deployment",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Queue", type_ = "string", json_path = ".spec.taskQueue"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Pollers", type_ = "integer", json_path = ".status.pollerCount"),
    printcolumn(name = "Backlog", type_ = "integer", json_path = ".status.backlog"),
    printcolumn(
        name = "Current",
        type_ = "string",
        json_path = ".status.rollout.currentBuildId"
    ),
    printcolumn(
        name = "Ramping",
        type_ = "string",
        json_path = ".status.rollout.rampingBuildId"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("!has(self.autoscaling) || !has(self.autoscaling.maxReplicas) || !has(self.autoscaling.minReplicas) || self.autoscaling.minReplicas <= self.autoscaling.maxReplicas").message("autoscaling.minReplicas must not exceed maxReplicas"))]
#[serde(rename_all = "camelCase")]
pub struct WorkerSpec {
    /// The task queue the worker pods poll (given to them as TEMPORAL_TASK_QUEUE).
    #[schemars(length(min = 1, max = 1000))]
    pub task_queue: String,
    /// Durin namespace; defaults to the resource's Kubernetes namespace. Another one needs a
    /// grant from a cluster administrator: the `durin.dev/allowed-namespaces` annotation on
    /// the Kubernetes Namespace (else Accepted=False, reason NamespaceNotAllowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,
    /// Pod count. Left unset, the Deployment's replicas are not managed (an HPA may own them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i32>,
    /// Scale on the task queue's backlog; overrides `replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    /// The pod template (a `core/v1` PodTemplateSpec) of the worker pods.
    #[schemars(schema_with = "schema::pod_template")]
    pub template: PodTemplateSpec,
    /// Roll out each pod template as a new version of a worker deployment (worker
    /// versioning): pinned workflows finish on the version they started on while the new
    /// version takes new work. Unset, the Worker is one plain Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Autoscaling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replicas: Option<i32>,
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// Backlog (tasks waiting) each pod should carry; default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub target_backlog_per_replica: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Poller {
    pub identity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_access_time: Option<String>,
    /// `workflow` or `activity`.
    pub kind: String,
    /// The build id the poller serves, when it polls as a version of a worker deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Label selector of the pods, for the `/scale` subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    #[serde(default)]
    pub pollers: Vec<Poller>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poller_count: Option<i32>,
    /// Tasks waiting in the queue (workflow and activity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<i64>,
    /// With `spec.rollout`: the versions and where the rollout stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,
    #[serde(default)]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
