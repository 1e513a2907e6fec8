//! schedules: create a schedule, watch it start workflows, pause it, trigger it, backfill
//! past times, list it and delete it — with the Rust SDK's schedule client.

use std::time::{Duration, SystemTime};

use anyhow::{Result, ensure};
use futures::StreamExt;
use temporalio_client::schedules::{
    CreateScheduleOptions, ListSchedulesOptions, ScheduleAction, ScheduleBackfill,
    ScheduleOverlapPolicy, ScheduleSpec,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkerOptions, WorkflowContext, WorkflowResult};

use crate::support::{Env, unique, with_worker, within};

#[workflow]
#[derive(Default)]
pub struct ReportWorkflow;

#[workflow_methods]
impl ReportWorkflow {
    #[run]
    pub async fn run(_ctx: &mut WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        Ok(format!("report for {name}"))
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("schedules");
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<ReportWorkflow>()?
            .build(),
    )?;

    with_worker(&mut worker, async {
        let schedule_id = unique("every-2s");
        let handle = client
            .create_schedule(
                schedule_id.clone(),
                CreateScheduleOptions::builder()
                    .action(ScheduleAction::start_workflow(
                        ReportWorkflow::run,
                        "sales".to_string(),
                        task_queue.clone(),
                        unique("report"),
                    ))
                    .spec(ScheduleSpec::from_interval(Duration::from_secs(2)))
                    .build(),
            )
            .await?;
        println!("created schedule {schedule_id}: every 2 s");

        // The schedule starts a workflow every 2 seconds.
        let mut described = handle.describe(Default::default()).await?;
        within(20, "two scheduled actions", async {
            while described.action_count() < 2 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                described = handle.describe(Default::default()).await?;
            }
            anyhow::Ok(())
        })
        .await??;
        println!(
            "{} actions so far; next at {:?}",
            described.action_count(),
            described.future_action_times().first()
        );

        handle
            .pause(Some("paused by the sample"), Default::default())
            .await?;
        let paused = handle.describe(Default::default()).await?;
        ensure!(paused.paused(), "the schedule should be paused");
        println!("paused: note {:?}", paused.note());

        // A trigger runs even while paused.
        let before = paused.action_count();
        handle
            .trigger(ScheduleOverlapPolicy::AllowAll, Default::default())
            .await?;
        // Backfill: run the times of the last 6 seconds as if the schedule had been active.
        let now = SystemTime::now();
        handle
            .backfill(
                [ScheduleBackfill::new(now - Duration::from_secs(6), now)
                    .overlap_policy(ScheduleOverlapPolicy::AllowAll)
                    .build()],
                Default::default(),
            )
            .await?;
        let after = handle.describe(Default::default()).await?;
        ensure!(
            after.action_count() >= before + 2,
            "trigger + backfill should add actions ({} -> {})",
            before,
            after.action_count()
        );
        println!(
            "trigger and backfill: {} -> {} actions",
            before,
            after.action_count()
        );

        let listed: Vec<_> = client
            .list_schedules(ListSchedulesOptions::default())
            .collect::<Vec<_>>()
            .await;
        ensure!(
            listed
                .iter()
                .any(|s| s.as_ref().is_ok_and(|s| s.schedule_id() == schedule_id)),
            "the schedule should be listed"
        );
        println!("listed {} schedule(s)", listed.len());

        handle.delete(Default::default()).await?;
        ensure!(
            handle.describe(Default::default()).await.is_err(),
            "the schedule should be gone"
        );
        println!("deleted {schedule_id}");
        Ok(())
    })
    .await
}
