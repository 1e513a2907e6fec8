//! Rebuilds a run's mutable state from a prefix of its history: what a reset starts from.
//!
//! Durin keeps each run's mutable state beside its history and never derives one from the
//! other, except here. A reset copies the events before its reset point into a new run and
//! needs the state they imply: the workflow task in progress, pending activities and timers,
//! updates, signals counted, memo and search attributes, children initiated and not yet
//! closed (the reset reconnects them, see `reset.rs`). Signals and cancellations sent to
//! other workflows and still pending at the reset point are refused rather than half
//! rebuilt.

use std::collections::BTreeSet;

use prost::Message;
use temporalio_protos::temporal::api::enums::v1::UpdateWorkflowExecutionLifecycleStage as Stage;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;

use super::clock::{dur_millis, opt_ts_millis, ts_from_millis};
use super::commands::{merge_memo, merge_search_attributes};
use super::state::{
    ActivityInfo, ChildInfo, MutableState, TimerInfo, UpdateInfo, WorkflowTaskInfo,
};
use super::{Error, Result};

/// Why a history prefix cannot be rebuilt into a run that resumes.
fn refuse(message: &str) -> Error {
    Error::FailedPrecondition(message.to_string())
}

/// The state a run has after `events` (its first events, in order), as of `now`: activities
/// pending then are scheduled again from `now` with attempt 1, timers keep their fire times.
/// Identity fields (namespace, ids, times) are left for the caller.
pub(crate) fn state_after(events: &[HistoryEvent], now: i64) -> Result<MutableState> {
    let mut ms = MutableState::default();
    let mut external = BTreeSet::new();
    let mut nexus = BTreeSet::new();
    for event in events {
        apply(&mut ms, &mut external, event, now);
        pending_nexus_operations(&mut nexus, event);
        ms.history_size_bytes += event.encoded_len() as i64;
        ms.next_event_id = event.event_id + 1;
    }
    if ms.started.is_none() {
        return Err(Error::InvalidArgument(
            "the history to reset has no WorkflowExecutionStarted event".into(),
        ));
    }
    if !external.is_empty() {
        return Err(refuse(
            "WorkflowResetter encountered pending signal or cancel requests to other \
             workflows: reset to a point after they were delivered.",
        ));
    }
    if !nexus.is_empty() {
        return Err(refuse(
            "Durin cannot yet reset to a point where Nexus operations are pending: reset to a \
             point after they ended.",
        ));
    }
    Ok(ms)
}

/// Tracks the Nexus operations scheduled and not yet ended.
fn pending_nexus_operations(pending: &mut BTreeSet<i64>, event: &HistoryEvent) {
    if let Some(Attributes::NexusOperationScheduledEventAttributes(_)) = &event.attributes {
        pending.insert(event.event_id);
    } else if let Some(sched) = super::events::nexus_operation_ended(event) {
        pending.remove(&sched);
    }
}

fn apply(ms: &mut MutableState, external: &mut BTreeSet<i64>, event: &HistoryEvent, now: i64) {
    let at = opt_ts_millis(&event.event_time);
    let Some(attrs) = &event.attributes else {
        return;
    };
    match attrs {
        Attributes::WorkflowExecutionStartedEventAttributes(a) => {
            ms.memo = a.memo.clone();
            ms.search_attributes = a.search_attributes.clone();
            ms.started = Some(Box::new(a.clone()));
            ms.callbacks = super::nexus::callbacks::records(&a.completion_callbacks, "", at);
        }
        // Starts that attached to the running workflow: their callbacks and request ids.
        Attributes::WorkflowExecutionOptionsUpdatedEventAttributes(a) => {
            let attached = &a.attached_request_id;
            ms.callbacks.extend(super::nexus::callbacks::records(
                &a.attached_completion_callbacks,
                attached,
                at,
            ));
            if !attached.is_empty() {
                ms.attached_request_ids.push(attached.clone());
            }
        }
        Attributes::WorkflowTaskScheduledEventAttributes(a) => {
            ms.workflow_task = Some(Box::new(WorkflowTaskInfo {
                scheduled_event_id: event.event_id,
                attempt: a.attempt.max(1),
                scheduled_time: event.event_time,
                start_to_close_timeout: a.start_to_close_timeout,
                ..Default::default()
            }));
        }
        Attributes::WorkflowTaskStartedEventAttributes(a) => {
            if let Some(wft) = &mut ms.workflow_task {
                wft.started_event_id = event.event_id;
                wft.started_time = event.event_time;
                wft.identity = a.identity.clone();
                wft.request_id = a.request_id.clone();
            }
        }
        Attributes::WorkflowTaskCompletedEventAttributes(a) => {
            ms.workflow_task = None;
            ms.last_completed_wft_started_id = a.started_event_id;
        }
        Attributes::WorkflowTaskFailedEventAttributes(_)
        | Attributes::WorkflowTaskTimedOutEventAttributes(_) => ms.workflow_task = None,
        Attributes::ActivityTaskScheduledEventAttributes(a) => {
            ms.activities.insert(
                event.event_id,
                ActivityInfo {
                    scheduled_event_id: event.event_id,
                    activity_id: a.activity_id.clone(),
                    activity_type: a.activity_type.clone(),
                    task_queue: a
                        .task_queue
                        .as_ref()
                        .map(|t| t.name.clone())
                        .unwrap_or_default(),
                    header: a.header.clone(),
                    input: a.input.clone(),
                    schedule_to_close_timeout: a.schedule_to_close_timeout,
                    schedule_to_start_timeout: a.schedule_to_start_timeout,
                    start_to_close_timeout: a.start_to_close_timeout,
                    heartbeat_timeout: a.heartbeat_timeout,
                    retry_policy: a.retry_policy.clone(),
                    priority: a.priority.clone(),
                    attempt: 1,
                    first_scheduled_time: Some(ts_from_millis(now)),
                    scheduled_time: Some(ts_from_millis(now)),
                    ..Default::default()
                },
            );
        }
        Attributes::ActivityTaskCancelRequestedEventAttributes(a) => {
            if let Some(info) = ms.activities.get_mut(&a.scheduled_event_id) {
                info.cancel_requested = true;
                info.cancel_requested_event_id = event.event_id;
            }
        }
        Attributes::ActivityTaskCompletedEventAttributes(a) => {
            ms.activities.remove(&a.scheduled_event_id);
        }
        Attributes::ActivityTaskFailedEventAttributes(a) => {
            ms.activities.remove(&a.scheduled_event_id);
        }
        Attributes::ActivityTaskTimedOutEventAttributes(a) => {
            ms.activities.remove(&a.scheduled_event_id);
        }
        Attributes::ActivityTaskCanceledEventAttributes(a) => {
            ms.activities.remove(&a.scheduled_event_id);
        }
        Attributes::TimerStartedEventAttributes(a) => {
            ms.insert_timer(TimerInfo {
                timer_id: a.timer_id.clone(),
                started_event_id: event.event_id,
                fire_time: Some(ts_from_millis(at + dur_millis(&a.start_to_fire_timeout))),
            });
        }
        Attributes::TimerFiredEventAttributes(a) => {
            ms.remove_timer(&a.timer_id);
        }
        Attributes::TimerCanceledEventAttributes(a) => {
            ms.remove_timer(&a.timer_id);
        }
        Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(a) => {
            ms.children.insert(
                event.event_id,
                ChildInfo {
                    initiated_event_id: event.event_id,
                    namespace: a.namespace.clone(),
                    workflow_id: a.workflow_id.clone(),
                    workflow_type: a.workflow_type.clone(),
                    parent_close_policy: a.parent_close_policy,
                    ..Default::default()
                },
            );
        }
        Attributes::ChildWorkflowExecutionStartedEventAttributes(a) => {
            if let Some(child) = ms.children.get_mut(&a.initiated_event_id) {
                child.started_event_id = event.event_id;
                child.run_id = a
                    .workflow_execution
                    .as_ref()
                    .map(|e| e.run_id.clone())
                    .unwrap_or_default();
            }
        }
        Attributes::StartChildWorkflowExecutionFailedEventAttributes(a) => {
            ms.children.remove(&a.initiated_event_id);
        }
        Attributes::ChildWorkflowExecutionCompletedEventAttributes(a) => {
            ms.children.remove(&a.initiated_event_id);
        }
        Attributes::ChildWorkflowExecutionFailedEventAttributes(a) => {
            ms.children.remove(&a.initiated_event_id);
        }
        Attributes::ChildWorkflowExecutionCanceledEventAttributes(a) => {
            ms.children.remove(&a.initiated_event_id);
        }
        Attributes::ChildWorkflowExecutionTimedOutEventAttributes(a) => {
            ms.children.remove(&a.initiated_event_id);
        }
        Attributes::ChildWorkflowExecutionTerminatedEventAttributes(a) => {
            ms.children.remove(&a.initiated_event_id);
        }
        Attributes::SignalExternalWorkflowExecutionInitiatedEventAttributes(_)
        | Attributes::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(_) => {
            external.insert(event.event_id);
        }
        Attributes::ExternalWorkflowExecutionSignaledEventAttributes(a) => {
            external.remove(&a.initiated_event_id);
        }
        Attributes::SignalExternalWorkflowExecutionFailedEventAttributes(a) => {
            external.remove(&a.initiated_event_id);
        }
        Attributes::ExternalWorkflowExecutionCancelRequestedEventAttributes(a) => {
            external.remove(&a.initiated_event_id);
        }
        Attributes::RequestCancelExternalWorkflowExecutionFailedEventAttributes(a) => {
            external.remove(&a.initiated_event_id);
        }
        Attributes::WorkflowExecutionSignaledEventAttributes(_) => ms.signals_received += 1,
        Attributes::WorkflowExecutionCancelRequestedEventAttributes(_) => {
            ms.cancel_requested = true;
        }
        Attributes::UpsertWorkflowSearchAttributesEventAttributes(a) => {
            if let Some(upsert) = &a.search_attributes {
                merge_search_attributes(&mut ms.search_attributes, upsert);
            }
        }
        Attributes::WorkflowPropertiesModifiedEventAttributes(a) => {
            if let Some(upsert) = &a.upserted_memo {
                merge_memo(&mut ms.memo, upsert);
            }
        }
        Attributes::WorkflowExecutionUpdateAdmittedEventAttributes(a) => {
            if let Some(request) = &a.request {
                let id = request.meta.as_ref().map(|m| m.update_id.clone());
                ms.updates.insert(
                    id.unwrap_or_default(),
                    UpdateInfo {
                        request: Some(request.clone()),
                        stage: Stage::Admitted as i32,
                        ..Default::default()
                    },
                );
            }
        }
        Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a) => {
            let info = ms
                .updates
                .entry(a.protocol_instance_id.clone())
                .or_default();
            info.request = a.accepted_request.clone().or(info.request.take());
            info.stage = Stage::Accepted as i32;
            info.accepted_event_id = event.event_id;
            info.delivered_in = 0;
        }
        Attributes::WorkflowExecutionUpdateCompletedEventAttributes(a) => {
            let id = a
                .meta
                .as_ref()
                .map(|m| m.update_id.clone())
                .unwrap_or_default();
            let info = ms.updates.entry(id).or_default();
            info.stage = Stage::Completed as i32;
            info.accepted_event_id = a.accepted_event_id;
            info.outcome = a.outcome.clone();
        }
        _ => {}
    }
}
