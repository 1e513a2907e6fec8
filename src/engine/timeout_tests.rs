//! Timers, timeouts and retries under a manual clock: the engine is driven by hand, the clock
//! moved by the test, and nothing sleeps.

use std::sync::Arc;
use std::time::Duration;

use temporalio_protos::temporal::api::command::v1::{
    Command, ScheduleActivityTaskCommandAttributes, StartTimerCommandAttributes,
    command::Attributes as CommandAttributes,
};
use temporalio_protos::temporal::api::common::v1::{
    ActivityType, RetryPolicy, WorkflowExecution, WorkflowType,
};
use temporalio_protos::temporal::api::enums::v1::{CommandType, EventType, TimeoutType};
use temporalio_protos::temporal::api::history::v1::{HistoryEvent, history_event::Attributes};
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflowservice::v1::{
    GetWorkflowExecutionHistoryRequest, PollActivityTaskQueueRequest, PollWorkflowTaskQueueRequest,
    RespondWorkflowTaskCompletedRequest, StartWorkflowExecutionRequest,
};

use super::clock::{ManualClock, dur_from_millis, ts_millis};
use super::{Engine, EngineConfig};
use crate::store::wal::Wal;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

struct Harness {
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

fn queue() -> Option<TaskQueue> {
    Some(TaskQueue {
        name: "tq".into(),
        ..Default::default()
    })
}

impl Harness {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let config = EngineConfig {
            clock: clock.clone(),
            ..EngineConfig::default()
        };
        let engine = Engine::open(Wal::open(dir.path()).unwrap(), config).unwrap();
        engine.ensure_namespace("default").await.unwrap();
        Harness {
            engine,
            clock,
            _dir: dir,
        }
    }

    /// Starts workflow `id` and answers its first workflow task with `commands`.
    async fn start_with(&self, id: &str, commands: Vec<Command>) {
        self.engine
            .start_workflow(StartWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_id: id.into(),
                workflow_type: Some(WorkflowType { name: "wf".into() }),
                task_queue: queue(),
                ..Default::default()
            })
            .await
            .unwrap();
        self.complete_workflow_task(commands).await;
    }

    async fn complete_workflow_task(&self, commands: Vec<Command>) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let poll = PollWorkflowTaskQueueRequest {
            namespace: "default".into(),
            task_queue: queue(),
            identity: "test".into(),
            ..Default::default()
        };
        let task = self
            .engine
            .poll_workflow_task(poll, deadline, false)
            .await
            .unwrap();
        assert!(!task.task_token.is_empty(), "a workflow task");
        self.engine
            .complete_workflow_task(RespondWorkflowTaskCompletedRequest {
                namespace: "default".into(),
                task_token: task.task_token,
                commands,
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// Moves the clock and fires whatever timers are due by it.
    fn advance(&self, by: Duration) {
        self.clock.advance(by);
        while self.engine.with_core(|core| core.fire_due_timers()).0 {}
    }

    async fn history(&self, id: &str) -> Vec<HistoryEvent> {
        self.engine
            .get_history(GetWorkflowExecutionHistoryRequest {
                namespace: "default".into(),
                execution: Some(WorkflowExecution {
                    workflow_id: id.into(),
                    run_id: String::new(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .history
            .unwrap()
            .events
    }

    async fn last_event(&self, id: &str) -> (EventType, i64) {
        let events = self.history(id).await;
        let last = events.last().unwrap();
        (last.event_type(), ts_millis(&last.event_time.unwrap()))
    }
}

fn start_timer(seconds: i64) -> Command {
    Command {
        command_type: CommandType::StartTimer as i32,
        attributes: Some(CommandAttributes::StartTimerCommandAttributes(
            StartTimerCommandAttributes {
                timer_id: "t".into(),
                start_to_fire_timeout: Some(dur_from_millis(seconds * 1000)),
            },
        )),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_timer_fires_when_the_clock_reaches_it_and_not_before() {
    let h = Harness::new().await;
    h.start_with("timer", vec![start_timer(30)]).await;
    assert_eq!(
        h.last_event("timer").await,
        (EventType::TimerStarted, T0),
        "every event of the operation carries the clock's time"
    );
    h.advance(Duration::from_millis(29_999));
    assert_eq!(h.last_event("timer").await.0, EventType::TimerStarted);
    h.advance(Duration::from_millis(1));
    let events = h.history("timer").await;
    let fired = &events[events.len() - 2];
    assert_eq!(fired.event_type(), EventType::TimerFired);
    assert_eq!(ts_millis(&fired.event_time.unwrap()), T0 + 30_000);
    assert_eq!(
        h.last_event("timer").await,
        (EventType::WorkflowTaskScheduled, T0 + 30_000)
    );
}

#[tokio::test]
async fn an_activity_that_times_out_is_retried_after_its_backoff_then_fails_the_attempts() {
    let h = Harness::new().await;
    let schedule = Command {
        command_type: CommandType::ScheduleActivityTask as i32,
        attributes: Some(CommandAttributes::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                activity_id: "a".into(),
                activity_type: Some(ActivityType { name: "act".into() }),
                task_queue: queue(),
                start_to_close_timeout: Some(dur_from_millis(5_000)),
                retry_policy: Some(RetryPolicy {
                    initial_interval: Some(dur_from_millis(2_000)),
                    backoff_coefficient: 2.0,
                    maximum_attempts: 2,
                    ..Default::default()
                }),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    h.start_with("act", vec![schedule]).await;
    let poll = || async {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        h.engine
            .poll_activity_task(
                PollActivityTaskQueueRequest {
                    namespace: "default".into(),
                    task_queue: queue(),
                    identity: "worker".into(),
                    ..Default::default()
                },
                deadline,
                false,
            )
            .await
            .unwrap()
    };
    assert_eq!(poll().await.attempt, 1);
    // Attempt 1 times out after 5 s; attempt 2 waits out its 2 s backoff.
    h.advance(Duration::from_millis(5_000));
    assert!(
        poll().await.task_token.is_empty(),
        "no retry before its backoff"
    );
    h.advance(Duration::from_millis(2_000));
    assert_eq!(poll().await.attempt, 2);
    // Attempt 2 is the last: its timeout is recorded and the workflow told.
    h.advance(Duration::from_millis(4_999));
    assert_eq!(
        h.last_event("act").await.0,
        EventType::ActivityTaskScheduled
    );
    h.advance(Duration::from_millis(1));
    let events = h.history("act").await;
    let timed_out = events
        .iter()
        .find(|e| e.event_type() == EventType::ActivityTaskTimedOut)
        .expect("the activity timed out");
    let Some(Attributes::ActivityTaskTimedOutEventAttributes(a)) = &timed_out.attributes else {
        panic!("attributes");
    };
    let failure = a.failure.as_ref().unwrap();
    let Some(
        temporalio_protos::temporal::api::failure::v1::failure::FailureInfo::TimeoutFailureInfo(
            info,
        ),
    ) = &failure.failure_info
    else {
        panic!("a timeout failure: {failure:?}");
    };
    assert_eq!(info.timeout_type(), TimeoutType::StartToClose);
    assert_eq!(
        ts_millis(&timed_out.event_time.unwrap()),
        T0 + 12_000,
        "5 s, 2 s backoff, 5 s"
    );
    assert_eq!(
        h.last_event("act").await.0,
        EventType::WorkflowTaskScheduled
    );
}

/// A worker too slow for the workflow's task timeout (a cold cache on every attempt) gets a
/// growing allowance from the fourth attempt on, so the run makes progress at last.
#[tokio::test]
async fn a_workflow_task_that_keeps_timing_out_gets_more_time_from_the_fourth_attempt() {
    let h = Harness::new().await;
    h.engine
        .start_workflow(StartWorkflowExecutionRequest {
            namespace: "default".into(),
            workflow_id: "slow".into(),
            workflow_type: Some(WorkflowType { name: "wf".into() }),
            task_queue: queue(),
            workflow_task_timeout: Some(dur_from_millis(1_000)),
            ..Default::default()
        })
        .await
        .unwrap();
    let poll = || async {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        let poll = PollWorkflowTaskQueueRequest {
            namespace: "default".into(),
            task_queue: queue(),
            identity: "slow worker".into(),
            ..Default::default()
        };
        h.engine
            .poll_workflow_task(poll, deadline, false)
            .await
            .unwrap()
    };
    for attempt in 1..=3 {
        assert_eq!(poll().await.attempt, attempt);
        h.advance(Duration::from_millis(1_000));
    }
    let fourth = poll().await;
    assert_eq!(fourth.attempt, 4);
    h.advance(Duration::from_millis(3_000));
    h.engine
        .complete_workflow_task(RespondWorkflowTaskCompletedRequest {
            namespace: "default".into(),
            task_token: fourth.task_token,
            commands: vec![start_timer(60)],
            ..Default::default()
        })
        .await
        .expect("the fourth attempt has more than the 1 s task timeout");
    let events = h.history("slow").await;
    let scheduled: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::WorkflowTaskScheduledEventAttributes(a)) => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(
        scheduled.len(),
        2,
        "attempt 1, then the completed attempt 4"
    );
    assert_eq!(scheduled[1].attempt, 4);
    let timeout = super::clock::dur_millis(&scheduled[1].start_to_close_timeout);
    assert!((5_000..=6_000).contains(&timeout), "1 s + 4-5 s: {timeout}");
}
