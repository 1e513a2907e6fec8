//! `durin backup` of a running server, taken while it is busy writing, restores to a
//! consistent state: a server started on the copy (unpacked with `tar`) loads it without
//! cutting anything and has every workflow the backup captured, archived closed runs
//! included.

mod common;

use common::DurinServer;
use durin::proto::api::{
    common::v1::WorkflowExecution,
    common::v1::WorkflowType,
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        CountWorkflowExecutionsRequest, StartWorkflowExecutionRequest,
        TerminateWorkflowExecutionRequest,
    },
};
use tonic::Request;

use common::grpc_client as client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_of_a_busy_server_restores_consistently() {
    let server = DurinServer::start_with(
        vec!["dev".into(), "--archive-after".into(), "0".into()],
        Vec::new(),
    )
    .await;
    let mut c = client(server.port()).await;
    // 100 closed runs, moved to the archive.
    for i in 0..100 {
        let id = format!("closed-{i}");
        c.start_workflow_execution(Request::new(StartWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_id: id.clone(),
            workflow_type: Some(WorkflowType { name: "W".into() }),
            task_queue: Some(TaskQueue {
                name: "backup".into(),
                ..Default::default()
            }),
            request_id: id.clone(),
            ..Default::default()
        }))
        .await
        .expect("start");
        c.terminate_workflow_execution(Request::new(TerminateWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: id,
                run_id: String::new(),
            }),
            ..Default::default()
        }))
        .await
        .expect("terminate");
    }
    // Wait until all 100 are archived: one frame each in the segment (its size alone could
    // be reached by 97 of them, and then 3 came back from the log instead).
    let segment = server.data_dir().join("archive").join("00000001.seg");
    let archived = || {
        let data = std::fs::read(&segment).unwrap_or_default();
        let (frames, _) = durin::store::frame::scan(durin::store::frame::Format::V1, &data, 0);
        frames.len()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while archived() < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "closed runs never archived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Keep writing while the backup is taken.
    let writer = {
        let mut c = c.clone();
        tokio::spawn(async move {
            for i in 0..400 {
                let req = StartWorkflowExecutionRequest {
                    namespace: "default".into(),
                    workflow_id: format!("busy-{i}"),
                    workflow_type: Some(WorkflowType { name: "W".into() }),
                    task_queue: Some(TaskQueue {
                        name: "backup".into(),
                        ..Default::default()
                    }),
                    request_id: format!("busy-{i}"),
                    ..Default::default()
                };
                c.start_workflow_execution(Request::new(req))
                    .await
                    .expect("start");
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let backup = dir.path().join("backup.tar");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_durin"))
        .args(["backup", "--data-dir"])
        .arg(server.data_dir())
        .arg("--out")
        .arg(&backup)
        .output()
        .await
        .expect("durin backup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    writer.await.expect("writer");
    let total = c
        .count_workflow_executions(Request::new(CountWorkflowExecutionsRequest {
            namespace: "default".into(),
            ..Default::default()
        }))
        .await
        .expect("count")
        .into_inner()
        .count;
    assert_eq!(total, 500);

    // Restore: a server on the copy starts without cutting a torn tail and serves a prefix.
    let mut copy = DurinServer::start().await;
    copy.kill();
    for entry in std::fs::read_dir(copy.data_dir()).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("clear");
        } else {
            std::fs::remove_file(&path).expect("clear");
        }
    }
    let untar = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&backup)
        .arg("-C")
        .arg(copy.data_dir())
        .output()
        .expect("tar");
    assert!(
        untar.status.success(),
        "{}",
        String::from_utf8_lossy(&untar.stderr)
    );
    copy.restart().await;
    let mut r = client(copy.port()).await;
    let restored_count = r
        .count_workflow_executions(Request::new(CountWorkflowExecutionsRequest {
            namespace: "default".into(),
            ..Default::default()
        }))
        .await
        .expect("count restored")
        .into_inner()
        .count;
    assert!((100..=500).contains(&restored_count), "{restored_count}");
    let closed = r
        .count_workflow_executions(Request::new(CountWorkflowExecutionsRequest {
            namespace: "default".into(),
            query: "ExecutionStatus = 'Terminated'".into(),
        }))
        .await
        .expect("count closed")
        .into_inner()
        .count;
    assert_eq!(closed, 100, "every archived run is in the backup");
    let log = copy.log_tail(50);
    assert!(
        !log.contains("torn tail"),
        "a backup holds only whole records"
    );
    // The closed runs came back from the archive segments in the backup (their log records
    // alone would also count them).
    assert!(log.contains("archived=100"), "{log}");
}
