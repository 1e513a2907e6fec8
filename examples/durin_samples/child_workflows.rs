//! child-workflows: a parent fans out to child workflows and combines their results; then a
//! parent that exits while its children still run shows two parent-close policies (ABANDON keeps
//! the child running, TERMINATE ends it with the parent).

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use serde::{Deserialize, Serialize};
use temporalio_client::{WorkflowExecutionStatus, WorkflowSignalOptions};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ChildWorkflowOptions, ParentClosePolicy, SyncWorkflowContext, WorkerOptions, WorkflowContext,
    WorkflowResult, workflows::join_all,
};

use crate::support::{Env, describe, start_options, unique, with_worker, within};

// ---- fan-out / fan-in -----------------------------------------------------------------------

/// Counts the words of one line.
#[workflow]
#[derive(Default)]
pub struct WordCountChild;

#[workflow_methods]
impl WordCountChild {
    #[run]
    pub async fn run(_ctx: &mut WorkflowContext<Self>, line: String) -> WorkflowResult<u32> {
        Ok(line.split_whitespace().count() as u32)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordCount {
    pub per_line: Vec<u32>,
    pub total: u32,
}

/// Starts one `WordCountChild` per line, waits for all of them and adds up their results.
#[workflow]
#[derive(Default)]
pub struct WordCountParent;

#[workflow_methods]
impl WordCountParent {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        lines: Vec<String>,
    ) -> WorkflowResult<WordCount> {
        let mut children = Vec::new();
        for (i, line) in lines.into_iter().enumerate() {
            let child_id = format!("{}-line-{i}", ctx.workflow_id());
            let child = ctx
                .start_child_workflow(
                    WordCountChild::run,
                    line,
                    ChildWorkflowOptions::workflow_id(child_id),
                )
                .await?;
            children.push(child);
        }
        // `join_all` from the SDK waits deterministically (replay-safe) for every child.
        let mut per_line = Vec::new();
        for result in join_all(children.into_iter().map(|c| c.result())).await {
            per_line.push(result?);
        }
        let total = per_line.iter().sum();
        Ok(WordCount { per_line, total })
    }
}

// ---- parent-close policies ------------------------------------------------------------------

/// Waits until signalled `finish`, then returns the signal's message.
#[workflow]
#[derive(Default)]
pub struct LongRunningChild {
    message: Option<String>,
}

#[workflow_methods]
impl LongRunningChild {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        ctx.wait_condition(|s| s.message.is_some()).await?;
        Ok(ctx.state(|s| s.message.clone().unwrap_or_default()))
    }

    #[signal]
    pub fn finish(&mut self, _ctx: &mut SyncWorkflowContext<Self>, message: String) {
        self.message = Some(message);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LaunchOrder {
    pub abandoned_child_id: String,
    pub terminated_child_id: String,
}

/// Starts two `LongRunningChild`ren with different parent-close policies and completes right
/// away, without waiting for them.
#[workflow]
#[derive(Default)]
pub struct LauncherParent;

#[workflow_methods]
impl LauncherParent {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, order: LaunchOrder) -> WorkflowResult<()> {
        for (child_id, policy) in [
            (order.abandoned_child_id, ParentClosePolicy::Abandon),
            (order.terminated_child_id, ParentClosePolicy::Terminate),
        ] {
            ctx.start_child_workflow(
                LongRunningChild::run,
                (),
                ChildWorkflowOptions::builder()
                    .workflow_id(child_id)
                    .parent_close_policy(policy)
                    .build(),
            )
            .await?;
        }
        Ok(())
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("child-workflows");
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<WordCountChild>()?
            .register_workflow::<WordCountParent>()?
            .register_workflow::<LongRunningChild>()?
            .register_workflow::<LauncherParent>()?
            .build(),
    )?;

    with_worker(&mut worker, async {
        // 1. Fan-out / fan-in.
        let parent_id = unique("word-count");
        let lines = vec![
            "durable execution".to_string(),
            "one binary speaking the Temporal API".to_string(),
            "children report back to their parent".to_string(),
        ];
        let parent = client
            .start_workflow(
                WordCountParent::run,
                lines,
                start_options(&task_queue, &parent_id),
            )
            .await?;
        println!("started WordCountParent {parent_id}");
        let counted = within(
            30,
            "the parent's result",
            parent.get_result(Default::default()),
        )
        .await??;
        println!("parent result: {counted:?}");
        ensure!(
            counted.per_line == [2, 6, 6] && counted.total == 14,
            "unexpected word count {counted:?}"
        );
        for i in 0..3 {
            let child_id = format!("{parent_id}-line-{i}");
            let desc = describe(&client, &child_id, None).await?;
            println!(
                "  child {child_id}: {:?}, parent {}",
                desc.status(),
                desc.parent_id().unwrap_or("-")
            );
            ensure!(desc.parent_id() == Some(parent_id.as_str()));
        }

        // 2. Parent-close policies.
        let launcher_id = unique("launcher");
        let order = LaunchOrder {
            abandoned_child_id: format!("{launcher_id}-abandoned"),
            terminated_child_id: format!("{launcher_id}-terminated"),
        };
        let launcher = client
            .start_workflow(
                LauncherParent::run,
                order.clone(),
                start_options(&task_queue, &launcher_id),
            )
            .await?;
        within(
            30,
            "the launcher's result",
            launcher.get_result(Default::default()),
        )
        .await??;
        println!("LauncherParent {launcher_id} completed while its two children were running");

        let terminated = wait_for_status(
            &client,
            &order.terminated_child_id,
            WorkflowExecutionStatus::Terminated,
        )
        .await?;
        println!(
            "  child with ParentClosePolicy::Terminate: {:?}",
            terminated.status()
        );
        let abandoned = describe(&client, &order.abandoned_child_id, None).await?;
        println!(
            "  child with ParentClosePolicy::Abandon:   {:?}",
            abandoned.status()
        );
        ensure!(
            abandoned.status() == WorkflowExecutionStatus::Running,
            "the abandoned child should still be running"
        );

        // The abandoned child lives on: signal it and collect its result.
        let child =
            client.get_workflow_handle::<LongRunningChild>(order.abandoned_child_id.clone());
        child
            .signal(
                LongRunningChild::finish,
                "finished after its parent".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await?;
        let message = within(
            30,
            "the abandoned child's result",
            child.get_result(Default::default()),
        )
        .await??;
        println!("  abandoned child result: {message:?}");
        ensure!(message == "finished after its parent");
        Ok(())
    })
    .await
}

/// Polls `describe` until the latest run of `workflow_id` has status `want` (10 s at most).
async fn wait_for_status(
    client: &temporalio_client::Client,
    workflow_id: &str,
    want: WorkflowExecutionStatus,
) -> Result<temporalio_client::WorkflowExecutionDescription> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let desc = describe(client, workflow_id, None).await?;
        if desc.status() == want {
            return Ok(desc);
        }
        if Instant::now() > deadline {
            bail!(
                "{workflow_id} is {:?}, expected {want:?} within 10s",
                desc.status()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
