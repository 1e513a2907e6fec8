//! `/metrics`: Prometheus text under Temporal's names (requests, errors and latency per
//! operation and namespace, long polls apart, backlog, schedule-to-start, closes, persistence),
//! build and process metrics, and label values a client cannot multiply — after real traffic.

mod common;

use common::{DurinServer, ExampleWorker, scrape};

/// The value of the sample `series` (name and labels exactly as printed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_use_temporal_names_after_real_traffic() {
    let (server, metrics_port) = DurinServer::with_metrics().await;
    let hello = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/k8s/hello-workflow.yaml"
    );
    // A workflow on a queue nobody polls yet: it waits in the backlog.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_durin"))
        .args([
            "apply",
            "--address",
            &format!("127.0.0.1:{}", server.port()),
        ])
        .args(["-f", hello])
        .output()
        .expect("durin apply");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = scrape(metrics_port, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("text/plain; version=0.0.4"));
    let backlog = r#"approximate_backlog_count{namespace="default",taskqueue="durin-k8s-examples",task_type="Workflow"}"#;
    assert_eq!(sample(&text, backlog), Some(1.0), "{text}");
    assert!(text.contains("durin_open_workflows 1"), "{text}");
    assert!(text.contains("durin_shards_owned 1"), "{text}");
    // Nobody uses the run while it waits (the server freezes idle runs within a second):
    // it is frozen, and the worker below thaws it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sample(&scrape(metrics_port, "/metrics"), "durin_frozen_runs") != Some(1.0) {
        assert!(std::time::Instant::now() < deadline, "the run never froze");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let _worker = ExampleWorker::start(server.port(), "default", "durin-k8s-examples");
    let frontend = |ns: &str, op: &str| {
        format!(r#"namespace="{ns}",operation="{op}",service_name="frontend""#)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let text = loop {
        let text = scrape(metrics_port, "/metrics");
        if sample(&text, r#"workflow_success{namespace="default"}"#) == Some(1.0) {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no completion counted:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let start = frontend("default", "StartWorkflowExecution");
    assert_eq!(
        sample(&text, &format!("service_requests{{{start}}}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("service_latency_count{{{start}}}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "durin_workflows_started_total"),
        Some(1.0),
        "{text}"
    );
    assert!(text.contains("durin_open_workflows 0"), "{text}");
    // Long polls are in their own histogram, not in service_latency.
    let poll = frontend("default", "PollWorkflowTaskQueue");
    assert!(
        sample(&text, &format!("long_poll_latency_count{{{poll}}}")).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert!(
        !text.contains(&format!("service_latency_count{{{poll}}}")),
        "{text}"
    );
    // The backlog drained (an empty queue has no series); the worker took its tasks after
    // they waited.
    assert_eq!(sample(&text, backlog).unwrap_or(0.0), 0.0, "{text}");
    let waited = r#"task_schedule_to_start_latency_count{namespace="default",taskqueue="durin-k8s-examples",task_type="Workflow"}"#;
    assert!(sample(&text, waited).is_some_and(|n| n >= 1.0), "{text}");
    // Every change was made durable: the log's group commits were timed.
    assert!(
        sample(&text, r#"persistence_requests{operation="AppendLog"}"#).is_some_and(|n| n >= 1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"persistence_errors{operation="AppendLog"}"#),
        Some(0.0)
    );
    assert!(
        text.contains(&format!(
            r#"build_information{{build_version="{}","#,
            common::chart_field("appVersion")
        )),
        "{text}"
    );
    for process in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(
            sample(&text, process).is_some_and(|v| v > 0.0),
            "{process}: {text}"
        );
    }

    assert!(scrape(metrics_port, "/nope").starts_with("HTTP/1.1 404"));
}

#[tokio::test]
async fn calls_in_unknown_namespaces_do_not_become_labels() {
    let (server, metrics_port) = DurinServer::with_metrics().await;
    let mut client = common::grpc_client(server.port()).await;
    for i in 0..5 {
        let err = client
            .describe_namespace(
                durin::proto::api::workflowservice::v1::DescribeNamespaceRequest {
                    namespace: format!("nobody-{i}"),
                    ..Default::default()
                },
            )
            .await
            .expect_err("no such namespace");
        assert_eq!(err.code(), tonic::Code::NotFound);
    }
    let text = scrape(metrics_port, "/metrics");
    assert!(!text.contains("nobody-"), "{text}");
    let series = r#"service_error_with_type{error_type="serviceerror_NotFound",namespace="_unknown_",operation="DescribeNamespace",service_name="frontend"}"#;
    assert_eq!(sample(&text, series), Some(5.0), "{text}");
}
