//! activity-cancellation: a workflow cancels activities it started: one through a cancellation
//! token it passed in the activity options, one by calling `cancel()` on the activity's future.
//! The activities heartbeat, learn of the cancellation from the server's heartbeat response, and
//! stop; the workflow then carries on and completes normally.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityCancellationType, ActivityExecutionError, ActivityOptions, CancellableFuture,
    WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

use crate::support::{Env, event_names, history, start_options, unique, with_worker, within};

/// What the activities observed, one line per event.
type ActivityLog = Arc<Mutex<Vec<String>>>;

pub struct MediaActivities {
    log: ActivityLog,
}

#[activities]
impl MediaActivities {
    /// Works through up to 100 chunks of 100 ms, heartbeating after each, until cancelled.
    #[activity]
    pub async fn process_chunks(
        self: Arc<Self>,
        ctx: ActivityContext,
        job: String,
    ) -> Result<u32, ActivityError> {
        for chunk in 1..=100u32 {
            // The heartbeat is also how a cancellation request reaches a running activity.
            ctx.record_heartbeat(chunk).await?;
            tokio::select! {
                _ = ctx.cancelled() => {
                    self.log
                        .lock()
                        .unwrap()
                        .push(format!("{job}: saw the cancellation after chunk {chunk}"));
                    return Err(ActivityError::cancelled());
                }
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        self.log.lock().unwrap().push(format!("{job}: finished"));
        Ok(100)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub upload: String,
    pub transcode: String,
    pub after: String,
}

/// How an activity ended, as the workflow saw it.
fn outcome(result: Result<u32, ActivityExecutionError>) -> String {
    match result {
        Ok(chunks) => format!("finished all {chunks} chunks"),
        Err(ActivityExecutionError::Cancelled(_)) => "cancelled".to_string(),
        Err(e) => format!("failed: {e}"),
    }
}

#[workflow]
#[derive(Default)]
pub struct MediaWorkflow;

#[workflow_methods]
impl MediaWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<Report> {
        let options = |job: &str| {
            ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
                // Heartbeats are sent at most every 80% of this; that bounds how late the
                // activity hears of a cancellation.
                .heartbeat_timeout(Duration::from_secs(1))
                // Wait for the activity to acknowledge the cancellation (default: don't wait).
                .cancellation_type(ActivityCancellationType::WaitCancellationCompleted)
                .summary(job.to_string())
        };

        // Cancelled through a token: a child of the workflow's token, so it would also be
        // cancelled if the workflow were.
        let upload_token = ctx.cancellation_token().child_token();
        let upload = ctx.execute_activity(
            MediaActivities::process_chunks,
            "upload".to_string(),
            options("upload")
                .cancellation_token(upload_token.clone())
                .build(),
        );
        // Cancelled through its future (`CancellableFuture::cancel`).
        let transcode = ctx.execute_activity(
            MediaActivities::process_chunks,
            "transcode".to_string(),
            options("transcode").build(),
        );

        // Let both run for a second, then change our mind.
        ctx.timer(Duration::from_secs(1)).await;
        upload_token.cancel_with_reason("upload no longer needed");
        transcode.cancel();

        let upload = outcome(upload.await);
        let transcode = outcome(transcode.await);
        // The workflow itself is not cancelled: it goes on normally.
        ctx.timer(Duration::from_millis(100)).await;
        Ok(Report {
            upload,
            transcode,
            after: "workflow went on after the cancellations".to_string(),
        })
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("activity-cancellation");
    let log: ActivityLog = Arc::default();
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<MediaWorkflow>()?
            .register_activities(MediaActivities { log: log.clone() })
            .build(),
    )?;

    with_worker(&mut worker, async {
        let workflow_id = unique("media");
        let handle = client
            .start_workflow(
                MediaWorkflow::run,
                (),
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!("started MediaWorkflow {workflow_id}");
        let report = within(
            30,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        let mut lines = log.lock().unwrap().clone();
        lines.sort();
        for line in &lines {
            println!("  activity {line}");
        }
        println!("workflow result: {report:?}");
        ensure!(
            report.upload == "cancelled" && report.transcode == "cancelled",
            "both activities should be cancelled, got {report:?}"
        );
        ensure!(
            lines.len() == 2
                && lines[0].starts_with("transcode: saw the cancellation")
                && lines[1].starts_with("upload: saw the cancellation"),
            "both activities should observe their cancellation, got {lines:?}"
        );

        let events = event_names(&history(&client, &workflow_id, None).await?);
        let count = |name: &str| events.iter().filter(|e| *e == name).count();
        println!(
            "history: {} ActivityTaskCancelRequested, {} ActivityTaskCanceled, last {}",
            count("ActivityTaskCancelRequested"),
            count("ActivityTaskCanceled"),
            events.last().map(String::as_str).unwrap_or("?")
        );
        ensure!(count("ActivityTaskCancelRequested") == 2 && count("ActivityTaskCanceled") == 2);
        ensure!(events.last().map(String::as_str) == Some("WorkflowExecutionCompleted"));
        Ok(())
    })
    .await
}
