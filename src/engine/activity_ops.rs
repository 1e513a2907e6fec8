//! An operator's hands on a workflow's pending activities: pause, unpause, reset, and change
//! their options (PauseActivity, UnpauseActivity, ResetActivity, UpdateActivityOptions and
//! their `*ActivityExecution` successors). None of them writes a history event or wakes the
//! workflow; they change when and how the activity is dispatched, as Temporal does:
//!
//! - a paused activity is not dispatched and none of its timeouts fire; a running attempt
//!   goes on and learns of the pause from its heartbeat response; a retryable failure while
//!   paused is held (the next attempt waits for the unpause, past the maximum attempts too);
//! - unpause dispatches a waiting activity at once (plus a random jitter);
//! - reset starts the attempts over at 1 (a running attempt learns it from its heartbeats
//!   and retries count from 1 once it ends), and unpauses unless told to keep it paused;
//! - new options take effect at once for a waiting activity, from the next attempt for a
//!   running one.

use prost_wkt_types::Duration;
use temporalio_protos::temporal::api::activity::v1::ActivityOptions;
use temporalio_protos::temporal::api::common::v1::RetryPolicy;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_protos::temporal::api::workflow::v1::pending_activity_info::{
    PauseInfo, pause_info,
};

use super::clock::{dur_from_millis, dur_millis, ts_from_millis};
use super::commands::activities::ActivityTimeouts;
use super::state::ActivityInfo;
use super::{Core, Engine, Error, Result, RunKey, retry};

/// Which of a workflow's pending activities an operation acts on.
#[derive(Clone, Debug)]
pub enum ActivityTarget {
    Id(String),
    Type(String),
    All,
}

/// What to do to the targeted activities.
#[derive(Clone, Debug)]
pub enum ActivityAction {
    Pause {
        reason: String,
        request_id: String,
    },
    Unpause {
        reset_attempts: bool,
        reset_heartbeat: bool,
        jitter: Option<Duration>,
    },
    Reset {
        reset_heartbeat: bool,
        keep_paused: bool,
        jitter: Option<Duration>,
        restore_original: bool,
    },
    UpdateOptions {
        options: Option<Box<ActivityOptions>>,
        mask: Vec<String>,
        restore_original: bool,
    },
}

/// One operation on the pending activities of a workflow run.
#[derive(Clone, Debug)]
pub struct ActivityOperation {
    pub namespace: String,
    pub workflow_id: String,
    pub run_id: String,
    pub identity: String,
    pub target: Option<ActivityTarget>,
    pub action: ActivityAction,
}

/// What a heartbeat tells the worker running the attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    pub cancel_requested: bool,
    pub paused: bool,
    pub reset: bool,
}

impl Engine {
    /// Applies the operation to every activity it targets, all or none; answers the options
    /// the (last) activity has afterwards.
    pub async fn operate_on_activities(&self, op: ActivityOperation) -> Result<ActivityOptions> {
        let Some(target) = op.target.clone() else {
            return Err(Error::InvalidArgument(
                "Either Activity.Id or Activity.Type should be set on request.".into(),
            ));
        };
        if let ActivityAction::UpdateOptions {
            options,
            mask,
            restore_original,
        } = &op.action
        {
            check_update(options.as_deref(), mask, *restore_original)?;
        }
        self.transact(|core| {
            let key = match (&target, op.workflow_id.is_empty()) {
                (_, false) => core.resolve_run(&op.namespace, &op.workflow_id, &op.run_id)?,
                // No workflow: a standalone activity execution, named by its id.
                (ActivityTarget::Id(id), true) => {
                    core.resolve_activity_execution(&op.namespace, id, &op.run_id)?
                }
                _ => {
                    return Err(Error::InvalidArgument(
                        "WorkflowId is not set on request.".into(),
                    ));
                }
            };
            let targets = core.target_activities(&key, &target)?;
            let now = core.now();
            // Everything is checked before anything changes: a refusal leaves all as it was.
            let mut planned = Vec::with_capacity(targets.len());
            for sched in targets {
                let info = core.run(&key)?.ms.activities[&sched].clone();
                let original = core.scheduled_options(&key, sched);
                let next = operate(info, original, &op, now)?;
                planned.push(next);
            }
            let mut answer = ActivityOptions::default();
            for info in planned {
                answer = options_of(&info);
                core.replace_activity(&key, info);
            }
            core.changed(&key);
            Ok(answer)
        })
        .await
    }
}

/// The request-level checks of UpdateActivityOptions, before anything is looked up.
fn check_update(
    options: Option<&ActivityOptions>,
    mask: &[String],
    restore_original: bool,
) -> Result<()> {
    let bad = |m: &str| Err(Error::InvalidArgument(m.into()));
    if restore_original {
        return if mask.is_empty() {
            Ok(())
        } else {
            bad("Both UpdateMask and RestoreOriginal are provided")
        };
    }
    if options.is_none() {
        return bad("ActivityOptions are not provided");
    }
    if mask.is_empty() {
        return bad("UpdateMask is not provided");
    }
    Ok(())
}

impl Core {
    fn target_activities(&self, key: &RunKey, target: &ActivityTarget) -> Result<Vec<i64>> {
        let run = self.run(key)?;
        if !run.is_open() {
            return Err(Error::NotFound(
                "workflow execution already completed".into(),
            ));
        }
        let found: Vec<i64> = run
            .ms
            .activities
            .values()
            .filter(|a| match target {
                ActivityTarget::Id(id) => &a.activity_id == id,
                ActivityTarget::Type(name) => {
                    a.activity_type.as_ref().is_some_and(|t| &t.name == name)
                }
                ActivityTarget::All => true,
            })
            .map(|a| a.scheduled_event_id)
            .collect();
        if found.is_empty() {
            return Err(Error::NotFound(
                "Can't find pending activity with such ID. Invalid activityID or activity \
                 already completed"
                    .into(),
            ));
        }
        Ok(found)
    }

    /// The options the activity was scheduled with, from its `ActivityTaskScheduled` event.
    fn scheduled_options(&self, key: &RunKey, sched: i64) -> Option<ActivityOptions> {
        let event = self.run(key).ok()?.events_from(sched).next()?;
        match event.attributes? {
            Attributes::ActivityTaskScheduledEventAttributes(a) => Some(ActivityOptions {
                task_queue: a.task_queue,
                schedule_to_close_timeout: a.schedule_to_close_timeout,
                schedule_to_start_timeout: a.schedule_to_start_timeout,
                start_to_close_timeout: a.start_to_close_timeout,
                heartbeat_timeout: a.heartbeat_timeout,
                retry_policy: a.retry_policy,
                priority: a.priority,
                start_delay: None,
            }),
            _ => None,
        }
    }

    /// Puts the changed activity in place and (re)arms what it now needs: dispatch when it
    /// waits and is not paused, its timeouts when not paused (a paused one has none).
    fn replace_activity(&mut self, key: &RunKey, info: ActivityInfo) {
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        run.ms
            .activities
            .insert(info.scheduled_event_id, info.clone());
        if !info.paused {
            self.arm_activity(key, &info);
        }
    }
}

/// The activity after the operation, or why the operation is refused.
fn operate(
    mut info: ActivityInfo,
    original: Option<ActivityOptions>,
    op: &ActivityOperation,
    now: i64,
) -> Result<ActivityInfo> {
    let running = info.started_time.is_some();
    match &op.action {
        ActivityAction::Pause { reason, request_id } => {
            if info.paused {
                if &info.pause_request_id == request_id {
                    return Ok(info);
                }
                return Err(Error::FailedPrecondition(
                    "activity is already paused".into(),
                ));
            }
            info.paused = true;
            info.pause_request_id = request_id.clone();
            info.pause_info = Some(PauseInfo {
                pause_time: Some(ts_from_millis(now)),
                paused_by: Some(pause_info::PausedBy::Manual(pause_info::Manual {
                    identity: op.identity.clone(),
                    reason: reason.clone(),
                })),
            });
        }
        ActivityAction::Unpause {
            reset_attempts,
            reset_heartbeat,
            jitter,
        } => {
            if !info.paused {
                return Ok(info);
            }
            unpause(&mut info);
            if *reset_heartbeat {
                clear_heartbeat(&mut info);
            }
            if *reset_attempts {
                start_over(&mut info, running);
            }
            if !running {
                dispatch_after_jitter(&mut info, jitter, now);
            }
        }
        ActivityAction::Reset {
            reset_heartbeat,
            keep_paused,
            jitter,
            restore_original,
        } => {
            if *restore_original && let Some(original) = &original {
                // Temporal restores everything but the priority here.
                let priority = info.priority.clone();
                apply_options(&mut info, original)?;
                info.priority = priority;
            }
            start_over(&mut info, running);
            if running {
                info.reset_heartbeat = *reset_heartbeat;
            } else if *reset_heartbeat {
                clear_heartbeat(&mut info);
            }
            if info.paused && !keep_paused {
                unpause(&mut info);
            }
            if !running && !info.paused {
                dispatch_after_jitter(&mut info, jitter, now);
            }
        }
        ActivityAction::UpdateOptions {
            options,
            mask,
            restore_original,
        } => {
            let wanted = if *restore_original {
                original.ok_or_else(|| {
                    Error::InvalidArgument("ActivityTaskScheduledEvent not found".into())
                })?
            } else {
                masked(options_of(&info), options.as_deref(), mask)?
            };
            apply_options(&mut info, &wanted)?;
            if !running {
                info.last_failure = None;
            }
        }
    }
    Ok(info)
}

fn unpause(info: &mut ActivityInfo) {
    info.paused = false;
    info.pause_info = None;
    info.pause_request_id.clear();
}

fn clear_heartbeat(info: &mut ActivityInfo) {
    info.heartbeat_details = None;
    info.last_heartbeat_time = None;
}

/// Attempts start over at 1: now for a waiting activity; for a running one when its attempt
/// ends (its worker holds a token for the attempt it runs, which must stay valid).
fn start_over(info: &mut ActivityInfo, running: bool) {
    if running {
        info.reset_requested = true;
    } else {
        info.attempt = 1;
    }
}

/// A waiting activity is offered to workers now, or after a random part of `jitter`.
fn dispatch_after_jitter(info: &mut ActivityInfo, jitter: &Option<Duration>, now: i64) {
    let jitter = dur_millis(jitter);
    let delay = if jitter > 0 {
        (uuid::Uuid::new_v4().as_u128() % jitter as u128) as i64
    } else {
        0
    };
    info.scheduled_time = Some(ts_from_millis(now + delay));
    info.last_failure = None;
}

/// The activity's options now, as describe and UpdateActivityOptions report them.
pub(crate) fn options_of(info: &ActivityInfo) -> ActivityOptions {
    ActivityOptions {
        task_queue: Some(super::workflow_task::normal_queue(&info.task_queue)),
        schedule_to_close_timeout: info.schedule_to_close_timeout,
        schedule_to_start_timeout: info.schedule_to_start_timeout,
        start_to_close_timeout: info.start_to_close_timeout,
        heartbeat_timeout: info.heartbeat_timeout,
        retry_policy: info.retry_policy.clone(),
        priority: info.priority.clone(),
        start_delay: None,
    }
}

/// `current` with the fields `mask` names taken from `update` (paths in snake_case or
/// camelCase; unknown paths are ignored, as Temporal does).
fn masked(
    mut current: ActivityOptions,
    update: Option<&ActivityOptions>,
    mask: &[String],
) -> Result<ActivityOptions> {
    let update = update.cloned().unwrap_or_default();
    let missing = |what: &str| Error::InvalidArgument(format!("{what} is not provided"));
    for path in mask {
        match snake_case(path).as_str() {
            // `task_queue_name` is what the temporal CLI 1.8 sends for --task-queue.
            "task_queue" | "task_queue.name" | "task_queue_name" => {
                let name = update
                    .task_queue
                    .as_ref()
                    .ok_or_else(|| missing("TaskQueue"))?;
                current.task_queue = Some(TaskQueue {
                    name: name.name.clone(),
                    ..Default::default()
                });
            }
            "schedule_to_close_timeout" => {
                current.schedule_to_close_timeout = update.schedule_to_close_timeout;
            }
            "schedule_to_start_timeout" => {
                current.schedule_to_start_timeout = update.schedule_to_start_timeout;
            }
            "start_to_close_timeout" => {
                current.start_to_close_timeout = update.start_to_close_timeout;
            }
            "heartbeat_timeout" => current.heartbeat_timeout = update.heartbeat_timeout,
            "priority" => current.priority = update.priority.clone(),
            p if p.starts_with("priority.") => {
                let from = update
                    .priority
                    .as_ref()
                    .ok_or_else(|| missing("Priority"))?;
                let to = current.priority.get_or_insert_with(Default::default);
                match p {
                    "priority.priority_key" => to.priority_key = from.priority_key,
                    "priority.fairness_key" => to.fairness_key = from.fairness_key.clone(),
                    "priority.fairness_weight" => to.fairness_weight = from.fairness_weight,
                    _ => {}
                }
            }
            "retry_policy" => current.retry_policy = update.retry_policy.clone(),
            p if p.starts_with("retry_policy.") => {
                let from = update
                    .retry_policy
                    .as_ref()
                    .ok_or_else(|| missing("RetryPolicy"))?;
                let to = current
                    .retry_policy
                    .get_or_insert_with(RetryPolicy::default);
                match p {
                    "retry_policy.initial_interval" => to.initial_interval = from.initial_interval,
                    "retry_policy.backoff_coefficient" => {
                        to.backoff_coefficient = from.backoff_coefficient;
                    }
                    "retry_policy.maximum_interval" => to.maximum_interval = from.maximum_interval,
                    "retry_policy.maximum_attempts" => to.maximum_attempts = from.maximum_attempts,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(current)
}

fn snake_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes `options` into the activity after the checks and normalisation a scheduled
/// activity gets (the run timeout is not applied, as Temporal does not here).
fn apply_options(info: &mut ActivityInfo, options: &ActivityOptions) -> Result<()> {
    let invalid = |m: String| Error::InvalidArgument(m);
    for d in [
        &options.schedule_to_close_timeout,
        &options.schedule_to_start_timeout,
        &options.start_to_close_timeout,
        &options.heartbeat_timeout,
    ] {
        if super::clock::is_negative(d) {
            return Err(invalid("activity timeouts must not be negative".into()));
        }
    }
    let given = ActivityTimeouts {
        schedule_to_close: dur_millis(&options.schedule_to_close_timeout),
        schedule_to_start: dur_millis(&options.schedule_to_start_timeout),
        start_to_close: dur_millis(&options.start_to_close_timeout),
        heartbeat: dur_millis(&options.heartbeat_timeout),
    };
    let t = given.normalized(0).ok_or_else(|| {
        invalid(format!(
            "a valid StartToCloseTimeout or ScheduleToCloseTimeout must be set on the \
             activity. ActivityId={}",
            info.activity_id
        ))
    })?;
    let mut policy = options.retry_policy.clone().unwrap_or_default();
    retry::fill_defaults(&mut policy);
    retry::validate(&policy).map_err(invalid)?;
    if let Some(queue) = options.task_queue.as_ref().filter(|q| !q.name.is_empty()) {
        info.task_queue = queue.name.clone();
    }
    let opt = |v: i64| Some(dur_from_millis(v));
    info.schedule_to_close_timeout = opt(t.schedule_to_close);
    info.schedule_to_start_timeout = opt(t.schedule_to_start);
    info.start_to_close_timeout = opt(t.start_to_close);
    info.heartbeat_timeout = opt(t.heartbeat);
    info.retry_policy = Some(policy);
    info.priority = options.priority.clone();
    Ok(())
}

impl Core {
    /// What a heartbeat of the running attempt hears back.
    pub(crate) fn heartbeat_answer(info: &ActivityInfo) -> HeartbeatAnswer {
        HeartbeatAnswer {
            cancel_requested: info.cancel_requested,
            paused: info.paused,
            reset: info.reset_requested,
        }
    }
}

// The requests, old and new, as one operation each. The `*ActivityExecution` forms name an
// activity of a workflow by ids; without a workflow id they mean a standalone activity.

use temporalio_protos::temporal::api::workflowservice::v1::{
    PauseActivityExecutionRequest, PauseActivityRequest, ResetActivityExecutionRequest,
    ResetActivityRequest, UnpauseActivityExecutionRequest, UnpauseActivityRequest,
    UpdateActivityExecutionOptionsRequest, UpdateActivityOptionsRequest, pause_activity_request,
    reset_activity_request, unpause_activity_request, update_activity_options_request,
};

/// An operation on the activity a workflow id, run id and activity id name (the
/// `*ActivityExecution` requests).
fn by_ids(
    namespace: String,
    workflow_id: String,
    run_id: String,
    identity: String,
    activity_id: String,
    action: ActivityAction,
) -> ActivityOperation {
    ActivityOperation {
        namespace,
        workflow_id,
        run_id,
        identity,
        target: Some(ActivityTarget::Id(activity_id)),
        action,
    }
}

/// An operation on the activities of the run `execution` names (the older requests).
fn in_execution(
    namespace: String,
    execution: Option<temporalio_protos::temporal::api::common::v1::WorkflowExecution>,
    identity: String,
    target: Option<ActivityTarget>,
    action: ActivityAction,
) -> ActivityOperation {
    let e = execution.unwrap_or_default();
    ActivityOperation {
        namespace,
        workflow_id: e.workflow_id,
        run_id: e.run_id,
        identity,
        target,
        action,
    }
}

impl From<PauseActivityRequest> for ActivityOperation {
    fn from(r: PauseActivityRequest) -> Self {
        use pause_activity_request::Activity as A;
        let target = r.activity.map(|a| match a {
            A::Id(id) => ActivityTarget::Id(id),
            A::Type(t) => ActivityTarget::Type(t),
        });
        let action = ActivityAction::Pause {
            reason: r.reason,
            request_id: r.request_id,
        };
        in_execution(r.namespace, r.execution, r.identity, target, action)
    }
}

impl From<PauseActivityExecutionRequest> for ActivityOperation {
    fn from(r: PauseActivityExecutionRequest) -> Self {
        let action = ActivityAction::Pause {
            reason: r.reason,
            request_id: r.request_id,
        };
        by_ids(
            r.namespace,
            r.workflow_id,
            r.run_id,
            r.identity,
            r.activity_id,
            action,
        )
    }
}

impl From<UnpauseActivityRequest> for ActivityOperation {
    fn from(r: UnpauseActivityRequest) -> Self {
        use unpause_activity_request::Activity as A;
        let target = r.activity.map(|a| match a {
            A::Id(id) => ActivityTarget::Id(id),
            A::Type(t) => ActivityTarget::Type(t),
            A::UnpauseAll(_) => ActivityTarget::All,
        });
        let action = ActivityAction::Unpause {
            reset_attempts: r.reset_attempts,
            reset_heartbeat: r.reset_heartbeat,
            jitter: r.jitter,
        };
        in_execution(r.namespace, r.execution, r.identity, target, action)
    }
}

impl From<UnpauseActivityExecutionRequest> for ActivityOperation {
    fn from(r: UnpauseActivityExecutionRequest) -> Self {
        let action = ActivityAction::Unpause {
            reset_attempts: false,
            reset_heartbeat: false,
            jitter: r.jitter,
        };
        by_ids(
            r.namespace,
            r.workflow_id,
            r.run_id,
            r.identity,
            r.activity_id,
            action,
        )
    }
}

impl From<ResetActivityRequest> for ActivityOperation {
    fn from(r: ResetActivityRequest) -> Self {
        use reset_activity_request::Activity as A;
        let target = r.activity.map(|a| match a {
            A::Id(id) => ActivityTarget::Id(id),
            A::Type(t) => ActivityTarget::Type(t),
            A::MatchAll(_) => ActivityTarget::All,
        });
        let action = ActivityAction::Reset {
            reset_heartbeat: r.reset_heartbeat,
            keep_paused: r.keep_paused,
            jitter: r.jitter,
            restore_original: r.restore_original_options,
        };
        in_execution(r.namespace, r.execution, r.identity, target, action)
    }
}

impl From<ResetActivityExecutionRequest> for ActivityOperation {
    fn from(r: ResetActivityExecutionRequest) -> Self {
        let action = ActivityAction::Reset {
            reset_heartbeat: r.reset_heartbeat,
            keep_paused: r.keep_paused,
            jitter: r.jitter,
            restore_original: r.restore_original_options,
        };
        by_ids(
            r.namespace,
            r.workflow_id,
            r.run_id,
            r.identity,
            r.activity_id,
            action,
        )
    }
}

impl From<UpdateActivityOptionsRequest> for ActivityOperation {
    fn from(r: UpdateActivityOptionsRequest) -> Self {
        use update_activity_options_request::Activity as A;
        let target = r.activity.map(|a| match a {
            A::Id(id) => ActivityTarget::Id(id),
            A::Type(t) => ActivityTarget::Type(t),
            A::MatchAll(_) => ActivityTarget::All,
        });
        let action = ActivityAction::UpdateOptions {
            options: r.activity_options.map(Box::new),
            mask: r.update_mask.map(|m| m.paths).unwrap_or_default(),
            restore_original: r.restore_original,
        };
        in_execution(r.namespace, r.execution, r.identity, target, action)
    }
}

impl From<UpdateActivityExecutionOptionsRequest> for ActivityOperation {
    fn from(r: UpdateActivityExecutionOptionsRequest) -> Self {
        let action = ActivityAction::UpdateOptions {
            options: r.activity_options.map(Box::new),
            mask: r.update_mask.map(|m| m.paths).unwrap_or_default(),
            restore_original: r.restore_original,
        };
        by_ids(
            r.namespace,
            r.workflow_id,
            r.run_id,
            r.identity,
            r.activity_id,
            action,
        )
    }
}
