//! The attempts of a Nexus operation: each is offered to the endpoint's handler queue until
//! its deadline; a retryable failure backs off and tries again; the operation's timeouts and
//! a non-retryable failure end it with an event in the caller's history.

use temporalio_protos::temporal::api::enums::v1::{PendingNexusOperationState, TimeoutType};
use temporalio_protos::temporal::api::failure::v1::{Failure, TimeoutFailureInfo, failure};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::history::v1::{
    HistoryEvent, NexusOperationFailedEventAttributes, NexusOperationTimedOutEventAttributes,
};
use temporalio_protos::temporal::api::nexus::v1::endpoint_target;

use super::{handler_failure, operation_failure};
use crate::engine::clock::{dur_millis, opt_ts_millis, ts_from_millis};
use crate::engine::matching::{QueueKey, QueueKind, TaskRef};
use crate::engine::state::{MutableState, NexusOperationInfo};
use crate::engine::timers::TimerTask;
use crate::engine::{Core, RunKey, events};

/// How long one attempt may wait for the handler (Temporal's
/// `component.nexusoperations.request.timeout`), unless the operation's timeouts leave less.
pub(super) const REQUEST_TIMEOUT_MS: i64 = 10_000;
/// Below this, an attempt is not made and the operation times out
/// (`component.nexusoperations.limit.request.timeout.min`).
pub(super) const MIN_REQUEST_TIMEOUT_MS: i64 = 1_500;
/// Backoff between attempts: from 1 s, doubling, at most an hour, less up to a fifth at
/// random (Temporal's Nexus retry policy).
const INITIAL_BACKOFF_MS: i64 = 1_000;
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// Which of the operation's timeouts ends it first, and when (None: no timeout applies).
pub(super) fn next_deadline(info: &NexusOperationInfo) -> Option<(i64, TimeoutType)> {
    let scheduled = opt_ts_millis(&info.scheduled_time);
    let mut deadlines = Vec::new();
    let s2c = dur_millis(&info.schedule_to_close_timeout);
    if s2c > 0 {
        deadlines.push((scheduled + s2c, TimeoutType::ScheduleToClose));
    }
    let s2s = dur_millis(&info.schedule_to_start_timeout);
    if s2s > 0 && info.started_time.is_none() {
        deadlines.push((scheduled + s2s, TimeoutType::ScheduleToStart));
    }
    let stc = dur_millis(&info.start_to_close_timeout);
    if stc > 0
        && let Some(started) = &info.started_time
    {
        deadlines.push((
            crate::engine::clock::ts_millis(started) + stc,
            TimeoutType::StartToClose,
        ));
    }
    deadlines.into_iter().min_by_key(|(at, _)| *at)
}

impl Core {
    /// Offers the operation's next attempt to the endpoint's handler queue (the first one
    /// right after its scheduled event, later ones after their backoff).
    pub(crate) fn dispatch_nexus_attempt(&mut self, key: &RunKey, sched: i64) {
        let now = self.now();
        let Some(info) = self.pending_nexus_operation(key, sched) else {
            return;
        };
        if info.endpoint == super::system::SYSTEM_ENDPOINT {
            return self.run_system_operation(key, sched);
        }
        if info.attempt == 0 && info.attempt_deadline.is_none() {
            self.arm_nexus_timeouts(key, &info);
        }
        let target = self
            .nexus_endpoints
            .get(&info.endpoint_id)
            .filter(|e| !e.deleted)
            .and_then(|e| e.spec.as_ref()?.target.as_ref()?.variant.clone());
        let (namespace, task_queue, url) = match target {
            Some(endpoint_target::Variant::Worker(w)) => (w.namespace, w.task_queue, String::new()),
            Some(endpoint_target::Variant::External(x)) => (String::new(), String::new(), x.url),
            None => {
                let f = handler_failure("NOT_FOUND", "endpoint not registered", Some(false));
                return self.fail_nexus_operation(key, sched, f);
            }
        };
        let mut call = REQUEST_TIMEOUT_MS;
        if let Some((at, timeout)) = next_deadline(&info) {
            call = call.min(at - now);
            if call < MIN_REQUEST_TIMEOUT_MS {
                return self.time_out_nexus_operation(key, sched, timeout);
            }
        }
        let attempt = info.attempt + 1;
        let Some(info) = self.nexus_operation_mut(key, sched) else {
            return;
        };
        info.state = PendingNexusOperationState::Scheduled as i32;
        info.attempt_deadline = Some(ts_from_millis(now + call));
        info.next_attempt_schedule_time = None;
        info.dispatched = false;
        info.handler_namespace = namespace;
        info.handler_task_queue = task_queue;
        info.handler_url = url;
        self.changed(key);
        self.offer_nexus_call(key, sched, attempt, false);
        self.push_timer(
            now + call,
            TimerTask::NexusAttemptTimeout {
                key: key.clone(),
                scheduled_event_id: sched,
                attempt,
            },
        );
    }

    /// Offers attempt `attempt` of the operation's start (or cancellation) to its handler: a
    /// task on the endpoint's queue, or a call over HTTP to an external endpoint's URL.
    pub(super) fn offer_nexus_call(
        &mut self,
        key: &RunKey,
        sched: i64,
        attempt: i32,
        cancel: bool,
    ) {
        let Some(info) = self.pending_nexus_operation(key, sched) else {
            return;
        };
        if !info.handler_url.is_empty() {
            let call = super::http::OperationCall {
                key: key.clone(),
                sched,
                attempt,
                cancel,
            };
            return self.push_http_call(super::http::HttpCall::Operation(call));
        }
        let handler = (
            info.handler_namespace.as_str(),
            info.handler_task_queue.as_str(),
        );
        self.push_nexus_task(key, sched, attempt, handler, cancel);
    }

    fn push_nexus_task(
        &mut self,
        key: &RunKey,
        sched: i64,
        attempt: i32,
        (namespace, task_queue): (&str, &str),
        cancel: bool,
    ) {
        self.push_task(
            QueueKey::new(namespace, task_queue, QueueKind::Nexus),
            TaskRef::Nexus {
                key: key.clone(),
                scheduled_event_id: sched,
                attempt,
                cancel,
            },
        );
    }

    /// The operation's timeout timers, armed once when it is scheduled (and after a restart).
    pub(super) fn arm_nexus_timeouts(&mut self, key: &RunKey, info: &NexusOperationInfo) {
        if let Some((at, _)) = next_deadline(info) {
            self.push_timer(
                at,
                TimerTask::NexusTimeout {
                    key: key.clone(),
                    scheduled_event_id: info.scheduled_event_id,
                },
            );
        }
    }

    /// An attempt's deadline passed: if the handler has not answered it, it failed the way
    /// Temporal's dispatch fails when no handler answers in time (retryably).
    pub(crate) fn nexus_attempt_timed_out(&mut self, key: &RunKey, sched: i64, attempt: i32) {
        let Some(info) = self.pending_nexus_operation(key, sched) else {
            return;
        };
        if info.attempt + 1 != attempt || info.state != PendingNexusOperationState::Scheduled as i32
        {
            return;
        }
        let f = handler_failure("UPSTREAM_TIMEOUT", "upstream timeout", None);
        self.nexus_attempt_failed(key, sched, f, true);
    }

    /// The attempt in flight failed: back off and retry, or end the operation.
    pub(crate) fn nexus_attempt_failed(
        &mut self,
        key: &RunKey,
        sched: i64,
        failure: Failure,
        retryable: bool,
    ) {
        if !retryable {
            return self.fail_nexus_operation(key, sched, failure);
        }
        let now = self.now();
        let Some(info) = self.nexus_operation_mut(key, sched) else {
            return;
        };
        info.attempt += 1;
        info.last_attempt_complete_time = Some(ts_from_millis(now));
        info.last_attempt_failure = Some(failure);
        info.state = PendingNexusOperationState::BackingOff as i32;
        info.attempt_deadline = None;
        info.dispatched = false;
        let due = now + backoff(info.attempt);
        info.next_attempt_schedule_time = Some(ts_from_millis(due));
        let attempt = info.attempt;
        self.changed(key);
        self.push_timer(
            due,
            TimerTask::NexusRetry {
                key: key.clone(),
                scheduled_event_id: sched,
                attempt,
            },
        );
    }

    /// A backoff ended: the next attempt goes out unless the operation moved on meanwhile.
    pub(crate) fn nexus_retry_due(&mut self, key: &RunKey, sched: i64, attempt: i32) {
        let due = self.pending_nexus_operation(key, sched).is_some_and(|i| {
            i.attempt == attempt && i.state == PendingNexusOperationState::BackingOff as i32
        });
        if due {
            self.dispatch_nexus_attempt(key, sched);
        }
    }

    /// One of the operation's timeouts may have passed: the first that did ends it (a timer
    /// armed before the operation started can find only schedule-to-close left to check).
    pub(crate) fn nexus_timeout_fired(&mut self, key: &RunKey, sched: i64) {
        let now = self.now();
        let Some(info) = self.pending_nexus_operation(key, sched) else {
            return;
        };
        match next_deadline(&info) {
            Some((at, timeout)) if at <= now => self.time_out_nexus_operation(key, sched, timeout),
            Some((at, _)) => self.push_timer(
                at,
                TimerTask::NexusTimeout {
                    key: key.clone(),
                    scheduled_event_id: sched,
                },
            ),
            None => {}
        }
    }

    fn time_out_nexus_operation(&mut self, key: &RunKey, sched: i64, timeout: TimeoutType) {
        let Some(info) = self.pending_nexus_operation(key, sched) else {
            return;
        };
        let cause = Failure {
            message: "operation timed out".into(),
            failure_info: Some(failure::FailureInfo::TimeoutFailureInfo(
                TimeoutFailureInfo {
                    timeout_type: timeout as i32,
                    last_heartbeat_details: None,
                },
            )),
            ..Default::default()
        };
        let event = Attributes::NexusOperationTimedOutEventAttributes(
            NexusOperationTimedOutEventAttributes {
                scheduled_event_id: sched,
                failure: Some(operation_failure(&info, cause)),
                request_id: info.request_id.clone(),
            },
        );
        self.close_nexus_operation(key, sched, event, Vec::new());
    }

    /// Ends the operation as failed, `cause` under Temporal's wrapper.
    pub(crate) fn fail_nexus_operation(&mut self, key: &RunKey, sched: i64, cause: Failure) {
        let Some(info) = self.pending_nexus_operation(key, sched) else {
            return;
        };
        let event =
            Attributes::NexusOperationFailedEventAttributes(NexusOperationFailedEventAttributes {
                scheduled_event_id: sched,
                failure: Some(operation_failure(&info, cause)),
                request_id: info.request_id.clone(),
            });
        self.close_nexus_operation(key, sched, event, Vec::new());
    }

    /// Records the operation's end in the caller's history (which schedules a workflow task)
    /// and forgets it.
    pub(crate) fn close_nexus_operation(
        &mut self,
        key: &RunKey,
        sched: i64,
        outcome: Attributes,
        links: Vec<temporalio_protos::temporal::api::common::v1::Link>,
    ) {
        let mut event = events::new_event(outcome, self.now());
        event.links = links;
        self.end_nexus_operation(key, sched, vec![event]);
    }

    /// Forgets the pending operation `sched` of `key` and records `recorded` (its last
    /// events) in the caller's history; nothing if it already ended.
    pub(crate) fn end_nexus_operation(
        &mut self,
        key: &RunKey,
        sched: i64,
        recorded: Vec<HistoryEvent>,
    ) {
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        let Some(info) = run.ms.nexus_operations.remove(&sched) else {
            return;
        };
        if run.is_standalone_nexus() {
            return self.nexus_execution_ended(key, info, recorded);
        }
        self.add_history_events(key, recorded);
        self.changed(key);
    }

    /// Records events of a pending operation that do not end it (its start, the handler's
    /// answer to a cancellation) in the caller's history; a standalone operation keeps only
    /// their links.
    pub(super) fn record_nexus_events(&mut self, key: &RunKey, events: Vec<HistoryEvent>) {
        if self.runs.get(key).is_some_and(|r| r.is_standalone_nexus()) {
            let links = events.into_iter().flat_map(|e| e.links).collect();
            self.note_nexus_links(key, links);
        } else {
            self.add_history_events(key, events);
        }
        self.changed(key);
    }

    /// Re-creates an open run's Nexus tasks and timers (after a restart).
    pub(crate) fn rearm_nexus_operations(&mut self, key: &RunKey, ms: &MutableState) {
        for info in ms.nexus_operations.values() {
            self.arm_nexus_timeouts(key, info);
            self.rearm_nexus_cancellation(key, info);
            let sched = info.scheduled_event_id;
            match PendingNexusOperationState::try_from(info.state) {
                Ok(PendingNexusOperationState::BackingOff) => self.push_timer(
                    opt_ts_millis(&info.next_attempt_schedule_time),
                    TimerTask::NexusRetry {
                        key: key.clone(),
                        scheduled_event_id: sched,
                        attempt: info.attempt,
                    },
                ),
                Ok(PendingNexusOperationState::Scheduled) => {
                    let attempt = info.attempt + 1;
                    if !info.dispatched {
                        self.offer_nexus_call(key, sched, attempt, false);
                    }
                    self.push_timer(
                        opt_ts_millis(&info.attempt_deadline),
                        TimerTask::NexusAttemptTimeout {
                            key: key.clone(),
                            scheduled_event_id: sched,
                            attempt,
                        },
                    );
                }
                _ => {}
            }
        }
    }

    /// The open run's operation scheduled by `sched`, if it has not ended.
    pub(crate) fn pending_nexus_operation(
        &self,
        key: &RunKey,
        sched: i64,
    ) -> Option<NexusOperationInfo> {
        let run = self.runs.get(key).filter(|r| r.is_open())?;
        run.ms.nexus_operations.get(&sched).cloned()
    }

    pub(super) fn nexus_operation_mut(
        &mut self,
        key: &RunKey,
        sched: i64,
    ) -> Option<&mut NexusOperationInfo> {
        let run = self.runs.get_mut(key).filter(|r| r.is_open())?;
        run.ms.nexus_operations.get_mut(&sched)
    }
}

/// The wait before attempt `attempt + 1`, after `attempt` failed ones.
pub(super) fn backoff(attempt: i32) -> i64 {
    let exponent = (attempt - 1).clamp(0, 30) as u32;
    let full = INITIAL_BACKOFF_MS
        .saturating_mul(1i64 << exponent)
        .min(MAX_BACKOFF_MS);
    let jitter = (uuid::Uuid::new_v4().as_u128() % (full as u128 / 5 + 1)) as i64;
    full - jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_second_up_to_an_hour() {
        for (attempt, full) in [(1, 1_000), (2, 2_000), (3, 4_000), (20, 3_600_000)] {
            let d = backoff(attempt);
            assert!(d <= full && d >= full * 4 / 5, "attempt {attempt}: {d}");
        }
    }
}
