//! signals-and-queries: signals change a running workflow's state, queries read it, and
//! signal-with-start starts a workflow and signals it in one call.

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};
use temporalio_client::{WorkflowQueryOptions, WorkflowSignalOptions};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    SyncWorkflowContext, WorkerOptions, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::support::{Env, start_options, unique, with_worker, within};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub items: Vec<String>,
    pub closed_by: String,
}

/// A shopping list: `add_item` signals append to it until a `close` signal arrives.
#[workflow]
#[derive(Default)]
pub struct ShoppingListWorkflow {
    items: Vec<String>,
    closed_by: Option<String>,
}

#[workflow_methods]
impl ShoppingListWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<Summary> {
        // Sleeps durably until a signal makes the condition true.
        ctx.wait_condition(|s| s.closed_by.is_some()).await?;
        Ok(ctx.state(|s| Summary {
            items: s.items.clone(),
            closed_by: s.closed_by.clone().unwrap_or_default(),
        }))
    }

    #[signal]
    pub fn add_item(&mut self, _ctx: &mut SyncWorkflowContext<Self>, item: String) {
        self.items.push(item);
    }

    #[signal]
    pub fn close(&mut self, _ctx: &mut SyncWorkflowContext<Self>, who: String) {
        self.closed_by = Some(who);
    }

    #[query]
    pub fn items(&self, _ctx: &WorkflowContextView) -> Vec<String> {
        self.items.clone()
    }

    #[query]
    pub fn is_open(&self, _ctx: &WorkflowContextView) -> bool {
        self.closed_by.is_none()
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("signals-and-queries");
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<ShoppingListWorkflow>()?
            .build(),
    )?;

    with_worker(&mut worker, async {
        let workflow_id = unique("shopping-list");
        let handle = client
            .start_workflow(
                ShoppingListWorkflow::run,
                (),
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!("started ShoppingListWorkflow {workflow_id}");

        let items = within(
            20,
            "a query",
            handle.query(
                ShoppingListWorkflow::items,
                (),
                WorkflowQueryOptions::default(),
            ),
        )
        .await??;
        println!("query items -> {items:?}");
        ensure!(items.is_empty(), "a new list should be empty");

        for item in ["bread", "milk", "eggs"] {
            handle
                .signal(
                    ShoppingListWorkflow::add_item,
                    item.to_string(),
                    WorkflowSignalOptions::default(),
                )
                .await?;
            println!("signal add_item({item:?})");
        }
        // A query sent after a signal was accepted sees the signal's effect.
        let items = within(
            20,
            "a query",
            handle.query(
                ShoppingListWorkflow::items,
                (),
                WorkflowQueryOptions::default(),
            ),
        )
        .await??;
        println!("query items -> {items:?}");
        ensure!(
            items == ["bread", "milk", "eggs"],
            "unexpected items {items:?}"
        );

        handle
            .signal(
                ShoppingListWorkflow::close,
                "sample".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await?;
        println!("signal close(\"sample\")");
        let summary = within(
            30,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        println!("workflow result: {summary:?}");
        ensure!(summary.items.len() == 3 && summary.closed_by == "sample");

        // Queries keep working after the workflow has completed: the worker replays it.
        let open = within(
            20,
            "a query on the closed workflow",
            handle.query(
                ShoppingListWorkflow::is_open,
                (),
                WorkflowQueryOptions::default(),
            ),
        )
        .await??;
        println!("query is_open on the completed workflow -> {open}");
        ensure!(!open);

        // Signal-with-start: starts the workflow if it is not running, and delivers the signal
        // to it either way.
        let workflow_id = unique("shopping-list-sws");
        let handle = client
            .signal_with_start_workflow(
                ShoppingListWorkflow::run,
                (),
                ShoppingListWorkflow::add_item,
                "coffee".to_string(),
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!("signal-with-start {workflow_id} with add_item(\"coffee\")");
        handle
            .signal(
                ShoppingListWorkflow::close,
                "signal-with-start".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await?;
        let summary = within(
            30,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        println!("workflow result: {summary:?}");
        ensure!(
            summary.items == ["coffee"],
            "unexpected items {:?}",
            summary.items
        );
        Ok(())
    })
    .await
}
