//! ResetWorkflowExecution: a new run that shares its history with an old one up to a workflow
//! task, as if that task had failed, and goes on from there with the signals and updates the
//! old run received after that point. The workflow's current run, if still open, is
//! terminated. All of it is one operation (one transaction).
//!
//! Also the automatic reset points (the first workflow task each worker build completed),
//! which describe shows and the Web UI offers as reset targets.

// Binary checksums and the reapply type are deprecated in Temporal's API, yet SDKs and the
// CLI still send them and the reset points are keyed by them.
#![allow(deprecated)]

use temporalio_protos::temporal::api::enums::v1::{
    ResetReapplyExcludeType, ResetReapplyType, WorkflowExecutionStatus, WorkflowTaskFailedCause,
};
use temporalio_protos::temporal::api::failure::v1::{Failure, ResetWorkflowFailureInfo, failure};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::history::v1::{
    HistoryEvent, WorkflowTaskFailedEventAttributes, WorkflowTaskStartedEventAttributes,
};
use temporalio_protos::temporal::api::update::v1::Request as UpdateRequest;
use temporalio_protos::temporal::api::workflow::v1::{ResetPointInfo, ResetPoints};
use temporalio_protos::temporal::api::workflowservice::v1::{
    ResetWorkflowExecutionRequest, ResetWorkflowExecutionResponse,
    RespondWorkflowTaskCompletedRequest,
};

use super::clock::{dur_millis, ts_from_millis};
use super::state::{MutableState, UpdateInfo};
use super::{ChangeKind, Core, Engine, Error, Result, Run, RunKey};
use temporalio_protos::temporal::api::enums::v1::UpdateWorkflowExecutionLifecycleStage as Stage;

/// Who the events a reset writes name, as Temporal names them.
const RESET_IDENTITY: &str = "history-service";
pub(crate) const TERMINATE_IDENTITY: &str = "history-resetter";
/// Temporal keeps this many automatic reset points per run, the newest.
const MAX_AUTO_RESET_POINTS: usize = 20;

impl Engine {
    pub async fn reset_workflow(
        &self,
        req: ResetWorkflowExecutionRequest,
    ) -> Result<ResetWorkflowExecutionResponse> {
        let exec = req.workflow_execution.clone().unwrap_or_default();
        if exec.workflow_id.is_empty() {
            return Err(Error::InvalidArgument(
                "WorkflowId is not set on request.".into(),
            ));
        }
        let excluded = Excluded::from_request(&req)?;
        self.transact(|core| {
            let run_id = core.reset_run(&req, excluded)?;
            Ok(ResetWorkflowExecutionResponse { run_id })
        })
        .await
    }
}

/// The kinds of events a reset does not carry over from the old run.
#[derive(Clone, Copy, Default)]
struct Excluded {
    signals: bool,
    updates: bool,
}

impl Excluded {
    fn from_request(req: &ResetWorkflowExecutionRequest) -> Result<Self> {
        let mut excluded = Excluded::default();
        match ResetReapplyType::try_from(req.reset_reapply_type) {
            Ok(ResetReapplyType::Unspecified | ResetReapplyType::AllEligible) => {}
            Ok(ResetReapplyType::Signal) => excluded.updates = true,
            Ok(ResetReapplyType::None) => {
                excluded.signals = true;
                excluded.updates = true;
            }
            Err(_) => {
                return Err(Error::InvalidArgument(format!(
                    "unknown reset reapply type: {}",
                    req.reset_reapply_type
                )));
            }
        }
        for kind in &req.reset_reapply_exclude_types {
            match ResetReapplyExcludeType::try_from(*kind) {
                Ok(ResetReapplyExcludeType::Signal) => excluded.signals = true,
                Ok(ResetReapplyExcludeType::Update) => excluded.updates = true,
                Ok(_) => {}
                Err(_) => {
                    return Err(Error::InvalidArgument(format!(
                        "unknown reset reapply exclude type: {kind}"
                    )));
                }
            }
        }
        Ok(excluded)
    }
}

/// What the old run received after the reset point, to be received again by the new one.
#[derive(Default)]
struct Reapplied {
    signals: Vec<HistoryEvent>,
    updates: Vec<UpdateRequest>,
}

impl Reapplied {
    fn collect(later: &[HistoryEvent], buffered: &[HistoryEvent], excluded: Excluded) -> Self {
        let mut out = Reapplied::default();
        for event in later.iter().chain(buffered) {
            match &event.attributes {
                Some(Attributes::WorkflowExecutionSignaledEventAttributes(_))
                    if !excluded.signals =>
                {
                    out.signals.push(event.clone());
                }
                Some(Attributes::WorkflowExecutionUpdateAdmittedEventAttributes(a))
                    if !excluded.updates =>
                {
                    out.updates.extend(a.request.clone());
                }
                Some(Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a))
                    if !excluded.updates =>
                {
                    out.updates.extend(a.accepted_request.clone());
                }
                _ => {}
            }
        }
        out
    }
}

impl Core {
    /// Resets the run the request names (the current run when no run id is given) and
    /// returns the new run's id.
    fn reset_run(
        &mut self,
        req: &ResetWorkflowExecutionRequest,
        excluded: Excluded,
    ) -> Result<String> {
        let exec = req.workflow_execution.clone().unwrap_or_default();
        let base_key = self.resolve_run(&req.namespace, &exec.workflow_id, &exec.run_id)?;
        let current_key = self.resolve_run(&req.namespace, &exec.workflow_id, "")?;
        // A retried reset finds the run it created, by its request id.
        let current = self.run(&current_key)?;
        if !req.request_id.is_empty() && current.ms.start_request_id == req.request_id {
            return Ok(current_key.run_id);
        }
        let base = self.run(&base_key)?;
        let finish = req.workflow_task_finish_event_id;
        if finish <= 1 || finish >= base.ms.next_event_id {
            return Err(Error::InvalidArgument(
                "Workflow task finish ID must be > 1 && <= workflow last event ID.".into(),
            ));
        }
        let mut events: Vec<HistoryEvent> = base.events_from(1).collect();
        let later = events.split_off((finish - 1) as usize);
        let reapplied = Reapplied::collect(&later, &base.ms.buffered, excluded);
        let now = self.now();
        let mut ms = super::rebuild::state_after(&events, now)?;
        let Some(wft) = ms.workflow_task.take() else {
            return Err(Error::InvalidArgument(format!(
                "Can only reset workflow to event ID in range [WorkflowTaskScheduled +1, \
                 WorkflowTaskStarted + 1]: {finish}"
            )));
        };
        let new_key = RunKey {
            run_id: super::clock::run_id_at(now),
            ..base_key.clone()
        };
        identify_new_run(&mut ms, &new_key, &req.request_id, now);
        for (id, point) in reset_points_of(&events, &new_key.run_id) {
            add_reset_point(&mut ms, point, id);
        }
        if let Ok(base) = self.run_mut(&base_key) {
            base.ms.reset_run_id = new_key.run_id.clone();
            self.changed(&base_key);
        }
        if self.run(&current_key)?.is_open() {
            // Children the new run waits for stay with it: the parent-close policy of the
            // terminated run applies only to the children initiated after the reset point
            // (the new run starts those again).
            if current_key == base_key
                && let Ok(current) = self.run_mut(&current_key)
            {
                current
                    .ms
                    .children
                    .retain(|id, _| !ms.children.contains_key(id));
            }
            self.terminate_run(&current_key, &req.reason, None, TERMINATE_IDENTITY)?;
        }
        let mut run = Run::new(ms);
        run.staged = events;
        fail_task_at_reset_point(&mut run, *wft, &base_key.run_id, &req.reason, now);
        reapply(&mut run, reapplied, now);
        keep_child_outcomes(&mut run, &later, now);
        run.changes.push(ChangeKind::Started);
        self.runs.insert(new_key.clone(), Box::new(run));
        self.current.insert(
            (new_key.namespace.clone(), new_key.workflow_id.clone()),
            new_key.run_id.clone(),
        );
        self.changed(&new_key);
        self.rearm_run(&new_key);
        self.schedule_workflow_task(&new_key, 1);
        tracing::info!(workflow_id = %new_key.workflow_id, base_run = %base_key.run_id,
            new_run = %new_key.run_id, finish, "workflow reset");
        Ok(new_key.run_id)
    }
}

/// Makes the rebuilt state the new run's: its ids, a fresh start, and timeouts counted from
/// now (Temporal restarts both the run and the execution timeout at a reset).
fn identify_new_run(ms: &mut MutableState, key: &RunKey, request_id: &str, now: i64) {
    ms.namespace = key.namespace.clone();
    ms.workflow_id = key.workflow_id.clone();
    ms.run_id = key.run_id.clone();
    ms.status = WorkflowExecutionStatus::Running as i32;
    ms.start_time = Some(ts_from_millis(now));
    ms.execution_time = Some(ts_from_millis(now));
    ms.last_reset_time = Some(ts_from_millis(now));
    ms.start_request_id = if request_id.is_empty() {
        uuid::Uuid::new_v4().to_string()
    } else {
        request_id.to_string()
    };
    let started = ms.started.as_deref().cloned().unwrap_or_default();
    let run_timeout = dur_millis(&started.workflow_run_timeout);
    let execution_timeout = dur_millis(&started.workflow_execution_timeout);
    let expiration = match (run_timeout, execution_timeout) {
        (0, 0) => 0,
        (0, e) => now + e,
        (r, 0) => now + r,
        (r, e) => now + r.min(e),
    };
    ms.run_expiration_time = (expiration > 0).then(|| ts_from_millis(expiration));
}

/// Children initiated before the reset point and not closed there stay the new run's: what
/// the old run learned of them after the point (started, closed, or failed to start) is
/// recorded again, and a child still running reports its close to the new run (the old
/// run's `reset_run_id` leads there, see `children.rs`).
fn keep_child_outcomes(run: &mut Run, later: &[HistoryEvent], now: i64) {
    for event in later {
        let Some(attrs) = &event.attributes else {
            continue;
        };
        let Some(initiated) = super::events::child_initiated_id(attrs) else {
            continue;
        };
        let Some(child) = run.ms.children.get(&initiated).cloned() else {
            continue;
        };
        let mut attrs = attrs.clone();
        super::events::set_child_started_id(&mut attrs, child.started_event_id);
        let started = matches!(
            attrs,
            Attributes::ChildWorkflowExecutionStartedEventAttributes(_)
        );
        let id = run.append(now, attrs);
        if started {
            if let Some(child) = run.ms.children.get_mut(&initiated) {
                child.started_event_id = id;
                child.run_id = super::events::child_run_id(event).unwrap_or_default();
            }
        } else {
            run.ms.children.remove(&initiated);
        }
    }
}

/// The workflow task in progress at the reset point fails with cause `ResetWorkflow` (started
/// first if it was only scheduled): the worker replays the shared history and goes on from
/// here, and the SDKs reseed workflow randomness from the new run id it names.
fn fail_task_at_reset_point(
    run: &mut Run,
    wft: super::state::WorkflowTaskInfo,
    base_run_id: &str,
    reason: &str,
    now: i64,
) {
    let started_event_id = if wft.started_event_id != 0 {
        wft.started_event_id
    } else {
        run.append(
            now,
            Attributes::WorkflowTaskStartedEventAttributes(WorkflowTaskStartedEventAttributes {
                scheduled_event_id: wft.scheduled_event_id,
                identity: RESET_IDENTITY.into(),
                request_id: uuid::Uuid::new_v4().to_string(),
                history_size_bytes: run.ms.history_size_bytes,
                ..Default::default()
            }),
        )
    };
    let new_run_id = run.ms.run_id.clone();
    run.append(
        now,
        Attributes::WorkflowTaskFailedEventAttributes(WorkflowTaskFailedEventAttributes {
            scheduled_event_id: wft.scheduled_event_id,
            started_event_id,
            cause: WorkflowTaskFailedCause::ResetWorkflow as i32,
            failure: Some(Failure {
                message: reason.to_string(),
                failure_info: Some(failure::FailureInfo::ResetWorkflowFailureInfo(
                    ResetWorkflowFailureInfo::default(),
                )),
                ..Default::default()
            }),
            identity: RESET_IDENTITY.into(),
            base_run_id: base_run_id.to_string(),
            new_run_id,
            ..Default::default()
        }),
    );
}

/// Signals are received again as events; updates are admitted again and delivered to the
/// worker with the new run's first workflow task.
fn reapply(run: &mut Run, reapplied: Reapplied, now: i64) {
    for signal in reapplied.signals {
        if let Some(attrs) = signal.attributes {
            run.ms.signals_received += 1;
            run.append(now, attrs);
        }
    }
    for request in reapplied.updates {
        let id = request
            .meta
            .as_ref()
            .map(|m| m.update_id.clone())
            .unwrap_or_default();
        if run.ms.updates.contains_key(&id) {
            continue;
        }
        run.ms.updates.insert(
            id,
            UpdateInfo {
                request: Some(request),
                stage: Stage::Admitted as i32,
                ..Default::default()
            },
        );
        run.updates_dirty = true;
    }
}

/// The automatic reset points the shared history holds, as the new run's own.
fn reset_points_of(events: &[HistoryEvent], run_id: &str) -> Vec<(i64, ResetPointInfo)> {
    events
        .iter()
        .filter_map(|e| match &e.attributes {
            #[allow(deprecated)]
            Some(Attributes::WorkflowTaskCompletedEventAttributes(a)) => Some((
                e.event_id,
                ResetPointInfo {
                    binary_checksum: a.binary_checksum.clone(),
                    build_id: a
                        .worker_version
                        .as_ref()
                        .map(|v| v.build_id.clone())
                        .unwrap_or_default(),
                    run_id: run_id.to_string(),
                    create_time: e.event_time,
                    resettable: true,
                    ..Default::default()
                },
            )),
            _ => None,
        })
        .collect()
}

/// Records `point` (completed at event `completed_id`) unless its build already has one.
pub(crate) fn add_reset_point(ms: &mut MutableState, mut point: ResetPointInfo, completed_id: i64) {
    let points = ms
        .auto_reset_points
        .get_or_insert_with(ResetPoints::default);
    if points
        .points
        .iter()
        .any(|p| p.binary_checksum == point.binary_checksum && p.build_id == point.build_id)
    {
        return;
    }
    point.first_workflow_task_completed_id = completed_id;
    // Most runs keep one point for life: no spare room (a doubling Vec would hold four).
    points.points.reserve_exact(1);
    points.points.push(point);
    if points.points.len() > MAX_AUTO_RESET_POINTS {
        points.points.remove(0);
    }
}

/// The reset point a completed workflow task makes: resettable unless signals or
/// cancellations to other workflows are pending (a reset refuses those).
pub(crate) fn reset_point_of(
    ms: &MutableState,
    completion: &RespondWorkflowTaskCompletedRequest,
    now: i64,
) -> ResetPointInfo {
    let build_id = completion
        .deployment_options
        .as_ref()
        .map(|d| d.build_id.as_str())
        .or(completion
            .worker_version_stamp
            .as_ref()
            .map(|v| v.build_id.as_str()))
        .unwrap_or_default();
    use super::state::TransferKind as Kind;
    let external_pending = ms
        .outbox
        .iter()
        .any(|t| matches!(t.kind, Some(Kind::Signal(_) | Kind::Cancel(_))));
    ResetPointInfo {
        binary_checksum: completion.binary_checksum.clone(),
        build_id: build_id.to_string(),
        run_id: ms.run_id.clone(),
        create_time: Some(ts_from_millis(now)),
        resettable: !external_pending,
        ..Default::default()
    }
}
