//! Cron: a workflow started with a cron schedule runs again and again, each run linked from the
//! previous one, until the workflow id is terminated.

use crate::common;
use crate::helpers::*;

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use temporalio_client::{
    WorkflowExecutionStatus, WorkflowStartOptions, WorkflowTerminateOptions,
    errors::WorkflowGetResultError,
};
use temporalio_common::protos::temporal::api::enums::v1::{ContinueAsNewInitiator, EventType};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

// ---- 4. cron --------------------------------------------------------------------------------

/// `(workflow id, run id)` of every execution of the `tick` activity.
type TickLog = Arc<Mutex<Vec<(String, String)>>>;

pub struct TickActivities {
    ticks: TickLog,
}

#[activities]
impl TickActivities {
    #[activity]
    pub async fn tick(self: Arc<Self>, ctx: ActivityContext) -> Result<String, ActivityError> {
        let info = ctx.info();
        let wf = info.workflow_id.clone().unwrap_or_default();
        let run = info.workflow_run_id.clone().unwrap_or_default();
        self.ticks.lock().unwrap().push((wf, run.clone()));
        Ok(run)
    }
}

/// Runs one `tick` activity and returns.
#[workflow]
#[derive(Default)]
pub struct CronWorkflow;

#[workflow_methods]
impl CronWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        let run = ctx
            .execute_activity(
                TickActivities::tick,
                (),
                ActivityOptions::start_to_close_timeout(Duration::from_secs(5)),
            )
            .await?;
        Ok(format!("ticked in {run}"))
    }
}

/// 4. Cron: a workflow started with `@every 1s` runs again and again (each run a new run id
/// linked from the previous one) until the workflow id is terminated; then no more runs happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_workflow_runs_repeatedly_until_terminated() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-cron");
    let ticks: TickLog = Arc::new(Mutex::new(Vec::new()));
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<CronWorkflow>()
            .unwrap()
            .register_activities(TickActivities {
                ticks: ticks.clone(),
            })
            .build(),
    );
    let id = unique("cron");
    let distinct_runs = |ticks: &TickLog| -> BTreeSet<String> {
        ticks
            .lock()
            .unwrap()
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    };

    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(
                CronWorkflow::run,
                (),
                WorkflowStartOptions::new(tq.clone(), id.clone())
                    .cron_schedule("@every 1s".to_string())
                    .build(),
            )
            .await
            .expect("start cron workflow");
        let first_run = handle.run_id().expect("run id").to_string();

        within(12, "two cron runs", async {
            while distinct_runs(&ticks).len() < 2 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(
            ticks.lock().unwrap().iter().all(|(w, _)| *w == id),
            "every tick belongs to the cron workflow id"
        );

        // The first run completed and handed over to the next one.
        let first_desc = handle
            .describe(Default::default())
            .await
            .expect("describe first run");
        assert_eq!(first_desc.status(), WorkflowExecutionStatus::Completed);
        // A cron run's execution time is when its schedule let it start, after its start time.
        match (first_desc.start_time(), first_desc.execution_time()) {
            (Some(start), Some(exec)) => {
                let wait = exec.duration_since(start).unwrap_or_default();
                assert!(
                    wait > Duration::ZERO && wait <= Duration::from_secs(1),
                    "first cron run should wait for its schedule: start {start:?}, execution {exec:?}"
                );
            }
            other => panic!("describe should report start and execution time, got {other:?}"),
        }
        let chain = run_chain(&client, &id, &first_run).await;
        assert!(
            chain.len() >= 2,
            "at least two linked runs, got {}",
            chain.len()
        );
        for (i, (run, events)) in chain.iter().enumerate() {
            let started = started_attrs(events);
            assert_eq!(
                started.cron_schedule, "@every 1s",
                "run {i} keeps the schedule"
            );
            let backoff = started
                .first_workflow_task_backoff
                .map(|d| Duration::new(d.seconds as u64, d.nanos as u32));
            assert!(
                backoff.is_some_and(|b| b > Duration::ZERO && b <= Duration::from_secs(1)),
                "run {i} should wait for its schedule (0 < backoff <= 1s), got {backoff:?}"
            );
            if i > 0 {
                assert_eq!(
                    started.initiator(),
                    ContinueAsNewInitiator::CronSchedule,
                    "run {i}"
                );
                assert_eq!(
                    started.continued_execution_run_id,
                    chain[i - 1].0,
                    "run {i}"
                );
            }
            if i + 1 < chain.len() {
                assert_eq!(
                    events.last().map(|e| e.event_type()),
                    Some(EventType::WorkflowExecutionCompleted),
                    "run {i} ({run})"
                );
            }
        }
        let ticked: BTreeSet<String> = distinct_runs(&ticks);
        for run in ticked.iter() {
            assert!(
                chain.iter().any(|(r, _)| r == run),
                "ticking run {run} is not in the chain linked from the first run"
            );
        }

        // Terminating the workflow id stops the schedule.
        client
            .get_workflow_handle::<CronWorkflow>(id.clone())
            .terminate(
                WorkflowTerminateOptions::builder()
                    .reason("enough ticks")
                    .build(),
            )
            .await
            .expect("terminate cron workflow");
        let desc = describe(&client, &id, None).await;
        assert_eq!(desc.status(), WorkflowExecutionStatus::Terminated);
        // get_result from the first run follows the chain to the terminated run.
        let outcome = within(10, "cron result", handle.get_result(result_opts())).await;
        assert!(
            matches!(outcome, Err(WorkflowGetResultError::Terminated { .. })),
            "expected Terminated, got {outcome:?}"
        );

        let runs_at_termination = distinct_runs(&ticks).len();
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(
            distinct_runs(&ticks).len(),
            runs_at_termination,
            "no cron run may start after termination"
        );
        let desc = describe(&client, &id, None).await;
        assert_eq!(desc.status(), WorkflowExecutionStatus::Terminated);
    })
    .await;
}
