//! Cancelling a workflow (it catches the cancellation, runs a cleanup activity, and reports
//! itself cancelled or returns a value) and terminating one.

use crate::common;
use crate::helpers::*;
use crate::signals_and_queries::MailboxWorkflow;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use temporalio_client::{
    WorkflowCancelOptions, WorkflowExecutionStatus, WorkflowSignalOptions,
    WorkflowTerminateOptions,
    errors::{WorkflowGetResultError, WorkflowInteractionError},
};
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, TimerResult, WorkerOptions, WorkflowCancellationToken, WorkflowContext,
    WorkflowResult, WorkflowTermination,
    activities::{ActivityContext, ActivityError},
};

// ---- 5. workflow cancellation with cleanup --------------------------------------------------

pub struct CleanupActivities {
    log: Arc<Mutex<Vec<String>>>,
}

#[activities]
impl CleanupActivities {
    #[activity]
    pub async fn cleanup(
        self: Arc<Self>,
        _ctx: ActivityContext,
        what: String,
    ) -> Result<String, ActivityError> {
        self.log.lock().unwrap().push(what.clone());
        Ok(format!("cleaned up {what}"))
    }
}

/// Waits on a long timer. When cancelled, runs a cleanup activity (on a detached cancellation
/// token so it is not itself cancelled), then either reports the workflow as cancelled or
/// returns a value describing the cleanup.
#[workflow]
#[derive(Default)]
pub struct CancellableWorkflow;

#[workflow_methods]
impl CancellableWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        report_as_cancelled: bool,
    ) -> WorkflowResult<String> {
        if ctx.timer(Duration::from_secs(300)).await == TimerResult::Fired {
            return Ok("timer fired; never cancelled".to_string());
        }
        let reason = ctx.cancellation_token().reason().unwrap_or_default();
        let cleaned = ctx
            .execute_activity(
                CleanupActivities::cleanup,
                ctx.workflow_id().to_string(),
                ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
                    .cancellation_token(WorkflowCancellationToken::new())
                    .build(),
            )
            .await?;
        if report_as_cancelled {
            Err(WorkflowTermination::cancelled())
        } else {
            Ok(format!("{cleaned} (reason: {reason})"))
        }
    }
}

/// 5. Cancellation: the workflow catches the cancel, runs a cleanup activity, and then either
/// reports itself CANCELED or returns a value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_cancellation_runs_cleanup() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-cancel");
    let cleanup_log = Arc::new(Mutex::new(Vec::<String>::new()));
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<CancellableWorkflow>()
            .unwrap()
            .register_activities(CleanupActivities {
                log: cleanup_log.clone(),
            })
            .build(),
    );
    let cancelled_id = unique("cancel-report");
    let value_id = unique("cancel-value");

    with_worker(&mut worker, async {
        let reports = client
            .start_workflow(
                CancellableWorkflow::run,
                true,
                start_opts(&tq, &cancelled_id),
            )
            .await
            .expect("start workflow");
        let returns = client
            .start_workflow(CancellableWorkflow::run, false, start_opts(&tq, &value_id))
            .await
            .expect("start workflow");
        // Let both workflows reach their timer.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        for h in [&reports, &returns] {
            let desc = h.describe(Default::default()).await.expect("describe");
            assert_eq!(desc.status(), WorkflowExecutionStatus::Running);
        }

        for h in [&reports, &returns] {
            h.cancel(
                WorkflowCancelOptions::builder()
                    .reason("test-cancel")
                    .build(),
            )
            .await
            .expect("request cancellation");
        }

        // Workflow that reports cancellation: CANCELED status, Cancelled error from get_result.
        let outcome = within(
            20,
            "cancelled workflow result",
            reports.get_result(result_opts()),
        )
        .await;
        assert!(
            matches!(outcome, Err(WorkflowGetResultError::Cancelled { .. })),
            "expected Cancelled from get_result, got {outcome:?}"
        );
        let desc = reports
            .describe(Default::default())
            .await
            .expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Canceled);

        // Workflow that swallows the cancellation and returns a value: COMPLETED.
        let value = within(20, "workflow result", returns.get_result(result_opts()))
            .await
            .expect("workflow handling cancellation should complete");
        assert_eq!(
            value,
            format!("cleaned up {value_id} (reason: test-cancel)")
        );
        let desc = returns
            .describe(Default::default())
            .await
            .expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Completed);

        // Cleanup ran exactly once for each workflow.
        let mut log = cleanup_log.lock().unwrap().clone();
        log.sort();
        let mut expected = vec![cancelled_id.clone(), value_id.clone()];
        expected.sort();
        assert_eq!(log, expected);

        // History of the cancelled workflow: cancel requested (with reason), then canceled.
        let events = full_history(&reports).await;
        let cause = events.iter().find_map(|e| match &e.attributes {
            Some(Attributes::WorkflowExecutionCancelRequestedEventAttributes(a)) => {
                Some(a.cause.clone())
            }
            _ => None,
        });
        assert_eq!(cause.as_deref(), Some("test-cancel"));
        assert!(matches!(
            events.last().and_then(|e| e.attributes.as_ref()),
            Some(Attributes::WorkflowExecutionCanceledEventAttributes(_))
        ));
    })
    .await;
}

// ---- 6. terminate (MailboxWorkflow is in signals_and_queries) -------------------------------

/// 6. Terminate a running workflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_running_workflow() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-terminate");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<MailboxWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("terminated");

    with_worker(&mut worker, async {
        let handle = client
            .start_workflow(MailboxWorkflow::run, 5u32, start_opts(&tq, &id))
            .await
            .expect("start workflow");
        tokio::time::sleep(Duration::from_millis(500)).await;
        handle
            .terminate(
                WorkflowTerminateOptions::builder()
                    .reason("test-terminate")
                    .build(),
            )
            .await
            .expect("terminate");

        let outcome = within(
            20,
            "terminated workflow result",
            handle.get_result(result_opts()),
        )
        .await;
        assert!(
            matches!(outcome, Err(WorkflowGetResultError::Terminated { .. })),
            "expected Terminated from get_result, got {outcome:?}"
        );
        let desc = handle.describe(Default::default()).await.expect("describe");
        assert_eq!(desc.status(), WorkflowExecutionStatus::Terminated);
        assert!(desc.close_time().is_some());

        let events = full_history(&handle).await;
        match events.last().and_then(|e| e.attributes.as_ref()) {
            Some(Attributes::WorkflowExecutionTerminatedEventAttributes(a)) => {
                assert_eq!(a.reason, "test-terminate")
            }
            other => panic!("last event should be WorkflowExecutionTerminated, got {other:?}"),
        }

        // A closed workflow can no longer be signalled.
        let signal = handle
            .signal(
                MailboxWorkflow::deliver,
                "too late".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await;
        assert!(
            matches!(signal, Err(WorkflowInteractionError::NotFound(_))),
            "signalling a terminated workflow should fail with NotFound, got {signal:?}"
        );
    })
    .await;
}
