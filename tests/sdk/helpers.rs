//! Helpers the SDK tests share: options, handles, describe, history and run chains, history
//! assertions, and the worker options of the child / parent-close / external-workflow tests.

use temporalio_client::{
    Client, UntypedWorkflowHandle, WorkflowExecutionDescription, WorkflowExecutionInfo,
    WorkflowFetchHistoryOptions, WorkflowGetResultOptions, WorkflowStartOptions,
};
use temporalio_common::protos::temporal::api::{
    enums::v1::EventType,
    history::v1::{
        HistoryEvent, WorkflowExecutionStartedEventAttributes, history_event::Attributes,
    },
};
use temporalio_sdk::WorkerOptions;

use crate::child_workflows::{
    ChainParent, ChildOpsParent, ComputeParent, FailParent, FailingChild, SquareChild,
    WaiterWorkflow,
};
use crate::common::{NAMESPACE, within};
use crate::continue_as_new::CounterWorkflow;
use crate::external_workflows::{CancellerWorkflow, SignallerWorkflow};
use crate::parent_close_policies::ShortLivedParent;
use crate::workflow_retries::FlakyWorkflow;

/// Start options on `task_queue` with `workflow_id`.
pub(crate) fn start_opts(task_queue: &str, workflow_id: &str) -> WorkflowStartOptions {
    WorkflowStartOptions::new(task_queue.to_string(), workflow_id.to_string()).build()
}

/// Default options for waiting for a workflow's result.
pub(crate) fn result_opts() -> WorkflowGetResultOptions {
    WorkflowGetResultOptions::default()
}

/// A handle on a run (the latest one without `run_id`).
pub(crate) fn run_handle(
    client: &Client,
    workflow_id: &str,
    run_id: Option<&str>,
) -> UntypedWorkflowHandle<Client> {
    WorkflowExecutionInfo::builder()
        .namespace(NAMESPACE)
        .workflow_id(workflow_id)
        .maybe_run_id(run_id)
        .build()
        .bind_untyped(client.clone())
}

/// Describes a run (within 10 s).
pub(crate) async fn describe(
    client: &Client,
    workflow_id: &str,
    run_id: Option<&str>,
) -> WorkflowExecutionDescription {
    within(
        10,
        "describe",
        run_handle(client, workflow_id, run_id).describe(Default::default()),
    )
    .await
    .unwrap_or_else(|e| panic!("describe {workflow_id} (run {run_id:?}) failed: {e:?}"))
}

/// A run's whole history (within 10 s).
pub(crate) async fn history(
    client: &Client,
    workflow_id: &str,
    run_id: Option<&str>,
) -> Vec<HistoryEvent> {
    within(
        10,
        "workflow history",
        run_handle(client, workflow_id, run_id)
            .fetch_history(WorkflowFetchHistoryOptions::builder().build())
            .into_events(),
    )
    .await
    .unwrap_or_else(|e| panic!("history of {workflow_id} (run {run_id:?}) failed: {e:?}"))
}

/// The types of `events`, in order.
pub(crate) fn event_types(events: &[HistoryEvent]) -> Vec<EventType> {
    events.iter().map(|e| e.event_type()).collect()
}

/// The run that continues this one (retry, cron or continue-as-new), from its close event.
pub(crate) fn next_run_id(events: &[HistoryEvent]) -> Option<String> {
    let next = match events.last()?.attributes.as_ref()? {
        Attributes::WorkflowExecutionCompletedEventAttributes(a) => a.new_execution_run_id.clone(),
        Attributes::WorkflowExecutionFailedEventAttributes(a) => a.new_execution_run_id.clone(),
        Attributes::WorkflowExecutionTimedOutEventAttributes(a) => a.new_execution_run_id.clone(),
        Attributes::WorkflowExecutionContinuedAsNewEventAttributes(a) => {
            a.new_execution_run_id.clone()
        }
        _ => return None,
    };
    (!next.is_empty()).then_some(next)
}

/// Every run of a chain from `first_run_id` on, with its history (at most 50).
pub(crate) async fn run_chain(
    client: &Client,
    workflow_id: &str,
    first_run_id: &str,
) -> Vec<(String, Vec<HistoryEvent>)> {
    let mut chain = Vec::new();
    let mut run_id = first_run_id.to_string();
    loop {
        let events = history(client, workflow_id, Some(&run_id)).await;
        let next = next_run_id(&events);
        chain.push((run_id, events));
        match next {
            Some(n) if chain.len() < 50 => run_id = n,
            Some(_) => panic!("run chain of {workflow_id} is longer than 50 runs"),
            None => return chain,
        }
    }
}

/// A run's whole history through its handle (within 10 s).
pub(crate) async fn full_history<W>(
    handle: &temporalio_client::WorkflowHandle<Client, W>,
) -> Vec<HistoryEvent>
where
    W: temporalio_common::HasWorkflowDefinition,
{
    within(
        10,
        "workflow history",
        handle
            .fetch_history(WorkflowFetchHistoryOptions::builder().build())
            .into_events(),
    )
    .await
    .expect("fetch history")
}

pub(crate) fn assert_has_events(events: &[HistoryEvent], wanted: &[EventType], whose: &str) {
    let types = event_types(events);
    for w in wanted {
        assert!(
            types.contains(w),
            "history of {whose} is missing {w:?}; it has {types:?}"
        );
    }
}

pub(crate) fn started_attrs(events: &[HistoryEvent]) -> &WorkflowExecutionStartedEventAttributes {
    match events.first().and_then(|e| e.attributes.as_ref()) {
        Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a,
        other => panic!("first event should be WorkflowExecutionStarted, got {other:?}"),
    }
}

/// Worker options registering every workflow of the child, parent-close and external-workflow
/// tests.
pub(crate) fn chains_worker_options(tq: &str) -> WorkerOptions {
    WorkerOptions::new(tq.to_string())
        .register_workflow::<WaiterWorkflow>()
        .unwrap()
        .register_workflow::<SquareChild>()
        .unwrap()
        .register_workflow::<ComputeParent>()
        .unwrap()
        .register_workflow::<FailingChild>()
        .unwrap()
        .register_workflow::<FailParent>()
        .unwrap()
        .register_workflow::<ShortLivedParent>()
        .unwrap()
        .register_workflow::<SignallerWorkflow>()
        .unwrap()
        .register_workflow::<CancellerWorkflow>()
        .unwrap()
        .register_workflow::<ChildOpsParent>()
        .unwrap()
        .register_workflow::<ChainParent>()
        .unwrap()
        .register_workflow::<CounterWorkflow>()
        .unwrap()
        .register_workflow::<FlakyWorkflow>()
        .unwrap()
        .build()
}
