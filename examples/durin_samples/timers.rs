//! timers: durable timers (`ctx.timer`) are kept by the server, not by the worker; and a timer
//! raced against a signal with the deterministic `select!`: whichever comes first decides.

use std::{
    pin::pin,
    time::{Duration, Instant},
};

use anyhow::{Result, bail, ensure};
use serde::{Deserialize, Serialize};
use temporalio_client::{Client, WorkflowSignalOptions};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    CancellableFuture, SyncWorkflowContext, TimerResult, WorkerOptions, WorkflowContext,
    WorkflowResult, workflows::select,
};

use crate::support::{Env, event_names, history, start_options, unique, with_worker, within};

/// Workflow time that passed between two instants of workflow time, in ms.
fn elapsed_ms(from: Option<std::time::SystemTime>, to: Option<std::time::SystemTime>) -> u64 {
    match (from, to) {
        (Some(from), Some(to)) => to
            .duration_since(from)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        _ => 0,
    }
}

/// Sleeps on two durable timers, one after the other, and reports how much workflow time passed.
#[workflow]
#[derive(Default)]
pub struct ReminderWorkflow;

#[workflow_methods]
impl ReminderWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, millis: Vec<u64>) -> WorkflowResult<u64> {
        let start = ctx.workflow_time();
        for ms in millis {
            // The worker holds nothing while the timer runs: the server fires it (TimerFired) and
            // hands the workflow a new task, even if this worker had restarted in the meantime.
            let fired = ctx.timer(Duration::from_millis(ms)).await;
            if fired != TimerResult::Fired {
                return Ok(0);
            }
        }
        Ok(elapsed_ms(start, ctx.workflow_time()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// `"signal"` or `"timer"`: what came first.
    pub decided_by: String,
    pub approved_by: Option<String>,
    /// Workflow time spent waiting, in ms.
    pub waited_ms: u64,
}

/// Waits for an `approve` signal, but no longer than `deadline_ms`.
#[workflow]
#[derive(Default)]
pub struct ApprovalWorkflow {
    approved_by: Option<String>,
}

#[workflow_methods]
impl ApprovalWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        deadline_ms: u64,
    ) -> WorkflowResult<Decision> {
        let start = ctx.workflow_time();
        let mut deadline = pin!(ctx.timer(Duration::from_millis(deadline_ms)));
        // `select!` polls its branches in order, so it is deterministic on replay (unlike
        // `tokio::select!`).
        let signalled = select! {
            approved = ctx.wait_condition(|s| s.approved_by.is_some()) => {
                approved?;
                true
            }
            _ = deadline.as_mut() => false,
        };
        if signalled {
            // The signal won: cancel the timer (history gets a TimerCanceled event). A cancelled
            // timer resolves at once, with `TimerResult::Cancelled`.
            deadline.cancel();
            deadline.as_mut().await;
        }
        let decided_by = if signalled { "signal" } else { "timer" };
        Ok(Decision {
            decided_by: decided_by.to_string(),
            approved_by: ctx.state(|s| s.approved_by.clone()),
            waited_ms: elapsed_ms(start, ctx.workflow_time()),
        })
    }

    #[signal]
    pub fn approve(&mut self, _ctx: &mut SyncWorkflowContext<Self>, who: String) {
        self.approved_by.get_or_insert(who);
    }
}

/// Polls the history of `workflow_id` until it holds an event named `event` (e.g.
/// `TimerStarted`), i.e. until the workflow has got that far.
async fn wait_for_event(client: &Client, workflow_id: &str, event: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if event_names(&history(client, workflow_id, None).await?)
            .iter()
            .any(|e| e == event)
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{workflow_id} has no {event} event after 15s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("timers");
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<ReminderWorkflow>()?
            .register_workflow::<ApprovalWorkflow>()?
            .build(),
    )?;

    with_worker(&mut worker, async {
        // 1. Two durable timers in a row: 700 ms, then 500 ms.
        let workflow_id = unique("reminder");
        let started = Instant::now();
        let handle = client
            .start_workflow(
                ReminderWorkflow::run,
                vec![700u64, 500],
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!("started ReminderWorkflow {workflow_id} with timers of 700 ms and 500 ms");
        let workflow_ms = within(
            30,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        let wall = started.elapsed();
        println!(
            "workflow time across the timers: {workflow_ms} ms (wall clock {} ms)",
            wall.as_millis()
        );
        ensure!(
            workflow_ms >= 1200,
            "workflow time advanced only {workflow_ms} ms across 1.2 s of timers"
        );
        ensure!(
            wall >= Duration::from_millis(1200),
            "finished after {wall:?}, before its timers could fire"
        );
        let events = event_names(&history(&client, &workflow_id, None).await?);
        let count = |name: &str| events.iter().filter(|e| *e == name).count();
        println!(
            "history: {} TimerStarted, {} TimerFired",
            count("TimerStarted"),
            count("TimerFired")
        );
        ensure!(count("TimerStarted") == 2 && count("TimerFired") == 2);

        // 2. Timer vs. signal, the signal first: a 60 s deadline, approved right away.
        let workflow_id = unique("approval-signalled");
        let started = Instant::now();
        let handle = client
            .start_workflow(
                ApprovalWorkflow::run,
                60_000u64,
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!("started ApprovalWorkflow {workflow_id} with a 60 s deadline");
        // Signal once the workflow is waiting on its timer.
        within(
            20,
            "TimerStarted",
            wait_for_event(&client, &workflow_id, "TimerStarted"),
        )
        .await??;
        handle
            .signal(
                ApprovalWorkflow::approve,
                "alice".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await?;
        println!("signal approve(\"alice\")");
        let decision = within(
            30,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        println!(
            "workflow result: {decision:?} after {} ms",
            started.elapsed().as_millis()
        );
        ensure!(
            decision.decided_by == "signal" && decision.approved_by.as_deref() == Some("alice"),
            "the signal should win, got {decision:?}"
        );
        ensure!(started.elapsed() < Duration::from_secs(30));
        let events = event_names(&history(&client, &workflow_id, None).await?);
        println!("history: {}", events.join(", "));
        ensure!(
            events.iter().any(|e| e == "TimerCanceled"),
            "the losing timer should be cancelled"
        );

        // 3. Timer vs. signal, the timer first: a 1 s deadline and nobody approves.
        let workflow_id = unique("approval-expired");
        let handle = client
            .start_workflow(
                ApprovalWorkflow::run,
                1_000u64,
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!("started ApprovalWorkflow {workflow_id} with a 1 s deadline, no signal");
        let decision = within(
            30,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        println!("workflow result: {decision:?}");
        ensure!(
            decision.decided_by == "timer" && decision.approved_by.is_none(),
            "the timer should win, got {decision:?}"
        );
        ensure!(
            decision.waited_ms >= 1000,
            "waited only {} ms",
            decision.waited_ms
        );
        let events = event_names(&history(&client, &workflow_id, None).await?);
        ensure!(events.iter().any(|e| e == "TimerFired"));
        Ok(())
    })
    .await
}
