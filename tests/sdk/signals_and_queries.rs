//! Signals (plain and signal-with-start, on new and running workflows) and queries (on running
//! and completed workflows, and the NOT_OPEN reject condition).
//!
//! `MailboxWorkflow` is defined here; the terminate, id-conflict and crash tests use it too.

use crate::common;
use crate::helpers::*;

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use temporalio_client::{
    QueryRejectCondition, WorkflowExecutionStatus, WorkflowQueryOptions, WorkflowSignalOptions,
    errors::WorkflowQueryError,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    SyncWorkflowContext, WorkerOptions, WorkflowContext, WorkflowContextView, WorkflowResult,
};

// ---- a workflow that collects signals (also used by terminate, id conflicts, crashes) -------

/// Collects signalled messages; completes once `expected` messages have arrived.
#[workflow]
#[derive(Default)]
pub struct MailboxWorkflow {
    messages: Vec<String>,
}

#[workflow_methods]
impl MailboxWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        expected: u32,
    ) -> WorkflowResult<Vec<String>> {
        ctx.wait_condition(|s| s.messages.len() >= expected as usize)
            .await?;
        Ok(ctx.state(|s| s.messages.clone()))
    }

    #[signal]
    pub fn deliver(&mut self, _ctx: &mut SyncWorkflowContext<Self>, message: String) {
        self.messages.push(message);
    }

    #[query]
    pub fn inbox(&self, _ctx: &WorkflowContextView) -> Vec<String> {
        self.messages.clone()
    }

    #[query]
    pub fn inbox_size(&self, _ctx: &WorkflowContextView) -> u32 {
        self.messages.len() as u32
    }
}

/// 3. Signals: a workflow waits for signals and returns their payloads; signal-with-start
/// starts a new workflow with a signal, and signals (without restarting) a running one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_and_signal_with_start() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-signal");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<MailboxWorkflow>()
            .unwrap()
            .build(),
    );

    with_worker(&mut worker, async {
        // Plain signals.
        let id = unique("mailbox");
        let handle = client
            .start_workflow(MailboxWorkflow::run, 2u32, start_opts(&tq, &id))
            .await
            .expect("start workflow");
        for msg in ["first", "second"] {
            handle
                .signal(
                    MailboxWorkflow::deliver,
                    msg.to_string(),
                    WorkflowSignalOptions::default(),
                )
                .await
                .expect("signal");
        }
        let result = within(
            20,
            "signalled workflow result",
            handle.get_result(result_opts()),
        )
        .await
        .expect("workflow should complete");
        assert_eq!(result, vec!["first".to_string(), "second".to_string()]);

        // Signal-with-start on a workflow id that does not exist yet: starts it.
        let id = unique("sws-new");
        let handle = client
            .signal_with_start_workflow(
                MailboxWorkflow::run,
                1u32,
                MailboxWorkflow::deliver,
                "via signal-with-start".to_string(),
                start_opts(&tq, &id),
            )
            .await
            .expect("signal-with-start (new workflow)");
        let result = within(
            20,
            "signal-with-start result",
            handle.get_result(result_opts()),
        )
        .await
        .expect("workflow should complete");
        assert_eq!(result, vec!["via signal-with-start".to_string()]);

        // Signal-with-start on a running workflow: signals it, does not start another run.
        let id = unique("sws-running");
        let first = client
            .start_workflow(MailboxWorkflow::run, 2u32, start_opts(&tq, &id))
            .await
            .expect("start workflow");
        first
            .signal(
                MailboxWorkflow::deliver,
                "one".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal");
        let second = client
            .signal_with_start_workflow(
                MailboxWorkflow::run,
                2u32,
                MailboxWorkflow::deliver,
                "two".to_string(),
                start_opts(&tq, &id),
            )
            .await
            .expect("signal-with-start (running workflow)");
        assert_eq!(
            second.run_id(),
            first.run_id(),
            "signal-with-start on a running workflow must target the existing run"
        );
        let result = within(20, "workflow result", first.get_result(result_opts()))
            .await
            .expect("workflow should complete");
        assert_eq!(result, vec!["one".to_string(), "two".to_string()]);
    })
    .await;
}

/// 4. Queries against a running workflow (seeing state after a signal) and a completed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_on_running_and_completed_workflows() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-query");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<MailboxWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("queried");

    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(MailboxWorkflow::run, 2u32, start_opts(&tq, &id))
            .await
            .expect("start workflow");

        let empty = within(
            15,
            "query on fresh workflow",
            handle.query(MailboxWorkflow::inbox, (), WorkflowQueryOptions::default()),
        )
        .await
        .expect("query running workflow");
        assert!(empty.is_empty(), "no signals yet, got {empty:?}");

        handle
            .signal(
                MailboxWorkflow::deliver,
                "alpha".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal");
        // A query issued after the signal was accepted must observe it.
        let inbox = within(
            15,
            "query after signal",
            handle.query(MailboxWorkflow::inbox, (), WorkflowQueryOptions::default()),
        )
        .await
        .expect("query running workflow");
        assert_eq!(inbox, vec!["alpha".to_string()]);
        let size = within(
            15,
            "second query",
            handle.query(
                MailboxWorkflow::inbox_size,
                (),
                WorkflowQueryOptions::default(),
            ),
        )
        .await
        .expect("query running workflow");
        assert_eq!(size, 1);
        let desc = handle.describe(Default::default()).await.expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Running);

        handle
            .signal(
                MailboxWorkflow::deliver,
                "beta".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal");
        let result = within(20, "workflow result", handle.get_result(result_opts()))
            .await
            .expect("workflow should complete");
        assert_eq!(result, vec!["alpha".to_string(), "beta".to_string()]);

        // Query the completed workflow: the worker replays it and answers.
        let inbox = within(
            15,
            "query on completed workflow",
            handle.query(MailboxWorkflow::inbox, (), WorkflowQueryOptions::default()),
        )
        .await
        .expect("query completed workflow");
        assert_eq!(inbox, vec!["alpha".to_string(), "beta".to_string()]);

        // With reject condition NOT_OPEN the server rejects queries on a closed workflow.
        let rejected = within(
            15,
            "query with reject condition",
            handle.query(
                MailboxWorkflow::inbox,
                (),
                WorkflowQueryOptions::builder()
                    .reject_condition(QueryRejectCondition::NotOpen)
                    .build(),
            ),
        )
        .await;
        match rejected {
            Err(WorkflowQueryError::Rejected { status }) => {
                assert_eq!(status, Some(WorkflowExecutionStatus::Completed))
            }
            other => panic!("expected query to be rejected (NotOpen), got {other:?}"),
        }
    })
    .await;
}
