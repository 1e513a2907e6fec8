//! What DescribeActivityExecution and ListActivityExecutions report of a standalone activity
//! execution, read from its run.

use std::collections::BTreeMap;
use temporalio_protos::temporal::api::activity::v1::{
    ActivityExecutionInfo, ActivityExecutionListInfo,
};

use temporalio_protos::temporal::api::enums::v1::{
    ActivityExecutionStatus, IndexedValueType, PendingActivityState, WorkflowExecutionStatus,
};

use super::standalone;
use crate::engine::Run;
use crate::engine::clock::{dur_from_millis, dur_millis, opt_ts_millis, ts_from_millis};
use crate::engine::state::{ActivityInfo, CallbackRecord, STANDALONE_SCHEDULED_ID};
use crate::visibility::query::{Record, Value};
use crate::visibility::search_attributes::RunRecord;
use temporalio_protos::temporal::api::{activity, callback};

/// The activity of a standalone execution: pending while it runs, as it closed afterwards.
pub fn activity_of(run: &Run) -> Option<&ActivityInfo> {
    run.ms
        .activities
        .get(&STANDALONE_SCHEDULED_ID)
        .or_else(|| standalone(run)?.closed.as_ref())
}

/// The run's status as an activity execution status (runs keep workflow status codes).
pub fn status_of(run: &Run) -> ActivityExecutionStatus {
    use ActivityExecutionStatus as A;
    use WorkflowExecutionStatus as W;
    match W::try_from(run.ms.status).unwrap_or(W::Unspecified) {
        W::Running => A::Running,
        W::Completed => A::Completed,
        W::Failed => A::Failed,
        W::Canceled => A::Canceled,
        W::Terminated => A::Terminated,
        W::TimedOut => A::TimedOut,
        W::ContinuedAsNew | W::Paused | W::Unspecified => A::Unspecified,
    }
}

/// Where a running activity stands (unspecified once closed).
fn run_state(run: &Run, info: &ActivityInfo) -> PendingActivityState {
    if !run.is_open() {
        PendingActivityState::Unspecified
    } else if info.paused {
        PendingActivityState::Paused
    } else if info.cancel_requested {
        PendingActivityState::CancelRequested
    } else if info.started_time.is_some() {
        PendingActivityState::Started
    } else {
        PendingActivityState::Scheduled
    }
}

/// What to include beyond the always-present fields.
#[derive(Clone, Copy, Default)]
pub struct Include {
    pub heartbeat_details: bool,
    pub last_failure: bool,
}

/// The execution as DescribeActivityExecution reports it.
pub fn describe(run: &Run, include: Include) -> ActivityExecutionInfo {
    let ms = &run.ms;
    let record = standalone(run).cloned().unwrap_or_default();
    let info = activity_of(run).cloned().unwrap_or_default();
    let s2c = dur_millis(&info.schedule_to_close_timeout);
    let waiting_retry =
        run.is_open() && info.started_time.is_none() && info.attempt > 1 && !info.paused;
    ActivityExecutionInfo {
        activity_id: record.activity_id,
        run_id: ms.run_id.clone(),
        activity_type: info.activity_type.clone(),
        status: status_of(run) as i32,
        run_state: run_state(run, &info) as i32,
        task_queue: info.task_queue.clone(),
        schedule_to_close_timeout: info.schedule_to_close_timeout,
        schedule_to_start_timeout: info.schedule_to_start_timeout,
        start_to_close_timeout: info.start_to_close_timeout,
        heartbeat_timeout: info.heartbeat_timeout,
        retry_policy: info.retry_policy.clone(),
        heartbeat_details: info
            .heartbeat_details
            .clone()
            .filter(|_| include.heartbeat_details),
        last_heartbeat_time: info.last_heartbeat_time,
        last_started_time: info.last_started_time.or(info.started_time),
        attempt: info.attempt,
        execution_duration: ms.close_time.as_ref().map(|_| {
            dur_from_millis(opt_ts_millis(&ms.close_time) - opt_ts_millis(&ms.start_time))
        }),
        schedule_time: ms.start_time,
        expiration_time: (s2c > 0)
            .then(|| ts_from_millis(opt_ts_millis(&info.first_scheduled_time) + s2c)),
        close_time: ms.close_time,
        last_failure: info.last_failure.clone().filter(|_| include.last_failure),
        last_worker_identity: info.last_worker_identity.clone(),
        last_attempt_complete_time: info.last_attempt_complete_time,
        next_attempt_schedule_time: info.scheduled_time.filter(|_| waiting_retry),
        priority: info.priority.clone(),
        state_transition_count: ms.state_transition_count,
        search_attributes: ms.search_attributes.clone(),
        header: info.header.clone(),
        user_metadata: record.user_metadata,
        canceled_reason: record.canceled_reason,
        links: record.links,
        total_heartbeat_count: record.heartbeat_count,
        start_delay: record.start_delay,
        execution_time: ms.execution_time,
        ..Default::default()
    }
}

/// A completion callback of the execution, as DescribeActivityExecution shows it.
pub fn callback_info(record: &CallbackRecord) -> activity::v1::CallbackInfo {
    use activity::v1::callback_info::{ActivityClosed, Trigger, trigger};
    let info = record.info.clone().unwrap_or_default();
    activity::v1::CallbackInfo {
        trigger: Some(Trigger {
            variant: Some(trigger::Variant::ActivityClosed(ActivityClosed {})),
        }),
        info: Some(callback::v1::CallbackInfo {
            callback: info.callback,
            registration_time: info.registration_time,
            state: info.state,
            attempt: info.attempt,
            last_attempt_complete_time: info.last_attempt_complete_time,
            last_attempt_failure: info.last_attempt_failure,
            next_attempt_schedule_time: info.next_attempt_schedule_time,
            blocked_reason: info.blocked_reason,
            request_id: info.request_id,
        }),
    }
}

/// The execution as ListActivityExecutions reports it.
pub fn list_info(run: &Run) -> ActivityExecutionListInfo {
    let ms = &run.ms;
    let info = activity_of(run).cloned().unwrap_or_default();
    ActivityExecutionListInfo {
        activity_id: standalone(run)
            .map(|s| s.activity_id.clone())
            .unwrap_or_default(),
        run_id: ms.run_id.clone(),
        activity_type: info.activity_type,
        schedule_time: ms.start_time,
        close_time: ms.close_time,
        status: status_of(run) as i32,
        search_attributes: ms.search_attributes.clone(),
        task_queue: info.task_queue,
        // Temporal reports it once the execution has closed.
        state_transition_count: if run.is_open() {
            0
        } else {
            ms.state_transition_count
        },
        execution_duration: ms.close_time.as_ref().map(|_| {
            dur_from_millis(opt_ts_millis(&ms.close_time) - opt_ts_millis(&ms.start_time))
        }),
        execution_time: ms.execution_time,
        ..Default::default()
    }
}

/// The type of an attribute only activity lists have (None: as for workflows).
pub fn attribute_type(name: &str) -> Option<IndexedValueType> {
    matches!(name, "ActivityId" | "ActivityType").then_some(IndexedValueType::Keyword)
}

/// A standalone activity execution as visibility queries see it: `ActivityId` and
/// `ActivityType` in place of the workflow's, its status, queue and times, and its search
/// attributes.
pub struct ActivityRecord<'a> {
    pub run: &'a Run,
    pub custom: &'a BTreeMap<String, i32>,
}

impl Record for ActivityRecord<'_> {
    fn get(&self, name: &str) -> Option<Value> {
        let run = self.run;
        let keyword = |s: &str| (!s.is_empty()).then(|| Value::Str(s.to_string()));
        match name {
            "ActivityId" => keyword(&standalone(run)?.activity_id),
            "ActivityType" => keyword(&activity_of(run)?.activity_type.as_ref()?.name),
            "TaskQueue" => keyword(&activity_of(run)?.task_queue),
            // What only a workflow has.
            "WorkflowId" | "WorkflowType" | "HistoryLength" | "HistorySizeBytes"
            | "ParentWorkflowId" | "ParentRunId" | "RootWorkflowId" | "RootRunId" => None,
            _ => RunRecord {
                ms: &run.ms,
                custom: self.custom,
            }
            .get(name),
        }
    }
}
