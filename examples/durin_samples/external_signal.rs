//! external-signal: a workflow signals another workflow by its workflow id (an "external"
//! signal, sent through the server as a command of the sender), using a signal registered under
//! a custom name; the receiver completes with what it got.

use anyhow::{Result, bail, ensure};
use serde::{Deserialize, Serialize};
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    SignalWorkflowOptions, SyncWorkflowContext, WorkerOptions, WorkflowContext, WorkflowResult,
    WorkflowSignalError,
};

use crate::support::{Env, event_names, history, start_options, unique, with_worker, within};

/// The name the signal is registered under, instead of the method name.
const SIGNAL_NAME: &str = "package-delivered";

/// Waits for `expected` packages, delivered by `package-delivered` signals.
#[workflow]
#[derive(Default)]
pub struct MailroomWorkflow {
    packages: Vec<String>,
}

#[workflow_methods]
impl MailroomWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        expected: u32,
    ) -> WorkflowResult<Vec<String>> {
        ctx.wait_condition(|s| s.packages.len() >= expected as usize)
            .await?;
        Ok(ctx.state(|s| s.packages.clone()))
    }

    #[signal(name = "package-delivered")]
    pub fn deliver(&mut self, _ctx: &mut SyncWorkflowContext<Self>, package: String) {
        self.packages.push(package);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Route {
    pub mailroom_id: String,
    pub packages: Vec<String>,
}

/// Signals each package to the mailroom workflow, one after the other.
#[workflow]
#[derive(Default)]
pub struct CourierWorkflow;

#[workflow_methods]
impl CourierWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, route: Route) -> WorkflowResult<String> {
        // A handle on another workflow, by id (no run id: its current run).
        let mailroom = ctx.external_workflow(route.mailroom_id, None);
        let count = route.packages.len();
        for package in route.packages {
            // Resolves once the server has delivered the signal (ExternalWorkflowExecution-
            // Signaled), or fails if there is no such workflow.
            match mailroom
                .signal(
                    MailroomWorkflow::deliver,
                    package,
                    SignalWorkflowOptions::default(),
                )
                .await
            {
                Ok(()) => {}
                Err(WorkflowSignalError::NotFound(_)) => {
                    return Ok("the mailroom workflow does not exist".to_string());
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(format!("delivered {count} packages"))
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("external-signal");
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<MailroomWorkflow>()?
            .register_workflow::<CourierWorkflow>()?
            .build(),
    )?;

    with_worker(&mut worker, async {
        let mailroom_id = unique("mailroom");
        let mailroom = client
            .start_workflow(
                MailroomWorkflow::run,
                2u32,
                start_options(&task_queue, &mailroom_id),
            )
            .await?;
        println!("started MailroomWorkflow {mailroom_id}, waiting for 2 packages");

        let courier_id = unique("courier");
        let courier = client
            .start_workflow(
                CourierWorkflow::run,
                Route {
                    mailroom_id: mailroom_id.clone(),
                    packages: vec!["books".to_string(), "a bicycle".to_string()],
                },
                start_options(&task_queue, &courier_id),
            )
            .await?;
        println!("started CourierWorkflow {courier_id}");

        let courier_result = within(
            30,
            "the courier's result",
            courier.get_result(Default::default()),
        )
        .await??;
        println!("courier result: {courier_result:?}");
        ensure!(courier_result == "delivered 2 packages");
        let received = within(
            30,
            "the mailroom's result",
            mailroom.get_result(Default::default()),
        )
        .await??;
        println!("mailroom result: {received:?}");
        ensure!(
            received == ["books", "a bicycle"],
            "unexpected packages {received:?}"
        );

        // The sender's history: one initiated / signaled pair per signal.
        let events = event_names(&history(&client, &courier_id, None).await?);
        let count = |name: &str| events.iter().filter(|e| *e == name).count();
        println!(
            "courier history: {} SignalExternalWorkflowExecutionInitiated, {} ExternalWorkflowExecutionSignaled",
            count("SignalExternalWorkflowExecutionInitiated"),
            count("ExternalWorkflowExecutionSignaled")
        );
        ensure!(
            count("SignalExternalWorkflowExecutionInitiated") == 2
                && count("ExternalWorkflowExecutionSignaled") == 2
        );
        // The receiver's history: the signals, under their custom name.
        let signals: Vec<String> = history(&client, &mailroom_id, None)
            .await?
            .iter()
            .filter_map(|e| match &e.attributes {
                Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) => {
                    Some(a.signal_name.clone())
                }
                _ => None,
            })
            .collect();
        println!("mailroom history: signals {signals:?}");
        if signals != [SIGNAL_NAME, SIGNAL_NAME] {
            bail!("expected two {SIGNAL_NAME:?} signals, got {signals:?}");
        }
        Ok(())
    })
    .await
}
