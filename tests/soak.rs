//! Soak: workflows (one activity each) through the Rust SDK at the highest rate the server
//! sustains with `DURIN_SOAK_CONCURRENCY` in flight, for `DURIN_SOAK_SECONDS`, sampling the
//! server's RSS every second. Prints the rate and the memory curve; fails if memory keeps
//! growing (last third of the run more than 25 % above the middle third).
//!
//! The test command runs it for 5 s; a real soak: `DURIN_SOAK_SECONDS=300 cargo test
//! --release --test soak -- --nocapture`.
//!
//! Known result (2026-11-26, debug build, 2 cores): 155 workflows/s sustained for 30 s, but
//! RSS grows linearly, about 40 KiB per closed workflow (41 → 221 MiB), because closed runs
//! and their histories stay in memory until the namespace's retention removes them. So a
//! long soak fails the flat-memory check until closed runs are moved out of memory.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker};
use temporalio_client::WorkflowStartOptions;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

pub struct SoakActivities;

#[activities]
impl SoakActivities {
    #[activity]
    pub async fn work(_ctx: ActivityContext, n: u64) -> Result<u64, ActivityError> {
        Ok(n + 1)
    }
}

#[workflow]
#[derive(Default)]
pub struct SoakWorkflow;

#[workflow_methods]
impl SoakWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, n: u64) -> WorkflowResult<u64> {
        Ok(ctx
            .execute_activity(
                SoakActivities::work,
                n,
                ActivityOptions::start_to_close_timeout(Duration::from_secs(30)),
            )
            .await?)
    }
}

fn env_u64(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_load_keeps_memory_flat() {
    let seconds = env_u64("DURIN_SOAK_SECONDS", 5);
    let concurrency = env_u64("DURIN_SOAK_CONCURRENCY", 50);
    let server = DurinServer::start().await;
    let pid = server.pid().expect("pid");
    let client = server.client().await;
    let tq = unique("tq-soak");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<SoakWorkflow>()
            .unwrap()
            .register_activities(SoakActivities)
            .build(),
    );
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut samples: Vec<(u64, u64, u64)> = Vec::new(); // (second, completed, rss KiB)

    with_worker(&mut worker, async {
        let mut load = Vec::new();
        for lane in 0..concurrency {
            let (client, tq, done) = (client.clone(), tq.clone(), done.clone());
            load.push(tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let id = format!("soak-{lane}-{i}");
                    let h = client
                        .start_workflow(
                            SoakWorkflow::run,
                            i,
                            WorkflowStartOptions::new(tq.clone(), id).build(),
                        )
                        .await
                        .expect("start");
                    let r = h.get_result(Default::default()).await.expect("result");
                    assert_eq!(r, i + 1);
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            }));
        }
        let mut second = 0;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            second += 1;
            samples.push((second, done.load(Ordering::Relaxed), rss_kib(pid)));
        }
        for l in load {
            l.await.expect("lane");
        }
    })
    .await;

    let total = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "soak: {total} workflows (one activity each) in {elapsed:.1} s = {:.0}/s at concurrency {concurrency}",
        total as f64 / elapsed
    );
    eprintln!("second  completed  rss_MiB");
    for (s, c, r) in &samples {
        eprintln!("{s:>6}  {c:>9}  {:>7.1}", *r as f64 / 1024.0);
    }
    assert!(total > 0, "nothing completed");
    if samples.len() >= 6 {
        let third = samples.len() / 3;
        let avg =
            |xs: &[(u64, u64, u64)]| xs.iter().map(|s| s.2).sum::<u64>() as f64 / xs.len() as f64;
        let middle = avg(&samples[third..2 * third]);
        let last = avg(&samples[2 * third..]);
        assert!(
            last <= middle * 1.25,
            "memory keeps growing: {middle:.0} KiB -> {last:.0} KiB"
        );
    }
}
