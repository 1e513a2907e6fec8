//! The protocol-level driver: a worker and a load generator that speak the gRPC API directly,
//! with commands prepared in advance, so the server's own ceiling and CPU per workflow are
//! measured rather than the SDK's (on a small machine the official SDK worker and load
//! generator take about a core themselves).
//!
//! - `raw-empty`: each workflow task is answered with CompleteWorkflowExecution.
//! - `raw-activity`: the first workflow task schedules one activity (`echo`), which the
//!   activity pollers complete with its input; the next workflow task completes the workflow
//!   with the activity's result.
//! - `RawTimer` workflows (the sleeping-workflows benchmark, `sleepers.rs`): the first workflow
//!   task starts a durable timer of the seconds given as input; the next one, after it fired,
//!   completes the workflow.
//!
//! The load is the SDK workloads' closed loop: each caller starts a workflow and long-polls
//! its close event (GetWorkflowExecutionHistory with the close-event filter), then the next.
//! Workflow tasks are not sticky: each carries the run's (short) history.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use temporalio_client::Client;
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::Request;
use temporalio_common::protos::temporal::api::{
    command::v1::{
        Command, CompleteWorkflowExecutionCommandAttributes, ScheduleActivityTaskCommandAttributes,
        StartTimerCommandAttributes, command,
    },
    common::v1::{ActivityType, Payload, Payloads, WorkflowType},
    enums::v1::{CommandType, EventType, HistoryEventFilterType},
    history::v1::{HistoryEvent, history_event},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        GetWorkflowExecutionHistoryRequest, PollActivityTaskQueueRequest,
        PollActivityTaskQueueResponse, PollWorkflowTaskQueueRequest,
        RespondActivityTaskCompletedRequest, RespondWorkflowTaskCompletedRequest,
        StartWorkflowExecutionRequest,
    },
};

use crate::server::NAMESPACE;

/// The workflow type of `raw-empty` workflows.
const EMPTY: &str = "RawEmpty";
/// The workflow type of `raw-activity` workflows.
const ONE_ACTIVITY: &str = "RawActivity";
/// The workflow type of sleeping workflows.
pub const TIMER: &str = "RawTimer";
/// Long polls end after this long without a task (then poll again).
const POLL_TIMEOUT: Duration = Duration::from_secs(30);

/// The raw worker's pollers, stopped when dropped.
pub struct RawWorker {
    stop: Arc<AtomicBool>,
    tasks: tokio::task::JoinSet<()>,
    /// Timers the worker's answers started (accepted by the server).
    pub timers_started: Arc<AtomicU64>,
    /// `RawTimer` workflows the worker's answers completed (accepted by the server).
    pub timers_completed: Arc<AtomicU64>,
}

impl Drop for RawWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tasks.abort_all();
    }
}

/// Starts `pollers` workflow-task pollers and as many activity-task pollers on `task_queue`.
pub fn start_worker(client: &Client, task_queue: &str, pollers: usize) -> RawWorker {
    let stop = Arc::new(AtomicBool::new(false));
    let timers_started = Arc::new(AtomicU64::new(0));
    let timers_completed = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..pollers {
        let (c, tq, halt) = (client.clone(), task_queue.to_string(), stop.clone());
        let counts = [timers_started.clone(), timers_completed.clone()];
        tasks.spawn(async move { workflow_poller(c, tq, halt, counts).await });
        let (c, tq, halt) = (client.clone(), task_queue.to_string(), stop.clone());
        tasks.spawn(async move { activity_poller(c, tq, halt).await });
    }
    RawWorker {
        stop,
        tasks,
        timers_started,
        timers_completed,
    }
}

pub fn queue(name: &str) -> Option<TaskQueue> {
    Some(TaskQueue {
        name: name.to_string(),
        ..Default::default()
    })
}

pub fn json(text: &str) -> Payload {
    Payload {
        metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
        data: format!("{text:?}").into_bytes(),
        ..Default::default()
    }
}

async fn workflow_poller(
    mut client: Client,
    task_queue: String,
    stop: Arc<AtomicBool>,
    [timers_started, timers_completed]: [Arc<AtomicU64>; 2],
) {
    while !stop.load(Ordering::Relaxed) {
        let mut poll = Request::new(PollWorkflowTaskQueueRequest {
            namespace: NAMESPACE.into(),
            task_queue: queue(&task_queue),
            identity: "durin-bench-raw".into(),
            ..Default::default()
        });
        poll.set_timeout(POLL_TIMEOUT + Duration::from_secs(5));
        let Ok(task) = client.poll_workflow_task_queue(poll).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let task = task.into_inner();
        if task.task_token.is_empty() {
            continue;
        }
        let kind = task.workflow_type.as_ref().map_or("", |t| t.name.as_str());
        let events = task.history.map(|h| h.events).unwrap_or_default();
        let commands = next_commands(kind, &events, &task_queue);
        let has = |t: CommandType| commands.iter().any(|c| c.command_type == t as i32);
        let starts_timer = has(CommandType::StartTimer);
        let completes_timer = kind == TIMER && has(CommandType::CompleteWorkflowExecution);
        let answer = RespondWorkflowTaskCompletedRequest {
            namespace: NAMESPACE.into(),
            task_token: task.task_token,
            commands,
            identity: "durin-bench-raw".into(),
            ..Default::default()
        };
        // A failed answer leaves the task to time out and be retried by the server.
        let answered = client
            .respond_workflow_task_completed(Request::new(answer))
            .await;
        // Activities the server handed back for eager execution run here, as an SDK worker
        // runs them; a server without eager execution leaves them to the activity pollers.
        if let Ok(answer) = &answered {
            for task in &answer.get_ref().activity_tasks {
                complete_activity(&mut client, task).await;
            }
        }
        if answered.is_ok() && starts_timer {
            timers_started.fetch_add(1, Ordering::Relaxed);
        }
        if answered.is_ok() && completes_timer {
            timers_completed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The prepared answer to a workflow task, from the workflow's type and history.
fn next_commands(kind: &str, events: &[HistoryEvent], task_queue: &str) -> Vec<Command> {
    let complete = |result: Option<Payloads>| Command {
        command_type: CommandType::CompleteWorkflowExecution as i32,
        attributes: Some(
            command::Attributes::CompleteWorkflowExecutionCommandAttributes(
                CompleteWorkflowExecutionCommandAttributes { result },
            ),
        ),
        ..Default::default()
    };
    let attrs = |t: EventType| {
        events
            .iter()
            .find(|e| e.event_type == t as i32)
            .and_then(|e| e.attributes.clone())
    };
    if kind == TIMER {
        let has = |t: EventType| events.iter().any(|e| e.event_type == t as i32);
        if has(EventType::TimerFired) {
            return vec![complete(None)];
        }
        if has(EventType::TimerStarted) {
            return Vec::new();
        }
        let input = match attrs(EventType::WorkflowExecutionStarted) {
            Some(history_event::Attributes::WorkflowExecutionStartedEventAttributes(started)) => {
                started.input
            }
            _ => None,
        };
        return vec![start_timer(timer_secs(input.as_ref()))];
    }
    if kind != ONE_ACTIVITY {
        return vec![complete(None)];
    }
    if let Some(history_event::Attributes::ActivityTaskCompletedEventAttributes(done)) =
        attrs(EventType::ActivityTaskCompleted)
    {
        return vec![complete(done.result)];
    }
    if events
        .iter()
        .any(|e| e.event_type == EventType::ActivityTaskScheduled as i32)
    {
        return Vec::new();
    }
    let input = match attrs(EventType::WorkflowExecutionStarted) {
        Some(history_event::Attributes::WorkflowExecutionStartedEventAttributes(started)) => {
            started.input
        }
        _ => None,
    };
    vec![Command {
        command_type: CommandType::ScheduleActivityTask as i32,
        attributes: Some(command::Attributes::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                activity_id: "1".into(),
                activity_type: Some(ActivityType {
                    name: "echo".into(),
                }),
                task_queue: queue(task_queue),
                input,
                start_to_close_timeout: Some(Duration::from_secs(10).try_into().unwrap()),
                // As the SDKs ask, by default, for an activity on the workflow's own queue.
                request_eager_execution: true,
                ..Default::default()
            },
        )),
        ..Default::default()
    }]
}

/// The sleep of a `RawTimer` workflow: its input, a JSON number of seconds.
fn timer_secs(input: Option<&Payloads>) -> u64 {
    input
        .and_then(|p| p.payloads.first())
        .and_then(|p| std::str::from_utf8(&p.data).ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(1)
}

fn start_timer(secs: u64) -> Command {
    Command {
        command_type: CommandType::StartTimer as i32,
        attributes: Some(command::Attributes::StartTimerCommandAttributes(
            StartTimerCommandAttributes {
                timer_id: "sleep".into(),
                start_to_fire_timeout: Some(Duration::from_secs(secs).try_into().unwrap()),
            },
        )),
        ..Default::default()
    }
}

async fn activity_poller(mut client: Client, task_queue: String, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let mut poll = Request::new(PollActivityTaskQueueRequest {
            namespace: NAMESPACE.into(),
            task_queue: queue(&task_queue),
            identity: "durin-bench-raw".into(),
            ..Default::default()
        });
        poll.set_timeout(POLL_TIMEOUT + Duration::from_secs(5));
        let Ok(task) = client.poll_activity_task_queue(poll).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let task = task.into_inner();
        if task.task_token.is_empty() {
            continue;
        }
        complete_activity(&mut client, &task).await;
    }
}

/// Completes an activity task with its input.
async fn complete_activity(client: &mut Client, task: &PollActivityTaskQueueResponse) {
    let _ = client
        .respond_activity_task_completed(Request::new(RespondActivityTaskCompletedRequest {
            namespace: NAMESPACE.into(),
            task_token: task.task_token.clone(),
            result: task.input.clone(),
            identity: "durin-bench-raw".into(),
            ..Default::default()
        }))
        .await;
}

/// One workflow of the load: started, then its close awaited and checked.
pub async fn one_workflow(
    mut client: Client,
    task_queue: &str,
    i: u64,
    with_activity: bool,
) -> Result<()> {
    let workflow_id = format!("{task_queue}-{i}");
    let input = format!("input-{i}");
    let kind = if with_activity { ONE_ACTIVITY } else { EMPTY };
    client
        .start_workflow_execution(Request::new(StartWorkflowExecutionRequest {
            namespace: NAMESPACE.into(),
            workflow_id: workflow_id.clone(),
            workflow_type: Some(WorkflowType { name: kind.into() }),
            task_queue: queue(task_queue),
            input: Some(Payloads {
                payloads: vec![json(&input)],
            }),
            request_id: uuid::Uuid::new_v4().to_string(),
            identity: "durin-bench-raw-load".into(),
            ..Default::default()
        }))
        .await
        .context("start")?;
    loop {
        let mut wait = Request::new(GetWorkflowExecutionHistoryRequest {
            namespace: NAMESPACE.into(),
            execution: Some(
                temporalio_common::protos::temporal::api::common::v1::WorkflowExecution {
                    workflow_id: workflow_id.clone(),
                    run_id: String::new(),
                },
            ),
            wait_new_event: true,
            history_event_filter_type: HistoryEventFilterType::CloseEvent as i32,
            ..Default::default()
        });
        wait.set_timeout(POLL_TIMEOUT + Duration::from_secs(5));
        let history = client
            .get_workflow_execution_history(wait)
            .await
            .context("result")?
            .into_inner();
        let Some(close) = history.history.and_then(|h| h.events.into_iter().next()) else {
            continue;
        };
        let Some(history_event::Attributes::WorkflowExecutionCompletedEventAttributes(done)) =
            close.attributes
        else {
            bail!("{workflow_id} closed with event type {}", close.event_type);
        };
        let result = done.result.and_then(|r| r.payloads.into_iter().next());
        if with_activity && result.as_ref().map(|p| p.data.clone()) != Some(json(&input).data) {
            bail!("{workflow_id}: the activity's result did not come back: {result:?}");
        }
        return Ok(());
    }
}
