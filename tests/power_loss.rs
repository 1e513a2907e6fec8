//! Power loss, not only SIGKILL: a SIGKILLed process leaves its writes in the page cache, so
//! a crash test passes even without a single fsync. Here `durin dev` runs with an LD_PRELOAD
//! library (`tests/powercut/powercut.c`) that keeps a shadow copy of the data directory
//! holding only what was fsync'ed (file data) or made durable by a directory fsync (renames).
//! Under load the process is killed, the data directory is replaced by its shadow — the disk
//! as a machine finds it after a power cut — and every acknowledged start and signal must be
//! there. The same run on a disk that acknowledges syncs and keeps nothing must lose them:
//! the check can fail.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::DurinServer;
use durin::proto::api::common::v1::{WorkflowExecution, WorkflowType};
use durin::proto::api::enums::v1::EventType;
use durin::proto::api::taskqueue::v1::TaskQueue;
use durin::proto::api::workflowservice::v1::{
    GetWorkflowExecutionHistoryRequest, SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest,
};
use parking_lot::Mutex;
use tonic::Request;

/// What the server acknowledged before the cut.
#[derive(Default)]
struct Acked {
    starts: Vec<String>,
    signals: Vec<String>,
}

fn execution(id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: id.into(),
        run_id: String::new(),
    })
}

/// Starts and signals workflows from several callers until the server goes away.
async fn load(port: u16, acked: Arc<Mutex<Acked>>, callers: usize) {
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = common::grpc_client(port).await;
            for n in 0.. {
                let id = format!("power-{caller}-{n}");
                let start = StartWorkflowExecutionRequest {
                    namespace: "default".into(),
                    workflow_id: id.clone(),
                    workflow_type: Some(WorkflowType { name: "W".into() }),
                    task_queue: Some(TaskQueue {
                        name: "power".into(),
                        ..Default::default()
                    }),
                    request_id: format!("{id}-start"),
                    ..Default::default()
                };
                if client
                    .start_workflow_execution(Request::new(start))
                    .await
                    .is_err()
                {
                    return;
                }
                acked.lock().starts.push(id.clone());
                let signal = SignalWorkflowExecutionRequest {
                    namespace: "default".into(),
                    workflow_execution: execution(&id),
                    signal_name: "go".into(),
                    request_id: format!("{id}-signal"),
                    ..Default::default()
                };
                if client
                    .signal_workflow_execution(Request::new(signal))
                    .await
                    .is_err()
                {
                    return;
                }
                acked.lock().signals.push(id);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Replaces `data` with what the shadow directory holds.
fn power_cut(data: &Path, shadow: &Path) {
    std::fs::remove_dir_all(data).expect("remove data dir");
    copy_tree(shadow, data);
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read shadow") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Acknowledged starts and signals that the restarted server does not have.
async fn lost(port: u16, acked: &Acked) -> (usize, usize) {
    let mut client = common::grpc_client(port).await;
    let mut lost_starts = 0;
    let mut lost_signals = 0;
    for id in &acked.starts {
        let history = client
            .get_workflow_execution_history(Request::new(GetWorkflowExecutionHistoryRequest {
                namespace: "default".into(),
                execution: execution(id),
                ..Default::default()
            }))
            .await;
        let Ok(history) = history else {
            lost_starts += 1;
            continue;
        };
        let signaled = history
            .into_inner()
            .history
            .map(|h| h.events)
            .unwrap_or_default()
            .iter()
            .any(|e| e.event_type == EventType::WorkflowExecutionSignaled as i32);
        if acked.signals.contains(id) && !signaled {
            lost_signals += 1;
        }
    }
    (lost_starts, lost_signals)
}

/// Runs the load on a server under the power-cut library, cuts the power, restarts on what
/// the disk kept; returns what was acknowledged and what of it was lost.
async fn run(lie: bool) -> (usize, usize, usize, usize) {
    let scratch = tempfile::tempdir().expect("tempdir");
    let shim = common::build_preload("powercut", scratch.path());
    let shadow = scratch.path().join("shadow");
    std::fs::create_dir_all(&shadow).expect("shadow dir");
    let mut server = DurinServer::prepare_dev();
    let data = server.data_dir().to_path_buf();
    let env = server.env_mut();
    env.push(("LD_PRELOAD".into(), shim.display().to_string()));
    env.push(("POWERCUT_ROOT".into(), data.display().to_string()));
    env.push(("POWERCUT_SHADOW".into(), shadow.display().to_string()));
    if lie {
        env.push(("POWERCUT_LIE".into(), "1".into()));
    }
    server.launch().await;

    let acked = Arc::new(Mutex::new(Acked::default()));
    let load = tokio::spawn(load(server.port(), acked.clone(), 16));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.kill();
    let _ = load.await;
    power_cut(&data, &shadow);

    server.env_mut().clear();
    server.launch().await;
    let acked = std::mem::take(&mut *acked.lock());
    let (lost_starts, lost_signals) = lost(server.port(), &acked).await;
    (
        acked.starts.len(),
        acked.signals.len(),
        lost_starts,
        lost_signals,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_lost_at_a_power_cut() {
    let (starts, signals, lost_starts, lost_signals) = run(false).await;
    println!(
        "power cut: {starts} starts and {signals} signals acknowledged, {lost_starts} and {lost_signals} lost"
    );
    assert!(
        starts > 50,
        "the load acknowledged too little to tell: {starts}"
    );
    assert_eq!((lost_starts, lost_signals), (0, 0), "acknowledged and lost");

    // The same check on a disk that keeps nothing it was asked to sync finds the loss.
    let (starts, _, lost_starts, _) = run(true).await;
    println!("lying disk: {starts} starts acknowledged, {lost_starts} lost");
    assert!(
        starts > 50 && lost_starts > 0,
        "the check must see lost data"
    );
}
