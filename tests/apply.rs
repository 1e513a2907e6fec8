//! `durin apply -f`: the Workflow manifests of `examples/k8s/` against `durin dev`, no cluster.

mod common;

use std::process::Output;

use common::{DurinServer, ExampleWorker};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/k8s");

async fn apply(server: &DurinServer, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_durin"))
        .arg("apply")
        .arg("--address")
        .arg(format!("127.0.0.1:{}", server.port()))
        .args(args)
        .output()
        .await
        .expect("run durin apply")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_id(out: &Output) -> String {
    let s = String::from_utf8_lossy(&out.stdout);
    s.split("run ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn apply_runs_workflow_manifests_without_a_cluster() {
    let server = DurinServer::start().await;
    let _worker = ExampleWorker::start(server.port(), "default", "durin-k8s-examples");
    let hello = format!("{EXAMPLES}/hello-workflow.yaml");

    let out = apply(&server, &["-f", &hello, "--wait"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("workflow.durin.dev/hello applied"),
        "{stdout}"
    );
    assert!(stdout.contains("phase: Completed"), "{stdout}");
    assert!(
        stdout.contains(r#"result: "Hello, Kubernetes!""#),
        "{stdout}"
    );

    // Applying the same manifest again is a no-op, as with kubectl: same run.
    let again = apply(&server, &["-f", &hello]).await;
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(run_id(&again), run_id(&out));

    // Signals from the manifest are delivered once, however often it is applied.
    let mailbox = format!("{EXAMPLES}/mailbox-workflow.yaml");
    let signals = format!("{EXAMPLES}/mailbox-signals.yaml");
    assert!(apply(&server, &["-f", &mailbox]).await.status.success());
    let out = apply(&server, &["-f", &signals, "--wait"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#"result: ["hello","world"]"#), "{stdout}");
}

#[tokio::test]
async fn apply_creates_then_updates_a_schedule() {
    let server = DurinServer::start().await;
    let _worker = ExampleWorker::start(server.port(), "default", "durin-k8s-examples");
    let manifest = format!("{EXAMPLES}/schedule.yaml");
    let out = apply(&server, &["-f", &manifest]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("schedule.durin.dev/every-second created"),
        "{}",
        text(&out)
    );
    let again = apply(&server, &["-f", &manifest]).await;
    assert!(
        text(&again).contains("schedule.durin.dev/every-second updated"),
        "{}",
        text(&again)
    );
    let client = server.client().await;
    let handle = client.get_schedule_handle("every-second");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let d = handle.describe(Default::default()).await.expect("describe");
        if d.action_count() >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the applied schedule never acted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn apply_explains_what_it_cannot_take() {
    let server = DurinServer::start().await;
    let worker = format!("{EXAMPLES}/worker.yaml");
    let out = apply(&server, &["-f", &worker]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("need the operator"), "{}", text(&out));

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: durin.dev/v1alpha1\nkind: Workflow\nmetadata: {name: x}\nspec:\n  workflowType: W\n  taskQueue: q\n  runTimeout: soon\n",
    )
    .expect("write");
    let out = apply(&server, &["-f", &bad.display().to_string()]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("runTimeout"), "{}", text(&out));

    std::fs::write(&bad, "kind: [unclosed").expect("write");
    let out = apply(&server, &["-f", &bad.display().to_string()]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("not valid YAML"), "{}", text(&out));
}

#[tokio::test]
async fn wait_exits_non_zero_unless_the_workflow_ended_as_asked() {
    let server = DurinServer::start().await;
    let _worker = ExampleWorker::start(server.port(), "default", "durin-k8s-examples");
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).expect("write");
        path.display().to_string()
    };
    // No worker knows this type: the run times out, and --wait says so with exit status 1.
    let lost = write(
        "lost.yaml",
        "apiVersion: durin.dev/v1alpha1\nkind: Workflow\nmetadata: {name: lost}\nspec:\n  workflowType: NobodyRunsThis\n  taskQueue: durin-k8s-examples\n  executionTimeout: 2s\n",
    );
    let out = apply(&server, &["-f", &lost, "--wait"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("phase: TimedOut"), "{}", text(&out));
    assert!(text(&out).contains("ended TimedOut"), "{}", text(&out));

    // --timeout bounds the wait; the workflow keeps running.
    let sleeper = format!("{EXAMPLES}/sleeper-workflow.yaml");
    let started = std::time::Instant::now();
    let out = apply(&server, &["-f", &sleeper, "--wait", "--timeout", "1s"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("still running after 1s"),
        "{}",
        text(&out)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));

    // Canceled because the manifest asks for it: that is success. A directory applies
    // every manifest in it, in name order (the cancel after the start).
    let stop = tempfile::tempdir().expect("tempdir");
    let sleeper_text = std::fs::read_to_string(&sleeper).expect("sleeper manifest");
    std::fs::write(
        stop.path().join("1-start.yaml"),
        sleeper_text.replace("name: sleeper", "name: napper"),
    )
    .unwrap();
    std::fs::write(
        stop.path().join("2-cancel.yaml"),
        sleeper_text.replace("name: sleeper", "name: napper")
            + "  desiredState: Canceled\n  reason: the manifest says so\n",
    )
    .unwrap();
    std::fs::write(stop.path().join("notes.txt"), "not a manifest").unwrap();
    let out = apply(
        &server,
        &[
            "-f",
            &stop.path().display().to_string(),
            "--wait",
            "--timeout",
            "30s",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("phase: Canceled"), "{}", text(&out));
}

/// `durin apply` run with no server address of a running server: what must work offline.
fn apply_offline(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_durin"))
        .arg("apply")
        // Nothing listens there: a dry run must not need a server.
        .arg(format!("--address=127.0.0.1:{}", common::free_port()))
        .args(args)
        .output()
        .expect("run durin apply")
}

#[test]
fn dry_run_checks_every_manifest_without_a_server() {
    let hello = format!("{EXAMPLES}/hello-workflow.yaml");
    let schedule = format!("{EXAMPLES}/schedule.yaml");
    let out = apply_offline(&["--dry-run", "-f", &hello, "-f", &schedule]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("workflow.durin.dev/hello configured (dry run)"),
        "{stdout}"
    );
    assert!(stdout.contains("schedule.durin.dev/"), "{stdout}");

    // -o yaml prints the resources as they would be applied (namespace filled in), one
    // document each; the progress lines move to stderr.
    let out = apply_offline(&["--dry-run", "-o", "yaml", "-f", &hello, "-f", &schedule]);
    assert!(out.status.success(), "{}", text(&out));
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout)).expect("yaml");
    assert_eq!(docs.len(), 2, "{docs:?}");
    assert_eq!(docs[0]["kind"], "Workflow");
    assert_eq!(docs[0]["metadata"]["namespace"], "default");
    assert_eq!(docs[1]["kind"], "Schedule");
    assert!(String::from_utf8_lossy(&out.stderr).contains("(dry run)"));

    // What the operator would refuse is refused here, naming the resource and the field.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad-cron.yaml");
    std::fs::write(
        &bad,
        "apiVersion: durin.dev/v1alpha1\nkind: Workflow\nmetadata: {name: nightly}\nspec:\n  workflowType: W\n  taskQueue: q\n  cronSchedule: \"every night\"\n",
    )
    .expect("write");
    let out = apply_offline(&["--dry-run", "-f", &bad.display().to_string()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("workflow.durin.dev/nightly") && text(&out).contains("cron"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn output_json_is_the_resource_with_its_status() {
    let server = DurinServer::start().await;
    let _worker = ExampleWorker::start(server.port(), "default", "durin-k8s-examples");
    let hello = format!("{EXAMPLES}/hello-workflow.yaml");
    let out = apply(&server, &["-f", &hello, "--wait", "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document ({e}): {}", text(&out)));
    assert_eq!(doc["kind"], "Workflow");
    assert_eq!(doc["status"]["phase"], "Completed", "{doc:#}");
    assert_eq!(doc["status"]["result"], "Hello, Kubernetes!", "{doc:#}");
    assert!(
        doc["status"]["runId"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    // The human lines went to stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("phase: Completed"));

    // Several resources: a List, as kubectl prints them.
    let schedule = format!("{EXAMPLES}/schedule.yaml");
    let out = apply(&server, &["-f", &hello, "-f", &schedule, "-o", "json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][1]["kind"], "Schedule");
    assert!(
        list["items"][1]["status"]["scheduleId"].as_str().is_some(),
        "{list:#}"
    );
}

#[test]
fn completion_scripts_name_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_durin"))
            .args(["completion", shell])
            .output()
            .expect("durin completion");
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        // (fish names long options without their dashes.)
        for word in [
            "apply",
            "dev",
            "start-dev",
            "dry-run",
            "tls-ca-path",
            "completion",
        ] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    // The bash script is valid bash.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("durin.bash");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_durin"))
        .args(["completion", "bash"])
        .output()
        .expect("durin completion bash");
    std::fs::write(&path, &out.stdout).expect("write");
    let checked = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .expect("bash -n");
    assert!(checked.status.success(), "{}", text(&checked));
}
