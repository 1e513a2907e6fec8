//! Storage faults on a real file: the server's file-size limit (RLIMIT_FSIZE) is lowered on
//! the live process with `prlimit`, so its next log write fails (EFBIG, as on a full disk).
//! Writes then answer UNAVAILABLE with a clear log line while reads go on; once the limit is
//! raised again the server recovers by itself, and a restart shows exactly what was
//! acknowledged.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::DurinServer;
use durin::proto::api::{
    common::v1::{WorkflowExecution, WorkflowType},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{DescribeWorkflowExecutionRequest, StartWorkflowExecutionRequest},
};
use durin::proto::workflowservice::workflow_service_client::WorkflowServiceClient;
use tonic::{Code, Request, transport::Channel};

fn start(id: &str) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: id.into(),
        workflow_type: Some(WorkflowType { name: "W".into() }),
        task_queue: Some(TaskQueue {
            name: "faults".into(),
            ..Default::default()
        }),
        request_id: format!("{id}-req"),
        ..Default::default()
    }
}

fn describe(id: &str) -> DescribeWorkflowExecutionRequest {
    DescribeWorkflowExecutionRequest {
        namespace: "default".into(),
        execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: String::new(),
        }),
    }
}

fn prlimit_fsize(pid: u32, bytes: &str) {
    let out = Command::new("prlimit")
        .args([
            "--pid",
            &pid.to_string(),
            // Only the soft limit moves, so it can be raised again without privileges.
            &format!("--fsize={bytes}:unlimited"),
        ])
        .output()
        .expect("run prlimit (util-linux)");
    assert!(
        out.status.success(),
        "prlimit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn client(port: u16) -> WorkflowServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    WorkflowServiceClient::new(channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_refuses_writes_keeps_reads_and_recovers() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        panic!("prlimit (util-linux) is needed for this test");
    }
    let mut server = DurinServer::start().await;
    let pid = server.pid().expect("pid");
    let mut c = client(server.port()).await;
    c.start_workflow_execution(Request::new(start("before")))
        .await
        .expect("start before");
    // Grow the store well past the size of the server's own log file, which shares the
    // process's file-size limit and must keep room for the lines that explain the fault.
    for i in 0..300 {
        c.start_workflow_execution(Request::new(start(&format!("filler-{i}"))))
            .await
            .expect("filler start");
    }
    let server_log = std::fs::metadata(server.log_path())
        .map(|m| m.len())
        .unwrap_or(0);

    // The log cannot grow any more.
    let log_len = std::fs::metadata(server.data_dir().join("durin.log"))
        .expect("log")
        .len();
    assert!(
        log_len > server_log + 64 * 1024,
        "store {log_len} B, server log {server_log} B"
    );
    prlimit_fsize(pid, &log_len.to_string());
    let refused = c
        .start_workflow_execution(Request::new(start("during")))
        .await
        .expect_err("a write the disk cannot take");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    // Reads go on.
    c.describe_workflow_execution(Request::new(describe("before")))
        .await
        .expect("reads are served while writes fail");
    assert!(
        server.log_tail(50).contains("log write failed"),
        "a clear log line"
    );

    // Space comes back: the server recovers by itself.
    prlimit_fsize(pid, "unlimited");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match c
            .start_workflow_execution(Request::new(start("after")))
            .await
        {
            Ok(_) => break,
            Err(s) if s.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(s) => panic!("no recovery: {s:?}"),
        }
    }
    assert!(server.log_tail(50).contains("log writes succeed again"));

    // A restart shows what was acknowledged, from an intact log.
    server.restart().await;
    let mut c = client(server.port()).await;
    for id in ["before", "after"] {
        c.describe_workflow_execution(Request::new(describe(id)))
            .await
            .unwrap_or_else(|e| panic!("{id} must survive: {e:?}"));
    }
}
