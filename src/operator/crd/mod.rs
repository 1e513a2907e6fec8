//! The custom resources of API group `durin.dev`, version `v1alpha1`.
//!
//! Spec fields keep what the user wrote (durations stay strings, parsed by the controllers);
//! status holds a bounded summary, the engine keeps histories and large payloads.

pub mod schedule;

pub mod nexus_endpoint;
pub mod reference;
mod schema;
pub mod worker;
pub mod worker_rollout;
pub mod workflow;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use nexus_endpoint::{NexusEndpoint, NexusEndpointSpec, NexusEndpointStatus};
pub use schedule::{Schedule, ScheduleSpec, ScheduleStatus};
pub use worker::{Worker, WorkerSpec, WorkerStatus};
pub use workflow::{Workflow, WorkflowSpec, WorkflowStatus};

pub const GROUP: &str = "durin.dev";

/// Every CRD Durin serves, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        Workflow::crd(),
        Schedule::crd(),
        Worker::crd(),
        NexusEndpoint::crd(),
    ]
}

/// The CRDs as one multi-document YAML stream (what `durin crds` prints and `crds/` holds).
pub fn to_yaml() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for crd in all() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crds_are_structural_and_small() {
        for crd in all() {
            let json = serde_json::to_string(&crd).expect("crd serializes");
            assert!(
                json.len() < 256 * 1024,
                "{} is {} bytes",
                crd.spec.names.kind,
                json.len()
            );
            assert!(json.contains("openAPIV3Schema"));
        }
    }

    #[test]
    fn committed_crds_are_current() {
        let generated = to_yaml().expect("crds render");
        for (file, fix) in [
            (
                "crds/durin.dev.yaml",
                "cargo run -- crds > crds/durin.dev.yaml",
            ),
            (
                "charts/durin/files/crds.yaml",
                "cargo run -- crds > charts/durin/files/crds.yaml",
            ),
        ] {
            let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(committed == generated, "{file} is stale: run `{fix}`");
        }
    }
}
