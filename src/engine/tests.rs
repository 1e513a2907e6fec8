//! Engine tests on a real log in a temporary directory (the SDK-level behaviour is covered by
//! the integration tests under `tests/`).

use std::sync::Arc;

use temporalio_protos::temporal::api::common::v1::{WorkflowExecution, WorkflowType};
use temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1::{
    DescribeWorkflowExecutionRequest, SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest, TerminateWorkflowExecutionRequest,
};

use super::{ChangeKind, Engine, EngineConfig};
use crate::store::Store;
use crate::store::wal::Wal;

pub(super) fn start_request(id: &str) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: id.into(),
        workflow_type: Some(WorkflowType { name: "wf".into() }),
        task_queue: Some(TaskQueue {
            name: "tq".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn terminate_request(id: &str) -> TerminateWorkflowExecutionRequest {
    TerminateWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: String::new(),
        }),
        reason: "test".into(),
        ..Default::default()
    }
}

async fn open(dir: &std::path::Path) -> (Arc<Engine>, Arc<Wal>) {
    open_with(dir, 1000).await
}

async fn open_with(dir: &std::path::Path, compact_min_records: u64) -> (Arc<Engine>, Arc<Wal>) {
    let wal = Wal::open(dir).unwrap();
    let config = EngineConfig {
        compact_min_records,
        ..EngineConfig::default()
    };
    let engine = Engine::open(wal.clone(), config).unwrap();
    engine.ensure_namespace("default").await.unwrap();
    (engine, wal)
}

#[tokio::test]
async fn subscribers_see_start_task_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _wal) = open(dir.path()).await;
    let mut changes = engine.subscribe();
    let started = engine.start_workflow(start_request("w1")).await.unwrap();
    engine.terminate(terminate_request("w1")).await.unwrap();
    let mut kinds = Vec::new();
    while let Ok(change) = changes.try_recv() {
        assert_eq!(change.key.workflow_id, "w1");
        assert_eq!(change.key.run_id, started.run_id);
        kinds.push(change.kind);
    }
    assert_eq!(
        kinds,
        vec![
            ChangeKind::Started,
            ChangeKind::WorkflowTaskScheduled,
            ChangeKind::Closed {
                status: WorkflowExecutionStatus::Terminated as i32
            },
        ]
    );
}

#[tokio::test]
async fn restart_compacts_the_log_and_keeps_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let count = 300;
    {
        let (engine, _wal) = open_with(dir.path(), u64::MAX).await;
        let mut tasks = Vec::new();
        for i in 0..count {
            let engine = engine.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("w{i}");
                engine.start_workflow(start_request(&id)).await.unwrap();
                for n in 0..3 {
                    let signal = SignalWorkflowExecutionRequest {
                        namespace: "default".into(),
                        workflow_execution: Some(WorkflowExecution {
                            workflow_id: id.clone(),
                            run_id: String::new(),
                        }),
                        signal_name: format!("s{n}"),
                        ..Default::default()
                    };
                    engine.signal(signal).await.unwrap();
                }
                if i % 2 == 0 {
                    engine.terminate(terminate_request(&id)).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    let records_before = Wal::open(dir.path()).unwrap().load().unwrap().len();
    assert!(records_before > 1000, "{records_before} records");
    let (engine, wal) = open(dir.path()).await;
    wal.wait_durable(wal.last_lsn()).await.unwrap();
    let records_after = wal.load().unwrap().len();
    assert_eq!(
        records_after,
        count + 1,
        "one record per run plus the namespace"
    );
    for i in [0, 1, count - 1] {
        let resp = engine
            .describe(DescribeWorkflowExecutionRequest {
                namespace: "default".into(),
                execution: Some(WorkflowExecution {
                    workflow_id: format!("w{i}"),
                    run_id: String::new(),
                }),
            })
            .await
            .unwrap();
        let info = resp.workflow_execution_info.unwrap();
        let expected = if i % 2 == 0 {
            WorkflowExecutionStatus::Terminated
        } else {
            WorkflowExecutionStatus::Running
        };
        assert_eq!(info.status, expected as i32, "w{i}");
        let expected_len = if i % 2 == 0 { 6 } else { 5 };
        assert_eq!(info.history_length, expected_len, "w{i}");
    }
}

#[tokio::test]
async fn closed_runs_are_removed_after_retention_and_stay_removed() {
    let dir = tempfile::tempdir().unwrap();
    let describe = |id: &str| DescribeWorkflowExecutionRequest {
        namespace: "default".into(),
        execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: String::new(),
        }),
    };
    {
        let (engine, _wal) = open(dir.path()).await;
        engine.start_workflow(start_request("old")).await.unwrap();
        engine.terminate(terminate_request("old")).await.unwrap();
        engine.start_workflow(start_request("young")).await.unwrap();
        engine.terminate(terminate_request("young")).await.unwrap();
        // Pretend "old" closed four days ago (retention is three days).
        let key = {
            let mut core = engine.core.lock();
            let key = core.resolve_run("default", "old", "").unwrap();
            core.runs.get_mut(&key).unwrap().ms.close_time =
                Some(super::clock::ts_from_millis(core.now() - 4 * 86_400_000));
            key
        };
        engine
            .transact(|core| {
                core.retention_expired(&key);
                Ok(())
            })
            .await
            .unwrap();
        assert!(matches!(
            engine.describe(describe("old")).await,
            Err(super::Error::NotFound(_))
        ));
        assert!(engine.describe(describe("young")).await.is_ok());
    }
    let (engine, _wal) = open(dir.path()).await;
    assert!(matches!(
        engine.describe(describe("old")).await,
        Err(super::Error::NotFound(_))
    ));
    assert!(engine.describe(describe("young")).await.is_ok());
}

#[tokio::test]
async fn a_running_engine_compacts_its_log_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (engine, wal) = open_with(dir.path(), 200).await;
        engine.start_workflow(start_request("busy")).await.unwrap();
        for n in 0..450 {
            let signal = SignalWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: "busy".into(),
                    run_id: String::new(),
                }),
                signal_name: format!("s{n}"),
                ..Default::default()
            };
            engine.signal(signal).await.unwrap();
        }
        wal.wait_durable(wal.last_lsn()).await.unwrap();
        // Two compactions happened (at 200 and 400 records), so the log holds the snapshot
        // (namespace + run) plus the records since the last one.
        let records = wal.load().unwrap().len();
        assert!(records < 100, "{records} records after online compaction");
    }
    let (engine, _wal) = open_with(dir.path(), 200).await;
    let resp = engine
        .describe(DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: "busy".into(),
                run_id: String::new(),
            }),
        })
        .await
        .unwrap();
    // Started, task scheduled, 450 signals.
    assert_eq!(resp.workflow_execution_info.unwrap().history_length, 452);
}

/// An engine on `dir` that archives closed runs at once.
async fn open_archiving(dir: &std::path::Path) -> Arc<Engine> {
    let wal = Wal::open(dir).unwrap();
    let config = EngineConfig {
        archive_dir: Some(dir.to_path_buf()),
        archive_after: std::time::Duration::ZERO,
        ..EngineConfig::default()
    };
    let engine = Engine::open(wal, config).unwrap();
    engine.ensure_namespace("default").await.unwrap();
    engine
}

#[tokio::test]
async fn a_closed_run_that_still_owes_a_transfer_stays_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_archiving(dir.path()).await;
    engine.start_workflow(start_request("owes")).await.unwrap();
    engine.terminate(terminate_request("owes")).await.unwrap();
    let key = engine
        .core
        .lock()
        .resolve_run("default", "owes", "")
        .unwrap();
    engine.core.lock().push_transfer(
        &key,
        super::state::TransferKind::Cancel(super::state::CancelTransfer {
            namespace: "default".into(),
            workflow_id: "elsewhere".into(),
            ..Default::default()
        }),
    );
    engine.archive_once().await;
    assert!(
        engine.core.lock().runs.contains_key(&key),
        "a run with an unanswered outbox item was archived"
    );
    let id = engine.core.lock().runs.get(&key).unwrap().ms.outbox[0].id;
    engine.core.lock().finish_transfer(
        &super::transfer::Source::Run(key.clone()),
        id,
        super::state::TransferOutcome::default(),
    );
    // Once answered, the run goes at its next turn (a second later).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    engine.archive_once().await;
    let archived = !engine.core.lock().runs.contains_key(&key);
    assert!(archived, "the run left memory once its outbox was empty");
}

#[tokio::test]
async fn archived_runs_expire_a_segment_at_a_time_and_stay_expired() {
    let dir = tempfile::tempdir().unwrap();
    let describe = |id: &str| DescribeWorkflowExecutionRequest {
        namespace: "default".into(),
        execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: String::new(),
        }),
    };
    let segments = |dir: &std::path::Path| {
        crate::store::archive::segment_ids(&dir.join(crate::store::archive::ARCHIVE_DIR)).unwrap()
    };
    {
        let engine = open_archiving(dir.path()).await;
        engine.start_workflow(start_request("old")).await.unwrap();
        engine.terminate(terminate_request("old")).await.unwrap();
        // "old" closed four days ago (retention is three days).
        {
            let mut core = engine.core.lock();
            let key = core.resolve_run("default", "old", "").unwrap();
            core.runs.get_mut(&key).unwrap().ms.close_time =
                Some(super::clock::ts_from_millis(core.now() - 4 * 86_400_000));
        }
        engine.archive_once().await;
        assert!(
            engine.core.lock().runs.len() == 0,
            "the closed run left memory"
        );
        engine.roll_archive_segment();
        engine.start_workflow(start_request("young")).await.unwrap();
        engine.terminate(terminate_request("young")).await.unwrap();
        engine.archive_once().await;
        assert_eq!(segments(dir.path()), [1, 2]);
        // Both are served from the archive.
        assert!(engine.describe(describe("old")).await.is_ok());
        assert!(engine.describe(describe("young")).await.is_ok());
        engine.expire_archive().await;
        assert_eq!(segments(dir.path()), [2], "the expired segment is deleted");
        assert!(matches!(
            engine.describe(describe("old")).await,
            Err(super::Error::NotFound(_))
        ));
        assert!(engine.describe(describe("young")).await.is_ok());
    }
    let engine = open_archiving(dir.path()).await;
    assert!(matches!(
        engine.describe(describe("old")).await,
        Err(super::Error::NotFound(_))
    ));
    assert!(engine.describe(describe("young")).await.is_ok());
}

fn signal_request(id: &str, request_id: &str) -> SignalWorkflowExecutionRequest {
    SignalWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: id.into(),
            run_id: String::new(),
        }),
        signal_name: "s".into(),
        request_id: request_id.into(),
        ..Default::default()
    }
}

async fn history_length(engine: &Engine, id: &str) -> i64 {
    engine
        .describe(DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: id.into(),
                run_id: String::new(),
            }),
        })
        .await
        .unwrap()
        .workflow_execution_info
        .unwrap()
        .history_length
}

#[tokio::test]
async fn a_retried_signal_applies_once_however_many_came_between() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _wal) = open(dir.path()).await;
    engine.start_workflow(start_request("sig")).await.unwrap();
    let before = history_length(&engine, "sig").await;
    for i in 0..150 {
        engine
            .signal(signal_request("sig", &format!("req-{i}")))
            .await
            .unwrap();
    }
    // Every call is retried (as an SDK does after UNAVAILABLE), also after a restart.
    for i in 0..150 {
        engine
            .signal(signal_request("sig", &format!("req-{i}")))
            .await
            .unwrap();
    }
    drop(engine);
    let (engine, _wal) = open(dir.path()).await;
    for i in (0..150).rev() {
        engine
            .signal(signal_request("sig", &format!("req-{i}")))
            .await
            .unwrap();
    }
    assert_eq!(history_length(&engine, "sig").await, before + 150);
}

#[tokio::test]
async fn a_run_accepts_a_bounded_number_of_signals() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _wal) = open(dir.path()).await;
    engine.start_workflow(start_request("spam")).await.unwrap();
    // Sent concurrently, so the log commits them in groups.
    let signals =
        (0..super::limits::MAX_SIGNALS_PER_RUN).map(|_| engine.signal(signal_request("spam", "")));
    for accepted in futures::future::join_all(signals).await {
        accepted.unwrap();
    }
    let refused = engine.signal(signal_request("spam", "")).await.unwrap_err();
    assert!(
        matches!(refused, super::Error::InvalidArgument(ref m) if m.contains("limit for signal")),
        "{refused:?}"
    );
}

/// The operator starts a `Workflow` resource's execution with the resource's UID as request
/// id, and writes the run id to status afterwards. Killed in between, it starts again after
/// the restart: the repeat must answer the run already started — even once that run has
/// closed, left memory for the archive and the server restarted, and even where the id
/// reuse policy would allow a new run.
#[tokio::test]
async fn a_repeated_start_request_answers_the_first_run_even_after_archive_and_restart() {
    use temporalio_protos::temporal::api::enums::v1::WorkflowIdReusePolicy;
    let dir = tempfile::tempdir().unwrap();
    let start = || StartWorkflowExecutionRequest {
        request_id: "resource-uid-1".into(),
        workflow_id_reuse_policy: WorkflowIdReusePolicy::AllowDuplicate as i32,
        ..start_request("from-a-resource")
    };
    let first = {
        let engine = open_archiving(dir.path()).await;
        let first = engine.start_workflow(start()).await.unwrap().run_id;
        engine
            .terminate(terminate_request("from-a-resource"))
            .await
            .unwrap();
        engine.archive_once().await;
        assert_eq!(engine.core.lock().runs.len(), 0, "the run was archived");
        first
    };
    let engine = open_archiving(dir.path()).await;
    let again = engine.start_workflow(start()).await.unwrap();
    assert_eq!(again.run_id, first, "the repeat answers the first run");
    let mut other = start();
    other.request_id = "another-request".into();
    let second = engine.start_workflow(other).await.unwrap().run_id;
    assert_ne!(second, first, "a different request does start a new run");
}

/// The executions (run id, state) in one log record, in order (a batch is one operation).
fn executions(record: &crate::store::LogRecord) -> Vec<super::state::MutableState> {
    use crate::store::log_record::Kind;
    match &record.kind {
        Some(Kind::Execution(e)) => e.state.clone().into_iter().collect(),
        Some(Kind::Batch(b)) => b.records.iter().flat_map(executions).collect(),
        _ => Vec::new(),
    }
}

/// The executions of each log record, each named by its ids even where the record names its
/// run by a handle (as replay fills them in).
fn named_executions(records: &[crate::store::LogRecord]) -> Vec<Vec<super::state::MutableState>> {
    use crate::store::log_record::Kind;
    fn walk(
        record: &crate::store::LogRecord,
        handles: &mut crate::store::RunHandles,
        out: &mut Vec<super::state::MutableState>,
    ) {
        match &record.kind {
            Some(Kind::Execution(e)) => {
                let Some(mut ms) = e.state.clone() else {
                    return;
                };
                handles.name(&mut ms, e.handle).unwrap();
                out.push(ms);
            }
            Some(Kind::Batch(b)) => b.records.iter().for_each(|r| walk(r, handles, out)),
            _ => {}
        }
    }
    let mut handles = crate::store::RunHandles::default();
    records
        .iter()
        .map(|record| {
            let mut out = Vec::new();
            walk(record, &mut handles, &mut out);
            out
        })
        .collect()
}

async fn current_run(engine: &Engine, id: &str) -> String {
    engine
        .describe(DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: id.into(),
                run_id: String::new(),
            }),
        })
        .await
        .unwrap()
        .workflow_execution_info
        .unwrap()
        .execution
        .unwrap()
        .run_id
}

/// One operation commits each run it changed once: a run that continues as new is written
/// once, closed, before the run that continues it — and that run stays current after a
/// restart even when both started within one millisecond and the closed run is written again
/// later.
#[tokio::test]
async fn continue_as_new_writes_each_run_once_and_the_new_run_stays_current() {
    use temporalio_protos::temporal::api::command::v1::{
        Command, ContinueAsNewWorkflowExecutionCommandAttributes, command::Attributes,
    };
    use temporalio_protos::temporal::api::enums::v1::CommandType;
    use temporalio_protos::temporal::api::workflowservice::v1::{
        PollWorkflowTaskQueueRequest, RespondWorkflowTaskCompletedRequest,
    };
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let (engine, _wal) = open(dir.path()).await;
        let first = engine.start_workflow(start_request("can")).await.unwrap();
        let poll = PollWorkflowTaskQueueRequest {
            namespace: "default".into(),
            task_queue: start_request("can").task_queue,
            identity: "test".into(),
            ..Default::default()
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let task = engine
            .poll_workflow_task(poll, deadline, false)
            .await
            .unwrap();
        let continue_as_new = Command {
            command_type: CommandType::ContinueAsNewWorkflowExecution as i32,
            attributes: Some(Attributes::ContinueAsNewWorkflowExecutionCommandAttributes(
                ContinueAsNewWorkflowExecutionCommandAttributes {
                    workflow_type: start_request("can").workflow_type,
                    task_queue: start_request("can").task_queue,
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        engine
            .complete_workflow_task(RespondWorkflowTaskCompletedRequest {
                namespace: "default".into(),
                task_token: task.task_token,
                commands: vec![continue_as_new],
                ..Default::default()
            })
            .await
            .unwrap();
        first.run_id
    };
    let mut records = Wal::open(dir.path()).unwrap().load().unwrap();
    let last = named_executions(&records).pop().unwrap();
    let runs: Vec<&str> = last.iter().map(|ms| ms.run_id.as_str()).collect();
    assert_eq!(
        runs.len(),
        2,
        "the completion writes each run once: {runs:?}"
    );
    assert_eq!(runs[0], first, "the closed run first");
    let second = runs[1].to_string();
    assert_ne!(second, first);
    // Started (with its first task scheduled), task started, task completed.
    assert_eq!(last[0].state_transition_count, 3, "one per operation");

    // Both runs started within one millisecond, and the closed run is written again later
    // (as when an archived run changes).
    // (Read from the run's first record: later ones leave the unchanged start time out.)
    let first_start = records
        .iter()
        .flat_map(executions)
        .find(|ms| ms.run_id == first)
        .and_then(|ms| ms.start_time);
    assert!(first_start.is_some());
    let mut rewritten = Vec::new();
    for record in &mut records {
        set_start_time(record, &second, first_start);
        rewritten.push((None, prost::Message::encode_to_vec(record).into()));
    }
    rewritten.push((
        None,
        prost::Message::encode_to_vec(&executions_record(&last[0])).into(),
    ));
    let tied = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(tied.path()).unwrap();
        let lsn = wal.append(rewritten);
        wal.wait_durable(lsn).await.unwrap();
    }
    let (engine, _wal) = open(tied.path()).await;
    assert_eq!(current_run(&engine, "can").await, second, "after replay");
    drop(engine);
    // A compaction writes the current run last, so the tie survives it too.
    let (engine, wal) = open_with(tied.path(), 1).await;
    wal.wait_durable(wal.last_lsn()).await.unwrap();
    drop(engine);
    let (engine, _wal) = open(tied.path()).await;
    assert_eq!(
        current_run(&engine, "can").await,
        second,
        "after compaction"
    );
}

fn set_start_time(
    record: &mut crate::store::LogRecord,
    run_id: &str,
    start: Option<prost_wkt_types::Timestamp>,
) {
    use crate::store::log_record::Kind;
    match &mut record.kind {
        Some(Kind::Execution(e)) => {
            if let Some(ms) = e.state.as_mut().filter(|ms| ms.run_id == run_id) {
                ms.start_time = start;
            }
        }
        Some(Kind::Batch(b)) => {
            for r in &mut b.records {
                set_start_time(r, run_id, start);
            }
        }
        _ => {}
    }
}

fn executions_record(ms: &super::state::MutableState) -> crate::store::LogRecord {
    crate::store::LogRecord {
        kind: Some(crate::store::log_record::Kind::Execution(
            crate::store::ExecutionRecord {
                state: Some(ms.clone()),
                ..Default::default()
            },
        )),
    }
}

/// Another replica's read of the namespaces can be older than a change made here since: a
/// tombstone read before the name was registered again must not delete the new namespace,
/// while a newer tombstone does.
#[tokio::test]
async fn a_stale_namespace_read_does_not_undo_a_newer_registration() {
    use crate::store::{LogRecord, log_record};
    use temporalio_protos::temporal::api::operatorservice::v1::DeleteNamespaceRequest;
    use temporalio_protos::temporal::api::workflowservice::v1::DescribeNamespaceRequest;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _wal) = open(dir.path()).await;
    let as_record = |ns: super::NamespaceRecord| LogRecord {
        kind: Some(log_record::Kind::Namespace(ns)),
    };
    let live = |engine: &Engine| engine.core.lock().namespaces.get("doomed").cloned();
    engine.ensure_namespace("doomed").await.unwrap();
    let first = live(&engine).unwrap();
    engine
        .delete_namespace(DeleteNamespaceRequest {
            namespace: "doomed".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    engine.ensure_namespace("doomed").await.unwrap();
    let second = live(&engine).unwrap();
    let mut start = start_request("survivor");
    start.namespace = "doomed".into();
    engine.start_workflow(start).await.unwrap();

    let stale = vec![
        as_record(super::namespace_delete::tombstone(first.clone())),
        as_record(first),
    ];
    engine.refresh_namespaces(stale).await.unwrap();
    let described = engine
        .describe_namespace(DescribeNamespaceRequest {
            namespace: "doomed".into(),
            ..Default::default()
        })
        .await
        .expect("the namespace registered again is still there");
    let id =
        |d: &temporalio_protos::temporal::api::workflowservice::v1::DescribeNamespaceResponse| {
            d.namespace_info.as_ref().unwrap().id.clone()
        };
    assert_eq!(id(&described), id(second.namespace.as_ref().unwrap()));
    engine
        .describe(DescribeWorkflowExecutionRequest {
            namespace: "doomed".into(),
            execution: Some(WorkflowExecution {
                workflow_id: "survivor".into(),
                run_id: String::new(),
            }),
        })
        .await
        .expect("the new namespace's run is still there");

    let newer = super::namespace_delete::tombstone(second);
    engine
        .refresh_namespaces(vec![as_record(newer)])
        .await
        .unwrap();
    assert!(live(&engine).is_none(), "a newer tombstone deletes it");
}

/// A run's records after its start leave out the start attributes and memo while they are
/// unchanged, and replay (after a restart, and after a compaction) gives them back whole.
#[tokio::test]
async fn unchanged_start_attributes_are_logged_once_and_replayed_whole() {
    use temporalio_protos::temporal::api::common::v1::{Memo, Payload, Payloads};
    let dir = tempfile::tempdir().unwrap();
    let payload = |text: &str| Payload {
        metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
        data: text.as_bytes().to_vec(),
        ..Default::default()
    };
    let mut start = start_request("kept");
    start.input = Some(Payloads {
        payloads: vec![payload("\"a rather long input that is logged once\"")],
    });
    start.memo = Some(Memo {
        fields: [("owner".to_string(), payload("\"team-a\""))].into(),
    });
    let describe = |engine: Arc<Engine>| async move {
        let info = engine
            .describe(DescribeWorkflowExecutionRequest {
                namespace: "default".into(),
                execution: Some(WorkflowExecution {
                    workflow_id: "kept".into(),
                    run_id: String::new(),
                }),
            })
            .await
            .unwrap();
        let ms = engine
            .core
            .lock()
            .runs
            .iter()
            .next()
            .map(|(_, r)| r.ms.clone())
            .unwrap();
        (info.workflow_execution_info.unwrap().memo, ms.started)
    };
    let before = {
        let (engine, wal) = open(dir.path()).await;
        engine.start_workflow(start.clone()).await.unwrap();
        for n in 0..3 {
            engine
                .signal(signal_request("kept", &format!("s{n}")))
                .await
                .unwrap();
        }
        wal.wait_durable(wal.last_lsn()).await.unwrap();
        describe(engine).await
    };
    assert_eq!(before.0, start.memo);
    let records = Wal::open(dir.path()).unwrap().load().unwrap();
    let states: Vec<_> = records.iter().flat_map(executions).collect();
    assert_eq!(states.len(), 4, "the start and three signals");
    assert!(states[0].started.is_some() && states[0].kept_fields == 0);
    assert_eq!(states[0].workflow_id, "kept");
    for later in &states[1..] {
        assert!(later.started.is_none() && later.memo.is_none(), "{later:?}");
        assert_ne!(later.kept_fields, 0);
        // Named by the handle the first record gave.
        assert!(later.workflow_id.is_empty() && later.run_id.is_empty());
    }
    // A restart replays them whole; so does a compaction of the log.
    let (engine, _wal) = open(dir.path()).await;
    assert_eq!(describe(engine).await, before);
    let (engine, wal) = open_with(dir.path(), 1).await;
    wal.wait_durable(wal.last_lsn()).await.unwrap();
    drop(engine);
    let (engine, _wal) = open(dir.path()).await;
    assert_eq!(describe(engine).await, before);
}

#[tokio::test]
async fn a_clean_stop_leaves_one_record_per_live_object() {
    let dir = tempfile::tempdir().unwrap();
    // Never compacted on its own: only the checkpoint does.
    let (engine, wal) = open_with(dir.path(), u64::MAX).await;
    for id in ["a", "b"] {
        engine.start_workflow(start_request(id)).await.unwrap();
        for n in 0..3 {
            let signal = SignalWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: id.into(),
                    run_id: String::new(),
                }),
                signal_name: format!("s{n}"),
                ..Default::default()
            };
            engine.signal(signal).await.unwrap();
        }
    }
    wal.wait_durable(wal.last_lsn()).await.unwrap();
    assert!(wal.load().unwrap().len() > 3, "superseded records first");

    engine.checkpoint().await;
    assert_eq!(wal.load().unwrap().len(), 3, "the namespace and two runs");
    let records = wal.last_lsn();
    engine.checkpoint().await;
    assert_eq!(
        wal.last_lsn(),
        records,
        "nothing superseded: nothing written"
    );
    drop(engine);
    let (engine, _wal) = open_with(dir.path(), u64::MAX).await;
    let described = engine
        .describe(DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: "b".into(),
                run_id: String::new(),
            }),
        })
        .await
        .unwrap();
    assert_eq!(
        described.workflow_execution_info.unwrap().history_length,
        5,
        "started, task scheduled, three signals"
    );
}
