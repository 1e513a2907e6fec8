//! The operator end to end: a real kube-apiserver and etcd (built from their Go modules by
//! `scripts/kube-env`), `durin operator` as a child process, the built `kubectl`, and an
//! official Rust SDK worker in this process polling the operator's engine. The manifests are
//! the ones in `examples/k8s/`.
//!
//! Each scenario is its own test with its own API server, operator and worker (`Cluster`).

mod common;

use std::time::Duration;

use common::kube_env::{KubeEnv, condition, eventually};
use common::{DurinServer, ExampleWorker};
use durin::proto::api::common::v1::WorkflowExecution;
use durin::proto::api::enums::v1::WorkflowExecutionStatus;
use durin::proto::api::workflowservice::v1::{
    DescribeNamespaceRequest, DescribeScheduleRequest, DescribeWorkflowExecutionRequest,
};
use serde_json::Value;

const TASK_QUEUE: &str = "durin-k8s-examples";
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/k8s");

fn example(name: &str) -> String {
    std::fs::read_to_string(format!("{EXAMPLES}/{name}")).expect("example manifest")
}

async fn status(kube: &KubeEnv, kind: &str, name: &str) -> Value {
    kube.get_json(&[kind, name]).await["status"].clone()
}

async fn wait_phase(kube: &KubeEnv, name: &str, phase: &str) -> Value {
    eventually(60, &format!("workflow/{name} phase {phase}"), || async {
        let s = status(kube, "workflow", name).await;
        (s["phase"] == phase).then_some(s)
    })
    .await
}

/// Which of the health conditions (`Ready`, `Reconciling`, `Stalled`) is true; exactly one
/// must be.
fn standing(status: &Value) -> &'static str {
    let on: Vec<_> = ["Ready", "Reconciling", "Stalled"]
        .into_iter()
        .filter(|t| condition(status, t)["status"] == "True")
        .collect();
    assert_eq!(
        on.len(),
        1,
        "exactly one health condition is true: {status}"
    );
    on[0]
}

/// One test's cluster: its own API server (with the CRDs), `durin operator` leading as op-a,
/// and the worker behind examples/k8s as its own process (what a Worker's pods run). Each
/// scenario gets a fresh one, so a failure in one cannot hide or cause another.
struct Cluster {
    kube: KubeEnv,
    operator: DurinServer,
    _worker: ExampleWorker,
}

impl Cluster {
    async fn start() -> Self {
        let kube = KubeEnv::start().await;
        kube.install_crds(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/durin.dev.yaml"))
            .await;
        let operator = DurinServer::start_operator(&kube.kubeconfig, &LEADER_A).await;
        let _worker = ExampleWorker::start(operator.port(), "default", TASK_QUEUE);
        Cluster {
            kube,
            operator,
            _worker,
        }
    }
}

const LEADER_A: [&str; 4] = ["--identity", "op-a", "--lease-duration", "4"];
const LEADER_B: [&str; 4] = ["--identity", "op-b", "--lease-duration", "4"];

/// The resource an execution was started for, from its `durin.dev/resource` memo.
fn resource_memo(
    d: &temporalio_common::protos::temporal::api::workflowservice::v1::DescribeWorkflowExecutionResponse,
) -> Value {
    let field = d
        .workflow_execution_info
        .as_ref()
        .and_then(|i| i.memo.as_ref())
        .and_then(|m| m.fields.get("durin.dev/resource"))
        .expect("a durin.dev/resource memo");
    serde_json::from_slice(&field.data).expect("JSON")
}

async fn lease_holder(kube: &KubeEnv) -> Option<String> {
    let out = kube
        .kubectl(&["get", "lease", "durin-operator", "-o", "json"])
        .await;
    let lease: Value = serde_json::from_slice(&out.stdout).ok()?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_api_server_outage() {
    let mut cluster = Cluster::start().await;
    let kube = &mut cluster.kube;
    kube.stop_apiserver();
    tokio::time::sleep(Duration::from_secs(3)).await;
    kube.start_apiserver().await;
    // The operator reconnects on its own and goes on reconciling.
    let manifest = example("hello-workflow.yaml").replace("name: hello", "name: after-outage");
    let out = kube.apply(&manifest).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    kube.kubectl_ok(&[
        "wait",
        "--for=condition=Completed",
        "workflow/after-outage",
        "--timeout=60s",
    ])
    .await;
}

/// A second replica waits on the Lease without acting; when the leader dies it takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_the_lease() {
    let mut cluster = Cluster::start().await;
    let (kube, leader) = (&cluster.kube, &mut cluster.operator);
    eventually(30, "op-a takes the lease first", || async {
        (lease_holder(kube).await.as_deref() == Some("op-a")).then_some(())
    })
    .await;
    let standby = DurinServer::start_operator(&kube.kubeconfig, &LEADER_B).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        lease_holder(kube).await.as_deref(),
        Some("op-a"),
        "the leader keeps renewing"
    );
    let log = std::fs::read_to_string(standby.log_path()).unwrap_or_default();
    assert!(
        !log.contains("became leader"),
        "the standby must not act while op-a leads"
    );

    leader.kill();
    eventually(30, "op-b takes the lease", || async {
        (lease_holder(kube).await.as_deref() == Some("op-b")).then_some(())
    })
    .await;
    // The new leader reconciles (a spec only the engine can judge needs no worker).
    let bad = example("hello-workflow.yaml")
        .replace("name: hello", "name: after-failover")
        .replace("executionTimeout: 10m", "cronSchedule: not-a-cron");
    assert!(kube.apply(&bad).await.status.success());
    eventually(30, "op-b reconciles after-failover", || async {
        let s = status(kube, "workflow", "after-failover").await;
        (condition(&s, "Accepted")["status"] == "False").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_lease_is_held() {
    let cluster = Cluster::start().await;
    let kube = &cluster.kube;
    let holder = eventually(30, "leader lease", || lease_holder(kube)).await;
    assert_eq!(holder, "op-a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_runs_to_completed() {
    let cluster = Cluster::start().await;
    let kube = &cluster.kube;
    let out = kube.apply(&example("hello-workflow.yaml")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What a user runs: kubectl wait returns once the Completed condition is true.
    kube.kubectl_ok(&[
        "wait",
        "--for=condition=Completed",
        "workflow/hello",
        "--timeout=60s",
    ])
    .await;
    let s = status(kube, "workflow", "hello").await;
    assert_eq!(s["phase"], "Completed");
    assert_eq!(s["result"], "Hello, Kubernetes!");
    assert_eq!(s["workflowId"], "hello");
    assert_eq!(s["namespace"], "default");
    assert_eq!(s["attempt"], 1);
    assert!(s["runId"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(s["runId"], s["firstRunId"]);
    assert!(s["historyLength"].as_i64().unwrap_or(0) >= 5, "{s}");
    assert!(s["closeTime"].is_string() && s["startTime"].is_string());
    assert_eq!(condition(&s, "Running")["status"], "False");
    // The execution names its resource (what the Web UI shows under Memo).
    let client = &cluster.operator.client().await;
    let described = client
        .get_workflow_handle::<temporalio_client::UntypedWorkflow>("hello")
        .describe(Default::default())
        .await
        .expect("describe hello");
    assert_eq!(
        resource_memo(&described.raw_description),
        serde_json::json!({"apiVersion": "durin.dev/v1alpha1", "kind": "Workflow", "namespace": "default", "name": "hello"})
    );
    // Done as asked: Ready, the condition GitOps tools wait on.
    kube.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "workflow/hello",
        "--timeout=10s",
    ])
    .await;
    assert_eq!(standing(&s), "Ready", "{s}");
    assert_eq!(s["observedGeneration"], 1);
    // Re-applying the same manifest changes nothing: the resource uid is the request id.
    let again = kube.apply(&example("hello-workflow.yaml")).await;
    assert!(again.status.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(status(kube, "workflow", "hello").await["runId"], s["runId"]);
    // Events tell the story on the resource.
    let events = kube
        .kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=hello",
            "-o",
            "json",
        ])
        .await;
    assert!(
        events.contains("Started") && events.contains("Completed"),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_in_spec_are_delivered_once() {
    let cluster = Cluster::start().await;
    let kube = &cluster.kube;
    let out = kube.apply(&example("mailbox-workflow.yaml")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_phase(kube, "mailbox", "Running").await;
    let out = kube.apply(&example("mailbox-signals.yaml")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    kube.kubectl_ok(&[
        "wait",
        "--for=condition=Completed",
        "workflow/mailbox",
        "--timeout=60s",
    ])
    .await;
    let s = status(kube, "workflow", "mailbox").await;
    assert_eq!(s["result"], serde_json::json!(["hello", "world"]));
    assert_eq!(
        s["signalsDelivered"],
        serde_json::json!(["first", "second"])
    );
    // Removing a signal is refused by the schema's CEL rule (append-only).
    let out = kube.apply(&example("mailbox-workflow.yaml")).await;
    assert!(!out.status.success(), "removing signals must be refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("append-only"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_state_cancels_and_terminates() {
    let cluster = Cluster::start().await;
    let kube = &cluster.kube;
    for (name, state, phase) in [
        ("sleep-cancel", "Canceled", "Canceled"),
        ("sleep-terminate", "Terminated", "Terminated"),
    ] {
        let manifest =
            example("sleeper-workflow.yaml").replace("name: sleeper", &format!("name: {name}"));
        assert!(kube.apply(&manifest).await.status.success());
        let running = wait_phase(kube, name, "Running").await;
        assert_eq!(standing(&running), "Reconciling", "{running}");
        let patch = format!(r#"{{"spec":{{"desiredState":"{state}","reason":"test says stop"}}}}"#);
        kube.kubectl_ok(&["patch", "workflow", name, "--type", "merge", "-p", &patch])
            .await;
        kube.kubectl_ok(&[
            "wait",
            &format!("--for=condition={phase}"),
            &format!("workflow/{name}"),
            "--timeout=60s",
        ])
        .await;
        let s = status(kube, "workflow", name).await;
        assert_eq!(s["phase"], phase);
        assert_eq!(s["appliedState"], state);
        assert_eq!(standing(&s), "Ready", "stopped as the spec asks: {s}");
        if phase == "Terminated" {
            assert_eq!(s["failure"]["message"], "test says stop");
        }
    }
    // Terminated is final: the schema refuses going back to Running.
    let out = kube
        .kubectl(&[
            "patch",
            "workflow",
            "sleep-terminate",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"desiredState":"Running","reason":null}}"#,
        ])
        .await;
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_applies_policy() {
    let cluster = Cluster::start().await;
    let kube = &cluster.kube;
    let client = &cluster.operator.client().await;
    assert!(
        kube.apply(&example("sleeper-workflow.yaml"))
            .await
            .status
            .success()
    );
    let s = wait_phase(kube, "sleeper", "Running").await;
    let run_id = s["runId"].as_str().unwrap_or_default().to_string();
    let finalizers =
        kube.get_json(&["workflow", "sleeper"]).await["metadata"]["finalizers"].clone();
    assert_eq!(finalizers, serde_json::json!(["durin.dev/cleanup"]));
    kube.kubectl_ok(&["delete", "workflow", "sleeper", "--timeout=60s"])
        .await;
    // deletionPolicy: Terminate — the execution is terminated in the engine.
    let describe = client
        .get_workflow_handle::<temporalio_client::UntypedWorkflow>("sleeper")
        .describe(Default::default())
        .await
        .expect("describe sleeper");
    assert_eq!(
        describe
            .raw_description
            .workflow_execution_info
            .as_ref()
            .unwrap()
            .execution
            .as_ref()
            .unwrap()
            .run_id,
        run_id
    );
    assert_eq!(
        describe
            .raw_description
            .workflow_execution_info
            .as_ref()
            .unwrap()
            .status,
        temporalio_common::protos::temporal::api::enums::v1::WorkflowExecutionStatus::Terminated
            as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_are_refused_or_reported() {
    let cluster = Cluster::start().await;
    let kube = &cluster.kube;
    // A malformed duration never reaches the operator: the schema refuses it.
    let bad_duration = example("hello-workflow.yaml")
        .replace("name: hello", "name: bad-duration")
        .replace("executionTimeout: 10m", "executionTimeout: 10 minutes");
    let out = kube.apply(&bad_duration).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("executionTimeout"));
    // An unknown policy is refused too.
    let bad_policy = example("hello-workflow.yaml")
        .replace("name: hello", "name: bad-policy")
        .replace("executionTimeout: 10m", "idReusePolicy: Sometimes");
    assert!(!kube.apply(&bad_policy).await.status.success());
    // What only the engine can judge (a cron string) becomes a condition and an event.
    let bad_cron = example("hello-workflow.yaml")
        .replace("name: hello", "name: bad-cron")
        .replace("executionTimeout: 10m", "cronSchedule: every tuesday-ish");
    assert!(kube.apply(&bad_cron).await.status.success());
    let s = eventually(30, "Accepted=False on bad-cron", || async {
        let s = status(kube, "workflow", "bad-cron").await;
        (condition(&s, "Accepted")["status"] == "False").then_some(s)
    })
    .await;
    assert_eq!(condition(&s, "Accepted")["reason"], "InvalidSpec");
    assert_eq!(s["phase"], "Pending");
    // Nothing will change without the user: kstatus's Stalled, with the refusal's reason.
    assert_eq!(standing(&s), "Stalled", "{s}");
    assert_eq!(condition(&s, "Stalled")["reason"], "InvalidSpec");
    let events = kube
        .kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=bad-cron,reason=InvalidSpec",
            "-o",
            "name",
        ])
        .await;
    assert!(
        !events.trim().is_empty(),
        "a Warning event explains the refusal"
    );
    // Immutable identity: the workflow type cannot change.
    assert!(
        kube.apply(&example("hello-workflow.yaml"))
            .await
            .status
            .success()
    );
    let changed = example("hello-workflow.yaml").replace("HelloWorkflow", "OtherWorkflow");
    let out = kube.apply(&changed).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot change"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_becomes_a_deployment() {
    let cluster = Cluster::start().await;
    let kube = &cluster.kube;
    assert!(kube.apply(&example("worker.yaml")).await.status.success());
    let deployment = eventually(30, "deployment/examples", || async {
        let out = kube
            .kubectl(&["get", "deployment", "examples", "-o", "json"])
            .await;
        out.status
            .success()
            .then(|| serde_json::from_slice::<Value>(&out.stdout).ok())
            .flatten()
    })
    .await;
    assert_eq!(deployment["spec"]["replicas"], 1);
    let owner = &deployment["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["controller"].as_bool()),
        (Some("Worker"), Some(true))
    );
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    let var = |k: &str| {
        env.as_array()
            .and_then(|e| e.iter().find(|v| v["name"] == k))
            .map(|v| v["value"].clone())
            .unwrap_or(Value::Null)
    };
    assert!(
        var("TEMPORAL_ADDRESS")
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:"))
    );
    assert_eq!(var("TEMPORAL_NAMESPACE"), "default");
    assert_eq!(var("TEMPORAL_TASK_QUEUE"), TASK_QUEUE);
    // The task queue's pollers (this test's SDK worker) show in status.
    let s = eventually(30, "worker pollers in status", || async {
        let s = status(kube, "worker", "examples").await;
        (s["pollerCount"].as_i64().unwrap_or(0) >= 1).then_some(s)
    })
    .await;
    assert!(
        s["pollers"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["kind"] == "workflow"))
    );
    assert_eq!(s["selector"], "durin.dev/worker=examples");
    assert!(s["backlog"].is_i64());
    // No kube-controller-manager or kubelet runs here, so no pod ever starts: the Worker says
    // it is rolling out. The status a Deployment controller would write turns it Ready.
    assert_eq!(standing(&s), "Reconciling", "{s}");
    let generation = deployment["metadata"]["generation"].as_i64().unwrap_or(1);
    let rolled_out = format!(
        r#"{{"status":{{"observedGeneration":{generation},"replicas":1,"updatedReplicas":1,"readyReplicas":1,"availableReplicas":1}}}}"#
    );
    kube.kubectl_ok(&[
        "patch",
        "deployment",
        "examples",
        "--subresource=status",
        "--type=merge",
        "-p",
        &rolled_out,
    ])
    .await;
    kube.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        "worker/examples",
        "--timeout=30s",
    ])
    .await;
    // /scale: kubectl scale (what an HPA does) reaches the Deployment.
    kube.kubectl_ok(&["scale", "worker/examples", "--replicas=3"])
        .await;
    eventually(30, "deployment scaled to 3", || async {
        let d = kube.get_json(&["deployment", "examples"]).await;
        (d["spec"]["replicas"] == 3).then_some(())
    })
    .await;
    // Three wanted, one available: rolling out again.
    eventually(30, "worker rolling out to 3", || async {
        let s = status(kube, "worker", "examples").await;
        (standing(&s) == "Reconciling").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_template_is_a_checked_pod_template() {
    let cluster = Cluster::start().await;
    let kube = &cluster.kube;
    // kubectl explain documents the pod template from the CRD's schema.
    let explained = eventually(30, "kubectl explain of the pod template", || async {
        let out = kube
            .kubectl(&["explain", "worker.spec.template.spec.containers.image"])
            .await;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.success() && text.contains("Container image name")).then_some(text)
    })
    .await;
    assert!(explained.contains("FIELD: image"), "{explained}");
    // A misspelt field is refused at apply (kubectl's strict field validation), not dropped.
    let typo = example("worker.yaml").replace("image:", "imagee:");
    let out = kube.apply(&typo).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a typo in the pod template applied");
    assert!(stderr.contains("imagee"), "{stderr}");
    // So is a wrongly typed value and a pod without containers.
    let wrong_type = example("worker.yaml").replace("requests: {cpu: 50m", "requests: {cpu: [1]");
    assert!(!kube.apply(&wrong_type).await.status.success());
    let no_containers = "apiVersion: durin.dev/v1alpha1\nkind: Worker\nmetadata: {name: empty}\n\
                         spec: {taskQueue: q, template: {spec: {containers: []}}}\n";
    let out = kube.apply(no_containers).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("containers"));
    // Integers and strings both pass where Kubernetes takes either (quantities, ports).
    let either = example("worker.yaml").replace("cpu: 50m", "cpu: 1");
    let out = kube.apply(&either).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn schedule_count(kube: &KubeEnv) -> i64 {
    status(kube, "schedule", "every-second").await["actionCount"]
        .as_i64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_runs_on_a_timetable() {
    let cluster = Cluster::start().await;
    let kube = &cluster.kube;
    let client = &cluster.operator.client().await;
    let out = kube.apply(&example("schedule.yaml")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = eventually(30, "scheduled actions in status", || async {
        let s = status(kube, "schedule", "every-second").await;
        (s["actionCount"].as_i64().unwrap_or(0) >= 2).then_some(s)
    })
    .await;
    assert_eq!(condition(&s, "Accepted")["status"], "True");
    assert_eq!(standing(&s), "Ready", "{s}");
    assert!(
        s["nextActionTimes"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{s}"
    );
    let recent = s["recentActions"].as_array().cloned().unwrap_or_default();
    assert!(
        recent.iter().all(|a| a["workflowId"]
            .as_str()
            .is_some_and(|w| w.starts_with("hello-scheduled-"))),
        "{s}"
    );
    // The scheduled workflows really run on the example worker.
    let wf = recent[0]["workflowId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    eventually(30, "a scheduled workflow completes", || async {
        let d = client
            .get_workflow_handle::<temporalio_client::UntypedWorkflow>(&wf)
            .describe(Default::default())
            .await
            .ok()?;
        (d.raw_description.workflow_execution_info.as_ref()?.status
            == temporalio_common::protos::temporal::api::enums::v1::WorkflowExecutionStatus::Completed as i32)
            .then_some(())
    })
    .await;
    let d = client
        .get_workflow_handle::<temporalio_client::UntypedWorkflow>(&wf)
        .describe(Default::default())
        .await
        .expect("describe a scheduled run");
    assert_eq!(resource_memo(&d.raw_description)["kind"], "Schedule");
    assert_eq!(resource_memo(&d.raw_description)["name"], "every-second");

    // Pause from the spec.
    kube.kubectl_ok(&[
        "patch",
        "schedule",
        "every-second",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"state":{"paused":true,"note":"maintenance"}}}"#,
    ])
    .await;
    kube.kubectl_ok(&[
        "wait",
        "--for=condition=Paused",
        "schedule/every-second",
        "--timeout=30s",
    ])
    .await;
    // `kubectl get` shows the pause the engine applied (the Paused condition), not the spec.
    let table = kube.kubectl_ok(&["get", "schedule", "every-second"]).await;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let column = header
        .iter()
        .position(|h| *h == "PAUSED")
        .expect("a PAUSED column");
    assert_eq!(row.get(column), Some(&"True"), "{table}");
    let paused_at = schedule_count(kube).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        schedule_count(kube).await,
        paused_at,
        "no actions while paused"
    );

    // A trigger entry runs once, even while paused.
    kube.kubectl_ok(&[
        "patch",
        "schedule",
        "every-second",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"triggers":[{"id":"now-1","overlap":"AllowAll"}]}}"#,
    ])
    .await;
    let s = eventually(30, "trigger ran", || async {
        let s = status(kube, "schedule", "every-second").await;
        (s["actionCount"].as_i64().unwrap_or(0) == paused_at + 1).then_some(s)
    })
    .await;
    assert_eq!(s["triggersDone"], serde_json::json!(["now-1"]));

    // A backfill entry: three past seconds, inclusive.
    let backfill = r#"{"spec":{"backfills":[{"id":"jan-1","startAt":"2026-01-01T00:00:00Z","endAt":"2026-01-01T00:00:02Z","overlap":"AllowAll"}]}}"#;
    kube.kubectl_ok(&[
        "patch",
        "schedule",
        "every-second",
        "--type",
        "merge",
        "-p",
        backfill,
    ])
    .await;
    let s = eventually(30, "backfill ran", || async {
        let s = status(kube, "schedule", "every-second").await;
        (s["actionCount"].as_i64().unwrap_or(0) == paused_at + 4).then_some(s)
    })
    .await;
    assert_eq!(s["backfillsDone"], serde_json::json!(["jan-1"]));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        schedule_count(kube).await,
        paused_at + 4,
        "each entry runs once"
    );

    // Deleting the resource deletes the engine schedule.
    kube.kubectl_ok(&["delete", "schedule", "every-second", "--timeout=30s"])
        .await;
    let gone = client
        .get_schedule_handle("every-second")
        .describe(Default::default())
        .await;
    assert!(gone.is_err(), "the engine schedule must be gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_workflows_expire_after_their_ttl() {
    let cluster = Cluster::start().await;
    let kube = &cluster.kube;
    let manifest = example("hello-workflow.yaml")
        .replace("name: hello", "name: short-lived")
        .replace("executionTimeout: 10m", "ttlSecondsAfterFinished: 1");
    assert!(kube.apply(&manifest).await.status.success());
    eventually(30, "short-lived deleted after its TTL", || async {
        let out = kube.kubectl(&["get", "workflow", "short-lived"]).await;
        (!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound"))
            .then_some(())
    })
    .await;
}

/// What team-a's resources may reach of Durin namespace team-b, through the engine itself.
struct TeamB {
    engine: durin::proto::workflowservice::workflow_service_client::WorkflowServiceClient<
        tonic::transport::Channel,
    >,
}

impl TeamB {
    async fn workflow_status(&mut self, id: &str) -> i32 {
        self.engine
            .describe_workflow_execution(DescribeWorkflowExecutionRequest {
                namespace: "team-b".into(),
                execution: Some(WorkflowExecution {
                    workflow_id: id.into(),
                    run_id: String::new(),
                }),
            })
            .await
            .expect("describe team-b's workflow")
            .into_inner()
            .workflow_execution_info
            .map(|i| i.status)
            .unwrap_or_default()
    }

    async fn schedule_exists(&mut self, id: &str) -> bool {
        match self
            .engine
            .describe_schedule(DescribeScheduleRequest {
                namespace: "team-b".into(),
                schedule_id: id.into(),
            })
            .await
        {
            Ok(_) => true,
            Err(s) if s.code() == tonic::Code::NotFound => false,
            Err(s) => panic!("describe schedule {id}: {s}"),
        }
    }
}

/// The status of `kind/name` in Kubernetes namespace `ns` once it has an Accepted condition
/// with this status.
async fn accepted_is(kube: &KubeEnv, ns: &str, kind: &str, name: &str, want: &str) -> Value {
    eventually(
        30,
        &format!("{ns}/{kind}/{name} Accepted={want}"),
        || async {
            let s = kube.get_json(&["-n", ns, kind, name]).await["status"].clone();
            (condition(&s, "Accepted")["status"] == want).then_some(s)
        },
    )
    .await
}

const INTRUDER_WORKFLOW: &str = "apiVersion: durin.dev/v1alpha1
kind: Workflow
metadata:
  name: intruder
  namespace: team-a
spec:
  namespace: team-b
  workflowId: victim
  workflowType: SleeperWorkflow
  taskQueue: durin-k8s-examples
  idConflictPolicy: UseExisting
  desiredState: Terminated
  reason: team-a takes over
";

const INTRUDER_SCHEDULE: &str = "apiVersion: durin.dev/v1alpha1
kind: Schedule
metadata:
  name: intruder
  namespace: team-a
spec:
  namespace: team-b
  scheduleId: from-team-a
  schedule:
    intervals:
    - every: 1h
  action:
    startWorkflow:
      workflowType: HelloWorkflow
      taskQueue: durin-k8s-examples
";

const INTRUDER_WORKER: &str = "apiVersion: durin.dev/v1alpha1
kind: Worker
metadata:
  name: intruder
  namespace: team-a
spec:
  namespace: team-b
  taskQueue: durin-k8s-examples
  replicas: 1
  template:
    spec:
      containers:
      - name: worker
        image: example/worker:1
";

/// Tenant isolation: the resources of Kubernetes namespace team-a reach only Durin namespace
/// team-a, unless an administrator grants more with an annotation on the Namespace object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_durin_namespaces_need_a_grant() {
    let cluster = Cluster::start().await;
    let (kube, port) = (&cluster.kube, cluster.operator.port());
    for ns in ["team-a", "team-b"] {
        kube.kubectl_ok(&["create", "namespace", ns]).await;
    }
    // team-b's own workflow, running in Durin namespace team-b (Running needs no worker).
    let victim = example("sleeper-workflow.yaml")
        .replace("name: sleeper", "name: victim\n  namespace: team-b");
    assert!(kube.apply(&victim).await.status.success());
    eventually(30, "team-b/victim Running", || async {
        let s = kube.get_json(&["-n", "team-b", "workflow", "victim"]).await["status"].clone();
        (s["phase"] == "Running").then_some(())
    })
    .await;
    let mut team_b = TeamB {
        engine: common::grpc_client(port).await,
    };

    // From team-a: terminate team-b's workflow by id, run a schedule and point workers there,
    // and use a Durin namespace nobody created yet.
    let elsewhere = example("hello-workflow.yaml")
        .replace("name: hello", "name: elsewhere\n  namespace: team-a")
        .replace("spec:\n", "spec:\n  namespace: team-c\n");
    for manifest in [
        INTRUDER_WORKFLOW,
        INTRUDER_SCHEDULE,
        INTRUDER_WORKER,
        &elsewhere,
    ] {
        let out = kube.apply(manifest).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut refused = Vec::new();
    for (kind, name) in [
        ("workflow", "intruder"),
        ("schedule", "intruder"),
        ("worker", "intruder"),
        ("workflow", "elsewhere"),
    ] {
        // Whatever the operator decided, it has decided once a condition says so.
        let s = eventually(30, &format!("team-a/{kind}/{name} Accepted"), || async {
            let s = kube.get_json(&["-n", "team-a", kind, name]).await["status"].clone();
            (!condition(&s, "Accepted").is_null()).then_some(s)
        })
        .await;
        refused.push((kind, name, s));
    }
    assert_eq!(
        team_b.workflow_status("victim").await,
        WorkflowExecutionStatus::Running as i32,
        "team-a terminated team-b's workflow"
    );
    assert!(
        !team_b.schedule_exists("from-team-a").await,
        "team-a created a schedule in team-b"
    );
    let team_c = team_b
        .engine
        .describe_namespace(DescribeNamespaceRequest {
            namespace: "team-c".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        team_c.err().map(|s| s.code()),
        Some(tonic::Code::NotFound),
        "a refused resource created a Durin namespace"
    );
    for (kind, name, s) in &refused {
        let accepted = condition(s, "Accepted");
        assert_eq!(accepted["status"], "False", "{kind}/{name}: {s}");
        assert_eq!(
            accepted["reason"], "NamespaceNotAllowed",
            "{kind}/{name}: {s}"
        );
        let message = accepted["message"].as_str().unwrap_or_default();
        for part in ["team-a", "durin.dev/allowed-namespaces"] {
            assert!(message.contains(part), "{kind}/{name}: {message}");
        }
    }
    let workflow = &refused[0].2;
    assert!(
        workflow["result"].is_null()
            && workflow["runId"].is_null()
            && workflow["phase"] == "Pending",
        "nothing of team-b's workflow is copied into team-a's status: {workflow}"
    );
    let worker = &refused[2].2;
    assert!(
        worker["pollerCount"].is_null()
            && worker["backlog"].is_null()
            && worker["pollers"].as_array().is_none_or(|p| p.is_empty()),
        "nothing of team-b's task queue is copied into team-a's status: {worker}"
    );
    let deployment = kube
        .kubectl(&["-n", "team-a", "get", "deployment", "intruder"])
        .await;
    assert!(!deployment.status.success(), "no Deployment polls team-b");
    let events = kube
        .get_json(&[
            "-n",
            "team-a",
            "events",
            "--field-selector",
            "involvedObject.name=intruder,reason=NamespaceNotAllowed",
        ])
        .await;
    let kinds: std::collections::BTreeSet<&str> = events["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "Warning")
        .filter_map(|e| e["involvedObject"]["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["Schedule", "Worker", "Workflow"].into(),
        "a Warning event explains each refusal: {events}"
    );

    // An administrator grants team-b to team-a: the refused resources go ahead at once.
    kube.kubectl_ok(&[
        "annotate",
        "namespace",
        "team-a",
        "durin.dev/allowed-namespaces=team-b",
    ])
    .await;
    let s = eventually(30, "team-a/intruder took over team-b's victim", || async {
        let s = kube
            .get_json(&["-n", "team-a", "workflow", "intruder"])
            .await["status"]
            .clone();
        (s["phase"] == "Terminated").then_some(s)
    })
    .await;
    assert_eq!(condition(&s, "Accepted")["status"], "True", "{s}");
    assert_eq!(
        team_b.workflow_status("victim").await,
        WorkflowExecutionStatus::Terminated as i32
    );
    accepted_is(kube, "team-a", "schedule", "intruder", "True").await;
    assert!(team_b.schedule_exists("from-team-a").await);
    accepted_is(kube, "team-a", "worker", "intruder", "True").await;
    let d = kube
        .get_json(&["-n", "team-a", "deployment", "intruder"])
        .await;
    let env = d["spec"]["template"]["spec"]["containers"][0]["env"].clone();
    assert!(
        env.as_array().is_some_and(|e| e
            .iter()
            .any(|v| v["name"] == "TEMPORAL_NAMESPACE" && v["value"] == "team-b")),
        "{env}"
    );
    // The grant names team-b only.
    let s = kube
        .get_json(&["-n", "team-a", "workflow", "elsewhere"])
        .await["status"]
        .clone();
    assert_eq!(condition(&s, "Accepted")["reason"], "NamespaceNotAllowed");

    // Revoked: refused again, and deleting the Schedule leaves team-b's engine schedule alone.
    kube.kubectl_ok(&[
        "annotate",
        "namespace",
        "team-a",
        "durin.dev/allowed-namespaces-",
    ])
    .await;
    accepted_is(kube, "team-a", "schedule", "intruder", "False").await;
    kube.kubectl_ok(&[
        "-n",
        "team-a",
        "delete",
        "schedule",
        "intruder",
        "--timeout=30s",
    ])
    .await;
    assert!(
        team_b.schedule_exists("from-team-a").await,
        "a revoked grant lets team-a delete nothing in team-b"
    );
}
