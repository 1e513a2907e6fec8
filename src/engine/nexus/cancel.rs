//! Cancelling an operation, the caller's side: the workflow's `RequestCancelNexusOperation`
//! records `NexusOperationCancelRequested`; once the handler has started the operation (at
//! once, or when its start is recorded; a synchronous operation is never asked), Durin asks
//! the handler to cancel it with a Nexus task of its own. Its attempts follow the start's
//! rules (deadline, `UPSTREAM_TIMEOUT` when unanswered, retry with backoff while the
//! operation's timeouts allow) and the handler's answer is recorded as
//! `NexusOperationCancelRequestCompleted` or `…Failed`, as Temporal records them. The
//! operation itself ends only when the handler's outcome arrives (a canceled workflow's
//! callback, say).

use temporalio_protos::temporal::api::enums::v1::{
    NexusOperationCancellationState as CancelState, PendingNexusOperationState,
};
use temporalio_protos::temporal::api::failure::v1::{ApplicationFailureInfo, Failure, failure};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::history::v1::{
    NexusOperationCancelRequestCompletedEventAttributes,
    NexusOperationCancelRequestFailedEventAttributes,
};
use temporalio_protos::temporal::api::workflow::v1::NexusOperationCancellationInfo;

use super::attempts::{MIN_REQUEST_TIMEOUT_MS, REQUEST_TIMEOUT_MS, backoff, next_deadline};
use super::handler_failure;
use crate::engine::clock::ts_from_millis;
use crate::engine::state::{NexusCancellation, NexusOperationInfo};
use crate::engine::timers::TimerTask;
use crate::engine::{Core, RunKey, events};

impl Core {
    /// The workflow asked to cancel the operation `sched`: the handler is asked now if the
    /// operation has started, else when it starts.
    pub(crate) fn nexus_cancel_requested(&mut self, key: &RunKey, sched: i64) {
        let started = self
            .pending_nexus_operation(key, sched)
            .is_some_and(|i| i.state == PendingNexusOperationState::Started as i32);
        if started {
            self.dispatch_nexus_cancel(key, sched);
        }
    }

    /// Offers the next attempt to cancel to the handler's queue, unless the operation's
    /// timeouts leave too little time for one.
    pub(crate) fn dispatch_nexus_cancel(&mut self, key: &RunKey, sched: i64) {
        let now = self.now();
        let Some(info) = self.pending_nexus_operation(key, sched) else {
            return;
        };
        let mut call = REQUEST_TIMEOUT_MS;
        if let Some((at, _)) = next_deadline(&info) {
            call = call.min(at - now);
        }
        if call < MIN_REQUEST_TIMEOUT_MS {
            let f = Failure {
                message: "not enough time to execute another request before ScheduleToClose \
                          timeout"
                    .into(),
                failure_info: Some(failure::FailureInfo::ApplicationFailureInfo(
                    ApplicationFailureInfo {
                        r#type: "CallError".into(),
                        non_retryable: true,
                        ..Default::default()
                    },
                )),
                ..Default::default()
            };
            return self.nexus_cancel_failed(key, sched, f);
        }
        let Some(op) = self.nexus_operation_mut(key, sched) else {
            return;
        };
        let c = op.cancellation.get_or_insert_with(|| NexusCancellation {
            requested_time: Some(ts_from_millis(now)),
            ..Default::default()
        });
        c.state = CancelState::Scheduled as i32;
        c.attempt_deadline = Some(ts_from_millis(now + call));
        c.next_attempt_schedule_time = None;
        c.dispatched = false;
        let attempt = c.attempt + 1;
        self.changed(key);
        self.offer_nexus_call(key, sched, attempt, true);
        self.push_timer(
            now + call,
            TimerTask::NexusCancelAttemptTimeout {
                key: key.clone(),
                scheduled_event_id: sched,
                attempt,
            },
        );
    }

    /// An attempt to cancel reached its deadline unanswered: it failed retryably.
    pub(crate) fn nexus_cancel_attempt_timed_out(
        &mut self,
        key: &RunKey,
        sched: i64,
        attempt: i32,
    ) {
        if self.cancel_in_flight(key, sched) == Some(attempt) {
            let f = handler_failure("UPSTREAM_TIMEOUT", "upstream timeout", None);
            self.nexus_cancel_attempt_failed(key, sched, f, true);
        }
    }

    /// The attempt of cancellation in flight, if any (its number).
    pub(super) fn cancel_in_flight(&self, key: &RunKey, sched: i64) -> Option<i32> {
        let c = self.pending_nexus_operation(key, sched)?.cancellation?;
        (c.state == CancelState::Scheduled as i32).then_some(c.attempt + 1)
    }

    /// The attempt to cancel failed: back off and try again, or record that it failed.
    pub(crate) fn nexus_cancel_attempt_failed(
        &mut self,
        key: &RunKey,
        sched: i64,
        failure: Failure,
        retryable: bool,
    ) {
        if !retryable {
            return self.nexus_cancel_failed(key, sched, failure);
        }
        let now = self.now();
        let Some(c) = self
            .nexus_operation_mut(key, sched)
            .and_then(|op| op.cancellation.as_mut())
        else {
            return;
        };
        c.attempt += 1;
        c.last_attempt_complete_time = Some(ts_from_millis(now));
        c.last_attempt_failure = Some(failure);
        c.state = CancelState::BackingOff as i32;
        c.attempt_deadline = None;
        c.dispatched = false;
        let due = now + backoff(c.attempt);
        c.next_attempt_schedule_time = Some(ts_from_millis(due));
        let attempt = c.attempt;
        self.changed(key);
        self.push_timer(
            due,
            TimerTask::NexusCancelRetry {
                key: key.clone(),
                scheduled_event_id: sched,
                attempt,
            },
        );
    }

    pub(crate) fn nexus_cancel_retry_due(&mut self, key: &RunKey, sched: i64, attempt: i32) {
        let due = self
            .pending_nexus_operation(key, sched)
            .and_then(|i| i.cancellation)
            .is_some_and(|c| c.attempt == attempt && c.state == CancelState::BackingOff as i32);
        if due {
            self.dispatch_nexus_cancel(key, sched);
        }
    }

    /// The handler accepted the cancellation.
    pub(crate) fn nexus_cancel_succeeded(&mut self, key: &RunKey, sched: i64) {
        let Some(requested_event_id) =
            self.end_cancellation(key, sched, CancelState::Succeeded, None)
        else {
            return;
        };
        self.record_cancel_outcome(
            key,
            Attributes::NexusOperationCancelRequestCompletedEventAttributes(
                NexusOperationCancelRequestCompletedEventAttributes {
                    requested_event_id,
                    workflow_task_completed_event_id: 0,
                    scheduled_event_id: sched,
                },
            ),
        );
    }

    /// The cancellation failed for good.
    fn nexus_cancel_failed(&mut self, key: &RunKey, sched: i64, failure: Failure) {
        let Some(requested_event_id) =
            self.end_cancellation(key, sched, CancelState::Failed, Some(failure.clone()))
        else {
            return;
        };
        self.record_cancel_outcome(
            key,
            Attributes::NexusOperationCancelRequestFailedEventAttributes(
                NexusOperationCancelRequestFailedEventAttributes {
                    requested_event_id,
                    workflow_task_completed_event_id: 0,
                    failure: Some(failure),
                    scheduled_event_id: sched,
                },
            ),
        );
    }

    /// Marks the cancellation ended; the event id of the request, if one was pending.
    fn end_cancellation(
        &mut self,
        key: &RunKey,
        sched: i64,
        state: CancelState,
        failure: Option<Failure>,
    ) -> Option<i64> {
        let now = self.now();
        let op = self.nexus_operation_mut(key, sched)?;
        let requested = op.cancel_requested_event_id;
        let c = op.cancellation.get_or_insert_with(Default::default);
        c.attempt += 1;
        c.last_attempt_complete_time = Some(ts_from_millis(now));
        c.last_attempt_failure = failure;
        c.state = state as i32;
        c.attempt_deadline = None;
        c.next_attempt_schedule_time = None;
        self.changed(key);
        Some(requested)
    }

    /// Records the handler's answer; workers may skip it (as Temporal marks it), but it wakes
    /// a workflow waiting for the cancellation request's outcome.
    fn record_cancel_outcome(&mut self, key: &RunKey, attrs: Attributes) {
        let mut event = events::new_event(attrs, self.now());
        event.worker_may_ignore = true;
        self.record_nexus_events(key, vec![event]);
    }

    /// Re-creates the cancellation's task or timer after a restart.
    pub(super) fn rearm_nexus_cancellation(&mut self, key: &RunKey, info: &NexusOperationInfo) {
        let Some(c) = &info.cancellation else {
            return;
        };
        let sched = info.scheduled_event_id;
        let key = key.clone();
        if c.state == CancelState::BackingOff as i32 {
            let due = crate::engine::clock::opt_ts_millis(&c.next_attempt_schedule_time);
            self.push_timer(
                due,
                TimerTask::NexusCancelRetry {
                    key,
                    scheduled_event_id: sched,
                    attempt: c.attempt,
                },
            );
        } else if c.state == CancelState::Scheduled as i32 {
            let attempt = c.attempt + 1;
            if !c.dispatched {
                self.offer_nexus_call(&key, sched, attempt, true);
            }
            let deadline = crate::engine::clock::opt_ts_millis(&c.attempt_deadline);
            self.push_timer(
                deadline,
                TimerTask::NexusCancelAttemptTimeout {
                    key,
                    scheduled_event_id: sched,
                    attempt,
                },
            );
        }
    }
}

/// The cancellation as DescribeWorkflowExecution shows it.
pub(crate) fn cancellation_info(c: &NexusCancellation) -> NexusOperationCancellationInfo {
    NexusOperationCancellationInfo {
        requested_time: c.requested_time,
        state: c.state,
        attempt: c.attempt,
        last_attempt_complete_time: c.last_attempt_complete_time,
        last_attempt_failure: c.last_attempt_failure.clone(),
        next_attempt_schedule_time: c.next_attempt_schedule_time,
        blocked_reason: String::new(),
    }
}
