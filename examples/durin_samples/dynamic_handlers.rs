//! dynamic-handlers: dispatching by name at run time.
//!
//! The Rust SDK 1.1.1 has no dynamic (catch-all) workflows, activities, or signal / query /
//! update handlers: a worker runs only the workflow types registered on it, and a workflow only
//! the handlers declared in its `#[workflow_methods]`. A signal whose name has no handler is
//! dropped by the SDK, an update whose name has no handler is rejected, and an activity type
//! that is not registered fails. This sample shows the closest faithful equivalent:
//!
//! * the client names everything by string (`UntypedWorkflow`, `UntypedSignal`,
//!   `UntypedQuery`, `UntypedUpdate`) with untyped payloads (`RawValue`);
//! * the workflow receives every command through one signal carrying `{name, args}` and routes
//!   it with a `match` whose last arm is the "default handler";
//! * the workflow runs activities whose type name is only known at run time
//!   (`UntypedActivity`);
//! * what happens to a signal, an update and an activity type that nothing handles.

use std::{collections::VecDeque, time::Duration};

use anyhow::{Result, bail, ensure};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use temporalio_client::{
    UntypedQuery, UntypedSignal, UntypedUpdate, UntypedWorkflow, WorkflowQueryOptions,
    WorkflowSignalOptions, errors::WorkflowUpdateError,
};
use temporalio_common::{
    RetryPolicy, UntypedActivity,
    data_converters::{PayloadConverter, RawValue},
    protos::temporal::api::history::v1::history_event::Attributes,
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, SyncWorkflowContext, WorkerOptions, WorkflowContext, WorkflowContextView,
    WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

use crate::support::{Env, history, start_options, unique, with_worker, within};

/// A command: a name chosen by the sender and arguments of any shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Command {
    pub name: String,
    #[serde(default)]
    pub args: Value,
}

pub struct TextActivities;

/// By default the Rust SDK names an activity type `Type::method` (`TextActivities::shout`);
/// `name = ...` picks the plain names the commands use.
#[activities]
impl TextActivities {
    #[activity(name = "shout")]
    pub async fn shout(_ctx: ActivityContext, text: String) -> Result<String, ActivityError> {
        Ok(text.to_uppercase())
    }

    #[activity(name = "reverse")]
    pub async fn reverse(_ctx: ActivityContext, text: String) -> Result<String, ActivityError> {
        Ok(text.chars().rev().collect())
    }
}

#[workflow]
#[derive(Default)]
pub struct CommandRouter {
    inbox: VecDeque<Command>,
    handled: Vec<String>,
}

#[workflow_methods]
impl CommandRouter {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        owner: String,
    ) -> WorkflowResult<Vec<String>> {
        let converter = PayloadConverter::default();
        loop {
            ctx.wait_condition(|s| !s.inbox.is_empty()).await?;
            let Some(command) = ctx.state_mut(|s| s.inbox.pop_front()) else {
                continue;
            };
            let line = match command.name.as_str() {
                "stop" => break,
                "greet" => format!(
                    "greet: hello {}, from {owner}'s router",
                    command.args["name"].as_str().unwrap_or("stranger")
                ),
                "activity" => {
                    // The activity type is whatever string the command names.
                    let activity_type = command.args["type"].as_str().unwrap_or_default();
                    let input = RawValue::from_value(&command.args["input"], &converter);
                    let options =
                        ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
                            .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
                            .build();
                    match ctx
                        .execute_activity(UntypedActivity::new(activity_type), input, options)
                        .await
                    {
                        Ok(output) => format!(
                            "activity {activity_type}: {}",
                            output.to_value::<Value>(&converter)
                        ),
                        Err(e) => format!("activity {activity_type} failed: {}", root_cause(&e)),
                    }
                }
                // The "default handler": every name without an arm of its own lands here.
                other => format!(
                    "default handler: no command {other:?} (args {})",
                    command.args
                ),
            };
            ctx.state_mut(|s| s.handled.push(line));
        }
        Ok(ctx.state(|s| s.handled.clone()))
    }

    /// The single entry point for commands, whatever their name.
    #[signal]
    pub fn command(&mut self, _ctx: &mut SyncWorkflowContext<Self>, command: Command) {
        self.inbox.push_back(command);
    }

    #[query]
    pub fn handled(&self, _ctx: &WorkflowContextView) -> Vec<String> {
        self.handled.clone()
    }
}

/// The innermost failure message of an activity error.
fn root_cause(e: &temporalio_sdk::ActivityExecutionError) -> String {
    let mut failure = e.failure();
    while let Some(cause) = failure.and_then(|f| f.cause.as_deref()) {
        failure = Some(cause);
    }
    failure.map_or_else(|| e.to_string(), |f| f.message.clone())
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("dynamic-handlers");
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<CommandRouter>()?
            .register_activities(TextActivities)
            .build(),
    )?;
    println!(
        "the worker registers workflow type CommandRouter and activity types {:?}",
        [TextActivities::shout.name(), TextActivities::reverse.name()]
    );
    let converter = PayloadConverter::default();
    let raw = |value: Value| RawValue::from_value(&value, &converter);

    with_worker(&mut worker, async {
        // Start a workflow by its type name: this code does not use the CommandRouter type.
        let workflow_id = unique("router");
        let handle = client
            .start_workflow(
                UntypedWorkflow::new("CommandRouter"),
                raw(json!("sample")),
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!("started workflow type \"CommandRouter\" by name: {workflow_id}");

        let commands = [
            json!({"name": "greet", "args": {"name": "Ada"}}),
            json!({"name": "activity", "args": {"type": "shout", "input": "dynamic"}}),
            json!({"name": "activity", "args": {"type": "reverse", "input": "dispatch"}}),
            json!({"name": "activity", "args": {"type": "translate", "input": "hello"}}),
            json!({"name": "dance", "args": {"style": "tango"}}),
        ];
        for command in commands {
            println!("signal \"command\" {command}");
            handle
                .signal(
                    UntypedSignal::new("command"),
                    raw(command),
                    WorkflowSignalOptions::default(),
                )
                .await?;
        }
        // A signal name the workflow has no handler for: the server records it, the SDK drops it.
        handle
            .signal(
                UntypedSignal::new("no_such_signal"),
                raw(json!({"ignored": true})),
                WorkflowSignalOptions::default(),
            )
            .await?;
        println!("signal \"no_such_signal\" (no handler has that name)");

        // Query by name until the router has worked through the five commands.
        let handled: Vec<String> = within(30, "the router to handle 5 commands", async {
            loop {
                let answer = handle
                    .query(
                        UntypedQuery::new("handled"),
                        RawValue::new(vec![]),
                        WorkflowQueryOptions::default(),
                    )
                    .await?;
                let handled: Vec<String> = answer.to_value(&converter);
                if handled.len() >= 5 {
                    return anyhow::Ok(handled);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await??;
        println!("query \"handled\":");
        for line in &handled {
            println!("  {line}");
        }
        ensure!(handled[0] == "greet: hello Ada, from sample's router");
        ensure!(handled[1] == "activity shout: \"DYNAMIC\"");
        ensure!(handled[2] == "activity reverse: \"hctapsid\"");
        ensure!(
            handled[3]
                .starts_with("activity translate failed: Activity translate is not registered"),
            "unexpected: {}",
            handled[3]
        );
        ensure!(handled[4].starts_with("default handler: no command \"dance\""));

        // An update name without a handler is rejected by the SDK.
        match handle
            .execute_update(
                UntypedUpdate::new("no_such_update"),
                RawValue::new(vec![]),
                Default::default(),
            )
            .await
        {
            Err(WorkflowUpdateError::Failed(failure)) => {
                println!("update \"no_such_update\" rejected: {}", failure.message)
            }
            other => bail!("an update without a handler should be rejected, got {other:?}"),
        }

        handle
            .signal(
                UntypedSignal::new("command"),
                raw(json!({"name": "stop"})),
                WorkflowSignalOptions::default(),
            )
            .await?;
        let result: Vec<String> = within(
            30,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??
        .to_value(&converter);
        println!("workflow result: {} handled commands", result.len());
        ensure!(result == handled);

        let signals: Vec<String> = history(&client, &workflow_id, None)
            .await?
            .into_iter()
            .filter_map(|e| match e.attributes {
                Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) => {
                    Some(a.signal_name)
                }
                _ => None,
            })
            .collect();
        println!("signals in history: {signals:?}");
        ensure!(signals.iter().any(|s| s == "no_such_signal"));
        Ok(())
    })
    .await
}
