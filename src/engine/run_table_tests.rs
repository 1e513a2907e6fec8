//! Freezing idle runs: nothing a run holds is lost or changed by freezing and thawing it, in
//! memory, in the compacted log and after a restart; runs in use or waited on stay decoded.

use std::time::{Duration, Instant};

use temporalio_protos::temporal::api::common::v1::{Payload, Payloads, WorkflowExecution};
use temporalio_protos::temporal::api::workflowservice::v1::{
    DescribeWorkflowExecutionRequest, SignalWorkflowExecutionRequest,
    StartWorkflowExecutionRequest, TerminateWorkflowExecutionRequest,
};

use super::{RunTable, Slot};
use crate::engine::{Engine, EngineConfig, RunKey};
use crate::store::wal::Wal;

impl RunTable {
    /// Runs held frozen (thawed for reading or not).
    fn frozen_count(&self) -> usize {
        self.slots.values().filter(|s| s.frozen.is_some()).count()
    }

    /// Runs held decoded.
    fn live_count(&self) -> usize {
        self.slots
            .values()
            .filter(|s| s.live.get().is_some())
            .count()
    }

    fn slot(&self, key: &RunKey) -> &Slot {
        &self.slots[key]
    }

    /// The record compaction writes for the run, unpacked.
    fn compaction_record(&self, key: &RunKey) -> Option<Vec<u8>> {
        let slot = self.slots.get(key)?;
        Some(match (&slot.frozen, slot.live.get()) {
            (Some(frozen), _) => frozen.record().into_owned(),
            (None, Some(run)) => super::compaction_record(run),
            (None, None) => return None,
        })
    }
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

async fn open(dir: &std::path::Path) -> std::sync::Arc<Engine> {
    let config = EngineConfig {
        compact_min_records: u64::MAX,
        ..EngineConfig::default()
    };
    let engine = Engine::open(Wal::open(dir).unwrap(), config).unwrap();
    engine.ensure_namespace("default").await.unwrap();
    engine
}

fn execution(id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: id.into(),
        run_id: String::new(),
    })
}

async fn start(engine: &Engine, id: &str) -> RunKey {
    let request = StartWorkflowExecutionRequest {
        input: Some(Payloads {
            payloads: vec![Payload {
                data: b"\"hello\"".to_vec(),
                ..Default::default()
            }],
        }),
        ..crate::engine::tests::start_request(id)
    };
    let run_id = engine.start_workflow(request).await.unwrap().run_id;
    RunKey {
        namespace: "default".into(),
        workflow_id: id.into(),
        run_id,
    }
}

async fn signal(engine: &Engine, id: &str, name: &str) {
    let request = SignalWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: execution(id),
        signal_name: name.into(),
        request_id: format!("{id}-{name}"),
        ..Default::default()
    };
    engine.signal(request).await.unwrap();
}

async fn history_length(engine: &Engine, id: &str) -> i64 {
    let request = DescribeWorkflowExecutionRequest {
        namespace: "default".into(),
        execution: execution(id),
    };
    let described = engine.describe(request).await.unwrap();
    described.workflow_execution_info.unwrap().history_length
}

/// An engine with `n` runs started (their first workflow tasks queued, nobody polls) and
/// frozen.
async fn open_with_frozen_runs(dir: &std::path::Path, n: usize) -> std::sync::Arc<Engine> {
    let engine = open(dir).await;
    for i in 0..n {
        start(&engine, &format!("run-{i}")).await;
    }
    freeze_all(&engine);
    engine
}

fn freeze_all(engine: &Engine) {
    let mut core = engine.core.lock();
    core.runs.tick();
    assert!(
        !core.runs.freeze_idle(0, Some(later())),
        "one sweep took them all"
    );
}

#[tokio::test]
async fn a_frozen_run_thaws_as_it_was_and_is_logged_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let a = start(&engine, "a").await;
    let b = start(&engine, "b").await;
    signal(&engine, "a", "one").await;
    signal(&engine, "a", "two").await;
    let before = {
        let core = engine.core.lock();
        [&a, &b].map(|k| {
            let run = core.runs.get(k).unwrap();
            (run.ms.clone(), core.runs.compaction_record(k).unwrap())
        })
    };

    freeze_all(&engine);
    {
        let core = engine.core.lock();
        assert_eq!((core.runs.frozen_count(), core.runs.live_count()), (2, 0));
        for (k, (ms, record)) in [&a, &b].into_iter().zip(&before) {
            assert_eq!(&core.runs.compaction_record(k).unwrap(), record, "{k:?}");
            assert_eq!(&core.runs.get(k).unwrap().ms, ms, "{k:?}");
        }
        // Read, not changed: both forms are kept.
        assert_eq!((core.runs.frozen_count(), core.runs.live_count()), (2, 2));
    }
    {
        // Taken to be changed: the thawed run alone logs the same record.
        let mut core = engine.core.lock();
        for (k, (_, record)) in [&a, &b].into_iter().zip(&before) {
            assert!(core.runs.get_mut(k).is_some());
            assert_eq!(&core.runs.compaction_record(k).unwrap(), record, "{k:?}");
        }
        assert_eq!((core.runs.frozen_count(), core.runs.live_count()), (0, 2));
    }
    assert_eq!(history_length(&engine, "a").await, 4);

    // The next sweep drops what was only read; a change drops the frozen form.
    freeze_all(&engine);
    assert_eq!(engine.core.lock().runs.live_count(), 0);
    signal(&engine, "b", "three").await;
    {
        let core = engine.core.lock();
        assert!(
            core.runs.slot(&b).frozen.is_none(),
            "changed: no longer frozen"
        );
        assert!(core.runs.slot(&a).live.get().is_none(), "a stays frozen");
    }
    freeze_all(&engine);
    assert_eq!(engine.core.lock().runs.frozen_count(), 2);
    assert_eq!(history_length(&engine, "b").await, 3);

    // Compacted while frozen, then restarted: every event is there.
    engine.core.lock().compact_now();
    let wal_lsn = engine.store.last_lsn();
    engine.store.wait_durable(wal_lsn).await.unwrap();
    drop(engine);
    let engine = open(dir.path()).await;
    assert_eq!(history_length(&engine, "a").await, 4);
    assert_eq!(history_length(&engine, "b").await, 3);
    signal(&engine, "a", "four").await;
    assert_eq!(history_length(&engine, "a").await, 5);
    let core = engine.core.lock();
    assert_eq!(core.runs.get(&b).unwrap().ms, {
        let mut ms = before[1].0.clone();
        ms.next_event_id += 1;
        ms.signals_received += 1;
        ms.signal_request_ids.push("b-three".into());
        ms.history_size_bytes = core.runs.get(&b).unwrap().ms.history_size_bytes;
        ms.state_transition_count = core.runs.get(&b).unwrap().ms.state_transition_count;
        ms
    });
}

#[tokio::test]
async fn runs_in_use_closed_or_waited_on_stay_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let waited = start(&engine, "waited").await;
    let closed = start(&engine, "closed").await;
    let idle = start(&engine, "idle").await;
    engine
        .terminate(TerminateWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_execution: execution("closed"),
            reason: "test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let progress = engine
        .core
        .lock()
        .runs
        .get(&waited)
        .unwrap()
        .subscribe_progress();

    // Used within the last two ticks: not yet.
    {
        let mut core = engine.core.lock();
        core.runs.tick();
        core.runs.freeze_idle(2, Some(later()));
        assert_eq!(core.runs.frozen_count(), 0);
        core.runs.tick();
        core.runs.tick();
        core.runs.freeze_idle(2, Some(later()));
        let frozen = |k: &RunKey| core.runs.slot(k).frozen.is_some();
        assert!(frozen(&idle), "idle for two ticks");
        assert!(!frozen(&closed), "closed runs go to the archive instead");
        assert!(!frozen(&waited), "a history long poll waits on it");
    }
    drop(progress);
    freeze_all(&engine);
    assert!(engine.core.lock().runs.slot(&waited).frozen.is_some());
}

#[tokio::test]
async fn runs_replayed_at_start_freeze_as_the_log_goes_and_are_rearmed_frozen() {
    use crate::engine::log::{REPLAY_IDLE_TICKS, REPLAY_TICK_RECORDS};
    use crate::store::Store;
    use temporalio_protos::temporal::api::workflowservice::v1::PollWorkflowTaskQueueRequest;

    let dir = tempfile::tempdir().unwrap();
    let mut keys = Vec::new();
    {
        let engine = open(dir.path()).await;
        for i in 0..8 {
            keys.push(start(&engine, &format!("r{i}")).await);
        }
        let lsn = engine.store.last_lsn();
        engine.store.wait_durable(lsn).await.unwrap();
    }
    let records = Wal::open(dir.path()).unwrap().load().unwrap();
    assert!(records.len() >= keys.len());

    // Replayed as at start-up, as if a tick's worth of other records lay between any two.
    let fresh = tempfile::tempdir().unwrap();
    let engine = open(fresh.path()).await;
    {
        let mut core = engine.core.lock();
        for (record, n) in records.into_iter().zip(1..) {
            core.replay_loaded(record, n * REPLAY_TICK_RECORDS, true)
                .unwrap();
        }
        core.end_replay();
        let frozen = |core: &super::super::Core| {
            keys.iter()
                .map(|k| core.runs.slot(k).live.get().is_none())
                .collect::<Vec<_>>()
        };
        let before = frozen(&core);
        assert!(before[0], "the first run's record lies far behind");
        assert!(!before[7], "the last run's record is recent");
        assert!(
            before.iter().filter(|f| **f).count() >= keys.len() - REPLAY_IDLE_TICKS as usize,
            "{before:?}"
        );
        core.rearm_where(|_| true);
        assert_eq!(frozen(&core), before, "re-arming thaws nothing");
    }

    // Every run's workflow task was queued again, frozen or not.
    let mut polled = Vec::new();
    for _ in 0..keys.len() {
        let poll = PollWorkflowTaskQueueRequest {
            namespace: "default".into(),
            task_queue: crate::engine::tests::start_request("r0").task_queue,
            identity: "test".into(),
            ..Default::default()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let task = engine
            .poll_workflow_task(poll, deadline, false)
            .await
            .unwrap();
        polled.push(task.workflow_execution.unwrap().workflow_id);
    }
    polled.sort();
    let mut expected: Vec<String> = keys.iter().map(|k| k.workflow_id.clone()).collect();
    expected.sort();
    assert_eq!(polled, expected);
}

#[tokio::test]
async fn a_compaction_spread_over_operations_keeps_every_run_as_it_began_and_what_came_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    let engine = open(dir.path()).await;
    for i in 0..5 {
        let id = format!("frozen-{i}");
        start(&engine, &id).await;
        for n in 0..20 {
            signal(&engine, &id, &format!("before-{n}")).await;
        }
        ids.push(id);
    }
    freeze_all(&engine);
    // More live runs than one operation takes, so that the compaction spans several.
    for i in 0..1000 {
        let id = format!("live-{i}");
        start(&engine, &id).await;
        ids.push(id);
    }
    let still_owed = |engine: &Engine, id: &str| {
        let core = engine.core.lock();
        let mut keys = core.runs.keys();
        keys.any(|k| k.workflow_id == id && core.runs.owes(k))
    };
    engine.core.lock().begin_compaction();
    let owed: Vec<String> = (ids.iter())
        .filter(|id| still_owed(&engine, id))
        .cloned()
        .collect();
    assert_eq!(
        owed, ids,
        "every run is owed, frozen or live, and none taken yet"
    );

    // Changes while it is under way: a frozen run, runs still owed, a closed run, a new run.
    assert!(still_owed(&engine, "frozen-0"));
    signal(&engine, "frozen-0", "during").await;
    assert!(!still_owed(&engine, "frozen-0"), "taken before it changed");
    let mut changed: Vec<String> = Vec::new();
    for _ in 0..3 {
        let id = (owed.iter())
            .find(|id| !changed.contains(id) && still_owed(&engine, id))
            .unwrap();
        signal(&engine, id, "during").await;
        changed.push(id.clone());
    }
    let closed = (owed.iter())
        .find(|id| !changed.contains(id) && still_owed(&engine, id))
        .unwrap();
    let terminate = TerminateWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_execution: execution(closed),
        ..Default::default()
    };
    engine.terminate(terminate).await.unwrap();
    start(&engine, "new").await;
    ids.push("new".into());
    assert!(engine.core.lock().compaction.is_some(), "still under way");
    while engine.core.lock().compaction_slice() {}
    signal(&engine, &changed[0], "after").await;

    let lengths = histories(&engine, &ids).await;
    assert_eq!(
        lengths[0],
        (23, 23),
        "started, task scheduled, 20 signals before, one during"
    );
    engine
        .store
        .wait_durable(engine.store.last_lsn())
        .await
        .unwrap();
    let records = engine.store.load().unwrap().len();
    // The namespace and every run once, then the operations since the compaction began.
    assert!(
        records <= 1 + ids.len() + 8,
        "{records} records for {} runs",
        ids.len()
    );
    drop(engine);

    let engine = open(dir.path()).await;
    let replayed = histories(&engine, &ids).await;
    let differ: Vec<_> = (ids.iter().zip(lengths.iter().zip(&replayed)))
        .filter(|(_, (before, after))| before != after)
        .collect();
    assert!(
        differ.is_empty(),
        "(described, held) before and after: {differ:?}"
    );
}

#[tokio::test]
async fn runs_moved_behind_the_capture_walk_are_still_taken_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open_with_frozen_runs(dir.path(), 200).await;
    let mut core = engine.core.lock();
    let runs = core.runs.len();
    core.runs.begin_capture(1);
    assert!(!core.runs.capture_owed(100), "the walk is under way");
    // Removing a slot the walk passed moves the last one, still owed, into its place.
    let (passed, _) = core.runs.slots.get_index(10).unwrap();
    let (last, _) = core.runs.slots.last().unwrap();
    let (passed, last) = (passed.clone(), last.clone());
    assert!(core.runs.owes(&last));
    assert!(core.runs.remove(&passed));
    assert!(!core.runs.owes(&last), "taken before it moved");
    // Dropping a slot the walk passed by a filter shifts the ones after it behind the cursor.
    let (dropped, _) = core.runs.slots.get_index(50).unwrap();
    let dropped = dropped.clone();
    core.runs.retain_keys(|key| *key != dropped);
    let taken = core.runs.end_capture();
    assert_eq!(
        taken.open.len(),
        runs,
        "every run there was at the start, once"
    );
    assert!(taken.closed.is_empty());
}

#[tokio::test]
async fn a_backlog_sweep_over_frozen_runs_thaws_none() {
    let dir = tempfile::tempdir().unwrap();
    // Nobody polls: each run's first workflow task waits in the queue's backlog, swept
    // once at 1,024 tasks and next at twice what was left.
    let engine = open_with_frozen_runs(dir.path(), 2048).await;
    assert_eq!(engine.core.lock().runs.live_count(), 0);
    // The backlog has doubled since: this task's push sweeps it.
    start(&engine, "one-more").await;
    let core = engine.core.lock();
    assert_eq!(core.runs.live_count(), 1, "only the new run is decoded");
    assert_eq!(core.runs.frozen_count(), 2048);
}

/// Each workflow's history length as its state counts it, and its events as held.
async fn histories(engine: &Engine, ids: &[String]) -> Vec<(i64, usize)> {
    let mut lengths = Vec::new();
    for id in ids {
        let described = history_length(engine, id).await;
        let core = engine.core.lock();
        let key = core
            .runs
            .keys()
            .find(|k| k.workflow_id == *id)
            .unwrap()
            .clone();
        lengths.push((described, core.runs.get(&key).unwrap().history.len()));
    }
    lengths
}
