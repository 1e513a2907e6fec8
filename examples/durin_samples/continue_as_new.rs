//! continue-as-new: a counter that counts to a target a few steps per run. Each run hands its
//! state to a fresh run (continue-as-new), keeping every run's history short.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde::{Deserialize, Serialize};
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ContinueAsNewOptions, WorkerOptions, WorkflowContext, WorkflowResult};

use crate::support::{Env, event_names, history, start_options, unique, with_worker, within};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CounterState {
    pub value: u32,
    pub target: u32,
    /// How many increments one run does before continuing as new.
    pub steps_per_run: u32,
    /// 1 for the first run, 2 for the next, ...
    pub run_number: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CounterResult {
    pub value: u32,
    pub runs: u32,
    pub first_run_id: String,
    pub last_run_id: String,
}

#[workflow]
#[derive(Default)]
pub struct CounterWorkflow;

#[workflow_methods]
impl CounterWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        state: CounterState,
    ) -> WorkflowResult<CounterResult> {
        let mut value = state.value;
        for _ in 0..state.steps_per_run {
            if value >= state.target {
                break;
            }
            ctx.timer(Duration::from_millis(50)).await;
            value += 1;
        }
        if value < state.target {
            // Ends this run and starts the next one with the new state. Always returns `Err`,
            // which `?` propagates.
            ctx.continue_as_new(
                CounterState {
                    value,
                    run_number: state.run_number + 1,
                    ..state
                },
                ContinueAsNewOptions::default(),
            )?;
        }
        Ok(CounterResult {
            value,
            runs: state.run_number,
            first_run_id: ctx.info().first_execution_run_id().to_string(),
            last_run_id: ctx.run_id().to_string(),
        })
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("continue-as-new");
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<CounterWorkflow>()?
            .build(),
    )?;

    with_worker(&mut worker, async {
        let workflow_id = unique("counter");
        let handle = client
            .start_workflow(
                CounterWorkflow::run,
                CounterState {
                    value: 0,
                    target: 10,
                    steps_per_run: 3,
                    run_number: 1,
                },
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        let first_run = handle
            .run_id()
            .context("start returned no run id")?
            .to_string();
        println!(
            "started CounterWorkflow {workflow_id} (first run {first_run}): count to 10, 3 per run"
        );

        // `get_result` follows the chain of runs to the last one.
        let result = within(
            60,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        println!(
            "result: value {} after {} runs (last run {})",
            result.value, result.runs, result.last_run_id
        );
        ensure!(
            result.value == 10 && result.runs == 4,
            "unexpected result {result:?}"
        );
        ensure!(result.first_run_id == first_run);

        // Walk the chain run by run: each run's history ends in WorkflowExecutionContinuedAsNew
        // naming the next run.
        let mut run_id = first_run;
        let mut runs = 0;
        loop {
            runs += 1;
            let events = history(&client, &workflow_id, Some(&run_id)).await?;
            let names = event_names(&events);
            let timers = names.iter().filter(|n| *n == "TimerFired").count();
            let last = names.last().cloned().unwrap_or_default();
            println!(
                "  run {runs} {run_id}: {} events, {timers} timers, ends with {last}",
                events.len()
            );
            match events.last().and_then(|e| e.attributes.as_ref()) {
                Some(Attributes::WorkflowExecutionContinuedAsNewEventAttributes(a)) => {
                    run_id = a.new_execution_run_id.clone();
                }
                _ => break,
            }
        }
        ensure!(runs == 4, "expected 4 runs, found {runs}");
        ensure!(run_id == result.last_run_id);
        Ok(())
    })
    .await
}
