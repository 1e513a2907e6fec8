//! cancel-terminate: cancelling a workflow asks it to stop: the workflow sees the request, runs
//! its cleanup and then reports itself Canceled. Terminating a workflow stops it at once, with a
//! reason, without running any more workflow code.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Result, bail, ensure};
use temporalio_client::{
    Client, WorkflowCancelOptions, WorkflowExecutionStatus, WorkflowTerminateOptions,
    errors::WorkflowGetResultError,
};
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, SyncWorkflowContext, WorkerOptions, WorkflowCancellationToken,
    WorkflowContext, WorkflowResult, WorkflowTermination,
    activities::{ActivityContext, ActivityError},
};

use crate::support::{
    Env, describe, event_names, history, start_options, unique, with_worker, within,
};

pub struct OrderActivities {
    /// Orders whose reservation was released, with the reason they were cancelled.
    released: Arc<Mutex<Vec<String>>>,
}

#[activities]
impl OrderActivities {
    #[activity]
    pub async fn release_reservation(
        self: Arc<Self>,
        _ctx: ActivityContext,
        what: String,
    ) -> Result<(), ActivityError> {
        self.released.lock().unwrap().push(what);
        Ok(())
    }
}

/// Waits for a `paid` signal (which never comes in this sample). If it is cancelled while it
/// waits, it releases its reservation and reports itself cancelled.
#[workflow]
#[derive(Default)]
pub struct OrderWorkflow {
    paid: bool,
}

#[workflow_methods]
impl OrderWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, order: String) -> WorkflowResult<String> {
        // A wait (like a timer or an activity) fails once the workflow is asked to cancel.
        if let Err(cancelled) = ctx.wait_condition(|s| s.paid).await {
            let reason = cancelled.reason().unwrap_or("no reason").to_string();
            // Cleanup runs on a fresh (detached) cancellation token: with the workflow's own
            // token, already cancelled, the activity would be cancelled before it started.
            ctx.execute_activity(
                OrderActivities::release_reservation,
                format!("{order} ({reason})"),
                ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
                    .cancellation_token(WorkflowCancellationToken::new())
                    .build(),
            )
            .await?;
            return Err(WorkflowTermination::cancelled());
        }
        Ok(format!("{order} paid"))
    }

    #[signal]
    pub fn paid(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _: ()) {
        self.paid = true;
    }
}

/// Polls the history of `workflow_id` until it holds an event named `event`.
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
    let task_queue = unique("cancel-terminate");
    let released: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<OrderWorkflow>()?
            .register_activities(OrderActivities {
                released: released.clone(),
            })
            .build(),
    )?;

    with_worker(&mut worker, async {
        // 1. Cancel: the workflow cleans up, then ends Canceled.
        let cancelled_id = unique("order-cancelled");
        let handle = client
            .start_workflow(
                OrderWorkflow::run,
                "order-1".to_string(),
                start_options(&task_queue, &cancelled_id),
            )
            .await?;
        println!("started OrderWorkflow {cancelled_id}");
        // Wait until its first workflow task has run: it is now waiting for `paid`.
        within(
            20,
            "the first workflow task",
            wait_for_event(&client, &cancelled_id, "WorkflowTaskCompleted"),
        )
        .await??;
        let status = describe(&client, &cancelled_id, None).await?.status();
        println!("describe before the cancel: {status:?}");
        ensure!(status == WorkflowExecutionStatus::Running);

        handle
            .cancel(
                WorkflowCancelOptions::builder()
                    .reason("customer changed their mind")
                    .build(),
            )
            .await?;
        println!("requested cancellation (reason \"customer changed their mind\")");
        let outcome = within(
            30,
            "the cancelled workflow",
            handle.get_result(Default::default()),
        )
        .await?;
        println!("get_result: {outcome:?}");
        ensure!(
            matches!(outcome, Err(WorkflowGetResultError::Cancelled { .. })),
            "expected the workflow to be cancelled, got {outcome:?}"
        );
        let desc = describe(&client, &cancelled_id, None).await?;
        println!("describe after the cancel: {:?}", desc.status());
        ensure!(desc.status() == WorkflowExecutionStatus::Canceled);
        let events = event_names(&history(&client, &cancelled_id, None).await?);
        println!("history: {}", events.join(", "));
        ensure!(
            events
                .iter()
                .any(|e| e == "WorkflowExecutionCancelRequested")
                && events.last().map(String::as_str) == Some("WorkflowExecutionCanceled")
        );
        let cleanup = released.lock().unwrap().clone();
        println!("cleanup activity ran for: {cleanup:?}");
        ensure!(
            cleanup == ["order-1 (customer changed their mind)"],
            "unexpected cleanup {cleanup:?}"
        );

        // 2. Terminate: the workflow is stopped by the server; no workflow code runs.
        let terminated_id = unique("order-terminated");
        let handle = client
            .start_workflow(
                OrderWorkflow::run,
                "order-2".to_string(),
                start_options(&task_queue, &terminated_id),
            )
            .await?;
        println!("started OrderWorkflow {terminated_id}");
        within(
            20,
            "the first workflow task",
            wait_for_event(&client, &terminated_id, "WorkflowTaskCompleted"),
        )
        .await??;
        handle
            .terminate(
                WorkflowTerminateOptions::builder()
                    .reason("fraud suspected")
                    .build(),
            )
            .await?;
        println!("terminated (reason \"fraud suspected\")");
        let outcome = within(
            30,
            "the terminated workflow",
            handle.get_result(Default::default()),
        )
        .await?;
        println!("get_result: {outcome:?}");
        ensure!(
            matches!(outcome, Err(WorkflowGetResultError::Terminated { .. })),
            "expected the workflow to be terminated, got {outcome:?}"
        );
        let desc = describe(&client, &terminated_id, None).await?;
        println!("describe after the terminate: {:?}", desc.status());
        ensure!(desc.status() == WorkflowExecutionStatus::Terminated);
        let events = history(&client, &terminated_id, None).await?;
        let reason = match events.last().and_then(|e| e.attributes.as_ref()) {
            Some(Attributes::WorkflowExecutionTerminatedEventAttributes(a)) => a.reason.clone(),
            other => bail!("the last event should be WorkflowExecutionTerminated, got {other:?}"),
        };
        println!("last event: WorkflowExecutionTerminated, reason {reason:?}");
        ensure!(reason == "fraud suspected");
        ensure!(
            released.lock().unwrap().len() == 1,
            "a terminated workflow runs no cleanup"
        );
        Ok(())
    })
    .await
}
