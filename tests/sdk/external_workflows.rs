//! Signals and cancellation requests sent from one workflow to another through an external
//! handle, including to a workflow that does not exist.

use crate::child_workflows::WaiterWorkflow;
use crate::common;
use crate::helpers::*;

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use serde::{Deserialize, Serialize};
use temporalio_client::{WorkflowExecutionStatus, errors::WorkflowGetResultError};
use temporalio_common::protos::temporal::api::{
    enums::v1::EventType, history::v1::history_event::Attributes,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    CancelExternalWorkflowError, SignalWorkflowOptions, WorkflowContext, WorkflowResult,
    WorkflowSignalError,
};

// ---- 5. signal and cancel from workflow to workflow ----------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignalOrder {
    pub target_id: String,
    pub payload: String,
}

/// Signals `WaiterWorkflow::release(payload)` to another workflow through an external handle.
#[workflow]
#[derive(Default)]
pub struct SignallerWorkflow;

#[workflow_methods]
impl SignallerWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        order: SignalOrder,
    ) -> WorkflowResult<String> {
        let target = ctx.external_workflow(order.target_id, None);
        match target
            .signal(
                WaiterWorkflow::release,
                order.payload,
                SignalWorkflowOptions::default(),
            )
            .await
        {
            Ok(()) => Ok("signal delivered".to_string()),
            Err(WorkflowSignalError::NotFound(_)) => Ok("signal target not found".to_string()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Requests cancellation of another workflow through an external handle.
#[workflow]
#[derive(Default)]
pub struct CancellerWorkflow;

#[workflow_methods]
impl CancellerWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, target_id: String) -> WorkflowResult<String> {
        let target = ctx.external_workflow(target_id, None);
        match target
            .cancel(Some("stop, says the canceller".to_string()))
            .await
        {
            Ok(()) => Ok("cancel requested".to_string()),
            Err(CancelExternalWorkflowError::NotFound(_)) => {
                Ok("cancel target not found".to_string())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// 5a. Workflow A signals workflow B through an external handle; B returns the payload.
/// Signalling a workflow that does not exist reports "not found" to the sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_signals_another_workflow() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-ext-signal");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));

    with_worker(&mut worker, async {
        let b_id = unique("receiver");
        let b = client
            .start_workflow(WaiterWorkflow::run, (), start_opts(&tq, &b_id))
            .await
            .expect("start receiver");
        let a_id = unique("signaller");
        let a = client
            .start_workflow(
                SignallerWorkflow::run,
                SignalOrder {
                    target_id: b_id.clone(),
                    payload: "hello from A".to_string(),
                },
                start_opts(&tq, &a_id),
            )
            .await
            .expect("start signaller");
        let a_result = within(20, "signaller result", a.get_result(result_opts()))
            .await
            .expect("signaller should complete");
        assert_eq!(a_result, "signal delivered");
        let b_result = within(20, "receiver result", b.get_result(result_opts()))
            .await
            .expect("receiver should complete");
        assert_eq!(b_result, "released: hello from A");

        assert_has_events(
            &history(&client, &a_id, None).await,
            &[
                EventType::SignalExternalWorkflowExecutionInitiated,
                EventType::ExternalWorkflowExecutionSignaled,
            ],
            "signaller",
        );
        let b_events = history(&client, &b_id, None).await;
        let signaled = b_events
            .iter()
            .find_map(|e| match &e.attributes {
                Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) => Some(a),
                _ => None,
            })
            .expect("receiver has a WorkflowExecutionSignaled event");
        assert_eq!(signaled.signal_name, "release");

        // Signalling a workflow id that does not exist.
        let a_id = unique("signaller-lost");
        let a = client
            .start_workflow(
                SignallerWorkflow::run,
                SignalOrder {
                    target_id: unique("nobody-home"),
                    payload: "anyone?".to_string(),
                },
                start_opts(&tq, &a_id),
            )
            .await
            .expect("start signaller");
        let a_result = within(20, "signaller result", a.get_result(result_opts()))
            .await
            .expect("signaller should complete");
        assert_eq!(a_result, "signal target not found");
        assert_has_events(
            &history(&client, &a_id, None).await,
            &[EventType::SignalExternalWorkflowExecutionFailed],
            "signaller of a missing workflow",
        );
    })
    .await;
}

/// 5b. Workflow A requests cancellation of workflow C through an external handle; C handles
/// the request by reporting itself cancelled. Cancelling a missing workflow reports "not found".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_cancels_another_workflow() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-ext-cancel");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));

    with_worker(&mut worker, async {
        let c_id = unique("victim");
        let c = client
            .start_workflow(WaiterWorkflow::run, (), start_opts(&tq, &c_id))
            .await
            .expect("start victim");
        let a_id = unique("canceller");
        let a = client
            .start_workflow(CancellerWorkflow::run, c_id.clone(), start_opts(&tq, &a_id))
            .await
            .expect("start canceller");
        let a_result = within(20, "canceller result", a.get_result(result_opts()))
            .await
            .expect("canceller should complete");
        assert_eq!(a_result, "cancel requested");

        let outcome = within(20, "victim result", c.get_result(result_opts())).await;
        assert!(
            matches!(outcome, Err(WorkflowGetResultError::Cancelled { .. })),
            "expected the victim to be cancelled, got {outcome:?}"
        );
        let desc = c.describe(Default::default()).await.expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Canceled);

        assert_has_events(
            &history(&client, &a_id, None).await,
            &[
                EventType::RequestCancelExternalWorkflowExecutionInitiated,
                EventType::ExternalWorkflowExecutionCancelRequested,
            ],
            "canceller",
        );
        let c_events = history(&client, &c_id, None).await;
        let requested = c_events
            .iter()
            .find_map(|e| match &e.attributes {
                Some(Attributes::WorkflowExecutionCancelRequestedEventAttributes(a)) => Some(a),
                _ => None,
            })
            .expect("victim has a WorkflowExecutionCancelRequested event");
        assert_eq!(
            requested
                .external_workflow_execution
                .as_ref()
                .map(|e| e.workflow_id.as_str()),
            Some(a_id.as_str()),
            "the cancel request names the workflow that sent it"
        );
        assert_eq!(
            c_events.last().map(|e| e.event_type()),
            Some(EventType::WorkflowExecutionCanceled)
        );

        // Cancelling a workflow id that does not exist.
        let a_id = unique("canceller-lost");
        let a = client
            .start_workflow(
                CancellerWorkflow::run,
                unique("nobody-home"),
                start_opts(&tq, &a_id),
            )
            .await
            .expect("start canceller");
        let a_result = within(20, "canceller result", a.get_result(result_opts()))
            .await
            .expect("canceller should complete");
        assert_eq!(a_result, "cancel target not found");
        assert_has_events(
            &history(&client, &a_id, None).await,
            &[EventType::RequestCancelExternalWorkflowExecutionFailed],
            "canceller of a missing workflow",
        );
    })
    .await;
}
