//! The chart's Grafana dashboard (`charts/durin/files/grafana-dashboard.json`) against a real
//! Prometheus (Debian's `prometheus`, which `scripts/test` installs) scraping a real Durin
//! after real traffic: every panel's query is valid PromQL over metrics Durin serves, and the
//! panels that must show something after a workflow ran do.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{DurinServer, ExampleWorker, free_port};
use serde_json::Value;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/charts/durin/files/grafana-dashboard.json"
);

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path_and_query` on Prometheus' HTTP API, as JSON.
fn api(port: u16, path: &str, params: &[(&str, &str)]) -> Value {
    let url =
        temporalio_client::Url::parse_with_params(&format!("http://x{path}"), params).expect("url");
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to prometheus");
    // HTTP/1.0: the body comes whole, without chunked encoding.
    write!(stream, "GET {target} HTTP/1.0\r\nHost: localhost\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {response}"))
}

/// Every query of every panel, as (panel title, PromQL with the dashboard's variables filled
/// in as Grafana would for "All").
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("expr");
            let expr = expr
                .replace("$__rate_interval", "30s")
                .replace("$namespace", ".*")
                .replace("$job", ".*");
            assert!(!expr.contains('$'), "an unknown variable in {expr}");
            let title = panel["title"].as_str().unwrap_or_default().to_string();
            queries.push((title, expr));
        }
    }
    queries
}

fn start_prometheus(metrics_port: u16, dir: &std::path::Path) -> (KillOnDrop, u16) {
    let binary = ["prometheus", "/usr/bin/prometheus"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok())
        .expect("Prometheus is not installed: scripts/test installs Debian's prometheus package");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: durin\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .expect("write prometheus.yml");
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    (KillOnDrop(child), port)
}

/// How many times Prometheus has scraped Durin (0 before it answers).
fn scrapes(port: u16) -> u32 {
    if TcpStream::connect(("127.0.0.1", port)).is_err() {
        return 0;
    }
    api(
        port,
        "/api/v1/query",
        &[("query", "count_over_time(up{job=\"durin\"}[5m])")],
    )["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Waits until Prometheus has scraped Durin `n` more times.
fn wait_for_scrapes(port: u16, n: u32) {
    let target = scrapes(port) + n;
    let deadline = Instant::now() + Duration::from_secs(60);
    while scrapes(port) < target {
        assert!(Instant::now() < deadline, "Prometheus never scraped Durin");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Applies the hello workflow under `name` and waits for it to complete.
async fn run_hello(server: &DurinServer, dir: &std::path::Path, name: &str) {
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/k8s/hello-workflow.yaml"
    ))
    .expect("manifest")
    .replace("name: hello", &format!("name: {name}"));
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, manifest).expect("write manifest");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_durin"))
        .args([
            "apply",
            "--address",
            &format!("127.0.0.1:{}", server.port()),
        ])
        .args(["--wait", "--timeout", "60s", "-f"])
        .arg(&path)
        .output()
        .await
        .expect("durin apply");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_queries_what_durin_serves() {
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).expect("dashboard"))
            .expect("JSON");
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, metrics_port) = DurinServer::with_metrics().await;
    let (_prometheus, port) = start_prometheus(metrics_port, dir.path());
    wait_for_scrapes(port, 2);

    // Traffic after the first scrapes, twice: a series appears with its first sample, so a
    // rate needs a second increase to show.
    let _worker = ExampleWorker::start(server.port(), "default", "durin-k8s-examples");
    run_hello(&server, dir.path(), "first").await;
    wait_for_scrapes(port, 2);
    run_hello(&server, dir.path(), "second").await;
    wait_for_scrapes(port, 3);

    // The variables' values come from the labels Durin serves.
    let namespaces = api(
        port,
        "/api/v1/label/namespace/values",
        &[("match[]", "service_requests")],
    );
    assert!(
        namespaces["data"]
            .as_array()
            .is_some_and(|v| v.contains(&"default".into())),
        "{namespaces}"
    );

    // Every query is valid PromQL; these panels must show data after a workflow ran.
    let must_show = [
        "Requests / s",
        "Requests / s by operation",
        "Latency (calls that do not wait by design)",
        "p99 latency by operation",
        "Long polls: how long they waited (p50)",
        "Persistence: time to durable",
        "Workflows closed / s",
        "Schedule-to-start p95 by task queue",
        "Version",
        "CPU (cores)",
        "Resident memory",
    ];
    let mut shown = std::collections::BTreeSet::new();
    let queries = panel_queries(&dashboard);
    assert!(queries.len() >= 20, "{} queries", queries.len());
    for (title, expr) in &queries {
        let answer = api(port, "/api/v1/query", &[("query", expr)]);
        assert_eq!(answer["status"], "success", "{title}: {expr}: {answer}");
        let has_data = answer["data"]["result"].as_array().is_some_and(|r| {
            r.iter().any(|series| {
                series["value"][1]
                    .as_str()
                    .is_some_and(|v| v != "NaN" && v != "0")
            })
        });
        if has_data {
            shown.insert(title.as_str());
        }
    }
    for title in must_show {
        assert!(
            shown.contains(title),
            "panel {title:?} shows nothing after a workflow ran; panels with data: {shown:?}"
        );
    }
}
