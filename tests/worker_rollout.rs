//! A `Worker` with `spec.rollout` rolls out versions of its workers with worker versioning,
//! against a real kube-apiserver and `durin operator`. No kubelet runs here, so the test
//! stands in for one: for each of the Worker's Deployments that wants pods it runs a worker
//! process (the official Python SDK, `tests/k8s/versioned_worker.py`) with that Deployment's
//! environment, the code chosen by the image tag (`common::kubelet`), and reports its pods
//! ready.
//!
//! v1 passes its gate and becomes current → the image changes → v2 passes its gate, ramps,
//! then becomes current → a pinned workflow finishes on v1 while an auto-upgrade one moves to
//! v2 → v1 drains, is scaled to zero and deleted → the image goes back and v1 is current again
//! at once (a rollback) → v3's gate fails and the rollout holds.

mod common;

use std::process::{Command, Stdio};

use common::DurinServer;
use common::kube_env::{KubeEnv, condition, eventually};
use common::kubelet::Kubelet;
use serde_json::Value;
use temporalio_client::{Client, grpc::WorkflowService, tonic::Request};
use temporalio_common::protos::temporal::api::{
    common::v1::{WorkflowExecution, WorkflowType},
    enums::v1::{EventType, HistoryEventFilterType},
    history::v1::history_event::Attributes,
    query::v1::WorkflowQuery,
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        GetWorkflowExecutionHistoryRequest, QueryWorkflowRequest, SignalWorkflowExecutionRequest,
        StartWorkflowExecutionRequest,
    },
};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const WORKER: &str = "orders";
const TASK_QUEUE: &str = "orders";

/// The example manifest with a rollout fast enough for a test: one 50% step of 3 s, and a
/// drained version scaled down after 1 s and deleted after 3 s; and a gate, the `Gate`
/// workflow of `versioning_workflows`, each new version must complete first.
fn manifest(image_tag: &str) -> String {
    let text = std::fs::read_to_string(format!("{ROOT}/examples/k8s/worker-rollout.yaml"))
        .expect("example manifest");
    let fast = text
        .replace(
            "    - {rampPercentage: 10, pauseDuration: 5m}\n    - {rampPercentage: 50, pauseDuration: 10m}",
            "    - {rampPercentage: 50, pauseDuration: 3s}",
        )
        .replace(
            "sunset: {scaledownDelay: 1h, deleteDelay: 24h}",
            "sunset: {scaledownDelay: 1s, deleteDelay: 3s}",
        )
        .replace("orders-worker:v1", &format!("orders-worker:{image_tag}"))
        .replace(
            "  rollout:\n",
            "  rollout:\n    gate: {workflowType: Gate, input: [smoke test]}\n",
        );
    assert!(fast.contains("pauseDuration: 3s") && fast.contains("deleteDelay: 3s"));
    assert!(fast.contains("workflowType: Gate"));
    fast
}

struct Cluster {
    kube: KubeEnv,
    operator: DurinServer,
    _kubelet: Kubelet,
}

impl Cluster {
    async fn start() -> Self {
        let kube = KubeEnv::start().await;
        kube.install_crds(&format!("{ROOT}/crds/durin.dev.yaml"))
            .await;
        let operator = DurinServer::start_operator(&kube.kubeconfig, &[]).await;
        let kubelet = Kubelet::start(&kube, &format!("durin.dev/worker={WORKER}"));
        Cluster {
            kube,
            operator,
            _kubelet: kubelet,
        }
    }

    /// Waits until the Worker's status passes `check`.
    async fn until<T>(&self, secs: u64, what: &str, check: impl Fn(&Value) -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let status = self.kube.get_json(&["worker", WORKER]).await["status"].clone();
            if let Some(v) = check(&status) {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out after {secs}s waiting for {what}; status: {status:#}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }

    async fn set_image(&self, tag: &str) {
        let out = self.kube.apply(&manifest(tag)).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The reasons of the Worker's events, oldest first.
    async fn events(&self) -> Vec<String> {
        let selector = format!("involvedObject.name={WORKER},involvedObject.kind=Worker");
        let list = self
            .kube
            .get_json(&[
                "events",
                "--field-selector",
                &selector,
                "--sort-by=.metadata.creationTimestamp",
            ])
            .await;
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["reason"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

fn rollout(status: &Value) -> &Value {
    &status["rollout"]
}

fn version<'a>(status: &'a Value, build: &str) -> Option<&'a Value> {
    rollout(status)["versions"]
        .as_array()?
        .iter()
        .find(|v| v["buildId"] == build)
}

/// The target build id once it is the current version.
fn current_target(status: &Value) -> Option<String> {
    let r = rollout(status);
    let target = r["targetBuildId"].as_str()?;
    (r["currentBuildId"] == target).then(|| target.to_string())
}

fn execution(id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: id.into(),
        run_id: String::new(),
    })
}

async fn start(client: &Client, workflow_type: &str, id: &str) {
    let mut raw = client.clone();
    raw.start_workflow_execution(Request::new(StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: id.into(),
        workflow_type: Some(WorkflowType {
            name: workflow_type.into(),
        }),
        task_queue: Some(TaskQueue {
            name: TASK_QUEUE.into(),
            ..Default::default()
        }),
        request_id: format!("start-{id}"),
        ..Default::default()
    }))
    .await
    .expect("start workflow");
}

/// The answer of the workflow's `version` query: which code runs it.
async fn running_code(client: &Client, id: &str) -> Option<String> {
    let mut raw = client.clone();
    let answer = raw
        .query_workflow(Request::new(QueryWorkflowRequest {
            namespace: "default".into(),
            execution: execution(id),
            query: Some(WorkflowQuery {
                query_type: "version".into(),
                ..Default::default()
            }),
            ..Default::default()
        }))
        .await
        .ok()?
        .into_inner();
    let payloads = answer.query_result?.payloads;
    serde_json::from_slice(&payloads.first()?.data).ok()
}

async fn finish(client: &Client, id: &str) -> String {
    let mut raw = client.clone();
    raw.signal_workflow_execution(Request::new(SignalWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: execution(id),
        signal_name: "finish".into(),
        request_id: format!("finish-{id}"),
        ..Default::default()
    }))
    .await
    .expect("signal");
    result_of(client, id).await
}

/// The result of workflow `id` once it completed (JSON-decoded string).
async fn result_of(client: &Client, id: &str) -> String {
    eventually(30, &format!("{id} completes"), || async {
        let mut raw = client.clone();
        let history = raw
            .get_workflow_execution_history(Request::new(GetWorkflowExecutionHistoryRequest {
                namespace: "default".into(),
                execution: execution(id),
                history_event_filter_type: HistoryEventFilterType::CloseEvent as i32,
                ..Default::default()
            }))
            .await
            .ok()?
            .into_inner();
        let last = history.history?.events.pop()?;
        assert_eq!(
            last.event_type,
            EventType::WorkflowExecutionCompleted as i32
        );
        match last.attributes? {
            Attributes::WorkflowExecutionCompletedEventAttributes(a) => {
                serde_json::from_slice(&a.result?.payloads.first()?.data).ok()
            }
            _ => None,
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_pod_template_is_ramped_made_current_and_the_old_version_drained() {
    let cluster = Cluster::start().await;
    let client = cluster.operator.client().await;
    // Steps that do not increase, or a Progressive rollout without steps, are refused.
    let example = manifest("v1");
    let steps = "    - {rampPercentage: 50, pauseDuration: 3s}";
    for (bad, message) in [
        (
            example.replace(
                steps,
                &format!("{steps}\n    - {{rampPercentage: 20, pauseDuration: 1s}}"),
            ),
            "rampPercentage must increase",
        ),
        (
            example.replace(&format!("    steps:\n{steps}\n"), ""),
            "needs at least one step",
        ),
    ] {
        let out = cluster.kube.apply(&bad).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(message),
            "{stderr}"
        );
    }
    cluster.set_image("v1").await;

    // v1: its workers poll, and with no version current yet it becomes current at once.
    let v1 = cluster.until(60, "v1 current", current_target).await;
    assert!(v1.starts_with("v1-"), "build id from the image tag: {v1}");
    let deployment = cluster
        .kube
        .get_json(&["deployment", &format!("{WORKER}-{v1}")])
        .await;
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    let var = |k: &str| {
        env.as_array()
            .and_then(|e| e.iter().find(|v| v["name"] == k))
            .map(|v| v["value"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(var("TEMPORAL_DEPLOYMENT_NAME"), "default/orders");
    assert_eq!(var("TEMPORAL_WORKER_BUILD_ID"), v1.as_str());
    assert_eq!(
        deployment["metadata"]["ownerReferences"][0]["kind"],
        "Worker"
    );
    cluster
        .kube
        .kubectl_ok(&[
            "wait",
            "--for=condition=RolledOut",
            "worker/orders",
            "--timeout=30s",
        ])
        .await;

    // One pinned and one auto-upgrade workflow, both running on v1.
    start(&client, "Rollout", "pinned-order").await;
    start(&client, "Upgrading", "upgrading-order").await;
    for id in ["pinned-order", "upgrading-order"] {
        let code = eventually(30, &format!("{id} runs on v1"), || {
            running_code(&client, id)
        })
        .await;
        assert_eq!(code, "v1");
    }

    // A new image is a new version: ramped at 50%, then current.
    cluster.set_image("v2").await;
    let v2 = cluster
        .until(90, "v2 current", |s| {
            current_target(s).filter(|b| b.starts_with("v2-"))
        })
        .await;
    assert_ne!(v1, v2);
    let events = cluster.events().await;
    let gated = events.iter().rposition(|e| e == "GateStarted");
    let ramped = events.iter().position(|e| e == "VersionRamping");
    let promoted = events.iter().position(|e| e == "RampCompleted");
    assert!(
        gated < ramped && ramped.is_some() && ramped < promoted,
        "gate, then ramp, then promotion: {events:?}"
    );
    // The gate ran on v2's code (pinned to the new version, not the current one).
    let gate_id = format!("default/orders:{v2}:gate");
    assert_eq!(
        result_of(&client, &gate_id).await,
        "smoke test passed on v2"
    );
    let kubectl_get = cluster.kube.kubectl_ok(&["get", "dwk", WORKER]).await;
    assert!(
        kubectl_get.contains("CURRENT") && kubectl_get.contains(&v2),
        "{kubectl_get}"
    );

    // v1 drains while the pinned workflow runs on it; its pods stay.
    let draining = cluster
        .until(30, "v1 draining", |s| {
            version(s, &v1)
                .filter(|v| v["status"] == "Draining")
                .cloned()
        })
        .await;
    assert_eq!(draining["replicas"], 1, "{draining}");
    assert!(
        draining["runningWorkflows"].as_i64() >= Some(1),
        "{draining}"
    );
    // Longer than the sunset delays: a draining version is not retired.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let status = cluster.kube.get_json(&["worker", WORKER]).await["status"].clone();
    let still = version(&status, &v1).expect("v1 in status");
    assert_eq!(
        (&still["status"], &still["replicas"], &still["pollers"]),
        (&Value::from("Draining"), &Value::from(1), &Value::from(1)),
        "{still}"
    );
    // The auto-upgrade workflow moves to v2 at its next task; the pinned one stays on v1.
    assert_eq!(finish(&client, "upgrading-order").await, "v2");
    assert_eq!(
        running_code(&client, "pinned-order").await.as_deref(),
        Some("v1")
    );
    assert_eq!(finish(&client, "pinned-order").await, "v1");

    // Drained: scaled to zero, then its Deployment deleted.
    cluster
        .until(60, "v1's Deployment deleted", |s| {
            version(s, &v1)
                .is_none_or(|v| v["deployment"].is_null())
                .then_some(())
        })
        .await;
    let gone = cluster
        .kube
        .kubectl(&["get", "deployment", &format!("{WORKER}-{v1}")])
        .await;
    assert!(!gone.status.success(), "v1's Deployment still exists");
    let events = cluster.events().await;
    for reason in ["VersionScaledDown", "VersionDeleted"] {
        assert!(events.iter().any(|e| e == reason), "{reason} in {events:?}");
    }

    // Rollback: the v1 template again is the v1 version again, current as soon as it polls.
    cluster.set_image("v1").await;
    // (The status read first may still be the previous pass's, with v2 the target.)
    let back = cluster
        .until(60, "v1 current again", |s| {
            current_target(s).filter(|b| b.starts_with("v1-"))
        })
        .await;
    assert_eq!(back, v1, "the same template is the same version");
    assert!(cluster.events().await.iter().any(|e| e == "RolledBack"));
    start(&client, "Rollout", "after-rollback").await;
    assert_eq!(finish(&client, "after-rollback").await, "v1");
    let s = cluster.kube.get_json(&["worker", WORKER]).await["status"].clone();
    assert_eq!(condition(&s, "RolledOut")["status"], "True", "{s}");

    // v3's gate fails: the rollout holds, v3 gets no traffic, v1 stays current.
    cluster.set_image("v3").await;
    let held = cluster
        .until(60, "v3's gate failed", |s| {
            (condition(s, "RolledOut")["reason"] == "GateFailed").then(|| s.clone())
        })
        .await;
    assert_eq!(rollout(&held)["currentBuildId"], v1.as_str(), "{held:#}");
    assert!(rollout(&held)["rampingBuildId"].is_null(), "{held:#}");
    assert_eq!(rollout(&held)["gate"], "Failed", "{held:#}");
    assert!(cluster.events().await.iter().any(|e| e == "GateFailed"));
    start(&client, "Rollout", "while-v3-is-held").await;
    assert_eq!(finish(&client, "while-v3-is-held").await, "v1");
}

/// temporal-worker-controller, built from its Go module (`scripts/temporal-worker-controller`),
/// against `durin dev`: its `WorkerDeployment` rolls out versions through Durin's worker
/// versioning RPCs as it would on Temporal. Ignored by default (it builds the controller, and
/// its steps cannot pause for less than 30 s): `cargo test --test worker_rollout -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "builds temporal-worker-controller; run with -- --ignored"]
async fn temporal_worker_controller_rolls_out_workers_on_durin() {
    let built = Command::new(format!("{ROOT}/scripts/temporal-worker-controller"))
        .arg("build")
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/temporal-worker-controller");
    assert!(
        built.status.success(),
        "building temporal-worker-controller failed"
    );
    let paths = String::from_utf8_lossy(&built.stdout).to_string();
    let path = |key: &str| {
        paths
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} printed"))
            .to_string()
    };
    let durin = DurinServer::start().await;
    let client = durin.client().await;
    let kube = KubeEnv::start().await;
    kube.install_crds(&path("CRDS")).await;
    let controller = TemporalWorkerController::start(&kube, &path("MANAGER"));
    let _kubelet = Kubelet::start(&kube, "temporal.io/deployment-name=hello");
    let apply = |tag: &str| {
        format!(
            "apiVersion: temporal.io/v1alpha1\nkind: Connection\nmetadata: {{name: durin}}\n\
             spec: {{hostPort: \"127.0.0.1:{port}\"}}\n---\n\
             apiVersion: temporal.io/v1alpha1\nkind: WorkerDeployment\nmetadata: {{name: hello}}\n\
             spec:\n  replicas: 1\n  workerOptions: {{connectionRef: {{name: durin}}, temporalNamespace: default}}\n\
             \x20 rollout:\n    strategy: Progressive\n    steps: [{{rampPercentage: 50, pauseDuration: 30s}}]\n\
             \x20 sunset: {{scaledownDelay: 1s, deleteDelay: 1s}}\n\
             \x20 template:\n    spec:\n      containers:\n      - name: worker\n        image: example.com/hello-worker:{tag}\n\
             \x20       env: [{{name: TEMPORAL_TASK_QUEUE, value: {TASK_QUEUE}}}]\n",
            port = durin.port()
        )
    };
    let out = kube.apply(&apply("v1")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // v1 becomes current in Durin's worker deployment `default/hello`.
    let v1 = eventually(120, "v1 current", || deployment_routing(&client, "hello")).await;
    assert!(v1.current.starts_with("v1-"), "{v1:?}");
    start(&client, "Rollout", "twc-pinned").await;
    let code = eventually(30, "twc-pinned on v1", || {
        running_code(&client, "twc-pinned")
    })
    .await;
    assert_eq!(code, "v1");

    // v2: ramped at 50 % by the controller, then current after its 30 s step.
    let out = kube.apply(&apply("v2")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ramping = eventually(120, "v2 ramping", || async {
        deployment_routing(&client, "hello")
            .await
            .filter(|r| r.ramping.starts_with("v2-"))
    })
    .await;
    assert_eq!(
        (ramping.current.as_str(), ramping.percentage),
        (v1.current.as_str(), 50.0)
    );
    let v2 = eventually(120, "v2 current", || async {
        deployment_routing(&client, "hello")
            .await
            .filter(|r| r.current.starts_with("v2-"))
    })
    .await;
    assert!(v2.ramping.is_empty(), "{v2:?}");
    // The pinned run finishes on v1; then v1 is drained, scaled down and deleted.
    assert_eq!(finish(&client, "twc-pinned").await, "v1");
    let v1_deployment = format!("hello-{}", v1.current);
    eventually(180, "v1's Deployment deleted", || async {
        let out = kube.kubectl(&["get", "deployment", &v1_deployment]).await;
        (!out.status.success()).then_some(())
    })
    .await;
    start(&client, "Rollout", "twc-after").await;
    assert_eq!(finish(&client, "twc-after").await, "v2");
    // The controller's own view agrees, and it met nothing it took for an error.
    let status = kube
        .get_json(&["workerdeployments.temporal.io", "hello"])
        .await["status"]
        .clone();
    assert_eq!(
        status["currentVersion"]["buildID"],
        v2.current.as_str(),
        "{status:#}"
    );
    let errors = controller.errors();
    assert!(
        errors.is_empty(),
        "temporal-worker-controller logged errors:\n{}",
        errors.join("\n")
    );
}

/// Temporal's controller as a process: leader election, metrics and probes off; its webhook
/// server (which cannot be turned off) gets a throwaway certificate.
struct TemporalWorkerController {
    child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl TemporalWorkerController {
    fn start(kube: &KubeEnv, manager: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = dir.path().join("k8s-webhook-server/serving-certs");
        std::fs::create_dir_all(&certs).expect("cert dir");
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
            ])
            .arg("-keyout")
            .arg(certs.join("tls.key"))
            .arg("-out")
            .arg(certs.join("tls.crt"))
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(
            made.success(),
            "openssl could not make the webhook certificate"
        );
        let log = std::fs::File::create(dir.path().join("controller.log")).expect("log file");
        let child = tokio::process::Command::new(manager)
            .args([
                "--metrics-bind-address",
                "0",
                "--health-probe-bind-address",
                "0",
            ])
            .arg("--kubeconfig")
            .arg(&kube.kubeconfig)
            .env("TMPDIR", dir.path())
            .env("POD_NAMESPACE", "default")
            .env("CONTROLLER_IDENTITY", "temporal-worker-controller")
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("run temporal-worker-controller");
        TemporalWorkerController { child, _dir: dir }
    }
}

impl TemporalWorkerController {
    /// The error lines the controller logged (JSON lines at level `error`).
    fn errors(&self) -> Vec<String> {
        let log =
            std::fs::read_to_string(self._dir.path().join("controller.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains(r#""level":"error""#))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for TemporalWorkerController {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[derive(Debug)]
struct Routing {
    current: String,
    ramping: String,
    percentage: f32,
}

/// The current and ramping build ids of the worker deployment `default/<name>` in Durin.
async fn deployment_routing(client: &Client, name: &str) -> Option<Routing> {
    use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeWorkerDeploymentRequest;
    let mut raw = client.clone();
    let described = raw
        .describe_worker_deployment(Request::new(DescribeWorkerDeploymentRequest {
            namespace: "default".into(),
            deployment_name: format!("default/{name}"),
        }))
        .await
        .ok()?
        .into_inner();
    let routing = described.worker_deployment_info?.routing_config?;
    let build = |v: Option<
        temporalio_common::protos::temporal::api::deployment::v1::WorkerDeploymentVersion,
    >| { v.map(|v| v.build_id).unwrap_or_default() };
    let current = build(routing.current_deployment_version);
    (!current.is_empty()).then(|| Routing {
        current,
        ramping: build(routing.ramping_deployment_version),
        percentage: routing.ramping_version_percentage,
    })
}
