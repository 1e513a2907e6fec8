//! Completion callbacks to URLs outside Durin: when a run with such a callback closes (a
//! workflow, or a standalone activity), its outcome is posted to the URL as a Nexus
//! completion (Temporal's form: `Nexus-Operation-State`, the token, start and close times, a
//! link to the run's start, the callback's own headers; the result or the failure as the
//! body). A 2xx answer delivers it, a 4xx refuses it for good, anything else is retried with
//! backoff (from 1 s, doubling, at most a minute). A run whose callbacks are on their way
//! stays in memory (it is not archived) and they are queued again after a restart.

use std::sync::Arc;
use std::time::Duration;

use temporalio_protos::temporal::api::common::v1::callback;
use temporalio_protos::temporal::api::enums::v1::CallbackState;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;

use super::callbacks::{SYSTEM_CALLBACK_URL, closing_event, start_link};
use super::http::client::{CompletionPost, Delivery};
use super::http::{HandlerClient, HttpCall, wire};
use crate::engine::clock::{opt_ts_millis, ts_from_millis};
use crate::engine::state::CallbackRecord;
use crate::engine::{Core, Engine, Run, RunKey};

/// The URL of a callback that goes outside Durin (None for `temporal://system`).
fn outside_url(record: &CallbackRecord) -> Option<&str> {
    let info = record.info.as_ref()?;
    match info.callback.as_ref()?.variant.as_ref()? {
        callback::Variant::Nexus(n) if n.url != SYSTEM_CALLBACK_URL => Some(&n.url),
        _ => None,
    }
}

/// Whether a callback to an outside URL is still on its way.
fn in_flight(record: &CallbackRecord) -> bool {
    outside_url(record).is_some()
        && record.info.as_ref().is_some_and(|i| {
            i.state == CallbackState::Scheduled as i32
                || i.state == CallbackState::BackingOff as i32
        })
}

/// Whether any of the run's callbacks to outside URLs is still on its way (the run stays in
/// memory until they are answered).
pub(crate) fn delivering(run: &Run) -> bool {
    run.ms.callbacks.iter().any(in_flight)
}

/// Whether the callback goes outside Durin.
pub(crate) fn goes_outside(record: &CallbackRecord) -> bool {
    outside_url(record).is_some()
}

/// The wait before delivery attempt `attempt + 1`.
fn backoff(attempt: i32) -> Duration {
    let exponent = (attempt - 1).clamp(0, 6) as u32;
    Duration::from_millis((1_000u64 << exponent).min(60_000))
}

impl Core {
    /// Sends the callback `request_id` of the closed run `key` on its way.
    pub(crate) fn queue_outside_callback(&mut self, key: &RunKey, request_id: &str) {
        self.callback_attempted(key, request_id, None);
        self.push_http_call(HttpCall::Callback {
            key: key.clone(),
            request_id: request_id.to_string(),
        });
    }

    /// Queues again the callbacks of `key` that were on their way (after a restart).
    pub(crate) fn requeue_outside_callbacks(&mut self, key: &RunKey) {
        // A frozen run is open.
        let Some(run) = self.runs.get_live(key).filter(|r| !r.is_open()) else {
            return;
        };
        let ids: Vec<String> = run
            .ms
            .callbacks
            .iter()
            .filter(|r| in_flight(r))
            .filter_map(|r| r.info.as_ref().map(|i| i.request_id.clone()))
            .collect();
        for request_id in ids {
            self.push_http_call(HttpCall::Callback {
                key: key.clone(),
                request_id,
            });
        }
    }

    /// The completion to post for the callback `request_id` of `key`, if it is on its way.
    fn prepare_completion(&mut self, key: &RunKey, request_id: &str) -> Option<CompletionPost> {
        let run = self.runs.get(key)?;
        let record = run
            .ms
            .callbacks
            .iter()
            .find(|r| r.info.as_ref().is_some_and(|i| i.request_id == request_id))?;
        if !in_flight(record) {
            return None;
        }
        let nexus = match record.info.as_ref()?.callback.as_ref()?.variant.as_ref()? {
            callback::Variant::Nexus(n) => n.clone(),
            _ => return None,
        };
        let close = closing_event(run)?.attributes?;
        let (state, content) = completion_of(close);
        let operation_token = nexus
            .header
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("nexus-operation-token"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let link = start_link(self, key, record);
        let post = CompletionPost {
            url: nexus.url.clone(),
            header: nexus.header.into_iter().collect(),
            state,
            content,
            operation_token,
            start_time: opt_ts_millis(&run.ms.start_time),
            close_time: opt_ts_millis(&run.ms.close_time),
            links: super::links::to_nexus(&link).into_iter().collect(),
        };
        if let Some(info) = self.callback_info_mut(key, request_id) {
            info.state = CallbackState::Scheduled as i32;
            info.next_attempt_schedule_time = None;
        }
        self.changed(key);
        Some(post)
    }

    /// A delivery attempt was not taken: backing off (the wait before the next).
    fn callback_backing_off(
        &mut self,
        key: &RunKey,
        request_id: &str,
        message: String,
    ) -> Duration {
        let now = self.now();
        let Some(info) = self.callback_info_mut(key, request_id) else {
            return Duration::ZERO;
        };
        info.attempt += 1;
        info.last_attempt_complete_time = Some(ts_from_millis(now));
        info.last_attempt_failure = Some(temporalio_protos::temporal::api::failure::v1::Failure {
            message,
            ..Default::default()
        });
        info.state = CallbackState::BackingOff as i32;
        let wait = backoff(info.attempt);
        info.next_attempt_schedule_time = Some(ts_from_millis(now + wait.as_millis() as i64));
        self.changed(key);
        wait
    }

    fn callback_info_mut(
        &mut self,
        key: &RunKey,
        request_id: &str,
    ) -> Option<&mut temporalio_protos::temporal::api::workflow::v1::CallbackInfo> {
        self.runs
            .get_mut(key)?
            .ms
            .callbacks
            .iter_mut()
            .filter_map(|r| r.info.as_mut())
            .find(|i| i.request_id == request_id)
    }
}

/// The completion's state and body for a run that closed with `close`, as Temporal reports a
/// workflow's close to a caller.
fn completion_of(close: Attributes) -> (&'static str, wire::Content) {
    let failure = |f: wire::NexusFailure| wire::Content {
        headers: [("type".to_string(), "application/json".to_string())].into(),
        body: serde_json::to_vec(&f).unwrap_or_default(),
    };
    let message = |m: &str| wire::NexusFailure {
        message: m.into(),
        ..Default::default()
    };
    match close {
        Attributes::WorkflowExecutionCompletedEventAttributes(c) => (
            "succeeded",
            wire::to_content(c.result.as_ref().and_then(|r| r.payloads.first())),
        ),
        Attributes::WorkflowExecutionFailedEventAttributes(f) => (
            "failed",
            failure(wire::from_failure(&f.failure.unwrap_or_default())),
        ),
        Attributes::WorkflowExecutionCanceledEventAttributes(_) => {
            ("canceled", failure(message("operation canceled")))
        }
        Attributes::WorkflowExecutionTerminatedEventAttributes(_) => {
            ("failed", failure(message("operation terminated")))
        }
        _ => (
            "failed",
            failure(message("operation exceeded internal timeout")),
        ),
    }
}

/// Posts the callback `request_id` of `key` until it is delivered or refused.
pub(super) async fn deliver(
    engine: Arc<Engine>,
    client: Arc<HandlerClient>,
    key: RunKey,
    request_id: String,
) {
    loop {
        let post = engine
            .transact(|core| Ok(core.prepare_completion(&key, &request_id)))
            .await;
        let Ok(Some(post)) = post else { return };
        let outcome = client.complete(post).await;
        let wait = engine
            .transact(|core| {
                Ok(match outcome {
                    Delivery::Delivered => {
                        core.callback_attempted(&key, &request_id, Some(Ok(())));
                        None
                    }
                    Delivery::Refused(m) => {
                        core.callback_attempted(&key, &request_id, Some(Err(m)));
                        None
                    }
                    Delivery::Retry(m) => Some(core.callback_backing_off(&key, &request_id, m)),
                })
            })
            .await;
        match wait {
            Ok(Some(wait)) => tokio::time::sleep(wait).await,
            _ => return,
        }
    }
}
