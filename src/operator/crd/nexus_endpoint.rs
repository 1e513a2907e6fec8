//! `NexusEndpoint`: an endpoint of the engine's Nexus registry, routing the operations callers
//! schedule on its name to a handler task queue in a Durin namespace.
//!
//! Namespaced, like the other resources: whoever may edit a Kubernetes namespace may publish
//! endpoints that route into the Durin namespaces it may use (the tenancy rule), never into
//! another tenant's. Endpoint names are global in the engine (callers name them), so a name
//! another resource (or anyone outside the cluster) already holds is refused, never taken over.
// kube-derive repeats `type_ = ...` across `printcolumn(...)` entries, which clippy reads
// as a duplicated attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "durin.dev",
    version = "v1alpha1",
    kind = "NexusEndpoint",
    namespaced,
    status = "NexusEndpointStatus",
    shortname = "dnxe",
    category = "durin",
    doc = "A Nexus endpoint: callers' operations on its name go to a handler task queue",
    printcolumn(
        name = "Endpoint",
        type_ = "string",
        json_path = ".status.endpointName"
    ),
    printcolumn(name = "Namespace", type_ = "string", json_path = ".status.namespace"),
    printcolumn(name = "Queue", type_ = "string", json_path = ".spec.taskQueue"),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Accepted")].status"#
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct NexusEndpointSpec {
    /// The endpoint's name in the engine, which caller workflows use; defaults to the
    /// resource name. Letters, digits and dashes, starting with a letter, at most 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 200),
        regex(pattern = r"^[a-zA-Z][a-zA-Z0-9\-]*[a-zA-Z0-9]$")
    )]
    pub endpoint_name: Option<String>,
    /// Durin namespace of the handlers; defaults to the resource's Kubernetes namespace.
    /// Another one needs a grant from a cluster administrator: the
    /// `durin.dev/allowed-namespaces` annotation on the Kubernetes Namespace (else
    /// Accepted=False, reason NamespaceNotAllowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,
    /// The task queue the handler workers poll.
    #[schemars(length(min = 1, max = 1000))]
    pub task_queue: String,
    /// What the endpoint offers, for people (Markdown), shown by `temporal operator nexus
    /// endpoint get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16000))]
    pub description: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NexusEndpointStatus {
    /// The engine's id of the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_name: Option<String>,
    /// The Durin namespace operations are routed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The engine's version of the endpoint (each change adds one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    #[serde(default)]
    #[schemars(schema_with = "schema::conditions")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
