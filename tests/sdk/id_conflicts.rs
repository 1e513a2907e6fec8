//! Workflow id conflicts: a second start of a running workflow id fails with
//! WorkflowAlreadyStarted; the USE_EXISTING conflict policy returns the running run; a closed
//! id can be reused.

use crate::common;
use crate::helpers::*;
use crate::signals_and_queries::MailboxWorkflow;

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use temporalio_client::{
    WorkflowIdConflictPolicy, WorkflowSignalOptions, WorkflowStartOptions,
    errors::WorkflowStartError,
};
use temporalio_sdk::WorkerOptions;

/// 9. Starting a workflow id that is already running fails with WorkflowAlreadyStarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_start_of_running_workflow_fails() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-dup");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<MailboxWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("dup");

    with_worker(&mut worker, async {
        let first = client
            .start_workflow(MailboxWorkflow::run, 1u32, start_opts(&tq, &id))
            .await
            .expect("first start");

        let second = client
            .start_workflow(MailboxWorkflow::run, 1u32, start_opts(&tq, &id))
            .await;
        match second {
            Err(WorkflowStartError::AlreadyStarted { run_id, source }) => {
                assert_eq!(source.code(), tonic_code_already_exists());
                assert_eq!(
                    run_id.as_deref(),
                    first.run_id(),
                    "AlreadyStarted should carry the running run's id"
                );
            }
            Err(other) => panic!("expected AlreadyStarted, got error {other:?}"),
            Ok(h) => panic!(
                "second start unexpectedly succeeded with run {:?}",
                h.run_id()
            ),
        }

        // The original run is unaffected.
        first
            .signal(
                MailboxWorkflow::deliver,
                "still here".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal original run");
        let result = within(20, "workflow result", first.get_result(result_opts()))
            .await
            .expect("workflow should complete");
        assert_eq!(result, vec!["still here".to_string()]);
    })
    .await;
}

fn tonic_code_already_exists() -> temporalio_client::tonic::Code {
    temporalio_client::tonic::Code::AlreadyExists
}

/// 9b. Id conflict policy USE_EXISTING returns the running run; a closed id can be reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_conflict_and_reuse_policies() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-policies");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<MailboxWorkflow>()
            .unwrap()
            .build(),
    );
    let id = unique("policy");

    with_worker(&mut worker, async {
        let first = client
            .start_workflow(MailboxWorkflow::run, 1u32, start_opts(&tq, &id))
            .await
            .expect("first start");
        let existing = client
            .start_workflow(
                MailboxWorkflow::run,
                1u32,
                WorkflowStartOptions::new(tq.clone(), id.clone())
                    .id_conflict_policy(WorkflowIdConflictPolicy::UseExisting)
                    .build(),
            )
            .await
            .expect("start with UseExisting should succeed");
        assert_eq!(existing.run_id(), first.run_id());

        first
            .signal(
                MailboxWorkflow::deliver,
                "run 1".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal");
        let r1 = within(20, "first run result", first.get_result(result_opts()))
            .await
            .expect("first run completes");
        assert_eq!(r1, vec!["run 1".to_string()]);

        // Default reuse policy allows a new run once the previous one is closed.
        let second = client
            .start_workflow(MailboxWorkflow::run, 1u32, start_opts(&tq, &id))
            .await
            .expect("start after close should succeed");
        assert_ne!(second.run_id(), first.run_id());
        second
            .signal(
                MailboxWorkflow::deliver,
                "run 2".to_string(),
                WorkflowSignalOptions::default(),
            )
            .await
            .expect("signal");
        let r2 = within(20, "second run result", second.get_result(result_opts()))
            .await
            .expect("second run completes");
        assert_eq!(r2, vec!["run 2".to_string()]);
    })
    .await;
}
