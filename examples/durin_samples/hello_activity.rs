//! hello-activity: a workflow calls an activity and returns its result.

use std::time::Duration;

use anyhow::{Result, ensure};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

use crate::support::{Env, start_options, unique, with_worker, within};

pub struct GreetingActivities;

#[activities]
impl GreetingActivities {
    /// Activities do the side effects (I/O, calls to other services, ...). This one only
    /// formats a greeting, and says which attempt of the activity it is.
    #[activity]
    pub async fn compose_greeting(
        ctx: ActivityContext,
        name: String,
    ) -> Result<String, ActivityError> {
        Ok(format!(
            "Hello, {name}! (from activity attempt {})",
            ctx.info().attempt
        ))
    }
}

#[workflow]
#[derive(Default)]
pub struct HelloWorkflow;

#[workflow_methods]
impl HelloWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        let greeting = ctx
            .execute_activity(
                GreetingActivities::compose_greeting,
                name,
                ActivityOptions::start_to_close_timeout(Duration::from_secs(10)),
            )
            .await?;
        Ok(greeting)
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("hello-activity");
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<HelloWorkflow>()?
            .register_activities(GreetingActivities)
            .build(),
    )?;

    with_worker(&mut worker, async {
        let workflow_id = unique("hello");
        let handle = client
            .start_workflow(
                HelloWorkflow::run,
                "Durin".to_string(),
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!(
            "started HelloWorkflow {workflow_id} (run {})",
            handle.run_id().unwrap_or("?")
        );

        let result = within(
            30,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        println!("workflow result: {result:?}");
        ensure!(
            result == "Hello, Durin! (from activity attempt 1)",
            "unexpected result {result:?}"
        );

        let desc = handle.describe(Default::default()).await?;
        println!(
            "describe: type {}, status {:?}, task queue {}",
            desc.workflow_type(),
            desc.status(),
            desc.task_queue()
        );
        Ok(())
    })
    .await
}
