//! Storage faults on a real file: the server's file-size limit (RLIMIT_FSIZE) is lowered on
//! the live process with `prlimit`, so its next log write fails (EFBIG, as on a full disk).
//! Writes then answer UNAVAILABLE with a clear log line; so do reads and retried writes that
//! would report state still queued for the disk (nothing is reported before it is durable).
//! Once the limit is raised again the server recovers by itself, and a restart shows exactly
//! what was acknowledged.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::DurinServer;
use durin::proto::api::{
    common::v1::{Payload, Payloads, WorkflowExecution, WorkflowType},
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
async fn a_failing_disk_refuses_what_is_not_durable_and_recovers() {
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
    // The fillers carry an input that does not compress, as the log is compressed.
    let mut noise = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..300 {
        let data = (0..64)
            .flat_map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                noise.to_le_bytes()
            })
            .collect();
        let mut filler = start(&format!("filler-{i}"));
        filler.input = Some(Payloads {
            payloads: vec![Payload {
                data,
                ..Default::default()
            }],
        });
        c.start_workflow_execution(Request::new(filler))
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
    // The start is queued, not durable: its retry (same request id), which finds it, and a
    // read must not report it as done.
    let retried = c
        .start_workflow_execution(Request::new(start("during")))
        .await
        .expect_err("a retry must not acknowledge a start that is not durable");
    assert_eq!(retried.code(), Code::Unavailable, "{retried:?}");
    let read = c
        .describe_workflow_execution(Request::new(describe("during")))
        .await
        .expect_err("a read must not report a start that is not durable");
    assert_eq!(read.code(), Code::Unavailable, "{read:?}");
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

    // The retried start is acknowledged now that it is durable.
    c.start_workflow_execution(Request::new(start("during")))
        .await
        .expect("the retried start, once durable");

    // A restart shows what was acknowledged, from an intact log.
    server.restart().await;
    let mut c = client(server.port()).await;
    for id in ["before", "during", "after"] {
        c.describe_workflow_execution(Request::new(describe(id)))
            .await
            .unwrap_or_else(|e| panic!("{id} must survive: {e:?}"));
    }
}

/// The reviewer's scenario: workflows started one by one, the server stopped, one byte of the
/// log flipped at 35% of its length. Durin used to start on the prefix before the damage and
/// list a third of them; now it refuses to start with where the damage is and the way out,
/// cuts nothing, and `durin salvage` keeps every record a replay can apply: all but those of
/// the damaged block and the rest of its run of compressed blocks (at most 32 blocks; each
/// start here is one block).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_log_stops_the_start_and_salvage_keeps_the_rest() {
    const STARTED: usize = 100;
    let mut server = DurinServer::start().await;
    let mut c = client(server.port()).await;
    for i in 0..STARTED {
        c.start_workflow_execution(Request::new(start(&format!("kept-{i}"))))
            .await
            .expect("start");
    }
    server.kill();
    let data_dir = server.data_dir().to_path_buf();
    let log = data_dir.join("durin.log");
    let mut bytes = std::fs::read(&log).expect("read log");
    let at = bytes.len() * 35 / 100;
    bytes[at] ^= 0x20;
    std::fs::write(&log, &bytes).expect("write log");

    let dir = data_dir.display().to_string();
    let err = common::refused_start(&["dev", "--port", "0", "--data-dir", &dir]);
    assert!(err.contains("is damaged at byte"), "{err}");
    assert!(err.contains("durin salvage"), "{err}");
    assert_eq!(std::fs::read(&log).expect("log"), bytes, "nothing was cut");

    let (ok, said) = common::run_durin(&["salvage", "--data-dir", &dir]);
    assert!(ok, "salvage: {said}");
    assert!(said.contains("kept"), "{said}");

    server.restart().await;
    let mut c = client(server.port()).await;
    let mut present = 0;
    for i in 0..STARTED {
        if c.describe_workflow_execution(Request::new(describe(&format!("kept-{i}"))))
            .await
            .is_ok()
        {
            present += 1;
        }
    }
    assert!(
        (STARTED - 32..STARTED).contains(&present),
        "salvage kept {present} of {STARTED} workflows"
    );
}
