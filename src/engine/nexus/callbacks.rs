//! Completion callbacks, the handler's side of an asynchronous operation: a handler starts a
//! workflow with a callback (`completion_callbacks`, or attached to a running workflow by a
//! later start's `on_conflict_options`), the run keeps it, continue-as-new carries it over,
//! and when the workflow closes the callback ends the caller's operation.
//!
//! Durin delivers callbacks to `temporal://system`, the URL it gives handlers: the callback's
//! token is the signed one the handler's task carried, naming the caller's operation and the
//! handler's namespace, so only a workflow of that namespace can complete it. The outcome is
//! applied to the caller's run here, or through the transfer outbox when another replica
//! serves the caller's shard (durable, retried, applied once).

use temporalio_protos::temporal::api::common::v1::{Callback, Link, callback};
use temporalio_protos::temporal::api::enums::v1::{CallbackState, EventType};
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::workflow::v1::{CallbackInfo, callback_info};

use super::links::{event_link, request_link};
use crate::engine::clock::{opt_ts_millis, ts_from_millis};
use crate::engine::standalone::{self, start::activity_link};
use crate::engine::state::{CallbackRecord, NexusCompletionTransfer, TransferKind};
use crate::engine::{Core, Error, Result, Run, RunKey};

/// Where an asynchronous operation's completion goes: back into this server.
pub(crate) const SYSTEM_CALLBACK_URL: &str = "temporal://system";
/// The callback header with the token naming the caller's operation.
pub(crate) const CALLBACK_TOKEN_HEADER: &str = "temporal-callback-token";
/// The callback header with the handler's operation token.
const OPERATION_TOKEN_HEADER: &str = "nexus-operation-token";
/// Temporal's `system.maxCallbacksPerWorkflow`.
pub(crate) const MAX_CALLBACKS_PER_WORKFLOW: usize = 32;
/// Bytes of one callback's URL and headers.
const MAX_CALLBACK_BYTES: usize = 8 * 1024;

/// Where completion callbacks may go besides this server: globs (`*` for any run of
/// characters) over a URL's `scheme://host:port`, e.g. `https://*.example.com:443` or `*`
/// (Temporal's `callback.allowedAddresses`).
#[derive(Clone, Debug, Default)]
pub struct CallbackAddresses {
    pub patterns: Vec<String>,
}

impl CallbackAddresses {
    /// Anything: what `temporal server start-dev` allows.
    pub fn any() -> Self {
        Self {
            patterns: vec!["*".into()],
        }
    }

    fn allows(&self, url: &str) -> std::result::Result<(), String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("invalid url {url:?}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "invalid url {url:?}: not an http(s) URL with a host"
            ));
        }
        let origin = format!(
            "{}://{}:{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port_or_known_default().unwrap_or_default()
        );
        if self.patterns.iter().any(|p| glob_matches(p, &origin)) {
            Ok(())
        } else {
            Err(format!(
                "invalid url {url:?}: url does not match any configured callback address                  (--allowed-callback-address)"
            ))
        }
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// Checks the callbacks of a start request: Nexus callbacks to this server, or to an allowed
/// address, within limits.
pub(crate) fn validate(callbacks: &[Callback], addresses: &CallbackAddresses) -> Result<()> {
    if callbacks.len() > MAX_CALLBACKS_PER_WORKFLOW {
        return Err(Error::InvalidArgument(format!(
            "cannot attach more than {MAX_CALLBACKS_PER_WORKFLOW} callbacks to a workflow"
        )));
    }
    for c in callbacks {
        let Some(callback::Variant::Nexus(nexus)) = &c.variant else {
            return Err(Error::InvalidArgument(
                "unsupported callback variant: only Nexus callbacks can be attached".into(),
            ));
        };
        if nexus.url != SYSTEM_CALLBACK_URL {
            addresses
                .allows(&nexus.url)
                .map_err(Error::InvalidArgument)?;
        }
        let size = nexus.url.len()
            + nexus
                .header
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>();
        if size > MAX_CALLBACK_BYTES {
            return Err(Error::InvalidArgument(format!(
                "a callback's URL and headers exceed {MAX_CALLBACK_BYTES} bytes"
            )));
        }
    }
    Ok(())
}

/// New records for `callbacks`, registered at `now`.
pub(crate) fn records(
    callbacks: &[Callback],
    attached_request_id: &str,
    now: i64,
) -> Vec<CallbackRecord> {
    callbacks
        .iter()
        .map(|c| CallbackRecord {
            info: Some(CallbackInfo {
                callback: Some(c.clone()),
                trigger: Some(callback_info::Trigger {
                    variant: Some(callback_info::trigger::Variant::WorkflowClosed(
                        Default::default(),
                    )),
                }),
                registration_time: Some(ts_from_millis(now)),
                state: CallbackState::Standby as i32,
                request_id: uuid::Uuid::new_v4().to_string(),
                ..Default::default()
            }),
            attached_request_id: attached_request_id.to_string(),
        })
        .collect()
}

/// The event the callbacks of a closed run report: the workflow's closing event, or a
/// standalone activity's outcome in the same shape (completed with its result; canceled;
/// failed, timed out or terminated as a failure with the activity's own failure, as
/// Temporal's activity callbacks report them).
pub(super) fn closing_event(run: &Run) -> Option<HistoryEvent> {
    use temporalio_protos::temporal::api::activity::v1::activity_execution_outcome::Value;
    use temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus as Status;
    use temporalio_protos::temporal::api::failure::v1::failure::FailureInfo;
    use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
    use temporalio_protos::temporal::api::history::v1::{
        WorkflowExecutionCanceledEventAttributes, WorkflowExecutionCompletedEventAttributes,
        WorkflowExecutionFailedEventAttributes,
    };
    let Some(activity) = standalone::standalone(run) else {
        return run.last_event();
    };
    let close = match activity.outcome.as_ref()?.value.clone()? {
        Value::Result(result) => Attributes::WorkflowExecutionCompletedEventAttributes(
            WorkflowExecutionCompletedEventAttributes {
                result: Some(result),
                ..Default::default()
            },
        ),
        Value::Failure(f) if run.ms.status == Status::Canceled as i32 => {
            let details = match f.failure_info {
                Some(FailureInfo::CanceledFailureInfo(c)) => c.details,
                _ => None,
            };
            Attributes::WorkflowExecutionCanceledEventAttributes(
                WorkflowExecutionCanceledEventAttributes {
                    details,
                    ..Default::default()
                },
            )
        }
        Value::Failure(f) => Attributes::WorkflowExecutionFailedEventAttributes(
            WorkflowExecutionFailedEventAttributes {
                failure: Some(f),
                ..Default::default()
            },
        ),
    };
    let now = opt_ts_millis(&run.ms.close_time);
    Some(crate::engine::events::new_event(close, now))
}

/// The link a completion carries to what the callback's run started: the standalone
/// activity, the workflow's start, or the update that attached the callback.
pub(super) fn start_link(core: &Core, key: &RunKey, record: &CallbackRecord) -> Link {
    let activity = core.runs.get(key).and_then(|r| standalone::standalone(r));
    if let Some(activity) = activity {
        activity_link(key, &activity.activity_id)
    } else if record.attached_request_id.is_empty() {
        event_link(key, 1, EventType::WorkflowExecutionStarted)
    } else {
        request_link(
            key,
            &record.attached_request_id,
            EventType::WorkflowExecutionOptionsUpdated,
        )
    }
}

/// A header's value, whatever the case of its name.
fn header<'a>(nexus: &'a callback::Nexus, name: &str) -> Option<&'a str> {
    nexus
        .header
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Core {
    /// Calls the completion callbacks of the closed run `key`; true if one went to the outbox
    /// (the caller is served by another replica). The caller commits the run.
    pub(crate) fn deliver_completion_callbacks(&mut self, key: &RunKey) -> bool {
        let Some(run) = self.runs.get(key) else {
            return false;
        };
        if run.ms.callbacks.is_empty() {
            return false;
        }
        let Some(close) = closing_event(run) else {
            return false;
        };
        let records = run.ms.callbacks.clone();
        let mut queued = false;
        for record in records {
            let Some(info) = &record.info else { continue };
            if info.state != CallbackState::Standby as i32 {
                continue;
            }
            if super::callback_delivery::goes_outside(&record) {
                self.queue_outside_callback(key, &info.request_id);
                continue;
            }
            let result = self.completion_for(key, &record, &close).map(|completion| {
                if self.owns(&completion.caller_namespace, &completion.caller_workflow_id) {
                    Some(self.complete_nexus_operation(&completion))
                } else {
                    self.push_transfer(key, TransferKind::NexusCompletion(completion));
                    queued = true;
                    None
                }
            });
            let outcome = match result {
                Ok(delivered) => delivered,
                Err(message) => Some(Err(message)),
            };
            self.callback_attempted(key, &info.request_id, outcome);
        }
        self.changed(key);
        queued
    }

    /// What the callback `record` of the run `key` delivers when the run closed with `close`:
    /// refused if its token is not one this server gave a handler in the run's namespace.
    fn completion_for(
        &self,
        key: &RunKey,
        record: &CallbackRecord,
        close: &HistoryEvent,
    ) -> std::result::Result<NexusCompletionTransfer, String> {
        let Some(callback::Variant::Nexus(nexus)) = record
            .info
            .as_ref()
            .and_then(|i| i.callback.as_ref())
            .and_then(|c| c.variant.as_ref())
        else {
            return Err("unsupported callback variant".into());
        };
        let token = header(nexus, CALLBACK_TOKEN_HEADER)
            .ok_or_else(|| format!("the callback has no {CALLBACK_TOKEN_HEADER} header"))?;
        let (caller, token) = self
            .tokens
            .check(&key.namespace, token.as_bytes())
            .map_err(|e| format!("invalid callback token: {e}"))?;
        // Callback tokens are issued for attempt 0; task tokens name an attempt.
        if token.nexus_namespace.is_empty() || token.attempt != 0 {
            return Err("invalid callback token: not a Nexus callback token".into());
        }
        let start_link = start_link(self, key, record);
        Ok(NexusCompletionTransfer {
            caller_namespace: caller.namespace,
            caller_workflow_id: caller.workflow_id,
            caller_run_id: caller.run_id,
            scheduled_event_id: token.scheduled_event_id,
            operation_token: header(nexus, OPERATION_TOKEN_HEADER)
                .unwrap_or_default()
                .to_string(),
            close: Some(Box::new(close.clone())),
            start_link: Some(start_link),
            callback_request_id: record
                .info
                .as_ref()
                .map(|i| i.request_id.clone())
                .unwrap_or_default(),
            canceled_failure: None,
        })
    }

    /// Records an attempt of the callback `request_id` of `key`: None while it is on its
    /// way, else whether the caller's operation took it (Err: why it could not).
    pub(crate) fn callback_attempted(
        &mut self,
        key: &RunKey,
        request_id: &str,
        outcome: Option<std::result::Result<(), String>>,
    ) {
        let now = self.now();
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        let Some(info) = run
            .ms
            .callbacks
            .iter_mut()
            .filter_map(|r| r.info.as_mut())
            .find(|i| i.request_id == request_id)
        else {
            return;
        };
        match outcome {
            None => info.state = CallbackState::Scheduled as i32,
            Some(result) => {
                info.attempt += 1;
                info.last_attempt_complete_time = Some(ts_from_millis(now));
                match result {
                    Ok(()) => info.state = CallbackState::Succeeded as i32,
                    Err(message) => {
                        info.state = CallbackState::Failed as i32;
                        info.last_attempt_failure = Some(Failure {
                            message,
                            ..Default::default()
                        });
                    }
                }
            }
        }
        self.changed(key);
    }

    /// The link a start that attached to the running run `key` returns, after attaching what
    /// its `on_conflict_options` ask for (its request id, callbacks and links) with a
    /// `WorkflowExecutionOptionsUpdated` event; None when it asks for nothing.
    pub(crate) fn attach_to_running(
        &mut self,
        key: &RunKey,
        req: &temporalio_protos::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest,
    ) -> Result<Option<Link>> {
        use temporalio_protos::temporal::api::history::v1::WorkflowExecutionOptionsUpdatedEventAttributes as Updated;
        use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
        let Some(options) = &req.on_conflict_options else {
            return Ok(None);
        };
        if !options.attach_request_id && !options.attach_completion_callbacks {
            return Ok(None);
        }
        let now = self.now();
        let run = self.run_mut(key)?;
        let callbacks = if options.attach_completion_callbacks {
            req.completion_callbacks.clone()
        } else {
            Vec::new()
        };
        if run.ms.callbacks.len() + callbacks.len() > MAX_CALLBACKS_PER_WORKFLOW {
            return Err(Error::FailedPrecondition(format!(
                "cannot attach more than {MAX_CALLBACKS_PER_WORKFLOW} callbacks to a workflow"
            )));
        }
        run.ms
            .callbacks
            .extend(records(&callbacks, &req.request_id, now));
        if options.attach_request_id {
            run.ms.attached_request_ids.push(req.request_id.clone());
        }
        let mut event = crate::engine::events::new_event(
            Attributes::WorkflowExecutionOptionsUpdatedEventAttributes(Updated {
                attached_request_id: if options.attach_request_id {
                    req.request_id.clone()
                } else {
                    String::new()
                },
                attached_completion_callbacks: callbacks,
                identity: req.identity.clone(),
                ..Default::default()
            }),
            now,
        );
        event.worker_may_ignore = true;
        if options.attach_links {
            event.links = req.links.clone();
        }
        // Like any event it waits while a workflow task runs; it needs no task itself.
        run.ms.buffered.push(event);
        if !run.wft_started() {
            run.flush_buffer();
        }
        self.changed(key);
        Ok(Some(request_link(
            key,
            &req.request_id,
            EventType::WorkflowExecutionOptionsUpdated,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_addresses_match_scheme_host_and_port_globs() {
        let rules = CallbackAddresses {
            patterns: vec![
                "https://*.example.com:443".into(),
                "http://localhost:*".into(),
            ],
        };
        assert!(rules.allows("https://api.example.com/cb").is_ok());
        assert!(rules.allows("http://localhost:8080/cb?x=1").is_ok());
        assert!(
            rules.allows("http://api.example.com/cb").is_err(),
            "plain HTTP not allowed"
        );
        assert!(rules.allows("https://example.org/cb").is_err());
        assert!(rules.allows("ftp://localhost/cb").is_err());
        assert!(
            CallbackAddresses::default()
                .allows("https://a.b/c")
                .is_err()
        );
        assert!(
            CallbackAddresses::any()
                .allows("http://10.0.0.1:1/c")
                .is_ok()
        );
        assert!(glob_matches("a*b*c", "aXXbYYc") && !glob_matches("a*b*c", "aXXc"));
    }
}
