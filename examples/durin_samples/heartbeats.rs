//! heartbeats: a long activity records its progress with heartbeats. Its first attempt hangs
//! (stops heartbeating), so the server times it out after the heartbeat timeout and retries it;
//! the retry reads the last heartbeat details and resumes where the first attempt stopped.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Result, ensure};
use temporalio_common::RetryPolicy;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

use crate::support::{Env, start_options, unique, with_worker, within};

/// What the activity did, with when it did it.
type ActivityLog = Arc<Mutex<Vec<(Instant, String)>>>;

pub struct BatchActivities {
    log: ActivityLog,
}

impl BatchActivities {
    fn note(&self, line: String) {
        self.log.lock().unwrap().push((Instant::now(), line));
    }
}

#[activities]
impl BatchActivities {
    /// Processes items `1..=total`, heartbeating the number of the last item done.
    #[activity]
    pub async fn process_items(
        self: Arc<Self>,
        ctx: ActivityContext,
        total: u32,
    ) -> Result<String, ActivityError> {
        let attempt = ctx.info().attempt;
        // The details of the last heartbeat of the previous attempt, if there was one.
        let last_done: Option<u32> = ctx.heartbeat_details().deserialize()?;
        let first = last_done.map_or(1, |done| done + 1);
        self.note(format!(
            "attempt {attempt} starts at item {first} (heartbeat details from before: {last_done:?})"
        ));
        for item in first..=total {
            tokio::time::sleep(Duration::from_millis(150)).await; // the work
            ctx.record_heartbeat(item).await?;
            if attempt == 1 && item == 4 {
                self.note("attempt 1 hangs after item 4 and stops heartbeating".to_string());
                tokio::time::sleep(Duration::from_secs(4)).await;
                return Err(anyhow::anyhow!("attempt 1 was stuck").into());
            }
        }
        self.note(format!(
            "attempt {attempt} processed items {first}..={total}"
        ));
        Ok(format!(
            "processed items {first}..={total} on attempt {attempt}"
        ))
    }
}

#[workflow]
#[derive(Default)]
pub struct BatchWorkflow;

#[workflow_methods]
impl BatchWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, total: u32) -> WorkflowResult<String> {
        Ok(ctx
            .execute_activity(
                BatchActivities::process_items,
                total,
                // An attempt that does not heartbeat for 1 s is timed out and retried.
                ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
                    .heartbeat_timeout(Duration::from_secs(1))
                    .retry_policy(
                        RetryPolicy::builder()
                            .initial_interval(Duration::from_millis(200))
                            .maximum_attempts(3)
                            .build(),
                    )
                    .build(),
            )
            .await?)
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("heartbeats");
    let log: ActivityLog = Arc::default();
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<BatchWorkflow>()?
            .register_activities(BatchActivities { log: log.clone() })
            .build(),
    )?;

    with_worker(&mut worker, async {
        let workflow_id = unique("batch");
        let started = Instant::now();
        let handle = client
            .start_workflow(
                BatchWorkflow::run,
                10u32,
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!("started BatchWorkflow {workflow_id}: process 10 items");
        let result = within(
            60,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        for (at, line) in log.lock().unwrap().iter() {
            println!(
                "  t+{:>4.1}s {line}",
                at.duration_since(started).as_secs_f64()
            );
        }
        println!("workflow result: {result:?}");
        ensure!(
            result == "processed items 5..=10 on attempt 2",
            "the retry should resume after item 4, got {result:?}"
        );
        Ok(())
    })
    .await
}
