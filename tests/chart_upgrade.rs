//! Upgrading an installation: `helm upgrade` from the previous chart release to this one, with
//! resources and engine data in place.
//!
//! The previous release is `tests/fixtures/durin-0.1.0.tgz`, the chart as packaged by
//! `helm package` at the last commit before 0.2.0. No kubelet runs here, so no pod starts: the
//! engine runs as the StatefulSet's pod would, `durin operator` on a data directory that is
//! kept across the upgrade as the pod's PersistentVolumeClaim is, and killed and started again
//! where the upgrade replaces the pod. What the test holds the chart to is what decides whether
//! that is true in a cluster: the StatefulSet is updated in place (never recreated, its
//! immutable fields unchanged), its volume claim and the data directory stay the same, and the
//! CRDs are upgraded while the resources stored under the old ones stay readable and owned.

mod common;

use common::kube_env::{KubeEnv, condition, eventually};
use common::{DurinServer, ExampleWorker};
use serde_json::Value;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/durin");
const PREVIOUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/durin-0.1.0.tgz"
);
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/k8s");
const TASK_QUEUE: &str = "durin-k8s-examples";

fn example(name: &str) -> String {
    std::fs::read_to_string(format!("{EXAMPLES}/{name}")).expect("example manifest")
}

async fn helm_ok(kube: &KubeEnv, args: &[&str]) -> String {
    let out = kube.helm(args).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "helm {args:?}: {text}");
    text
}

/// What of the StatefulSet must survive an upgrade for the pod to find its data again.
fn storage_identity(sts: &Value) -> Value {
    let container = &sts["spec"]["template"]["spec"]["containers"][0];
    serde_json::json!({
        "uid": sts["metadata"]["uid"],
        "selector": sts["spec"]["selector"],
        "serviceName": sts["spec"]["serviceName"],
        "volumeClaimTemplates": sts["spec"]["volumeClaimTemplates"],
        "dataDir": container["args"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a.as_str().is_some_and(|a| a.starts_with("--data-dir")))),
        "mounts": container["volumeMounts"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_upgrade_from_the_previous_chart_keeps_resources_and_data() {
    let previous_version = PREVIOUS
        .rsplit("durin-")
        .next()
        .and_then(|v| v.strip_suffix(".tgz"))
        .expect("fixture name");
    let current_version = common::chart_field("version");
    assert_ne!(
        previous_version, current_version,
        "bump charts/durin/Chart.yaml's version, and make the fixture the release before it"
    );

    let kube = KubeEnv::start().await;
    kube.kubectl_ok(&["create", "namespace", "durin-system"])
        .await;
    helm_ok(&kube, &["install", "durin", PREVIOUS, "-n", "durin-system"]).await;
    kube.crds_established().await;
    let before = kube
        .get_json(&["-n", "durin-system", "statefulset", "durin"])
        .await;

    // The engine as the old release's pod, with work in every state: a workflow completed,
    // one running for an hour, a Worker whose template the old schema let through unchecked.
    let mut engine = DurinServer::start_operator(&kube.kubeconfig, &[]).await;
    let _worker = ExampleWorker::start(engine.port(), "default", TASK_QUEUE);
    assert!(
        kube.apply(&example("hello-workflow.yaml"))
            .await
            .status
            .success()
    );
    kube.kubectl_ok(&[
        "wait",
        "--for=condition=Completed",
        "workflow/hello",
        "--timeout=60s",
    ])
    .await;
    let completed = kube.get_json(&["workflow", "hello"]).await["status"].clone();
    assert!(
        kube.apply(&example("sleeper-workflow.yaml"))
            .await
            .status
            .success()
    );
    eventually(30, "sleeper running", || async {
        let s = kube.get_json(&["workflow", "sleeper"]).await["status"].clone();
        (s["phase"] == "Running").then_some(())
    })
    .await;
    let unchecked = example("worker.yaml")
        .replace("resources:", "imagePullPolicyy: Always\n        resources:");
    let out = kube.apply(&unchecked).await;
    assert!(
        out.status.success(),
        "the 0.1.0 CRD took any pod template: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The upgrade itself: in place, nothing recreated, the CRDs replaced by this chart's.
    helm_ok(&kube, &["upgrade", "durin", CHART, "-n", "durin-system"]).await;
    let releases: Value =
        serde_json::from_str(&helm_ok(&kube, &["list", "-n", "durin-system", "-o", "json"]).await)
            .expect("helm list json");
    assert_eq!(releases[0]["chart"], format!("durin-{current_version}"));
    assert_eq!(releases[0]["revision"], "2");
    let after = kube
        .get_json(&["-n", "durin-system", "statefulset", "durin"])
        .await;
    assert_eq!(
        storage_identity(&before),
        storage_identity(&after),
        "the upgraded pod must find the same volume at the same path"
    );
    let worker_crd = kube.get_json(&["crd", "workers.durin.dev"]).await;
    let template = &worker_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        ["properties"]["template"];
    assert!(
        template["properties"]["spec"]["properties"]["containers"].is_object(),
        "the Worker CRD was not upgraded: {template}"
    );
    assert_eq!(
        worker_crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );

    // The new pod on the same volume: everything is still there and still moves.
    engine.restart().await;
    let hello = kube.get_json(&["workflow", "hello"]).await["status"].clone();
    assert_eq!(hello["runId"], completed["runId"]);
    assert_eq!(hello["result"], completed["result"]);
    let client = engine.client().await;
    let described = client
        .get_workflow_handle::<temporalio_client::UntypedWorkflow>("hello")
        .describe(Default::default())
        .await
        .expect("the completed workflow is still in the engine");
    assert_eq!(
        described
            .raw_description
            .workflow_execution_info
            .map(|i| i.status),
        Some(durin::proto::api::enums::v1::WorkflowExecutionStatus::Completed as i32)
    );
    // Resources written before the upgrade get this release's health conditions.
    eventually(30, "hello Ready under the new release", || async {
        let s = kube.get_json(&["workflow", "hello"]).await["status"].clone();
        (condition(&s, "Ready")["status"] == "True").then_some(())
    })
    .await;
    kube.kubectl_ok(&[
        "patch",
        "workflow",
        "sleeper",
        "--type=merge",
        "-p",
        r#"{"spec":{"desiredState":"Canceled"}}"#,
    ])
    .await;
    kube.kubectl_ok(&[
        "wait",
        "--for=condition=Canceled",
        "workflow/sleeper",
        "--timeout=60s",
    ])
    .await;
    // The Worker stored under the old schema stays readable (the field the new schema does
    // not know is pruned), its Deployment still owned, its status still written.
    let worker = kube.get_json(&["worker", "examples"]).await;
    let container = &worker["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "ghcr.io/durin-dev/durin-examples:latest"
    );
    assert!(container["imagePullPolicyy"].is_null(), "{container}");
    eventually(30, "the old Worker gets the new conditions", || async {
        let s = kube.get_json(&["worker", "examples"]).await["status"].clone();
        (condition(&s, "Reconciling")["status"] == "True").then_some(())
    })
    .await;
    kube.kubectl_ok(&["get", "deployment", "examples"]).await;
}
