//! Table tests of the workflow commands: a run and a task's commands in, the staged events,
//! effects and outcome (or the task's failure cause) out. No server, no clock, no sleeps.

use std::collections::BTreeMap;

use temporalio_protos::temporal::api::command::v1::{
    CancelTimerCommandAttributes, Command, CompleteWorkflowExecutionCommandAttributes,
    ContinueAsNewWorkflowExecutionCommandAttributes, FailWorkflowExecutionCommandAttributes,
    RecordMarkerCommandAttributes, RequestCancelActivityTaskCommandAttributes,
    ScheduleActivityTaskCommandAttributes, SignalExternalWorkflowExecutionCommandAttributes,
    StartChildWorkflowExecutionCommandAttributes, StartTimerCommandAttributes,
    UpsertWorkflowSearchAttributesCommandAttributes, command::Attributes as CA,
};
use temporalio_protos::temporal::api::common::v1::{
    ActivityType, Payload, SearchAttributes, WorkflowExecution, WorkflowType,
};
use temporalio_protos::temporal::api::enums::v1::{
    EventType as E, IndexedValueType, WorkflowExecutionStatus as S, WorkflowTaskFailedCause as C,
};
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::history::v1::WorkflowExecutionStartedEventAttributes;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;

use super::{Effect, TaskContext, apply};
use crate::engine::clock::{dur_from_millis, ts_millis};
use crate::engine::state::{ActivityInfo, MutableState, TimerInfo};
use crate::engine::{Run, RunKey};

const NOW: i64 = 1_767_225_600_000;
const WTC: i64 = 7;

fn queue() -> Option<TaskQueue> {
    Some(TaskQueue {
        name: "q".into(),
        ..Default::default()
    })
}

/// A running run whose last event is its workflow task's WorkflowTaskCompleted (id 7).
fn running() -> Run {
    Run::new(MutableState {
        namespace: "ns".into(),
        workflow_id: "wf".into(),
        run_id: "r1".into(),
        status: S::Running as i32,
        next_event_id: WTC + 1,
        started: Some(Box::new(WorkflowExecutionStartedEventAttributes {
            workflow_type: Some(WorkflowType { name: "W".into() }),
            task_queue: queue(),
            ..Default::default()
        })),
        ..Default::default()
    })
}

fn with_timer(mut run: Run) -> Run {
    run.ms.insert_timer(TimerInfo {
        timer_id: "t".into(),
        started_event_id: 5,
        ..Default::default()
    });
    run
}

fn with_unstarted_activity(mut run: Run) -> Run {
    run.ms.activities.insert(
        5,
        ActivityInfo {
            activity_id: "a".into(),
            scheduled_event_id: 5,
            ..Default::default()
        },
    );
    run
}

fn command(attributes: CA) -> Command {
    Command {
        attributes: Some(attributes),
        ..Default::default()
    }
}

fn start_timer(id: &str, ms: i64) -> Command {
    command(CA::StartTimerCommandAttributes(
        StartTimerCommandAttributes {
            timer_id: id.into(),
            start_to_fire_timeout: Some(dur_from_millis(ms)),
        },
    ))
}

fn schedule_activity(id: &str) -> Command {
    command(CA::ScheduleActivityTaskCommandAttributes(
        ScheduleActivityTaskCommandAttributes {
            activity_id: id.into(),
            activity_type: Some(ActivityType { name: "act".into() }),
            task_queue: queue(),
            start_to_close_timeout: Some(dur_from_millis(10_000)),
            ..Default::default()
        },
    ))
}

fn complete() -> Command {
    command(CA::CompleteWorkflowExecutionCommandAttributes(
        CompleteWorkflowExecutionCommandAttributes::default(),
    ))
}

fn upsert(name: &str) -> Command {
    let payload = Payload {
        metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
        data: b"\"blue\"".to_vec(),
        ..Default::default()
    };
    command(CA::UpsertWorkflowSearchAttributesCommandAttributes(
        UpsertWorkflowSearchAttributesCommandAttributes {
            search_attributes: Some(SearchAttributes {
                indexed_fields: [(name.to_string(), payload)].into(),
            }),
        },
    ))
}

/// What applying a task's commands gave.
#[derive(Debug, PartialEq)]
struct Applied {
    events: Vec<E>,
    effects: Vec<&'static str>,
    closed: Option<S>,
    continued: bool,
    new_workflow_task: bool,
}

fn effect_name(e: &Effect) -> &'static str {
    match e {
        Effect::Task(..) => "task",
        Effect::EagerActivity(..) => "eager activity",
        Effect::Timer(..) => "timer",
        Effect::StartChild(..) => "start child",
        Effect::SignalExternal(..) => "signal external",
        Effect::CancelExternal(..) => "cancel external",
        Effect::NexusOperation(..) => "nexus operation",
        Effect::NexusCancel(..) => "nexus cancel",
    }
}

fn run_task(run: &mut Run, commands: &[Command]) -> Result<Applied, C> {
    let key = RunKey {
        namespace: "ns".into(),
        workflow_id: "wf".into(),
        run_id: "r1".into(),
    };
    let custom = BTreeMap::from([(
        "CustomKeywordField".to_string(),
        IndexedValueType::Keyword as i32,
    )]);
    let context = TaskContext {
        key: &key,
        custom_search_attributes: &custom,
        nexus_endpoints: &BTreeMap::new(),
        wtc_id: WTC,
        now: NOW,
    };
    let mut effects = Vec::new();
    let outcome = apply(run, context, commands, &[], &mut effects).map_err(|e| e.cause)?;
    for event in &run.staged {
        assert_eq!(
            ts_millis(&event.event_time.unwrap()),
            NOW,
            "the task's time"
        );
    }
    Ok(Applied {
        events: run.staged.iter().map(|e| e.event_type()).collect(),
        effects: effects.iter().map(effect_name).collect(),
        closed: outcome.closed,
        continued: outcome.continuation.is_some(),
        new_workflow_task: outcome.new_workflow_task,
    })
}

fn accepted(events: &[E], effects: &[&'static str]) -> Result<Applied, C> {
    Ok(Applied {
        events: events.to_vec(),
        effects: effects.to_vec(),
        closed: None,
        continued: false,
        new_workflow_task: false,
    })
}

fn closed(event: E, status: S, continued: bool) -> Result<Applied, C> {
    Ok(Applied {
        events: vec![event],
        effects: Vec::new(),
        closed: Some(status),
        continued,
        new_workflow_task: false,
    })
}

/// A case: its name, the run before the task, the task's commands, what applying them gives.
type Case = (&'static str, fn() -> Run, Vec<Command>, Result<Applied, C>);

#[test]
fn each_command_stages_its_events_and_effects_or_fails_the_task() {
    let cases: Vec<Case> = vec![
        (
            "start a timer",
            running,
            vec![start_timer("t", 5_000)],
            accepted(&[E::TimerStarted], &["timer"]),
        ),
        (
            "a timer id in use",
            || with_timer(running()),
            vec![start_timer("t", 5_000)],
            Err(C::StartTimerDuplicateId),
        ),
        (
            "a timer that fires at once",
            running,
            vec![start_timer("t", 0)],
            accepted(&[E::TimerStarted], &["timer"]),
        ),
        (
            "a timer due in the past",
            running,
            vec![start_timer("t", -1_000)],
            Err(C::BadStartTimerAttributes),
        ),
        (
            "cancel a pending timer",
            || with_timer(running()),
            vec![command(CA::CancelTimerCommandAttributes(
                CancelTimerCommandAttributes {
                    timer_id: "t".into(),
                },
            ))],
            accepted(&[E::TimerCanceled], &[]),
        ),
        (
            "cancel an unknown timer",
            running,
            vec![command(CA::CancelTimerCommandAttributes(
                CancelTimerCommandAttributes {
                    timer_id: "nope".into(),
                },
            ))],
            Err(C::BadCancelTimerAttributes),
        ),
        (
            "schedule an activity",
            running,
            vec![schedule_activity("a")],
            accepted(&[E::ActivityTaskScheduled], &["task"]),
        ),
        (
            "an activity without an id",
            running,
            vec![schedule_activity("")],
            Err(C::BadScheduleActivityAttributes),
        ),
        (
            "cancel an activity not started yet",
            || with_unstarted_activity(running()),
            vec![command(CA::RequestCancelActivityTaskCommandAttributes(
                RequestCancelActivityTaskCommandAttributes {
                    scheduled_event_id: 5,
                },
            ))],
            Ok(Applied {
                events: vec![E::ActivityTaskCancelRequested, E::ActivityTaskCanceled],
                effects: Vec::new(),
                closed: None,
                continued: false,
                new_workflow_task: true,
            }),
        ),
        (
            "complete",
            running,
            vec![complete()],
            closed(E::WorkflowExecutionCompleted, S::Completed, false),
        ),
        (
            "a command after the close",
            running,
            vec![complete(), start_timer("t", 1_000)],
            Err(C::UnhandledCommand),
        ),
        (
            "fail without a retry policy",
            running,
            vec![command(CA::FailWorkflowExecutionCommandAttributes(
                FailWorkflowExecutionCommandAttributes {
                    failure: Some(Failure {
                        message: "boom".into(),
                        ..Default::default()
                    }),
                },
            ))],
            closed(E::WorkflowExecutionFailed, S::Failed, false),
        ),
        (
            "continue as new",
            running,
            vec![command(
                CA::ContinueAsNewWorkflowExecutionCommandAttributes(
                    ContinueAsNewWorkflowExecutionCommandAttributes::default(),
                ),
            )],
            closed(E::WorkflowExecutionContinuedAsNew, S::ContinuedAsNew, true),
        ),
        (
            "a child without a workflow id",
            running,
            vec![command(CA::StartChildWorkflowExecutionCommandAttributes(
                StartChildWorkflowExecutionCommandAttributes {
                    workflow_type: Some(WorkflowType { name: "C".into() }),
                    ..Default::default()
                },
            ))],
            Err(C::BadStartChildExecutionAttributes),
        ),
        (
            "start a child",
            running,
            vec![command(CA::StartChildWorkflowExecutionCommandAttributes(
                StartChildWorkflowExecutionCommandAttributes {
                    workflow_id: "child".into(),
                    workflow_type: Some(WorkflowType { name: "C".into() }),
                    ..Default::default()
                },
            ))],
            accepted(&[E::StartChildWorkflowExecutionInitiated], &["start child"]),
        ),
        (
            "signal another workflow",
            running,
            vec![command(
                CA::SignalExternalWorkflowExecutionCommandAttributes(
                    SignalExternalWorkflowExecutionCommandAttributes {
                        execution: Some(WorkflowExecution {
                            workflow_id: "other".into(),
                            ..Default::default()
                        }),
                        signal_name: "poke".into(),
                        ..Default::default()
                    },
                ),
            )],
            accepted(
                &[E::SignalExternalWorkflowExecutionInitiated],
                &["signal external"],
            ),
        ),
        (
            "a marker without a name",
            running,
            vec![command(CA::RecordMarkerCommandAttributes(
                RecordMarkerCommandAttributes::default(),
            ))],
            Err(C::BadRecordMarkerAttributes),
        ),
        (
            "an unknown search attribute",
            running,
            vec![upsert("Colour")],
            Err(C::BadSearchAttributes),
        ),
        (
            "a command without attributes",
            running,
            vec![Command::default()],
            Err(C::UnhandledCommand),
        ),
        (
            "a Nexus operation on an endpoint that does not exist",
            running,
            vec![command(CA::ScheduleNexusOperationCommandAttributes(
                Default::default(),
            ))],
            Err(C::BadScheduleNexusOperationAttributes),
        ),
        (
            "three commands in one task",
            running,
            vec![
                schedule_activity("a"),
                start_timer("t", 1_000),
                upsert("CustomKeywordField"),
            ],
            accepted(
                &[
                    E::ActivityTaskScheduled,
                    E::TimerStarted,
                    E::UpsertWorkflowSearchAttributes,
                ],
                &["task", "timer"],
            ),
        ),
    ];
    for (name, setup, commands, expected) in cases {
        let mut run = setup();
        assert_eq!(run_task(&mut run, &commands), expected, "{name}");
    }
}

#[test]
fn staged_events_take_the_next_ids_and_a_timer_is_due_at_the_tasks_time_plus_its_timeout() {
    let mut run = running();
    let key = RunKey {
        namespace: "ns".into(),
        workflow_id: "wf".into(),
        run_id: "r1".into(),
    };
    let context = TaskContext {
        key: &key,
        custom_search_attributes: &BTreeMap::new(),
        nexus_endpoints: &BTreeMap::new(),
        wtc_id: WTC,
        now: NOW,
    };
    let mut effects = Vec::new();
    let commands = [schedule_activity("a"), start_timer("t", 5_000)];
    assert!(apply(&mut run, context, &commands, &[], &mut effects).is_ok());
    let ids: Vec<i64> = run.staged.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, vec![WTC + 1, WTC + 2]);
    assert!(matches!(effects[1], Effect::Timer(due, _) if due == NOW + 5_000));
    assert_eq!(run.ms.timer("t").unwrap().started_event_id, WTC + 2);
    assert_eq!(run.ms.activities[&(WTC + 1)].activity_id, "a");
}
