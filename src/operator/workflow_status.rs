//! Reads an execution from the engine and turns it into a `Workflow`'s bounded status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tonic::{Code, Status};

use super::conditions;
use super::conditions::{Standing, State};
use super::crd::workflow::{
    DesiredState, FailureSummary, WorkflowPhase, WorkflowSpec, WorkflowStatus,
};
use super::frontend::Frontend;
use super::translate;
use super::workflow_actions::Target;
use crate::proto::api::enums::v1::{HistoryEventFilterType, WorkflowExecutionStatus};
use crate::proto::api::history::v1::HistoryEvent;
use crate::proto::api::history::v1::history_event::Attributes;
use crate::proto::api::workflowservice::v1::{
    DescribeWorkflowExecutionRequest, DescribeWorkflowExecutionResponse,
    GetWorkflowExecutionHistoryRequest,
};

/// What the engine says about the resource's execution right now.
pub struct Observation {
    pub describe: DescribeWorkflowExecutionResponse,
    pub attempt: i32,
    pub close_event: Option<HistoryEvent>,
}

/// The current run of the resource's chain, `None` if the engine has no such execution.
pub async fn observe<F: Frontend>(
    frontend: &F,
    target: &Target,
    known: &WorkflowStatus,
) -> Result<Option<Observation>, Status> {
    let mut describe = match describe_run(frontend, target, "").await? {
        Some(d) => d,
        None => return Ok(None),
    };
    // The id may have been reused by an unrelated chain; keep following our own last run.
    let first_run = info_field(&describe, |i| i.first_run_id.clone());
    if let (Some(ours), Some(run)) = (&known.first_run_id, &known.run_id)
        && !first_run.is_empty()
        && &first_run != ours
    {
        match describe_run(frontend, target, run).await? {
            Some(d) => describe = d,
            None => return Ok(None),
        }
    }
    let run_id = info_field(&describe, |i| {
        i.execution
            .as_ref()
            .map(|e| e.run_id.clone())
            .unwrap_or_default()
    });
    let attempt = match (&known.run_id, known.attempt) {
        (Some(r), Some(a)) if *r == run_id => a,
        _ => history_event(
            frontend,
            target,
            &run_id,
            HistoryEventFilterType::AllEvent,
            1,
        )
        .await?
        .and_then(|e| match e.attributes {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => Some(a.attempt),
            _ => None,
        })
        .unwrap_or(1),
    };
    let status = info_field(&describe, |i| i.status);
    let close_event = if status != WorkflowExecutionStatus::Running as i32
        && status != WorkflowExecutionStatus::Unspecified as i32
    {
        history_event(
            frontend,
            target,
            &run_id,
            HistoryEventFilterType::CloseEvent,
            0,
        )
        .await?
    } else {
        None
    };
    Ok(Some(Observation {
        describe,
        attempt,
        close_event,
    }))
}

fn info_field<T: Default>(
    d: &DescribeWorkflowExecutionResponse,
    f: impl Fn(&crate::proto::api::workflow::v1::WorkflowExecutionInfo) -> T,
) -> T {
    d.workflow_execution_info
        .as_ref()
        .map(f)
        .unwrap_or_default()
}

async fn describe_run<F: Frontend>(
    frontend: &F,
    target: &Target,
    run_id: &str,
) -> Result<Option<DescribeWorkflowExecutionResponse>, Status> {
    let req = DescribeWorkflowExecutionRequest {
        namespace: target.namespace.clone(),
        execution: translate::execution(&target.workflow_id, run_id),
    };
    match frontend.describe_workflow_execution(req).await {
        Ok(d) => Ok(Some(d)),
        Err(s) if s.code() == Code::NotFound => Ok(None),
        Err(s) => Err(s),
    }
}

async fn history_event<F: Frontend>(
    frontend: &F,
    target: &Target,
    run_id: &str,
    filter: HistoryEventFilterType,
    page_size: i32,
) -> Result<Option<HistoryEvent>, Status> {
    let req = GetWorkflowExecutionHistoryRequest {
        namespace: target.namespace.clone(),
        execution: translate::execution(&target.workflow_id, run_id),
        maximum_page_size: page_size,
        history_event_filter_type: filter as i32,
        ..Default::default()
    };
    match frontend.get_workflow_execution_history(req).await {
        Ok(resp) => Ok(resp.history.and_then(|h| h.events.into_iter().next())),
        Err(s) if s.code() == Code::NotFound => Ok(None),
        Err(s) => Err(s),
    }
}

pub fn phase_of(status: i32) -> WorkflowPhase {
    match WorkflowExecutionStatus::try_from(status).unwrap_or(WorkflowExecutionStatus::Unspecified)
    {
        WorkflowExecutionStatus::Unspecified => WorkflowPhase::Pending,
        WorkflowExecutionStatus::Running => WorkflowPhase::Running,
        WorkflowExecutionStatus::Completed => WorkflowPhase::Completed,
        WorkflowExecutionStatus::Failed => WorkflowPhase::Failed,
        WorkflowExecutionStatus::Canceled => WorkflowPhase::Canceled,
        WorkflowExecutionStatus::Terminated => WorkflowPhase::Terminated,
        WorkflowExecutionStatus::ContinuedAsNew => WorkflowPhase::ContinuedAsNew,
        WorkflowExecutionStatus::TimedOut => WorkflowPhase::TimedOut,
        WorkflowExecutionStatus::Paused => WorkflowPhase::Running,
    }
}

/// Folds an observation into the status the resource should show.
pub fn fold(
    mut status: WorkflowStatus,
    obs: &Observation,
    generation: Option<i64>,
    now: &Time,
    now_millis: i64,
) -> WorkflowStatus {
    let info = obs
        .describe
        .workflow_execution_info
        .clone()
        .unwrap_or_default();
    let phase = phase_of(info.status);
    status.phase = Some(phase);
    if let Some(e) = &info.execution {
        status.run_id = Some(e.run_id.clone());
        status.workflow_id = Some(e.workflow_id.clone());
    }
    if !info.first_run_id.is_empty() {
        status.first_run_id = Some(info.first_run_id.clone());
    }
    status.attempt = Some(obs.attempt);
    let start = info.start_time.as_ref().map(translate::millis);
    let close = info.close_time.as_ref().map(translate::millis);
    status.start_time = info.start_time.as_ref().map(translate::rfc3339);
    status.close_time = info.close_time.as_ref().map(translate::rfc3339);
    status.duration =
        start.map(|s| crate::go_duration::format_millis(close.unwrap_or(now_millis) - s));
    status.history_length = Some(info.history_length);
    status.pending_activities = Some(obs.describe.pending_activities.len() as i32);
    let (result, truncated, failure) = outcome(obs.close_event.as_ref());
    status.result = result;
    status.result_truncated = truncated;
    status.failure = failure;

    let g = generation;
    let c = &mut status.conditions;
    conditions::set(
        c,
        "Accepted",
        true,
        "Started",
        "the engine accepted the workflow",
        g,
        now,
    );
    let running = phase == WorkflowPhase::Running;
    conditions::set(
        c,
        "Running",
        running,
        if running { "Running" } else { "Closed" },
        "",
        g,
        now,
    );
    for (type_, when) in [
        ("Completed", WorkflowPhase::Completed),
        ("Failed", WorkflowPhase::Failed),
        ("Canceled", WorkflowPhase::Canceled),
        ("Terminated", WorkflowPhase::Terminated),
        ("TimedOut", WorkflowPhase::TimedOut),
    ] {
        let hit = phase == when;
        let message = if hit {
            status
                .failure
                .as_ref()
                .map(|f| f.message.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        conditions::set(
            &mut status.conditions,
            type_,
            hit,
            if hit { type_ } else { "NotYet" },
            &message,
            g,
            now,
        );
    }
    status.observed_generation = generation;
    status
}

/// Where the workflow stands against its spec: ready once it completed (or stopped the way the
/// spec asked; a cron workflow once it is scheduled), progressing while it starts or runs,
/// stalled when it was refused or ended in a way nobody asked for (a Job's Failed, in effect).
pub fn standing(spec: &WorkflowSpec, status: &WorkflowStatus) -> Standing {
    if let Some(refused) = conditions::refusal(&status.conditions) {
        return refused;
    }
    let failure = status.failure.as_ref().map_or("", |f| f.message.as_str());
    let asked = spec.desired_state.unwrap_or_default();
    let (state, reason, message) = match status.phase.unwrap_or(WorkflowPhase::Pending) {
        WorkflowPhase::Pending => (State::Progressing, "Starting", "not started yet"),
        WorkflowPhase::Running if spec.cron_schedule.is_some() => (
            State::Ready,
            "Scheduled",
            "the cron workflow runs on its schedule",
        ),
        WorkflowPhase::Running if asked != DesiredState::Running => (
            State::Progressing,
            "Stopping",
            "the spec asks the workflow to stop",
        ),
        WorkflowPhase::Running | WorkflowPhase::ContinuedAsNew => {
            (State::Progressing, "Running", "the workflow is running")
        }
        WorkflowPhase::Completed => (State::Ready, "Completed", ""),
        WorkflowPhase::Canceled if asked == DesiredState::Canceled => {
            (State::Ready, "Canceled", "canceled as the spec asks")
        }
        WorkflowPhase::Terminated if asked == DesiredState::Terminated => {
            (State::Ready, "Terminated", "terminated as the spec asks")
        }
        phase => (State::Stalled, phase.as_str(), failure),
    };
    Standing::new(state, reason, message)
}

fn outcome(
    close: Option<&HistoryEvent>,
) -> (Option<serde_json::Value>, bool, Option<FailureSummary>) {
    let Some(attrs) = close.and_then(|e| e.attributes.as_ref()) else {
        return (None, false, None);
    };
    match attrs {
        Attributes::WorkflowExecutionCompletedEventAttributes(a) => {
            let (value, truncated) = translate::payloads_to_status(a.result.as_ref());
            (value, truncated, None)
        }
        Attributes::WorkflowExecutionFailedEventAttributes(a) => (
            None,
            false,
            Some(
                a.failure
                    .as_ref()
                    .map(translate::failure_summary)
                    .unwrap_or_else(|| summary("workflow failed", "WorkflowFailed")),
            ),
        ),
        Attributes::WorkflowExecutionTimedOutEventAttributes(_) => (
            None,
            false,
            Some(summary("workflow timed out", "TimeoutError")),
        ),
        Attributes::WorkflowExecutionTerminatedEventAttributes(a) => {
            let reason = if a.reason.is_empty() {
                "terminated"
            } else {
                &a.reason
            };
            (None, false, Some(summary(reason, "Terminated")))
        }
        Attributes::WorkflowExecutionCanceledEventAttributes(_) => {
            (None, false, Some(summary("workflow canceled", "Canceled")))
        }
        _ => (None, false, None),
    }
}

fn summary(message: &str, type_: &str) -> FailureSummary {
    FailureSummary {
        message: message.to_string(),
        type_: Some(type_.to_string()),
        stack_trace: None,
        truncated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> WorkflowSpec {
        let mut json = serde_json::json!({"workflowType": "Hello", "taskQueue": "q"});
        json.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(json).unwrap()
    }

    fn in_phase(phase: WorkflowPhase) -> WorkflowStatus {
        WorkflowStatus {
            phase: Some(phase),
            ..Default::default()
        }
    }

    #[test]
    fn standing_follows_the_goal_of_the_spec() {
        use WorkflowPhase::*;
        let plain = spec(serde_json::json!({}));
        let cancel = spec(serde_json::json!({"desiredState": "Canceled"}));
        let cron = spec(serde_json::json!({"cronSchedule": "@hourly"}));
        let cases = [
            (&plain, Pending, State::Progressing),
            (&plain, Running, State::Progressing),
            (&plain, Completed, State::Ready),
            (&plain, Failed, State::Stalled),
            (&plain, TimedOut, State::Stalled),
            (&plain, Canceled, State::Stalled),
            (&cancel, Running, State::Progressing),
            (&cancel, Canceled, State::Ready),
            (&cancel, Terminated, State::Stalled),
            (&cron, Running, State::Ready),
        ];
        for (spec, phase, want) in cases {
            let got = standing(spec, &in_phase(phase)).state;
            assert_eq!(got, want, "{phase:?} with {:?}", spec.desired_state);
        }
    }

    #[test]
    fn a_refused_workflow_is_stalled_with_the_refusal() {
        let t = Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap());
        let mut status = in_phase(WorkflowPhase::Pending);
        let c = &mut status.conditions;
        conditions::set(c, "Accepted", false, "InvalidSpec", "bad cron", None, &t);
        let got = standing(&spec(serde_json::json!({})), &status);
        assert_eq!(
            got,
            Standing::new(State::Stalled, "InvalidSpec", "bad cron")
        );
    }
}
