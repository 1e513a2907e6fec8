//! `/metrics`: Prometheus text with RPC counts and latencies, workflow starts and closes,
//! and task-queue backlogs, after real SDK traffic.

mod common;

use common::{DurinServer, ExampleWorker, free_port, scrape};

#[tokio::test]
async fn metrics_count_rpcs_workflows_and_backlog() {
    let metrics_port = free_port();
    let server = DurinServer::start_with(
        vec![
            "dev".into(),
            "--metrics-port".into(),
            metrics_port.to_string(),
        ],
        Vec::new(),
    )
    .await;
    let hello = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/k8s/hello-workflow.yaml"
    );
    // A workflow on a queue nobody polls yet: it waits in the backlog.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_durin"))
        .args([
            "apply",
            "--address",
            &format!("127.0.0.1:{}", server.port()),
            "-f",
            hello,
        ])
        .output()
        .await
        .expect("durin apply");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = scrape(metrics_port, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("text/plain; version=0.0.4"));
    assert!(
        text.contains(r#"durin_task_queue_backlog{namespace="default",task_queue="durin-k8s-examples",kind="workflow"} 1"#),
        "{text}"
    );
    assert!(text.contains("durin_open_workflows 1"), "{text}");
    assert!(text.contains("durin_shards_owned 1"), "{text}");
    assert!(text.contains("durin_transfers_pending 0"), "{text}");

    let _worker = ExampleWorker::start(server.port(), "default", "durin-k8s-examples");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = scrape(metrics_port, "/metrics");
        if text.contains(r#"durin_workflows_closed_total{status="Completed"} 1"#) {
            assert!(text.contains("durin_workflows_started_total 1"), "{text}");
            assert!(
                text.contains(
                    r#"durin_rpc_requests_total{method="StartWorkflowExecution",code="Ok"} 1"#
                ),
                "{text}"
            );
            assert!(
                text.contains(
                    r#"durin_rpc_duration_seconds_count{method="RespondWorkflowTaskCompleted"}"#
                ),
                "{text}"
            );
            assert!(text.contains("durin_open_workflows 0"), "{text}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no completion counted:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(scrape(metrics_port, "/nope").starts_with("HTTP/1.1 404"));
}
