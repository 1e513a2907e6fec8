//! cron: a workflow started with a cron schedule (`@every 2s`) runs again and again, each time
//! as a new run, until the sample terminates it.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Result, bail, ensure};
use temporalio_client::{
    WorkflowExecutionStatus, WorkflowStartOptions, WorkflowTerminateOptions,
    errors::WorkflowGetResultError,
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

use crate::support::{Env, describe, unique, with_worker, within};

/// Run id of each cron run that ticked, with when it ticked.
type TickLog = Arc<Mutex<Vec<(String, Instant)>>>;

pub struct ReportActivities {
    ticks: TickLog,
}

#[activities]
impl ReportActivities {
    /// Stands in for the periodic job (send a report, clean up, ...).
    #[activity]
    pub async fn send_report(
        self: Arc<Self>,
        ctx: ActivityContext,
    ) -> Result<String, ActivityError> {
        let run_id = ctx.info().workflow_run_id.clone().unwrap_or_default();
        self.ticks
            .lock()
            .unwrap()
            .push((run_id.clone(), Instant::now()));
        Ok(format!("report sent by run {run_id}"))
    }
}

/// One cron run: sends one report and completes. The server starts the next run on schedule.
#[workflow]
#[derive(Default)]
pub struct ReportCronWorkflow;

#[workflow_methods]
impl ReportCronWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        Ok(ctx
            .execute_activity(
                ReportActivities::send_report,
                (),
                ActivityOptions::start_to_close_timeout(Duration::from_secs(10)),
            )
            .await?)
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("cron");
    let ticks: TickLog = Arc::default();
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<ReportCronWorkflow>()?
            .register_activities(ReportActivities {
                ticks: ticks.clone(),
            })
            .build(),
    )?;
    let tick_count = || ticks.lock().unwrap().len();

    with_worker(&mut worker, async {
        let workflow_id = unique("report-cron");
        let started = Instant::now();
        let handle = client
            .start_workflow(
                ReportCronWorkflow::run,
                (),
                WorkflowStartOptions::new(task_queue.clone(), workflow_id.clone())
                    .cron_schedule("@every 2s".to_string())
                    .build(),
            )
            .await?;
        println!("started ReportCronWorkflow {workflow_id} with cron schedule \"@every 2s\"");

        let mut seen = 0;
        within(30, "three cron runs", async {
            while seen < 3 {
                let now = tick_count();
                for (run_id, at) in ticks.lock().unwrap()[seen..now].iter() {
                    println!(
                        "  t+{:>4.1}s run {run_id} sent its report",
                        at.duration_since(started).as_secs_f64()
                    );
                }
                seen = now;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await?;
        let runs: Vec<String> = ticks
            .lock()
            .unwrap()
            .iter()
            .map(|(r, _)| r.clone())
            .collect();
        let mut distinct = runs.clone();
        distinct.dedup();
        ensure!(
            distinct.len() == runs.len(),
            "each tick should come from a new run: {runs:?}"
        );

        // A cron workflow never completes on its own: stop the schedule by terminating it.
        client
            .get_workflow_handle::<ReportCronWorkflow>(workflow_id.clone())
            .terminate(
                WorkflowTerminateOptions::builder()
                    .reason("the sample has seen enough reports")
                    .build(),
            )
            .await?;
        let desc = describe(&client, &workflow_id, None).await?;
        println!(
            "terminated the cron workflow; its latest run is {:?}",
            desc.status()
        );
        ensure!(desc.status() == WorkflowExecutionStatus::Terminated);

        // The handle from the start follows the chain of runs to the terminated one.
        match within(
            10,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await?
        {
            Err(WorkflowGetResultError::Terminated { .. }) => {
                println!("get_result on the first run's handle -> Terminated")
            }
            other => bail!("expected Terminated, got {other:?}"),
        }

        let at_termination = tick_count();
        tokio::time::sleep(Duration::from_secs(3)).await;
        ensure!(
            tick_count() == at_termination,
            "a cron run started after the termination"
        );
        println!("no run started in the 3s after the termination ({at_termination} runs in total)");
        Ok(())
    })
    .await
}
