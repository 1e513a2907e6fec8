//! A disk that fails while the server compacts its log and archives closed runs. The server
//! runs under an LD_PRELOAD library (`tests/faultydisk/faultydisk.c`) that makes chosen file
//! operations fail while a rules file says so: appends that tear halfway and then fail
//! (ENOSPC), syncs that fail (EIO), cuts that fail too, a compacted log that cannot be
//! reopened. Whatever the server acknowledged must be served while the disk fails, after it
//! heals and after a restart, from files a restart reads without cutting anything.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::DurinServer;
use durin::proto::api::{
    common::v1::{Payload, Payloads, WorkflowExecution, WorkflowType},
    enums::v1::{EventType, WorkflowExecutionStatus},
    history::v1::history_event::Attributes,
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        DescribeWorkflowExecutionRequest, GetWorkflowExecutionHistoryRequest,
        SignalWorkflowExecutionRequest, StartWorkflowExecutionRequest,
        TerminateWorkflowExecutionRequest,
    },
};
use durin::proto::workflowservice::workflow_service_client::WorkflowServiceClient;
use tonic::{Code, Request, transport::Channel};

type Client = WorkflowServiceClient<Channel>;

/// A server whose disk fails as the rules file says.
struct FaultyServer {
    server: DurinServer,
    rules: PathBuf,
    _scratch: tempfile::TempDir,
}

impl FaultyServer {
    async fn start(args: &[&str]) -> Self {
        let scratch = tempfile::tempdir().expect("scratch dir");
        let library = common::build_preload("faultydisk", scratch.path());
        let rules = scratch.path().join("rules");
        std::fs::write(&rules, "").expect("rules");
        let mut subcommand = vec!["dev".to_string()];
        subcommand.extend(args.iter().map(|a| a.to_string()));
        let env = vec![
            ("LD_PRELOAD".to_string(), library.display().to_string()),
            ("FAULTYDISK_RULES".to_string(), rules.display().to_string()),
        ];
        let server = DurinServer::start_with(subcommand, env).await;
        FaultyServer {
            server,
            rules,
            _scratch: scratch,
        }
    }

    /// Makes the disk fail as `rules` say (one `<path pattern> <operation> <error>` a line);
    /// no rules is a healthy disk.
    fn fail(&self, rules: &[&str]) {
        std::fs::write(&self.rules, rules.join("\n")).expect("write rules");
    }

    async fn client(&self) -> Client {
        let channel = Channel::from_shared(format!("http://127.0.0.1:{}", self.server.port()))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
        WorkflowServiceClient::new(channel)
    }

    /// Waits until the server's log says `line`.
    async fn wait_for_log(&self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(self.server.log_path())
            .unwrap_or_default()
            .contains(line)
        {
            assert!(
                Instant::now() < deadline,
                "the server never logged {line:?}\n{}",
                self.server.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn execution(id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: id.into(),
        run_id: String::new(),
    })
}

fn start(id: &str) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: id.into(),
        workflow_type: Some(WorkflowType { name: "W".into() }),
        task_queue: Some(TaskQueue {
            name: "disk-faults".into(),
            ..Default::default()
        }),
        request_id: format!("{id}-start"),
        ..Default::default()
    }
}

/// Starts and terminates workflows `<prefix>-<i>`: closed runs, due for the archive.
async fn close_runs(c: &mut Client, prefix: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..count {
        // Ids of different lengths give records of different lengths.
        let id = format!("{prefix}-{}", "x".repeat(i));
        c.start_workflow_execution(Request::new(start(&id)))
            .await
            .expect("start");
        c.terminate_workflow_execution(Request::new(TerminateWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: execution(&id),
            reason: "closed for the archive".into(),
            ..Default::default()
        }))
        .await
        .expect("terminate");
        ids.push(id);
    }
    ids
}

/// Each run is served as itself: described, terminated, with its whole history.
async fn assert_served(c: &mut Client, ids: &[String]) {
    for id in ids {
        let described = c
            .describe_workflow_execution(Request::new(DescribeWorkflowExecutionRequest {
                namespace: "default".into(),
                execution: execution(id),
            }))
            .await
            .unwrap_or_else(|e| panic!("{id} must be served: {e:?}"))
            .into_inner();
        let info = described.workflow_execution_info.expect("info");
        assert_eq!(
            info.execution.as_ref().expect("execution").workflow_id,
            *id,
            "the run asked for"
        );
        assert_eq!(info.status(), WorkflowExecutionStatus::Terminated, "{id}");
        let events = history(c, id).await;
        assert_eq!(
            events.last().map(|e| e.event_type()),
            Some(EventType::WorkflowExecutionTerminated),
            "{id}'s history"
        );
    }
}

async fn history(c: &mut Client, id: &str) -> Vec<durin::proto::api::history::v1::HistoryEvent> {
    c.get_workflow_execution_history(Request::new(GetWorkflowExecutionHistoryRequest {
        namespace: "default".into(),
        execution: execution(id),
        maximum_page_size: 10_000,
        ..Default::default()
    }))
    .await
    .unwrap_or_else(|e| panic!("history of {id}: {e:?}"))
    .into_inner()
    .history
    .expect("history")
    .events
}

/// Waits until the archive holds `runs` runs (they left memory).
async fn wait_archived(metrics_port: u16, runs: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::metric(metrics_port, "durin_archived_runs") != runs as f64 {
        assert!(
            Instant::now() < deadline,
            "the archive never held {runs} runs"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archiving_on_a_failing_disk_loses_no_run_and_misplaces_none() {
    let metrics = common::free_port().to_string();
    let mut faulty =
        FaultyServer::start(&["--archive-after", "1", "--metrics-port", &metrics]).await;
    let metrics: u16 = metrics.parse().expect("port");
    let mut c = faulty.client().await;
    let mut ids = close_runs(&mut c, "early", 8).await;
    wait_archived(metrics, 8).await;

    // The archive's disk fills: appends tear halfway and fail, and neither a sync nor the
    // cut back to the last good frame succeeds.
    faulty.fail(&[
        "/archive/ write ENOSPC",
        "/archive/ sync EIO",
        "/archive/ truncate EIO",
    ]);
    ids.extend(close_runs(&mut c, "during", 8).await);
    faulty
        .wait_for_log("archiving closed runs failed (disk full?)")
        .await;
    // More runs close while the disk is failing, so the round retried later is not the one
    // that tore: a location counted from a torn tail would name another run's record.
    tokio::time::sleep(Duration::from_secs(2)).await;
    ids.extend(close_runs(&mut c, "late", 8).await);
    assert_served(&mut c, &ids).await;
    assert_eq!(common::metric(metrics, "durin_archived_runs"), 8.0);
    assert!(common::metric(metrics, "durin_archive_write_failures_total") >= 1.0);

    // The disk heals: every run is archived, and served from the archive as itself.
    faulty.fail(&[]);
    wait_archived(metrics, ids.len()).await;
    assert_served(&mut c, &ids).await;

    // A restart reads the archive whole: nothing torn to cut, nothing damaged to refuse.
    faulty.server.restart().await;
    assert!(
        !faulty.server.log_tail(40).contains("cutting a torn tail"),
        "the archive was left with a torn frame:\n{}",
        faulty.server.log_tail(40)
    );
    let mut c = faulty.client().await;
    assert_served(&mut c, &ids).await;
}

/// Signals workflow `target` with the number `n` (its request id makes a retry a no-op).
fn signal(target: &str, n: usize) -> SignalWorkflowExecutionRequest {
    SignalWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: execution(target),
        signal_name: "n".into(),
        input: Some(Payloads {
            payloads: vec![Payload {
                metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
                data: n.to_string().into_bytes(),
                ..Default::default()
            }],
        }),
        request_id: format!("signal-{n}"),
        ..Default::default()
    }
}

/// What the server acknowledged: signal number to the workflow it went to.
type Acked = BTreeMap<usize, String>;

/// Sends signals round-robin to `targets` until `until` holds for the server's log, or one
/// is refused; returns the refused one. Every signal answered OK is acknowledged.
async fn signal_until(
    faulty: &FaultyServer,
    c: &mut Client,
    targets: &[String],
    acked: &mut Acked,
    until: &str,
) -> Option<usize> {
    for _ in 0..3_000 {
        let n = acked.len();
        let target = &targets[n % targets.len()];
        match c
            .signal_workflow_execution(Request::new(signal(target, n)))
            .await
        {
            Ok(_) => {
                acked.insert(n, target.clone());
            }
            Err(e) if e.code() == Code::Unavailable => return Some(n),
            Err(e) => panic!("signal {n}: {e:?}"),
        }
        if n % 50 == 49 && faulty.server.log_tail(20).contains(until) {
            return None;
        }
    }
    panic!(
        "the server never logged {until:?}\n{}",
        faulty.server.log_tail(30)
    );
}

/// Retries a refused signal until the healed disk takes it.
async fn retry_until_acked(c: &mut Client, targets: &[String], acked: &mut Acked, n: usize) {
    let target = &targets[n % targets.len()];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match c
            .signal_workflow_execution(Request::new(signal(target, n)))
            .await
        {
            Ok(_) => break,
            Err(e) if e.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("signal {n} after the disk healed: {e:?}"),
        }
    }
    acked.insert(n, target.clone());
}

/// The signals in the workflows' histories, by number: each must appear once.
async fn signals_in_histories(c: &mut Client, targets: &[String]) -> Acked {
    let mut seen = Acked::new();
    for id in targets {
        for event in history(c, id).await {
            let Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) = event.attributes
            else {
                continue;
            };
            let payload = &a.input.expect("input").payloads[0];
            let n: usize = String::from_utf8_lossy(&payload.data).parse().expect("n");
            assert!(
                seen.insert(n, id.clone()).is_none(),
                "signal {n} delivered twice"
            );
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_on_a_failing_disk_loses_nothing() {
    let faulty = FaultyServer::start(&["--compact-after-records", "200"]).await;
    let mut c = faulty.client().await;
    let mut targets = Vec::new();
    for i in 0..4 {
        let id = format!("signalled-{i}");
        c.start_workflow_execution(Request::new(start(&id)))
            .await
            .expect("start");
        targets.push(id);
    }
    let mut acked = Acked::new();

    // The compacted log cannot be written: the old log stays in use and keeps taking writes.
    faulty.fail(&["durin.log.compacting$ write ENOSPC"]);
    let refused = signal_until(
        &faulty,
        &mut c,
        &targets,
        &mut acked,
        "log compaction failed; keeping the uncompacted log",
    )
    .await;
    assert_eq!(refused, None, "writes go on while a compaction fails");

    // The compacted log is in place but cannot be opened: nothing is acknowledged (the old
    // file is gone from the directory) until it can.
    faulty.fail(&["/durin.log$ open EIO"]);
    let refused = signal_until(&faulty, &mut c, &targets, &mut acked, "never")
        .await
        .expect("a signal refused while the compacted log cannot be opened");
    faulty
        .wait_for_log("the compacted log cannot be opened or synced")
        .await;
    faulty.fail(&[]);
    retry_until_acked(&mut c, &targets, &mut acked, refused).await;

    // Syncs of the log fail (EIO): nothing is acknowledged until one succeeds.
    faulty.fail(&["/durin.log$ sync EIO"]);
    let refused = signal_until(&faulty, &mut c, &targets, &mut acked, "never")
        .await
        .expect("a signal refused while syncs fail");
    faulty.fail(&[]);
    retry_until_acked(&mut c, &targets, &mut acked, refused).await;

    // An append tears halfway and fails, and so does the cut back: the torn batch must not
    // stay in front of the next one.
    faulty.fail(&["/durin.log$ write ENOSPC", "/durin.log$ truncate EIO"]);
    let refused = signal_until(&faulty, &mut c, &targets, &mut acked, "never")
        .await
        .expect("a signal refused on a full disk");
    faulty.fail(&[]);
    retry_until_acked(&mut c, &targets, &mut acked, refused).await;
    assert_eq!(signals_in_histories(&mut c, &targets).await, acked);

    // A restart loads the log whole and has every acknowledged signal, once.
    let mut server = faulty.server;
    server.restart().await;
    assert!(
        !server.log_tail(40).contains("torn"),
        "the log was left torn:\n{}",
        server.log_tail(40)
    );
    let channel = Channel::from_shared(format!("http://127.0.0.1:{}", server.port()))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut c = WorkflowServiceClient::new(channel);
    assert_eq!(signals_in_histories(&mut c, &targets).await, acked);
}
