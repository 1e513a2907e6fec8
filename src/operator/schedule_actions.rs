//! What a `Schedule` resource asks of the engine: the schedule kept equal to the spec, each
//! trigger and backfill entry run once. Shared by the controller and `durin apply`.

use tonic::{Code, Status};

use super::crd::schedule::{
    BackfillSpec, CalendarSpec, OverlapPolicy, Schedule as ScheduleResource, TriggerSpec,
};
use super::frontend::Frontend;
use super::translate::{self, IDENTITY, InvalidSpec};
use super::workflow_actions::{StartError, classify};
use crate::proto::api::common::v1::{Header, SearchAttributes, WorkflowType};
use crate::proto::api::enums::v1::ScheduleOverlapPolicy;
use crate::proto::api::schedule::v1::{
    self as sched, BackfillRequest, IntervalSpec, ScheduleAction, SchedulePatch, SchedulePolicies,
    ScheduleState, TriggerImmediatelyRequest, schedule_action,
};
use crate::proto::api::taskqueue::v1::TaskQueue;
use crate::proto::api::workflow::v1::NewWorkflowExecutionInfo;
use crate::proto::api::workflowservice::v1::*;

/// Where a resource's schedule lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScheduleTarget {
    pub namespace: String,
    pub schedule_id: String,
}

impl ScheduleTarget {
    pub fn of(s: &ScheduleResource) -> Self {
        let k8s_ns = s
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = s.metadata.name.clone().unwrap_or_default();
        Self {
            namespace: s.spec.namespace.clone().unwrap_or(k8s_ns),
            schedule_id: s.spec.schedule_id.clone().unwrap_or(name),
        }
    }
}

pub fn overlap(p: Option<OverlapPolicy>) -> i32 {
    (match p {
        None => ScheduleOverlapPolicy::Unspecified,
        Some(OverlapPolicy::Skip) => ScheduleOverlapPolicy::Skip,
        Some(OverlapPolicy::BufferOne) => ScheduleOverlapPolicy::BufferOne,
        Some(OverlapPolicy::BufferAll) => ScheduleOverlapPolicy::BufferAll,
        Some(OverlapPolicy::CancelOther) => ScheduleOverlapPolicy::CancelOther,
        Some(OverlapPolicy::TerminateOther) => ScheduleOverlapPolicy::TerminateOther,
        Some(OverlapPolicy::AllowAll) => ScheduleOverlapPolicy::AllowAll,
    }) as i32
}

fn time(
    field: &str,
    value: &Option<String>,
) -> Result<Option<prost_wkt_types::Timestamp>, InvalidSpec> {
    let Some(text) = value else { return Ok(None) };
    let t = chrono::DateTime::parse_from_rfc3339(text).map_err(|_| {
        InvalidSpec(format!(
            "{field}: {text:?} is not an RFC 3339 time (like 2026-01-31T09:00:00Z)"
        ))
    })?;
    Ok(Some(prost_wkt_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }))
}

fn calendar(c: &CalendarSpec) -> sched::CalendarSpec {
    let f = |v: &Option<String>| v.clone().unwrap_or_default();
    sched::CalendarSpec {
        second: f(&c.second),
        minute: f(&c.minute),
        hour: f(&c.hour),
        day_of_month: f(&c.day_of_month),
        month: f(&c.month),
        year: f(&c.year),
        day_of_week: f(&c.day_of_week),
        comment: f(&c.comment),
    }
}

/// The engine schedule a resource stands for.
pub fn schedule_proto(s: &ScheduleResource) -> Result<sched::Schedule, InvalidSpec> {
    let times = &s.spec.schedule;
    let mut intervals = Vec::new();
    for (i, iv) in times.intervals.iter().enumerate() {
        intervals.push(IntervalSpec {
            interval: translate::duration(
                &format!("schedule.intervals[{i}].every"),
                &Some(iv.every.clone()),
            )?,
            phase: translate::duration(&format!("schedule.intervals[{i}].offset"), &iv.offset)?,
        });
    }
    #[allow(deprecated)]
    let spec = sched::ScheduleSpec {
        cron_string: times.cron_expressions.clone(),
        interval: intervals,
        calendar: times.calendars.iter().map(calendar).collect(),
        exclude_calendar: times.exclude_calendars.iter().map(calendar).collect(),
        start_time: time("schedule.startAt", &times.start_at)?,
        end_time: time("schedule.endAt", &times.end_at)?,
        jitter: translate::duration("schedule.jitter", &times.jitter)?,
        timezone_name: times.timezone.clone().unwrap_or_default(),
        ..Default::default()
    };
    let t = &s.spec.action.start_workflow;
    let name = s.metadata.name.clone().unwrap_or_default();
    let start = translate::start_request("", t.workflow_id.as_deref().unwrap_or(&name), "", t)?;
    let action = NewWorkflowExecutionInfo {
        workflow_id: start.workflow_id,
        workflow_type: Some(WorkflowType {
            name: t.workflow_type.clone(),
        }),
        task_queue: Some(TaskQueue {
            name: t.task_queue.clone(),
            ..Default::default()
        }),
        input: start.input,
        workflow_execution_timeout: start.workflow_execution_timeout,
        workflow_run_timeout: start.workflow_run_timeout,
        workflow_task_timeout: start.workflow_task_timeout,
        retry_policy: start.retry_policy,
        memo: translate::with_resource_memo(start.memo, "Schedule", &s.metadata),
        search_attributes: start
            .search_attributes
            .or(Some(SearchAttributes::default()))
            .filter(|s| !s.indexed_fields.is_empty()),
        header: Some(Header::default()),
        ..Default::default()
    };
    let policy = s.spec.policy.clone().unwrap_or_default();
    let state = s.spec.state.clone().unwrap_or_default();
    Ok(sched::Schedule {
        spec: Some(spec),
        action: Some(ScheduleAction {
            action: Some(schedule_action::Action::StartWorkflow(action)),
        }),
        policies: Some(SchedulePolicies {
            overlap_policy: overlap(policy.overlap),
            catchup_window: translate::duration("policy.catchupWindow", &policy.catchup_window)?,
            pause_on_failure: policy.pause_on_failure.unwrap_or(false),
            ..Default::default()
        }),
        state: Some(ScheduleState {
            notes: state.note.unwrap_or_default(),
            paused: state.paused.unwrap_or(false),
            limited_actions: state.limited_actions.unwrap_or(false),
            remaining_actions: state.remaining_actions.unwrap_or(0),
        }),
    })
}

pub enum Ensured {
    Created,
    Updated,
}

/// Creates the schedule, or updates it to the spec when it exists.
pub async fn ensure<F: Frontend>(
    frontend: &F,
    target: &ScheduleTarget,
    request_id: &str,
    resource: &ScheduleResource,
) -> Result<Ensured, StartError> {
    let schedule = schedule_proto(resource)?;
    frontend
        .ensure_namespace(&target.namespace)
        .await
        .map_err(classify)?;
    let existing = frontend
        .describe_schedule(DescribeScheduleRequest {
            namespace: target.namespace.clone(),
            schedule_id: target.schedule_id.clone(),
        })
        .await;
    match existing {
        Err(s) if s.code() == Code::NotFound => {
            let created = frontend
                .create_schedule(CreateScheduleRequest {
                    namespace: target.namespace.clone(),
                    schedule_id: target.schedule_id.clone(),
                    schedule: Some(schedule),
                    identity: IDENTITY.into(),
                    request_id: request_id.to_string(),
                    ..Default::default()
                })
                .await;
            match created {
                Ok(_) => Ok(Ensured::Created),
                // Created by an earlier attempt whose reply was lost.
                Err(s) if s.code() == Code::AlreadyExists => Ok(Ensured::Updated),
                Err(s) => Err(classify(s)),
            }
        }
        Err(s) => Err(classify(s)),
        Ok(current) => {
            frontend
                .update_schedule(UpdateScheduleRequest {
                    namespace: target.namespace.clone(),
                    schedule_id: target.schedule_id.clone(),
                    schedule: Some(schedule),
                    conflict_token: current.conflict_token,
                    identity: IDENTITY.into(),
                    request_id: request_id.to_string(),
                    ..Default::default()
                })
                .await
                .map_err(classify)?;
            Ok(Ensured::Updated)
        }
    }
}

async fn patch<F: Frontend>(
    frontend: &F,
    target: &ScheduleTarget,
    patch: SchedulePatch,
) -> Result<(), Status> {
    frontend
        .patch_schedule(PatchScheduleRequest {
            namespace: target.namespace.clone(),
            schedule_id: target.schedule_id.clone(),
            patch: Some(patch),
            identity: IDENTITY.into(),
            request_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .map(|_| ())
}

pub async fn trigger<F: Frontend>(
    frontend: &F,
    target: &ScheduleTarget,
    t: &TriggerSpec,
) -> Result<(), Status> {
    patch(
        frontend,
        target,
        SchedulePatch {
            trigger_immediately: Some(TriggerImmediatelyRequest {
                overlap_policy: overlap(t.overlap),
                scheduled_time: None,
            }),
            ..Default::default()
        },
    )
    .await
}

pub async fn backfill<F: Frontend>(
    frontend: &F,
    target: &ScheduleTarget,
    b: &BackfillSpec,
) -> Result<(), InvalidOrStatus> {
    let start =
        time("backfills[].startAt", &Some(b.start_at.clone())).map_err(InvalidOrStatus::Invalid)?;
    let end =
        time("backfills[].endAt", &Some(b.end_at.clone())).map_err(InvalidOrStatus::Invalid)?;
    patch(
        frontend,
        target,
        SchedulePatch {
            backfill_request: vec![BackfillRequest {
                start_time: start,
                end_time: end,
                overlap_policy: overlap(b.overlap),
            }],
            ..Default::default()
        },
    )
    .await
    .map_err(InvalidOrStatus::Status)
}

#[derive(Debug, thiserror::Error)]
pub enum InvalidOrStatus {
    #[error(transparent)]
    Invalid(InvalidSpec),
    #[error("{}", .0.message())]
    Status(Status),
}

pub async fn delete<F: Frontend>(frontend: &F, target: &ScheduleTarget) -> Result<(), Status> {
    match frontend
        .delete_schedule(DeleteScheduleRequest {
            namespace: target.namespace.clone(),
            schedule_id: target.schedule_id.clone(),
            identity: IDENTITY.into(),
        })
        .await
    {
        Err(s) if s.code() != Code::NotFound => Err(s),
        _ => Ok(()),
    }
}

pub async fn describe<F: Frontend>(
    frontend: &F,
    target: &ScheduleTarget,
) -> Result<Option<DescribeScheduleResponse>, Status> {
    match frontend
        .describe_schedule(DescribeScheduleRequest {
            namespace: target.namespace.clone(),
            schedule_id: target.schedule_id.clone(),
        })
        .await
    {
        Ok(d) => Ok(Some(d)),
        Err(s) if s.code() == Code::NotFound => Ok(None),
        Err(s) => Err(s),
    }
}
