//! async-completion: an activity hands its task token to someone else and returns without a
//! result; later, client code (a person approving, a webhook, another service) completes the
//! activity with that token, and the workflow carries on.

use std::{sync::Arc, time::Duration};

use anyhow::{Result, bail, ensure};
use temporalio_client::{
    ActivityIdentifier, RpcOptions, WorkflowExecutionStatus, errors::AsyncActivityError,
};
use temporalio_common::protos::TaskToken;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};
use tokio::sync::mpsc;

use crate::support::{Env, start_options, unique, with_worker, within};

/// An approval request as it reaches the approver: the activity's task token plus what to
/// approve.
pub struct PendingApproval {
    pub task_token: Vec<u8>,
    pub request: String,
}

pub struct ApprovalActivities {
    /// Stands in for a queue, an email, a ticket: whatever reaches the approver.
    inbox: mpsc::UnboundedSender<PendingApproval>,
}

#[activities]
impl ApprovalActivities {
    #[activity]
    pub async fn request_approval(
        self: Arc<Self>,
        ctx: ActivityContext,
        request: String,
    ) -> Result<String, ActivityError> {
        let task_token = ctx.info().task_token.clone();
        let _ = self.inbox.send(PendingApproval {
            task_token,
            request,
        });
        // Not a failure: tells the SDK the result will be reported later, by task token.
        Err(ActivityError::WillCompleteAsync)
    }
}

#[workflow]
#[derive(Default)]
pub struct ExpenseWorkflow;

#[workflow_methods]
impl ExpenseWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, expense: String) -> WorkflowResult<String> {
        let decision = ctx
            .execute_activity(
                ApprovalActivities::request_approval,
                expense.clone(),
                ActivityOptions::start_to_close_timeout(Duration::from_secs(120)),
            )
            .await?;
        Ok(format!("{expense}: {decision}"))
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("async-completion");
    let (inbox, mut approvals) = mpsc::unbounded_channel();
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<ExpenseWorkflow>()?
            .register_activities(ApprovalActivities { inbox })
            .build(),
    )?;

    with_worker(&mut worker, async {
        let workflow_id = unique("expense");
        let handle = client
            .start_workflow(
                ExpenseWorkflow::run,
                "train ticket, 120 EUR".to_string(),
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!("started ExpenseWorkflow {workflow_id}");

        // The approver receives the request...
        let Some(pending) = within(30, "the approval request", approvals.recv()).await? else {
            bail!("the activity never sent its approval request");
        };
        println!(
            "approver got request {:?} with a task token of {} bytes",
            pending.request,
            pending.task_token.len()
        );
        let activity = client.get_async_activity_handle(ActivityIdentifier::from_task_token(
            TaskToken::from(pending.task_token.clone()),
        ));

        // ...the activity function has returned, but the activity is still open on the server.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let desc = handle.describe(Default::default()).await?;
        println!(
            "workflow is {:?} with {} pending activity",
            desc.status(),
            desc.raw().pending_activities.len()
        );
        ensure!(desc.status() == WorkflowExecutionStatus::Running);

        // While deciding, the approver can heartbeat the activity from outside the worker...
        activity
            .heartbeat(
                Some("looking at the receipt".to_string()),
                RpcOptions::default(),
            )
            .await?;
        println!("approver heartbeat the activity");
        // ...and then completes it with a result.
        activity
            .complete(
                Some("approved by the sample".to_string()),
                RpcOptions::default(),
            )
            .await?;
        println!("approver completed the activity by task token");

        let result = within(
            30,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        println!("workflow result: {result:?}");
        ensure!(result == "train ticket, 120 EUR: approved by the sample");

        // The token is spent: completing the activity again is refused.
        match activity
            .complete(Some("approved twice".to_string()), RpcOptions::default())
            .await
        {
            Err(AsyncActivityError::NotFound(_)) => {
                println!("completing it a second time -> NotFound, as expected")
            }
            other => bail!("a second completion should fail with NotFound, got {other:?}"),
        }
        Ok(())
    })
    .await
}
