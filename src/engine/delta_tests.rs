//! A run with a thousand pending activities logs what changed, not all of them at each change
//! (`entry_deltas.rs`), and replay gives the state back whole: after a restart, and after a
//! restart in the middle (whose next record is whole again).

use std::sync::Arc;
use std::time::Duration;

use temporalio_protos::temporal::api::command::v1::{
    Command, ScheduleActivityTaskCommandAttributes, StartTimerCommandAttributes,
    command::Attributes as CommandAttributes,
};
use temporalio_protos::temporal::api::common::v1::{ActivityType, Payload, Payloads, WorkflowType};
use temporalio_protos::temporal::api::enums::v1::CommandType;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1::{
    PollActivityTaskQueueRequest, PollWorkflowTaskQueueRequest,
    RespondWorkflowTaskCompletedRequest, StartWorkflowExecutionRequest,
};

use super::activity::{ActivityRef, AttemptEnd};
use super::clock::dur_from_millis;
use super::{Engine, EngineConfig};
use crate::store::state::MutableState;
use crate::store::wal::Wal;

const ACTIVITIES: usize = 1000;
const TIMERS: usize = 20;

fn queue() -> Option<TaskQueue> {
    Some(TaskQueue {
        name: "tq".into(),
        ..Default::default()
    })
}

async fn open(dir: &std::path::Path) -> Arc<Engine> {
    let config = EngineConfig {
        // Compaction rewrites whole records: keep it out of the measurement.
        compact_min_records: u64::MAX,
        ..EngineConfig::default()
    };
    let engine = Engine::open(Wal::open(dir).unwrap(), config).unwrap();
    engine.ensure_namespace("default").await.unwrap();
    // Activities not yet started are queued again by their timers after a restart (the
    // timer loop does not run here).
    while engine.with_core(|core| core.fire_due_timers()).0 {}
    engine
}

fn schedule(n: usize) -> Command {
    Command {
        command_type: CommandType::ScheduleActivityTask as i32,
        attributes: Some(CommandAttributes::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                activity_id: format!("activity-{n}"),
                activity_type: Some(ActivityType {
                    name: "an-activity-type".into(),
                }),
                task_queue: queue(),
                input: Some(Payloads {
                    payloads: vec![Payload {
                        data: format!("\"the input of activity number {n}\"").into_bytes(),
                        ..Default::default()
                    }],
                }),
                start_to_close_timeout: Some(dur_from_millis(3_600_000)),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn start_timer(n: usize) -> Command {
    Command {
        command_type: CommandType::StartTimer as i32,
        attributes: Some(CommandAttributes::StartTimerCommandAttributes(
            StartTimerCommandAttributes {
                timer_id: format!("timer-{n}"),
                start_to_fire_timeout: Some(dur_from_millis(3_600_000)),
            },
        )),
        ..Default::default()
    }
}

/// The run's state, with timers in a fixed order (replay may list them in another).
fn state(engine: &Engine) -> MutableState {
    let mut ms = engine
        .core
        .lock()
        .runs
        .iter()
        .find(|(k, _)| k.workflow_id == "many")
        .map(|(_, r)| r.ms.clone())
        .unwrap();
    ms.timers.sort_by_key(|t| t.started_event_id);
    ms
}

/// Starts the run and answers its first task with every activity and timer.
async fn start(engine: &Arc<Engine>) {
    engine
        .start_workflow(StartWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_id: "many".into(),
            workflow_type: Some(WorkflowType { name: "wf".into() }),
            task_queue: queue(),
            ..Default::default()
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let poll = PollWorkflowTaskQueueRequest {
        namespace: "default".into(),
        task_queue: queue(),
        ..Default::default()
    };
    let task = engine
        .poll_workflow_task(poll, deadline, false)
        .await
        .unwrap();
    let commands = (0..ACTIVITIES)
        .map(schedule)
        .chain((0..TIMERS).map(start_timer))
        .collect();
    engine
        .complete_workflow_task(RespondWorkflowTaskCompletedRequest {
            namespace: "default".into(),
            task_token: task.task_token,
            commands,
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Starts and completes `count` of the pending activities, one operation each.
async fn complete_activities(engine: &Arc<Engine>, count: usize) {
    for _ in 0..count {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let poll = PollActivityTaskQueueRequest {
            namespace: "default".into(),
            task_queue: queue(),
            identity: "worker".into(),
            ..Default::default()
        };
        let task = engine
            .poll_activity_task(poll, deadline, false)
            .await
            .unwrap();
        assert!(!task.task_token.is_empty(), "an activity task");
        let activity = ActivityRef::Token {
            namespace: "default",
            token: &task.task_token,
        };
        let end = AttemptEnd::Completed {
            result: None,
            identity: "worker".into(),
        };
        engine.end_activity_attempt(activity, end).await.unwrap();
    }
}

fn log_len(dir: &std::path::Path) -> u64 {
    std::fs::metadata(dir.join(crate::store::wal::LOG_FILE))
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_thousand_pending_activities_log_linear_bytes_and_replay_whole() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    start(&engine).await;
    let whole_state = {
        use prost::Message;
        state(&engine).encoded_len() as u64
    };
    assert!(
        whole_state > 100_000,
        "{whole_state} bytes of pending state"
    );

    // Each start and completion writes what changed: two records of a few hundred bytes,
    // however many activities are pending.
    let before = log_len(dir.path());
    complete_activities(&engine, 100).await;
    let first_hundred = log_len(dir.path()) - before;
    assert!(
        first_hundred < 100 * 1_500,
        "{first_hundred} bytes for 100 activities with {whole_state} bytes pending"
    );

    // A restart replays the deltas into the whole state.
    let live = state(&engine);
    drop(engine);
    let engine = open(dir.path()).await;
    assert!(state(&engine) == live, "the replayed state differs");

    // The first record after the restart is whole (nothing is known of the log), the rest
    // are deltas again, and replay is whole again.
    let before = log_len(dir.path());
    complete_activities(&engine, ACTIVITIES - 100).await;
    let rest = log_len(dir.path()) - before;
    assert!(
        rest < whole_state + (ACTIVITIES as u64 - 100) * 1_500,
        "{rest} bytes for the other {} activities",
        ACTIVITIES - 100
    );
    let live = state(&engine);
    assert!(live.activities.is_empty() && live.timers.len() == TIMERS);
    drop(engine);
    let engine = open(dir.path()).await;
    assert!(state(&engine) == live, "the replayed state differs");
}
