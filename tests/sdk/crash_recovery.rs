//! Durability across a server crash: `durin` is SIGKILLed while workflows wait on timers, an
//! activity and a signal, and restarted on the same data dir — with the same worker still
//! running, or with a brand-new worker that rebuilds every workflow from its history. Every
//! workflow completes, and nothing acknowledged before the crash runs again.

use crate::common;
use crate::helpers::*;
use crate::signals_and_queries::MailboxWorkflow;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{
    DurinServer, new_worker, sdk_runtime, unique, with_worker, with_worker_strict, within,
};
use serde::{Deserialize, Serialize};
use temporalio_client::{WorkflowExecutionStatus, WorkflowSignalOptions};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

// ---- 10. durability across a server crash --------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepInput {
    pub name: String,
    pub step: String,
    pub delay_ms: u64,
}

pub struct DurableActivities {
    /// "<workflow name>:<step>" for every completed execution of `step`.
    runs: Arc<Mutex<Vec<String>>>,
}

#[activities]
impl DurableActivities {
    #[activity]
    pub async fn step(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: StepInput,
    ) -> Result<String, ActivityError> {
        tokio::time::sleep(Duration::from_millis(input.delay_ms)).await;
        self.runs
            .lock()
            .unwrap()
            .push(format!("{}:{}", input.name, input.step));
        Ok(format!("{}:{}", input.step, input.name))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DurableInput {
    pub name: String,
    /// How long the first activity takes.
    pub pre_delay_ms: u64,
    /// Timer between the two activities.
    pub timer_ms: u64,
}

/// activity("pre") -> timer -> activity("post"); returns "pre:<name>|post:<name>".
#[workflow]
#[derive(Default)]
pub struct DurableWorkflow;

#[workflow_methods]
impl DurableWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: DurableInput,
    ) -> WorkflowResult<String> {
        let opts = ActivityOptions::start_to_close_timeout(Duration::from_secs(5));
        let pre = ctx
            .execute_activity(
                DurableActivities::step,
                StepInput {
                    name: input.name.clone(),
                    step: "pre".to_string(),
                    delay_ms: input.pre_delay_ms,
                },
                opts.clone(),
            )
            .await?;
        ctx.timer(Duration::from_millis(input.timer_ms)).await;
        let post = ctx
            .execute_activity(
                DurableActivities::step,
                StepInput {
                    name: input.name.clone(),
                    step: "post".to_string(),
                    delay_ms: 0,
                },
                opts,
            )
            .await?;
        Ok(format!("{pre}|{post}"))
    }
}

/// Poll `cond` every 50 ms until it holds, panicking after `secs` seconds.
async fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    within(secs, what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

fn durable_worker_options(tq: &str, runs: &Arc<Mutex<Vec<String>>>) -> WorkerOptions {
    WorkerOptions::new(tq.to_string())
        .register_workflow::<DurableWorkflow>()
        .unwrap()
        .register_workflow::<MailboxWorkflow>()
        .unwrap()
        .register_activities(DurableActivities { runs: runs.clone() })
        .build()
}

fn durable_input(name: &str, pre_delay_ms: u64, timer_ms: u64) -> DurableInput {
    DurableInput {
        name: name.to_string(),
        pre_delay_ms,
        timer_ms,
    }
}

fn count(runs: &Arc<Mutex<Vec<String>>>, entry: &str) -> usize {
    runs.lock().unwrap().iter().filter(|r| *r == entry).count()
}

/// 10a. The server is SIGKILLed while workflows wait on timers, an activity and a signal; the
/// worker (a separate "process" from the server's point of view) keeps running and reconnects
/// once the server is restarted on the same data dir. Every workflow completes correctly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_survive_server_kill_with_running_worker() {
    let mut server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-durable-a");
    let runs = Arc::new(Mutex::new(Vec::new()));
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, durable_worker_options(&tq, &runs));

    with_worker(&mut worker, async {
        // d1, d2: waiting on a timer at kill time. d3: its first activity is executing.
        let specs = [("d1", 0u64, 3000u64), ("d2", 0, 4500), ("d3", 2500, 300)];
        let mut handles = Vec::new();
        for (name, pre, timer) in specs {
            let h = client
                .start_workflow(
                    DurableWorkflow::run,
                    durable_input(name, pre, timer),
                    start_opts(&tq, &unique(name)),
                )
                .await
                .expect("start durable workflow");
            handles.push((name, h));
        }
        let mailbox = client
            .start_workflow(MailboxWorkflow::run, 2u32, start_opts(&tq, &unique("mbox")))
            .await
            .expect("start mailbox workflow");
        mailbox
            .signal(
                MailboxWorkflow::deliver,
                "before crash".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal before crash");

        wait_until(15, "d1/d2 first activities", || {
            count(&runs, "d1:pre") >= 1 && count(&runs, "d2:pre") >= 1
        })
        .await;
        // Give the worker time to report the activity results and start the timers.
        tokio::time::sleep(Duration::from_millis(700)).await;

        server.kill();
        assert!(
            !server.is_accepting(),
            "durin still accepting after SIGKILL"
        );
        tokio::time::sleep(Duration::from_millis(1000)).await;
        server.restart().await;

        mailbox
            .signal(
                MailboxWorkflow::deliver,
                "after restart".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal after restart");

        for (name, h) in &handles {
            let result = within(
                25,
                &format!("{name} result after restart"),
                h.get_result(result_opts()),
            )
            .await
            .unwrap_or_else(|e| panic!("{name} should complete after restart: {e:?}"));
            assert_eq!(result, format!("pre:{name}|post:{name}"));
            let desc = h.describe(Default::default()).await.expect("describe");
            assert_eq!(desc.status(), WorkflowExecutionStatus::Completed);
        }
        let inbox = within(
            25,
            "mailbox result after restart",
            mailbox.get_result(result_opts()),
        )
        .await
        .expect("mailbox should complete after restart");
        assert_eq!(
            inbox,
            vec!["before crash".to_string(), "after restart".to_string()]
        );
        // Activities whose completion was acknowledged before the crash are not re-run.
        assert_eq!(
            count(&runs, "d1:pre"),
            1,
            "runs: {:?}",
            runs.lock().unwrap()
        );
        assert_eq!(
            count(&runs, "d2:pre"),
            1,
            "runs: {:?}",
            runs.lock().unwrap()
        );
    })
    .await;
}

/// 10b. The worker is stopped, the server is SIGKILLed while workflows wait on timers, and
/// then both come back: a restarted server on the same data dir and a brand-new worker (new
/// connection, empty workflow cache) that has to rebuild every workflow from its persisted
/// history. Completed workflows stay completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_survive_server_kill_and_new_worker() {
    let mut server = DurinServer::start().await;
    let tq = unique("tq-durable-b");
    let runs = Arc::new(Mutex::new(Vec::new()));
    let ids: Vec<(&str, String)> = ["d0", "d4", "d5"]
        .into_iter()
        .map(|n| (n, unique(n)))
        .collect();

    // ---- before the crash ----
    {
        let client = server.client().await;
        let runtime = sdk_runtime();
        let mut worker = new_worker(&runtime, &client, durable_worker_options(&tq, &runs));
        with_worker_strict(&mut worker, async {
            // d0 completes entirely before the crash.
            let d0 = client
                .start_workflow(
                    DurableWorkflow::run,
                    durable_input("d0", 0, 100),
                    start_opts(&tq, &ids[0].1),
                )
                .await
                .expect("start d0");
            let r = within(20, "d0 result", d0.get_result(result_opts()))
                .await
                .expect("d0 completes");
            assert_eq!(r, "pre:d0|post:d0");

            // d4, d5 will be waiting on timers when the server dies.
            for ((name, id), timer) in ids[1..].iter().zip([3000u64, 4000]) {
                client
                    .start_workflow(
                        DurableWorkflow::run,
                        durable_input(name, 0, timer),
                        start_opts(&tq, id),
                    )
                    .await
                    .expect("start durable workflow");
            }
            wait_until(15, "d4/d5 first activities", || {
                count(&runs, "d4:pre") >= 1 && count(&runs, "d5:pre") >= 1
            })
            .await;
            tokio::time::sleep(Duration::from_millis(700)).await;
        })
        .await;
        // Worker (and its connection) are gone before the server dies.
    }

    server.kill();
    assert!(
        !server.is_accepting(),
        "durin still accepting after SIGKILL"
    );
    server.restart().await;

    // ---- after the crash: new connection, new worker ----
    let client = server.client().await;
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, durable_worker_options(&tq, &runs));
    with_worker(&mut worker, async {
        let d0 = client.get_workflow_handle::<DurableWorkflow>(ids[0].1.clone());
        let desc = within(10, "describe d0", d0.describe(Default::default()))
            .await
            .expect("describe d0 after restart");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Completed);
        let r = within(10, "d0 result after restart", d0.get_result(result_opts()))
            .await
            .expect("d0 result after restart");
        assert_eq!(r, "pre:d0|post:d0");

        for (name, id) in &ids[1..] {
            let h = client.get_workflow_handle::<DurableWorkflow>(id.clone());
            let result = within(
                25,
                &format!("{name} result after restart"),
                h.get_result(result_opts()),
            )
            .await
            .unwrap_or_else(|e| panic!("{name} should complete after restart: {e:?}"));
            assert_eq!(result, format!("pre:{name}|post:{name}"));
            let desc = h.describe(Default::default()).await.expect("describe");
            assert_eq!(desc.status(), WorkflowExecutionStatus::Completed);
        }

        // Nothing acknowledged before the crash was executed again.
        let snapshot = runs.lock().unwrap().clone();
        for entry in [
            "d0:pre", "d0:post", "d4:pre", "d5:pre", "d4:post", "d5:post",
        ] {
            assert_eq!(
                snapshot.iter().filter(|r| *r == entry).count(),
                1,
                "{entry} should have run exactly once; runs: {snapshot:?}"
            );
        }
    })
    .await;
}
