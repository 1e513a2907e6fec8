//! Continue-as-new: a chain of runs carrying a counter, followed by the client to its final
//! value, each run handing over to the next.

use crate::common;
use crate::helpers::*;

use std::collections::BTreeSet;

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use serde::{Deserialize, Serialize};
use temporalio_client::{
    WorkflowExecutionStatus, WorkflowGetResultOptions, errors::WorkflowGetResultError,
};
use temporalio_common::protos::temporal::api::enums::v1::{ContinueAsNewInitiator, EventType};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ContinueAsNewOptions, WorkerOptions, WorkflowContext, WorkflowResult};

// ---- 2. continue-as-new --------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterOutcome {
    pub count: u32,
    pub run_id: String,
    pub first_execution_run_id: String,
    pub continued_from_run_id: Option<String>,
}

/// Continues as new with `count + 1` until `count == target`, then returns what it knows.
#[workflow]
#[derive(Default)]
pub struct CounterWorkflow;

#[workflow_methods]
impl CounterWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: (u32, u32),
    ) -> WorkflowResult<CounterOutcome> {
        let (count, target) = input;
        if count < target {
            ctx.continue_as_new((count + 1, target), ContinueAsNewOptions::default())?;
        }
        let info = ctx.info();
        Ok(CounterOutcome {
            count,
            run_id: ctx.run_id().to_string(),
            first_execution_run_id: info.first_execution_run_id().to_string(),
            continued_from_run_id: info.continued_from_run_id().map(str::to_string),
        })
    }
}

/// 2. Continue-as-new: the workflow continues as new 3 times carrying a counter; the client's
/// `get_result` follows the runs to the final value; every earlier run is CONTINUED_AS_NEW and
/// hands over to the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_as_new_chain_returns_final_counter() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-can");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<CounterWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("counter");

    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(CounterWorkflow::run, (0u32, 3u32), start_opts(&tq, &id))
            .await
            .expect("start workflow");
        let first_run = handle.run_id().expect("start returns a run id").to_string();
        let outcome = within(20, "final run result", handle.get_result(result_opts()))
            .await
            .expect("workflow chain should complete");
        assert_eq!(outcome.count, 3);
        assert_eq!(
            outcome.first_execution_run_id, first_run,
            "every run of the chain knows the first run id"
        );

        let first = handle
            .describe(Default::default())
            .await
            .expect("describe first run");
        assert_eq!(first.run_id(), first_run);
        assert_eq!(first.status(), WorkflowExecutionStatus::ContinuedAsNew);
        // Without following runs, the first run's outcome is "continued as new".
        let unfollowed = within(
            10,
            "first run result",
            handle.get_result(
                WorkflowGetResultOptions::builder()
                    .follow_runs(false)
                    .build(),
            ),
        )
        .await;
        assert!(
            matches!(unfollowed, Err(WorkflowGetResultError::ContinuedAsNew)),
            "expected ContinuedAsNew for the first run alone, got {unfollowed:?}"
        );

        let latest = describe(&client, &id, None).await;
        assert_eq!(latest.status(), WorkflowExecutionStatus::Completed);
        assert_eq!(latest.run_id(), outcome.run_id);

        let chain = run_chain(&client, &id, &first_run).await;
        let runs: Vec<&str> = chain.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(runs.len(), 4, "counter 0..=3 takes 4 runs: {runs:?}");
        assert_eq!(
            runs.iter().collect::<BTreeSet<_>>().len(),
            4,
            "run ids are distinct"
        );
        assert_eq!(runs.last().copied(), Some(outcome.run_id.as_str()));
        assert_eq!(
            outcome.continued_from_run_id.as_deref(),
            Some(runs[2]),
            "the last run was continued from the third"
        );
        for (i, (run, events)) in chain.iter().enumerate() {
            let started = started_attrs(events);
            assert_eq!(started.first_execution_run_id, first_run, "run {i}");
            let last = events.last().map(|e| e.event_type());
            if i + 1 < chain.len() {
                assert_eq!(
                    last,
                    Some(EventType::WorkflowExecutionContinuedAsNew),
                    "run {i} ({run}) should end continued-as-new"
                );
                let desc = describe(&client, &id, Some(run)).await;
                assert_eq!(
                    desc.status(),
                    WorkflowExecutionStatus::ContinuedAsNew,
                    "run {i}"
                );
            } else {
                assert_eq!(last, Some(EventType::WorkflowExecutionCompleted));
            }
            if i > 0 {
                assert_eq!(started.continued_execution_run_id, runs[i - 1], "run {i}");
                assert_eq!(
                    started.initiator(),
                    ContinueAsNewInitiator::Workflow,
                    "run {i}"
                );
            }
        }
    })
    .await;
}
