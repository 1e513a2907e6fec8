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

fn freeze_all(engine: &Engine) {
    let mut core = engine.core.lock();
    core.runs.tick();
    assert!(
        !core.runs.freeze_idle(0, later()),
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
        core.runs.freeze_idle(2, later());
        assert_eq!(core.runs.frozen_count(), 0);
        core.runs.tick();
        core.runs.tick();
        core.runs.freeze_idle(2, later());
        let frozen = |k: &RunKey| core.runs.slot(k).frozen.is_some();
        assert!(frozen(&idle), "idle for two ticks");
        assert!(!frozen(&closed), "closed runs go to the archive instead");
        assert!(!frozen(&waited), "a history long poll waits on it");
    }
    drop(progress);
    freeze_all(&engine);
    assert!(engine.core.lock().runs.slot(&waited).frozen.is_some());
}
