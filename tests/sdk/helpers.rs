//! Helpers the SDK tests share: options, handles, describe, history and run chains.

use temporalio_client::{
    Client, UntypedWorkflowHandle, WorkflowExecutionDescription, WorkflowExecutionInfo,
    WorkflowFetchHistoryOptions, WorkflowGetResultOptions, WorkflowStartOptions,
};
use temporalio_common::protos::temporal::api::{
    enums::v1::EventType,
    history::v1::{HistoryEvent, history_event::Attributes},
};

use crate::common::{NAMESPACE, within};

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
