//! `durin server start-dev`: `temporal server start-dev`'s flags with their meaning — an
//! ephemeral store without `--db-filename`, metrics always served, the startup lines people
//! read, JSON logs, and refusals for malformed values. (tests/python/test_start_local.py runs
//! it from the Python SDK's own harness.)

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use temporalio_client::grpc::OperatorService;
use temporalio_client::tonic::Request;
use temporalio_common::protos::temporal::api::operatorservice::v1::ListSearchAttributesRequest;

fn durin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_durin"))
}

/// Kills the server when the test ends, also when an assertion failed first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ephemeral_stores(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("durin-ephemeral-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn malformed_flags_are_refused_with_temporals_words() {
    let tmp = tempfile::tempdir().unwrap();
    let a_file = tmp.path().join("temporal.db");
    std::fs::write(&a_file, b"SQLite format 3").unwrap();
    let a_file = a_file.display().to_string();
    for (flags, said) in [
        (
            vec![
                "--dynamic-config-value",
                "frontend.enableUpdateWorkflowExecution",
            ],
            "missing expected '='",
        ),
        (
            vec![
                "--dynamic-config-value",
                "limit.historyCount.suggestContinueAsNew=lots",
            ],
            "invalid JSON value",
        ),
        (
            vec![
                "--dynamic-config-value",
                "limit.historyCount.suggestContinueAsNew=0",
            ],
            "positive integer",
        ),
        (
            vec!["--search-attribute", "Team=Blob"],
            "invalid search attribute value type",
        ),
        (vec!["--search-attribute", "Team"], "missing expected '='"),
        (vec!["--log-format", "xml"], "xml"),
        (vec!["--db-filename", &a_file], "is a file"),
    ] {
        let mut args = vec!["server", "start-dev", "--port", "0"];
        args.extend(flags.iter().copied());
        let err = common::refused_start(&args);
        assert!(err.contains(said), "{flags:?}: {err}");
    }
}

#[test]
fn a_taken_api_port_is_refused_before_the_store_is_touched() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_arg = data.display().to_string();
    let err = common::refused_start(&["dev", "--port", &port, "--data-dir", &data_arg]);
    assert!(
        err.contains(&format!("cannot listen for the API on 127.0.0.1:{port}")),
        "{err}"
    );
    // A replica that cannot serve must not have opened (or, in a cluster, leased) anything.
    assert!(!data.exists(), "the data dir was created: {err}");
}

/// The banner's lines up to `Metrics:`, and the port that line names.
fn read_banner(server: &mut std::process::Child) -> (Vec<String>, u16) {
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    while !banner.iter().any(|l: &String| l.starts_with("Metrics:")) {
        match lines.next() {
            Some(Ok(line)) => banner.push(line),
            _ => panic!("the server stopped before printing where it serves: {banner:?}"),
        }
    }
    let port = banner
        .iter()
        .find_map(|l| l.strip_prefix("Metrics:"))
        .and_then(|l| {
            l.trim()
                .trim_start_matches("http://localhost:")
                .trim_end_matches("/metrics")
                .parse()
                .ok()
        })
        .expect("a metrics port");
    (banner, port)
}

#[test]
fn durin_dev_serves_metrics_by_default_and_on_a_free_port_when_9233_is_taken() {
    // Hold 9233 (or find it held): a second server on the machine must still start.
    let _held = std::net::TcpListener::bind("127.0.0.1:9233");
    let data = tempfile::tempdir().unwrap();
    let mut guard = KillOnDrop(
        durin()
            .args(["dev", "--port", &common::free_port().to_string()])
            .arg("--data-dir")
            .arg(data.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start durin dev"),
    );
    let (_, metrics_port) = read_banner(&mut guard.0);
    assert_ne!(metrics_port, 9233);
    let text = common::scrape(metrics_port, "/metrics");
    assert!(text.contains("build_information{"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_dev_is_ephemeral_serves_metrics_and_says_where() {
    let tmp = tempfile::tempdir().unwrap();
    // A store left by a dev server that was killed (the SDKs stop theirs with SIGKILL).
    let abandoned = tmp.path().join("durin-ephemeral-4000000000-0");
    std::fs::create_dir_all(&abandoned).unwrap();
    let port = common::free_port();
    let mut guard = KillOnDrop(
        durin()
            .args([
                "server",
                "start-dev",
                "-p",
                &port.to_string(),
                "--ip",
                "127.0.0.1",
            ])
            .args(["-n", "extra", "--headless", "--ui-port", "8233"])
            .args(["--search-attribute", "Team=Keyword"])
            .args(["--log-format", "json", "--log-level", "info"])
            .env("TMPDIR", tmp.path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start durin server start-dev"),
    );
    let server = &mut guard.0;
    let (banner, metrics_port) = read_banner(server);
    assert!(
        banner.contains(&format!("Server:      localhost:{port}")),
        "{banner:?}"
    );
    assert!(
        banner
            .iter()
            .any(|l| l.starts_with("Persistence: ephemeral")),
        "{banner:?}"
    );
    assert!(common::scrape(metrics_port, "/metrics").contains("durin_"));

    let stores = ephemeral_stores(tmp.path());
    assert_eq!(
        stores.len(),
        1,
        "the abandoned store is swept, one is made: {stores:?}"
    );
    assert!(!abandoned.exists());
    // Namespaces and search attributes from the flags.
    let url: temporalio_client::Url = format!("http://127.0.0.1:{port}").parse().unwrap();
    let client = common::connect_client(url).await.expect("connect");
    let mut op = client.clone();
    let listed = OperatorService::list_search_attributes(
        &mut op,
        Request::new(ListSearchAttributesRequest {
            namespace: "extra".into(),
        }),
    )
    .await
    .expect("namespace extra exists")
    .into_inner();
    assert!(listed.custom_attributes.contains_key("Team"), "{listed:?}");

    // SIGTERM: a clean stop removes the ephemeral store; the logs were JSON lines.
    let pid = server.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "start-dev did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        ephemeral_stores(tmp.path()).is_empty(),
        "the store outlived the server"
    );
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut logs).unwrap();
    let first = logs.lines().next().expect("some log lines");
    let parsed: serde_json::Value = serde_json::from_str(first).expect("a JSON log line");
    assert!(
        parsed["level"].is_string() && parsed["fields"].is_object(),
        "{first}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_dev_says_how_to_get_the_ui_it_cannot_find_and_headless_has_none() {
    let port = common::free_port();
    let start = |extra: &[&str]| {
        KillOnDrop(
            durin()
                .args(["server", "start-dev", "-p", &port.to_string()])
                .args(["--ip", "127.0.0.1"])
                .args(extra)
                .env("DURIN_UI_SERVER", "/nonexistent/ui-server")
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start durin server start-dev"),
        )
    };
    // Like Temporal's, start-dev serves a UI unless headless: here it is not installed.
    let mut guard = start(&[]);
    let (banner, _) = read_banner(&mut guard.0);
    assert!(
        banner.contains(&"UI:          not installed (scripts/ui-server build)".to_string()),
        "{banner:?}"
    );
    drop(guard);
    let mut guard = start(&["--headless", "--ui-port", "8233"]);
    let (banner, _) = read_banner(&mut guard.0);
    assert!(
        banner.contains(&"UI:          headless".to_string()),
        "{banner:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_info_tells_the_truth_with_one_version() {
    use durin::proto::api::workflowservice::v1::{GetClusterInfoRequest, GetSystemInfoRequest};
    let server = common::DurinServer::start().await;
    let mut grpc = common::grpc_client(server.port()).await;
    let info = grpc
        .get_system_info(GetSystemInfoRequest {})
        .await
        .expect("GetSystemInfo")
        .into_inner();
    let capabilities = info.capabilities.expect("capabilities");
    assert!(capabilities.supports_schedules, "schedules work");
    assert!(capabilities.count_group_by_execution_status);
    assert!(
        capabilities.eager_workflow_start,
        "eager start works (tests/python/test_eager_start.py)"
    );
    assert!(!capabilities.nexus, "not implemented yet");
    assert!(
        capabilities.build_id_based_versioning,
        "SDKs stamp build ids on completed workflow tasks (tests/python/test_versioning.py)"
    );
    let cluster = grpc
        .get_cluster_info(GetClusterInfoRequest {})
        .await
        .expect("GetClusterInfo")
        .into_inner();
    assert_eq!(info.server_version, cluster.server_version);
    // Clients gate on the Temporal release a server reports (the Web UI on >= 1.20 for counts
    // and bulk actions, >= 1.27.1 for reset with pending children, >= 1.30 for standalone
    // activities, which Durin lacks).
    assert_eq!(info.server_version, "1.32.0");
    let printed = durin().arg("--version").output().expect("durin --version");
    let printed = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.contains(&info.server_version), "{printed}");
    // ...and the commit it was built from, when built from a git checkout.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(head) = head {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
        assert!(printed.contains(&format!("(commit {head})")), "{printed}");
    }
}
