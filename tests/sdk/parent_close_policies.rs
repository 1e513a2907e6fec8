//! Parent-close policies: TERMINATE (the default), ABANDON and REQUEST_CANCEL, applied to a
//! child still running when its parent completes or is terminated.

use crate::child_workflows::WaiterWorkflow;
use crate::common;
use crate::helpers::*;

use std::time::{Duration, Instant};

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use serde::{Deserialize, Serialize};
use temporalio_client::{
    Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowSignalOptions,
    WorkflowTerminateOptions, errors::WorkflowGetResultError,
};
use temporalio_common::protos::temporal::api::enums::v1::EventType;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{ChildWorkflowOptions, ParentClosePolicy, WorkflowContext, WorkflowResult};

// ---- 1c. parent-close policies -------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ClosePolicy {
    /// Leave the policy unset: the server's default (TERMINATE) applies.
    Default,
    Terminate,
    Abandon,
    RequestCancel,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AbandonOrder {
    pub child_id: String,
    pub policy: ClosePolicy,
    /// Wait for the child's result instead of completing as soon as it has started.
    pub wait_for_child: bool,
}

/// Starts a `WaiterWorkflow` child with the given parent-close policy, waits until the child
/// has started, and completes (with the child's run id) while the child is still waiting —
/// or, with `wait_for_child`, waits for the child's result.
#[workflow]
#[derive(Default)]
pub struct ShortLivedParent;

#[workflow_methods]
impl ShortLivedParent {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        order: AbandonOrder,
    ) -> WorkflowResult<String> {
        let policy = match order.policy {
            ClosePolicy::Default => ParentClosePolicy::Unspecified,
            ClosePolicy::Terminate => ParentClosePolicy::Terminate,
            ClosePolicy::Abandon => ParentClosePolicy::Abandon,
            ClosePolicy::RequestCancel => ParentClosePolicy::RequestCancel,
        };
        let child = ctx
            .start_child_workflow(
                WaiterWorkflow::run,
                (),
                ChildWorkflowOptions::builder()
                    .workflow_id(order.child_id)
                    .parent_close_policy(policy)
                    .build(),
            )
            .await?;
        if order.wait_for_child {
            return Ok(child.result().await?);
        }
        Ok(child.run_id.clone())
    }
}

/// Poll `describe` (latest run of `workflow_id`) until its status is `want`.
async fn wait_for_status(
    client: &Client,
    workflow_id: &str,
    want: WorkflowExecutionStatus,
    secs: u64,
) -> WorkflowExecutionDescription {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let desc = describe(client, workflow_id, None).await;
        if desc.status() == want {
            return desc;
        }
        if Instant::now() > deadline {
            panic!(
                "{workflow_id} did not reach {want:?} within {secs}s; status is {:?}\nhistory: {:?}",
                desc.status(),
                event_types(&history(client, workflow_id, None).await)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Start a `ShortLivedParent` with `policy`, wait for it to complete, and return the child's
/// run id (checked against `describe` of the child's workflow id).
async fn run_short_lived_parent(
    client: &Client,
    tq: &str,
    policy: ClosePolicy,
    child_id: &str,
) -> String {
    let parent_id = unique("short-parent");
    let parent = client
        .start_workflow(
            ShortLivedParent::run,
            AbandonOrder {
                child_id: child_id.to_string(),
                policy,
                wait_for_child: false,
            },
            start_opts(tq, &parent_id),
        )
        .await
        .expect("start parent");
    let child_run = within(20, "parent result", parent.get_result(result_opts()))
        .await
        .unwrap_or_else(|e| panic!("parent ({policy:?}) should complete: {e:?}"));
    assert!(
        !child_run.is_empty(),
        "parent returned an empty child run id"
    );
    let parent_desc = parent
        .describe(Default::default())
        .await
        .expect("describe parent");
    assert_eq!(parent_desc.status(), WorkflowExecutionStatus::Completed);

    let child_desc = describe(client, child_id, None).await;
    assert_eq!(
        child_desc.run_id(),
        child_run,
        "child id resolves to the run the parent started"
    );
    assert_eq!(child_desc.parent_id(), Some(parent_id.as_str()));
    child_run
}

/// 1c. Parent-close policy TERMINATE (the default, and explicit): the child still waiting for
/// a signal is terminated when the parent completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_close_policy_terminate() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-pcp-terminate");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));

    with_worker(&mut worker, async {
        for policy in [ClosePolicy::Default, ClosePolicy::Terminate] {
            let child_id = unique("terminated-child");
            run_short_lived_parent(&client, &tq, policy, &child_id).await;
            wait_for_status(&client, &child_id, WorkflowExecutionStatus::Terminated, 10).await;
            let events = history(&client, &child_id, None).await;
            assert_eq!(
                events.last().map(|e| e.event_type()),
                Some(EventType::WorkflowExecutionTerminated),
                "{policy:?}: child history {:?}",
                event_types(&events)
            );
            let outcome = within(
                10,
                "child result",
                client
                    .get_workflow_handle::<WaiterWorkflow>(child_id.clone())
                    .get_result(result_opts()),
            )
            .await;
            assert!(
                matches!(outcome, Err(WorkflowGetResultError::Terminated { .. })),
                "{policy:?}: expected Terminated, got {outcome:?}"
            );
        }
    })
    .await;
}

/// 1c. Parent-close policies also apply when the parent is terminated (not completed) while
/// it waits for its child: TERMINATE (default) terminates the child, REQUEST_CANCEL cancels it,
/// ABANDON leaves it running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_close_policy_applies_when_parent_is_terminated() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-pcp-parent-terminated");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));

    with_worker(&mut worker, async {
        let cases = [
            (ClosePolicy::Default, WorkflowExecutionStatus::Terminated),
            (
                ClosePolicy::RequestCancel,
                WorkflowExecutionStatus::Canceled,
            ),
            (ClosePolicy::Abandon, WorkflowExecutionStatus::Running),
        ];
        let mut started = Vec::new();
        for (policy, want) in cases {
            let parent_id = unique("waiting-parent");
            let child_id = unique("orphan");
            let parent = client
                .start_workflow(
                    ShortLivedParent::run,
                    AbandonOrder {
                        child_id: child_id.clone(),
                        policy,
                        wait_for_child: true,
                    },
                    start_opts(&tq, &parent_id),
                )
                .await
                .expect("start parent");
            started.push((policy, want, parent, child_id));
        }
        for (policy, _, parent, child_id) in &started {
            // Wait until the parent has recorded the child as started.
            within(15, "child started", async {
                loop {
                    let events = history(&client, parent.info().workflow_id.as_str(), None).await;
                    if event_types(&events).contains(&EventType::ChildWorkflowExecutionStarted) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .await;
            let child = describe(&client, child_id, None).await;
            assert_eq!(
                child.status(),
                WorkflowExecutionStatus::Running,
                "{policy:?}"
            );
            parent
                .terminate(
                    WorkflowTerminateOptions::builder()
                        .reason("parent goes away")
                        .build(),
                )
                .await
                .expect("terminate parent");
        }
        for (policy, want, parent, child_id) in &started {
            let outcome = within(10, "parent result", parent.get_result(result_opts())).await;
            assert!(
                matches!(outcome, Err(WorkflowGetResultError::Terminated { .. })),
                "{policy:?}: parent should be terminated, got {outcome:?}"
            );
            if *want == WorkflowExecutionStatus::Running {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let desc = describe(&client, child_id, None).await;
                assert_eq!(
                    desc.status(),
                    WorkflowExecutionStatus::Running,
                    "{policy:?}: abandoned child must keep running"
                );
                client
                    .get_workflow_handle::<WaiterWorkflow>(child_id.clone())
                    .terminate(
                        WorkflowTerminateOptions::builder()
                            .reason("cleanup")
                            .build(),
                    )
                    .await
                    .expect("terminate abandoned child");
            } else {
                wait_for_status(&client, child_id, *want, 10).await;
            }
        }
    })
    .await;
}

/// 1c. Parent-close policy ABANDON: the child keeps running after the parent completes, and
/// can still be signalled to completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_close_policy_abandon() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-pcp-abandon");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));

    with_worker(&mut worker, async {
        let child_id = unique("abandoned-child");
        let child_run = run_short_lived_parent(&client, &tq, ClosePolicy::Abandon, &child_id).await;
        // Give the server ample time to (wrongly) act on the parent's close.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let desc = describe(&client, &child_id, None).await;
        assert_eq!(
            desc.status(),
            WorkflowExecutionStatus::Running,
            "abandoned child must keep running; history: {:?}",
            event_types(&history(&client, &child_id, None).await)
        );
        assert_eq!(desc.run_id(), child_run);

        let child = client.get_workflow_handle::<WaiterWorkflow>(child_id.clone());
        child
            .signal(
                WaiterWorkflow::release,
                "after the parent left".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal abandoned child");
        let result = within(
            20,
            "abandoned child result",
            child.get_result(result_opts()),
        )
        .await
        .expect("abandoned child should complete once signalled");
        assert_eq!(result, "released: after the parent left");
        let desc = describe(&client, &child_id, None).await;
        assert_eq!(desc.status(), WorkflowExecutionStatus::Completed);
    })
    .await;
}

/// 1c. Parent-close policy REQUEST_CANCEL: the child receives a cancellation request when the
/// parent completes; it handles it by reporting itself cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_close_policy_request_cancel() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-pcp-cancel");
    let runtime = sdk_runtime();
    let mut worker = new_worker(&runtime, &client, chains_worker_options(&tq));

    with_worker(&mut worker, async {
        let child_id = unique("cancelled-child");
        run_short_lived_parent(&client, &tq, ClosePolicy::RequestCancel, &child_id).await;
        wait_for_status(&client, &child_id, WorkflowExecutionStatus::Canceled, 10).await;
        let events = history(&client, &child_id, None).await;
        assert_has_events(
            &events,
            &[EventType::WorkflowExecutionCancelRequested],
            "cancelled child",
        );
        assert_eq!(
            events.last().map(|e| e.event_type()),
            Some(EventType::WorkflowExecutionCanceled)
        );
        let outcome = within(
            10,
            "child result",
            client
                .get_workflow_handle::<WaiterWorkflow>(child_id.clone())
                .get_result(result_opts()),
        )
        .await;
        assert!(
            matches!(outcome, Err(WorkflowGetResultError::Cancelled { .. })),
            "expected Cancelled, got {outcome:?}"
        );
    })
    .await;
}
