//! updates: a client sends updates to a running workflow and gets their results back. A
//! validator rejects bad updates before they are accepted, so they never reach the handler (nor
//! the workflow's history).

use std::{error::Error, time::Duration};

use anyhow::{Result, bail, ensure};
use temporalio_client::{RpcOptions, WorkflowExecuteUpdateOptions, errors::WorkflowUpdateError};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    SyncWorkflowContext, WorkerOptions, WorkflowContext, WorkflowContextView, WorkflowResult,
};

use crate::support::{Env, event_names, history, start_options, unique, with_worker, within};

type HandlerError = Box<dyn Error + Send + Sync>;

/// A shopping cart that lives until it is checked out.
#[workflow]
#[derive(Default)]
pub struct CartWorkflow {
    items: Vec<String>,
    order: Option<String>,
}

#[workflow_methods]
impl CartWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        ctx.wait_condition(|s| s.order.is_some()).await?;
        Ok(ctx.state(|s| s.order.clone().unwrap_or_default()))
    }

    /// Adds an item and returns how many items the cart holds now.
    #[update]
    pub fn add_item(&mut self, _ctx: &mut SyncWorkflowContext<Self>, item: String) -> u32 {
        self.items.push(item);
        self.items.len() as u32
    }

    /// Runs before `add_item` is accepted. An error rejects the update: the handler does not
    /// run, the caller gets the error, and the workflow's history does not change.
    #[update_validator(add_item)]
    pub fn validate_add_item(
        &self,
        _ctx: &WorkflowContextView,
        item: &String,
    ) -> Result<(), HandlerError> {
        if item.trim().is_empty() {
            return Err("an item needs a name".into());
        }
        if self.items.contains(item) {
            return Err(format!("{item:?} is already in the cart").into());
        }
        if self.order.is_some() {
            return Err("the cart is already checked out".into());
        }
        Ok(())
    }

    /// An async update handler can wait: a durable timer stands in for a payment call here.
    #[update]
    pub async fn checkout(ctx: &mut WorkflowContext<Self>) -> String {
        ctx.timer(Duration::from_millis(300)).await;
        let order =
            ctx.state(|s| format!("order of {} items: {}", s.items.len(), s.items.join(", ")));
        ctx.state_mut(|s| s.order = Some(order.clone()));
        order
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("updates");
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<CartWorkflow>()?
            .build(),
    )?;

    with_worker(&mut worker, async {
        let workflow_id = unique("cart");
        let handle = client
            .start_workflow(
                CartWorkflow::run,
                (),
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!("started CartWorkflow {workflow_id}");

        // Accepted updates: the caller waits for the handler's return value.
        for item in ["apples", "bread"] {
            let size = within(
                30,
                "an update",
                handle.execute_update(
                    CartWorkflow::add_item,
                    item.to_string(),
                    WorkflowExecuteUpdateOptions::default(),
                ),
            )
            .await??;
            println!("update add_item({item:?}) accepted -> cart holds {size} items");
        }

        // Rejected updates: the validator's error comes back to the caller.
        for item in ["apples", " "] {
            match within(
                30,
                "an update",
                handle.execute_update(
                    CartWorkflow::add_item,
                    item.to_string(),
                    WorkflowExecuteUpdateOptions::default(),
                ),
            )
            .await?
            {
                Err(WorkflowUpdateError::Failed(failure)) => {
                    println!("update add_item({item:?}) rejected: {}", failure.message)
                }
                other => bail!("add_item({item:?}) should be rejected, got {other:?}"),
            }
        }

        // Start an update, then wait for its result separately.
        let checkout = within(
            30,
            "the checkout update to be accepted",
            handle.start_update(CartWorkflow::checkout, (), Default::default()),
        )
        .await??;
        println!("update checkout accepted (update id {})", checkout.id());
        let order = within(
            30,
            "the checkout result",
            checkout.get_result(RpcOptions::default()),
        )
        .await??;
        println!("update checkout -> {order:?}");

        let result = within(
            30,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        println!("workflow result: {result:?}");
        ensure!(result == "order of 2 items: apples, bread");

        // Three accepted updates are in history; the two rejected ones left no trace.
        let names = event_names(&history(&client, &workflow_id, None).await?);
        let accepted = names
            .iter()
            .filter(|n| *n == "WorkflowExecutionUpdateAccepted")
            .count();
        let completed = names
            .iter()
            .filter(|n| *n == "WorkflowExecutionUpdateCompleted")
            .count();
        println!("history: {accepted} UpdateAccepted and {completed} UpdateCompleted events");
        ensure!(accepted == 3 && completed == 3, "history has {names:?}");
        Ok(())
    })
    .await
}
