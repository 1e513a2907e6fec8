//! Closed runs leave memory for the on-disk archive (`--archive-after`), and everything a
//! client can do with a closed run still works on an archived one, also after a restart:
//! history, describe, visibility queries, the workflow-id reuse policy, resolving the latest
//! run of an id, and delete (which must stay deleted).

mod common;

use std::time::Duration;

use common::DurinServer;
use durin::proto::api::{
    common::v1::{WorkflowExecution, WorkflowType},
    enums::v1::{WorkflowExecutionStatus, WorkflowIdReusePolicy},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        CountWorkflowExecutionsRequest, DeleteWorkflowExecutionRequest,
        DescribeWorkflowExecutionRequest, GetWorkflowExecutionHistoryRequest,
        ListWorkflowExecutionsRequest, StartWorkflowExecutionRequest,
        TerminateWorkflowExecutionRequest,
    },
};
use durin::proto::workflowservice::workflow_service_client::WorkflowServiceClient;
use tonic::{Code, Request};

type Client = WorkflowServiceClient<tonic::transport::Channel>;

use common::grpc_client as client;

async fn start(c: &mut Client, id: &str, reuse: WorkflowIdReusePolicy) -> Result<String, Code> {
    c.start_workflow_execution(Request::new(StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: id.into(),
        workflow_type: Some(WorkflowType {
            name: "Archived".into(),
        }),
        task_queue: Some(TaskQueue {
            name: "archive-test".into(),
            ..Default::default()
        }),
        request_id: uuid::Uuid::new_v4().to_string(),
        workflow_id_reuse_policy: reuse as i32,
        ..Default::default()
    }))
    .await
    .map(|r| r.into_inner().run_id)
    .map_err(|s| s.code())
}

async fn terminate(c: &mut Client, id: &str) {
    c.terminate_workflow_execution(Request::new(TerminateWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: String::new(),
        }),
        reason: "archive test".into(),
        ..Default::default()
    }))
    .await
    .expect("terminate");
}

async fn describe(c: &mut Client, id: &str, run_id: &str) -> Result<(String, i32), Code> {
    c.describe_workflow_execution(Request::new(DescribeWorkflowExecutionRequest {
        namespace: "default".into(),
        execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: run_id.into(),
        }),
    }))
    .await
    .map(|r| {
        let info = r.into_inner().workflow_execution_info.unwrap_or_default();
        (info.execution.unwrap_or_default().run_id, info.status)
    })
    .map_err(|s| s.code())
}

async fn history_len(c: &mut Client, id: &str, run_id: &str) -> usize {
    c.get_workflow_execution_history(Request::new(GetWorkflowExecutionHistoryRequest {
        namespace: "default".into(),
        execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: run_id.into(),
        }),
        ..Default::default()
    }))
    .await
    .expect("history")
    .into_inner()
    .history
    .map(|h| h.events.len())
    .unwrap_or(0)
}

async fn count(c: &mut Client, query: &str) -> i64 {
    c.count_workflow_executions(Request::new(CountWorkflowExecutionsRequest {
        namespace: "default".into(),
        query: query.into(),
    }))
    .await
    .expect("count")
    .into_inner()
    .count
}

fn archive_bytes(server: &DurinServer) -> u64 {
    std::fs::read_dir(server.data_dir().join("archive"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_runs_serve_every_closed_run_operation() {
    let mut server = DurinServer::start_with(
        vec!["dev".into(), "--archive-after".into(), "0".into()],
        Vec::new(),
    )
    .await;
    let mut c = client(server.port()).await;

    // 50 runs closed; one id gets a second (also closed) run.
    let mut first_runs = Vec::new();
    for i in 0..50 {
        let id = format!("arch-{i}");
        first_runs.push(
            start(&mut c, &id, WorkflowIdReusePolicy::AllowDuplicate)
                .await
                .expect("start"),
        );
        terminate(&mut c, &id).await;
    }
    let second = start(&mut c, "arch-0", WorkflowIdReusePolicy::AllowDuplicate)
        .await
        .expect("second run");
    terminate(&mut c, "arch-0").await;
    // One run stays open and in memory.
    let open = start(&mut c, "arch-open", WorkflowIdReusePolicy::AllowDuplicate)
        .await
        .expect("open run");

    // The archiver runs every half second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while archive_bytes(&server) < 10_000 {
        assert!(tokio::time::Instant::now() < deadline, "nothing archived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(archive_bytes(&server) > 10_000, "closed runs are on disk");

    for round in 0..2 {
        // Latest run of an id, from the archive.
        assert_eq!(
            describe(&mut c, "arch-0", "").await,
            Ok((second.clone(), WorkflowExecutionStatus::Terminated as i32)),
            "round {round}"
        );
        // An older run by its id, with its whole history.
        assert_eq!(
            describe(&mut c, "arch-0", &first_runs[0])
                .await
                .map(|d| d.1),
            Ok(WorkflowExecutionStatus::Terminated as i32)
        );
        assert_eq!(history_len(&mut c, "arch-7", &first_runs[7]).await, 3);
        // Visibility over memory and archive together.
        assert_eq!(count(&mut c, "").await, 52);
        assert_eq!(count(&mut c, "ExecutionStatus = 'Terminated'").await, 51);
        assert_eq!(count(&mut c, "WorkflowId = 'arch-0'").await, 2);
        let page = c
            .list_workflow_executions(Request::new(ListWorkflowExecutionsRequest {
                namespace: "default".into(),
                page_size: 10,
                ..Default::default()
            }))
            .await
            .expect("list")
            .into_inner();
        assert_eq!(page.executions.len(), 10);
        assert_eq!(
            page.executions[0]
                .execution
                .as_ref()
                .map(|e| e.run_id.clone()),
            Some(open.clone()),
            "open runs come first"
        );
        assert!(!page.next_page_token.is_empty());
        // The reuse policy sees the archived run.
        assert_eq!(
            start(&mut c, "arch-3", WorkflowIdReusePolicy::RejectDuplicate).await,
            Err(Code::AlreadyExists)
        );
        // Everything holds after a restart on the same data, which finds only the open run
        // in the log (the closed ones' log records are superseded by the archive).
        server.restart().await;
        c = client(server.port()).await;
        let log = server.log_tail(50);
        assert!(log.contains("runs=1 archived=51"), "{log}");
    }

    // Delete an archived run; it stays deleted across a restart.
    c.delete_workflow_execution(Request::new(DeleteWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: "arch-5".into(),
            run_id: first_runs[5].clone(),
        }),
    }))
    .await
    .expect("delete");
    assert_eq!(
        describe(&mut c, "arch-5", &first_runs[5]).await,
        Err(Code::NotFound)
    );
    // A new run of an id whose previous run is archived becomes its latest run.
    let fresh = start(&mut c, "arch-9", WorkflowIdReusePolicy::AllowDuplicate)
        .await
        .expect("fresh");
    server.restart().await;
    c = client(server.port()).await;
    assert_eq!(
        describe(&mut c, "arch-5", &first_runs[5]).await,
        Err(Code::NotFound)
    );
    assert_eq!(count(&mut c, "").await, 52);
    assert_eq!(
        describe(&mut c, "arch-9", "").await,
        Ok((fresh, WorkflowExecutionStatus::Running as i32))
    );
}

/// Deleting a namespace takes its archived runs along, and they stay deleted after a restart
/// (the dev server then registers `default` again, empty, and its workflow ids are free).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_namespace_takes_its_archived_runs_along() {
    use durin::proto::api::operatorservice::v1::DeleteNamespaceRequest;
    use durin::proto::operatorservice::operator_service_client::OperatorServiceClient;
    let mut server = DurinServer::start_with(
        vec!["dev".into(), "--archive-after".into(), "0".into()],
        Vec::new(),
    )
    .await;
    let mut c = client(server.port()).await;
    let mut runs = Vec::new();
    for i in 0..10 {
        let id = format!("gone-{i}");
        runs.push(
            start(&mut c, &id, WorkflowIdReusePolicy::AllowDuplicate)
                .await
                .expect("start"),
        );
        terminate(&mut c, &id).await;
    }
    start(&mut c, "gone-open", WorkflowIdReusePolicy::AllowDuplicate)
        .await
        .expect("open run");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while archive_bytes(&server) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "nothing archived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(&mut c, "").await, 11);

    OperatorServiceClient::new(common::grpc_channel(server.port()).await)
        .delete_namespace(Request::new(DeleteNamespaceRequest {
            namespace: "default".into(),
            ..Default::default()
        }))
        .await
        .expect("delete namespace");
    assert_eq!(
        describe(&mut c, "gone-3", &runs[3]).await,
        Err(Code::NotFound)
    );

    server.restart().await;
    c = client(server.port()).await;
    assert_eq!(
        count(&mut c, "").await,
        0,
        "nothing of the deleted namespace came back"
    );
    assert_eq!(
        describe(&mut c, "gone-3", &runs[3]).await,
        Err(Code::NotFound)
    );
    assert_eq!(describe(&mut c, "gone-open", "").await, Err(Code::NotFound));
    start(&mut c, "gone-open", WorkflowIdReusePolicy::RejectDuplicate)
        .await
        .expect("the id is free in the new namespace");
}
