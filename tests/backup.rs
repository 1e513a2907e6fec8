//! `durin backup` of a running server, taken while it is busy writing, restores to a
//! consistent state: a server started on the copy loads it without cutting anything and has
//! every workflow the backup captured.

mod common;

use common::DurinServer;
use durin::proto::api::{
    common::v1::WorkflowType,
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{CountWorkflowExecutionsRequest, StartWorkflowExecutionRequest},
};
use durin::proto::workflowservice::workflow_service_client::WorkflowServiceClient;
use tonic::Request;

async fn client(port: u16) -> WorkflowServiceClient<tonic::transport::Channel> {
    let ch = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    WorkflowServiceClient::new(ch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_of_a_busy_server_restores_consistently() {
    let server = DurinServer::start().await;
    let mut c = client(server.port()).await;
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
    let restored = dir.path().join("restored");
    std::fs::create_dir_all(&restored).expect("mkdir");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_durin"))
        .args(["backup", "--data-dir"])
        .arg(server.data_dir())
        .arg("--out")
        .arg(restored.join("durin.log"))
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
    assert_eq!(total, 400);

    // Restore: a server on the copy starts without cutting a torn tail and serves a prefix.
    let mut copy = DurinServer::start().await;
    copy.kill();
    std::fs::copy(
        restored.join("durin.log"),
        copy.data_dir().join("durin.log"),
    )
    .expect("restore");
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
    assert!(
        restored_count > 0 && restored_count <= 400,
        "{restored_count}"
    );
    assert!(
        !copy.log_tail(50).contains("torn tail"),
        "a backup holds only whole records"
    );
}
