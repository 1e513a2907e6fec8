//! Building history events.

use temporalio_protos::temporal::api::enums::v1::EventType;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;

use super::clock;

pub fn event_type_of(attrs: &Attributes) -> EventType {
    use Attributes as A;
    match attrs {
        A::WorkflowExecutionStartedEventAttributes(_) => EventType::WorkflowExecutionStarted,
        A::WorkflowExecutionCompletedEventAttributes(_) => EventType::WorkflowExecutionCompleted,
        A::WorkflowExecutionFailedEventAttributes(_) => EventType::WorkflowExecutionFailed,
        A::WorkflowExecutionTimedOutEventAttributes(_) => EventType::WorkflowExecutionTimedOut,
        A::WorkflowTaskScheduledEventAttributes(_) => EventType::WorkflowTaskScheduled,
        A::WorkflowTaskStartedEventAttributes(_) => EventType::WorkflowTaskStarted,
        A::WorkflowTaskCompletedEventAttributes(_) => EventType::WorkflowTaskCompleted,
        A::WorkflowTaskTimedOutEventAttributes(_) => EventType::WorkflowTaskTimedOut,
        A::WorkflowTaskFailedEventAttributes(_) => EventType::WorkflowTaskFailed,
        A::ActivityTaskScheduledEventAttributes(_) => EventType::ActivityTaskScheduled,
        A::ActivityTaskStartedEventAttributes(_) => EventType::ActivityTaskStarted,
        A::ActivityTaskCompletedEventAttributes(_) => EventType::ActivityTaskCompleted,
        A::ActivityTaskFailedEventAttributes(_) => EventType::ActivityTaskFailed,
        A::ActivityTaskTimedOutEventAttributes(_) => EventType::ActivityTaskTimedOut,
        A::ActivityTaskCancelRequestedEventAttributes(_) => EventType::ActivityTaskCancelRequested,
        A::ActivityTaskCanceledEventAttributes(_) => EventType::ActivityTaskCanceled,
        A::TimerStartedEventAttributes(_) => EventType::TimerStarted,
        A::TimerFiredEventAttributes(_) => EventType::TimerFired,
        A::TimerCanceledEventAttributes(_) => EventType::TimerCanceled,
        A::MarkerRecordedEventAttributes(_) => EventType::MarkerRecorded,
        A::WorkflowExecutionSignaledEventAttributes(_) => EventType::WorkflowExecutionSignaled,
        A::WorkflowExecutionTerminatedEventAttributes(_) => EventType::WorkflowExecutionTerminated,
        A::WorkflowExecutionCancelRequestedEventAttributes(_) => {
            EventType::WorkflowExecutionCancelRequested
        }
        A::WorkflowExecutionCanceledEventAttributes(_) => EventType::WorkflowExecutionCanceled,
        A::UpsertWorkflowSearchAttributesEventAttributes(_) => {
            EventType::UpsertWorkflowSearchAttributes
        }
        A::WorkflowPropertiesModifiedEventAttributes(_) => EventType::WorkflowPropertiesModified,
        A::WorkflowExecutionContinuedAsNewEventAttributes(_) => {
            EventType::WorkflowExecutionContinuedAsNew
        }
        A::StartChildWorkflowExecutionInitiatedEventAttributes(_) => {
            EventType::StartChildWorkflowExecutionInitiated
        }
        A::StartChildWorkflowExecutionFailedEventAttributes(_) => {
            EventType::StartChildWorkflowExecutionFailed
        }
        A::ChildWorkflowExecutionStartedEventAttributes(_) => {
            EventType::ChildWorkflowExecutionStarted
        }
        A::ChildWorkflowExecutionCompletedEventAttributes(_) => {
            EventType::ChildWorkflowExecutionCompleted
        }
        A::ChildWorkflowExecutionFailedEventAttributes(_) => {
            EventType::ChildWorkflowExecutionFailed
        }
        A::ChildWorkflowExecutionCanceledEventAttributes(_) => {
            EventType::ChildWorkflowExecutionCanceled
        }
        A::ChildWorkflowExecutionTimedOutEventAttributes(_) => {
            EventType::ChildWorkflowExecutionTimedOut
        }
        A::ChildWorkflowExecutionTerminatedEventAttributes(_) => {
            EventType::ChildWorkflowExecutionTerminated
        }
        A::SignalExternalWorkflowExecutionInitiatedEventAttributes(_) => {
            EventType::SignalExternalWorkflowExecutionInitiated
        }
        A::SignalExternalWorkflowExecutionFailedEventAttributes(_) => {
            EventType::SignalExternalWorkflowExecutionFailed
        }
        A::ExternalWorkflowExecutionSignaledEventAttributes(_) => {
            EventType::ExternalWorkflowExecutionSignaled
        }
        A::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(_) => {
            EventType::RequestCancelExternalWorkflowExecutionInitiated
        }
        A::RequestCancelExternalWorkflowExecutionFailedEventAttributes(_) => {
            EventType::RequestCancelExternalWorkflowExecutionFailed
        }
        A::ExternalWorkflowExecutionCancelRequestedEventAttributes(_) => {
            EventType::ExternalWorkflowExecutionCancelRequested
        }
        A::WorkflowExecutionUpdateAcceptedEventAttributes(_) => {
            EventType::WorkflowExecutionUpdateAccepted
        }
        A::WorkflowExecutionUpdateCompletedEventAttributes(_) => {
            EventType::WorkflowExecutionUpdateCompleted
        }
        A::WorkflowExecutionUpdateAdmittedEventAttributes(_) => {
            EventType::WorkflowExecutionUpdateAdmitted
        }
        A::WorkflowExecutionUpdateRejectedEventAttributes(_) => {
            EventType::WorkflowExecutionUpdateRejected
        }
        A::WorkflowExecutionOptionsUpdatedEventAttributes(_) => {
            EventType::WorkflowExecutionOptionsUpdated
        }
        A::NexusOperationScheduledEventAttributes(_) => EventType::NexusOperationScheduled,
        A::NexusOperationStartedEventAttributes(_) => EventType::NexusOperationStarted,
        A::NexusOperationCompletedEventAttributes(_) => EventType::NexusOperationCompleted,
        A::NexusOperationFailedEventAttributes(_) => EventType::NexusOperationFailed,
        A::NexusOperationCanceledEventAttributes(_) => EventType::NexusOperationCanceled,
        A::NexusOperationTimedOutEventAttributes(_) => EventType::NexusOperationTimedOut,
        A::NexusOperationCancelRequestedEventAttributes(_) => {
            EventType::NexusOperationCancelRequested
        }
        A::NexusOperationCancelRequestCompletedEventAttributes(_) => {
            EventType::NexusOperationCancelRequestCompleted
        }
        A::NexusOperationCancelRequestFailedEventAttributes(_) => {
            EventType::NexusOperationCancelRequestFailed
        }
        _ => EventType::Unspecified,
    }
}

/// A new event at `now_ms` with no id yet (ids are assigned when it enters history).
pub fn new_event(attrs: Attributes, now_ms: i64) -> HistoryEvent {
    HistoryEvent {
        event_time: Some(clock::ts_from_millis(now_ms)),
        event_type: event_type_of(&attrs) as i32,
        attributes: Some(attrs),
        ..Default::default()
    }
}

/// Events that report an activity's or a child's outcome: they go after every other event
/// of a flush.
pub fn is_outcome(event: &HistoryEvent) -> bool {
    match &event.attributes {
        Some(
            Attributes::ActivityTaskCompletedEventAttributes(_)
            | Attributes::ActivityTaskFailedEventAttributes(_)
            | Attributes::ActivityTaskTimedOutEventAttributes(_)
            | Attributes::ActivityTaskCanceledEventAttributes(_),
        ) => true,
        Some(a) => super::children::is_child_outcome(a),
        None => false,
    }
}

/// A child outcome's initiated-event id and its `started_event_id` slot.
fn child_outcome_slot(attrs: &mut Attributes) -> Option<(i64, &mut i64)> {
    match attrs {
        Attributes::ChildWorkflowExecutionCompletedEventAttributes(a) => {
            Some((a.initiated_event_id, &mut a.started_event_id))
        }
        Attributes::ChildWorkflowExecutionFailedEventAttributes(a) => {
            Some((a.initiated_event_id, &mut a.started_event_id))
        }
        Attributes::ChildWorkflowExecutionCanceledEventAttributes(a) => {
            Some((a.initiated_event_id, &mut a.started_event_id))
        }
        Attributes::ChildWorkflowExecutionTimedOutEventAttributes(a) => {
            Some((a.initiated_event_id, &mut a.started_event_id))
        }
        Attributes::ChildWorkflowExecutionTerminatedEventAttributes(a) => {
            Some((a.initiated_event_id, &mut a.started_event_id))
        }
        _ => None,
    }
}

/// Fills a child outcome's `started_event_id` when its `ChildWorkflowExecutionStarted`
/// entered history in the same flush.
pub fn wire_child_started_id(
    event: &mut HistoryEvent,
    started: &std::collections::HashMap<i64, i64>,
) {
    let Some((initiated, slot)) = event.attributes.as_mut().and_then(child_outcome_slot) else {
        return;
    };
    if *slot == 0
        && let Some(id) = started.get(&initiated)
    {
        *slot = *id;
    }
}

/// Sets `started_event_id` on a child outcome event (others are left alone).
pub fn set_child_started_id(attrs: &mut Attributes, started_id: i64) {
    if let Some((_, slot)) = child_outcome_slot(attrs) {
        *slot = started_id;
    }
}

/// The initiated-event id a child event (started, start failed, or an outcome) refers to.
pub fn child_initiated_id(attrs: &Attributes) -> Option<i64> {
    match attrs {
        Attributes::ChildWorkflowExecutionStartedEventAttributes(a) => Some(a.initiated_event_id),
        Attributes::StartChildWorkflowExecutionFailedEventAttributes(a) => {
            Some(a.initiated_event_id)
        }
        Attributes::ChildWorkflowExecutionCompletedEventAttributes(a) => Some(a.initiated_event_id),
        Attributes::ChildWorkflowExecutionFailedEventAttributes(a) => Some(a.initiated_event_id),
        Attributes::ChildWorkflowExecutionCanceledEventAttributes(a) => Some(a.initiated_event_id),
        Attributes::ChildWorkflowExecutionTimedOutEventAttributes(a) => Some(a.initiated_event_id),
        Attributes::ChildWorkflowExecutionTerminatedEventAttributes(a) => {
            Some(a.initiated_event_id)
        }
        _ => None,
    }
}

/// The run a `ChildWorkflowExecutionStarted` event names.
pub fn child_run_id(event: &HistoryEvent) -> Option<String> {
    match &event.attributes {
        Some(Attributes::ChildWorkflowExecutionStartedEventAttributes(a)) => {
            a.workflow_execution.as_ref().map(|e| e.run_id.clone())
        }
        _ => None,
    }
}

/// Sets `started_event_id` on an activity outcome event.
pub fn set_activity_started_id(event: &mut HistoryEvent, started_id: i64) {
    match &mut event.attributes {
        Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => {
            a.started_event_id = started_id
        }
        Some(Attributes::ActivityTaskFailedEventAttributes(a)) => a.started_event_id = started_id,
        Some(Attributes::ActivityTaskTimedOutEventAttributes(a)) => a.started_event_id = started_id,
        Some(Attributes::ActivityTaskCanceledEventAttributes(a)) => a.started_event_id = started_id,
        _ => {}
    }
}

/// The scheduled-event id an activity event refers to, if it is one.
pub fn activity_scheduled_id(event: &HistoryEvent) -> Option<i64> {
    match &event.attributes {
        Some(Attributes::ActivityTaskStartedEventAttributes(a)) => Some(a.scheduled_event_id),
        Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => Some(a.scheduled_event_id),
        Some(Attributes::ActivityTaskFailedEventAttributes(a)) => Some(a.scheduled_event_id),
        Some(Attributes::ActivityTaskTimedOutEventAttributes(a)) => Some(a.scheduled_event_id),
        Some(Attributes::ActivityTaskCanceledEventAttributes(a)) => Some(a.scheduled_event_id),
        _ => None,
    }
}

pub fn is_close_event(event: &HistoryEvent) -> bool {
    matches!(
        event.attributes,
        Some(
            Attributes::WorkflowExecutionCompletedEventAttributes(_)
                | Attributes::WorkflowExecutionFailedEventAttributes(_)
                | Attributes::WorkflowExecutionTimedOutEventAttributes(_)
                | Attributes::WorkflowExecutionCanceledEventAttributes(_)
                | Attributes::WorkflowExecutionTerminatedEventAttributes(_)
                | Attributes::WorkflowExecutionContinuedAsNewEventAttributes(_)
        )
    )
}

/// The scheduled event id of the Nexus operation `event` ends (completed, failed, canceled
/// or timed out); None for any other event.
pub(crate) fn nexus_operation_ended(event: &HistoryEvent) -> Option<i64> {
    use Attributes as A;
    match &event.attributes {
        Some(A::NexusOperationCompletedEventAttributes(a)) => Some(a.scheduled_event_id),
        Some(A::NexusOperationFailedEventAttributes(a)) => Some(a.scheduled_event_id),
        Some(A::NexusOperationCanceledEventAttributes(a)) => Some(a.scheduled_event_id),
        Some(A::NexusOperationTimedOutEventAttributes(a)) => Some(a.scheduled_event_id),
        _ => None,
    }
}
