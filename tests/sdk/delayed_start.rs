//! Delayed workflow starts: no workflow task until the start delay has passed.

use crate::common;
use crate::helpers::*;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{DurinServer, NAMESPACE, new_worker, sdk_runtime, unique, with_worker, within};
use temporalio_client::{WorkflowExecutionStatus, grpc::WorkflowService, tonic::Request};
use temporalio_common::protos::temporal::api::{
    common::v1::WorkflowType, enums::v1::EventType, history::v1::history_event::Attributes,
    taskqueue::v1::TaskQueue, workflowservice::v1::StartWorkflowExecutionRequest,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkerOptions, WorkflowContext, WorkflowResult};

// ---- 4. delayed start -----------------------------------------------------------------------

/// Returns the workflow time (ms since the epoch) of its first workflow task.
#[workflow]
#[derive(Default)]
pub struct DelayedWorkflow;

#[workflow_methods]
impl DelayedWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<u64> {
        Ok(ctx.workflow_time().map(epoch_ms).unwrap_or(0))
    }
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A workflow started with a start delay has no workflow task until the delay has passed; then
/// it runs and completes. (The Rust client's `WorkflowStartOptions` has no start delay, so the
/// start request is sent through the raw workflow service.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_delay_postpones_first_workflow_task() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-delay");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<DelayedWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("delayed");
    let delay = Duration::from_secs(2);

    with_worker(&mut worker, async {
        let mut raw = client.clone();
        let sent = Instant::now();
        let started = WorkflowService::start_workflow_execution(
            &mut raw,
            Request::new(StartWorkflowExecutionRequest {
                namespace: NAMESPACE.to_string(),
                workflow_id: id.clone(),
                workflow_type: Some(WorkflowType {
                    name: "DelayedWorkflow".to_string(),
                }),
                task_queue: Some(TaskQueue {
                    name: tq.clone(),
                    ..Default::default()
                }),
                identity: "durin-sdk-test".to_string(),
                request_id: unique("req"),
                workflow_start_delay: Some(delay.try_into().expect("duration")),
                ..Default::default()
            }),
        )
        .await
        .expect("start with a start delay")
        .into_inner();
        assert!(!started.run_id.is_empty());

        // During the delay: running, execution time = start time + delay, history is just the
        // started event (no workflow task scheduled yet).
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let desc = describe(&client, &id, None).await;
        assert_eq!(desc.status(), WorkflowExecutionStatus::Running);
        let start = desc.start_time().expect("start time");
        let exec = desc.execution_time().expect("execution time");
        let offset = exec.duration_since(start).unwrap_or_default();
        assert!(
            offset >= Duration::from_millis(1990) && offset <= Duration::from_millis(2010),
            "execution time should be start time + 2 s, is start + {offset:?}"
        );
        let events = history(&client, &id, None).await;
        if sent.elapsed() < delay {
            assert_eq!(
                event_types(&events),
                vec![EventType::WorkflowExecutionStarted],
                "no workflow task before the start delay has passed"
            );
        }
        match events[0].attributes.as_ref() {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => assert_eq!(
                a.first_workflow_task_backoff
                    .as_ref()
                    .map(|d| (d.seconds, d.nanos)),
                Some((2, 0))
            ),
            other => panic!("first event should be WorkflowExecutionStarted, got {other:?}"),
        }

        let handle = client.get_workflow_handle::<DelayedWorkflow>(id.clone());
        let first_task_ms = within(15, "delayed result", handle.get_result(result_opts()))
            .await
            .expect("delayed workflow completes");
        assert!(
            sent.elapsed() >= delay,
            "completed before its start delay passed"
        );
        let start_ms = epoch_ms(start);
        assert!(
            first_task_ms >= start_ms + 2000 && first_task_ms < start_ms + 5000,
            "first workflow task ran {} ms after the start; expected at least 2000",
            first_task_ms as i64 - start_ms as i64
        );
        let desc = describe(&client, &id, None).await;
        assert_eq!(desc.status(), WorkflowExecutionStatus::Completed);
    })
    .await;
}
