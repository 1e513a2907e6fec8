//! Nexus over HTTP, the caller's side: an operation on an endpoint whose target is a URL
//! (an external endpoint) is started and cancelled with HTTP calls to the handler there, as
//! Temporal calls it (`client.rs`, in the protocol's shapes of `wire.rs`). The attempt's
//! bookkeeping is the same as for a worker's queue (`attempts.rs`, `cancel.rs`): a call is
//! queued when its attempt is dispatched, made outside the engine's lock by the loop here,
//! and its answer recorded as a worker's answer would be — unless the attempt moved on
//! meanwhile. A handler that starts an operation asynchronously completes it later through
//! Durin's callback endpoint (`api/nexus_http.rs`), whose URL the start carries.

pub(super) mod client;
pub(crate) mod wire;

use std::sync::Arc;
use std::time::Duration;

use temporalio_protos::temporal::api::nexus::v1::start_operation_response::{Async, Sync, Variant};

pub(super) use self::client::HandlerClient;
use self::client::{Answer, CancelCall, StartCall};
use super::callbacks::CALLBACK_TOKEN_HEADER;
use crate::engine::clock::opt_ts_millis;
use crate::engine::{Core, Engine, RunKey};

/// One call to make: attempt `attempt` of the start (or cancellation) of an operation, or
/// the delivery of a closed run's completion callback `request_id` to its URL.
#[derive(Debug, Clone)]
pub(crate) enum HttpCall {
    Operation(OperationCall),
    Callback { key: RunKey, request_id: String },
}

#[derive(Debug, Clone)]
pub(crate) struct OperationCall {
    pub key: RunKey,
    pub sched: i64,
    pub attempt: i32,
    pub cancel: bool,
}

/// A call ready to go, read from the operation under the lock.
enum Prepared {
    Start(StartCall),
    Cancel(CancelCall),
}

/// The path of Durin's completion callback for operations of `namespace`, under the client
/// port's base URL.
pub fn callback_url(base: &str, namespace: &str) -> String {
    let mut url = match url::Url::parse(base) {
        Ok(u) => u,
        Err(_) => return String::new(),
    };
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty()
            .extend(["namespaces", namespace, "nexus", "callback"]);
    }
    url.to_string()
}

impl Core {
    /// Queues an HTTP call for the loop (dropped when the engine runs without one: the
    /// attempt times out and is retried).
    pub(crate) fn push_http_call(&mut self, call: HttpCall) {
        if let Some(queue) = &self.nexus_calls {
            let _ = queue.send(call);
        }
    }

    /// The call for `c`, if its attempt is still the one in flight and not yet made; marks
    /// it made.
    fn prepare_http_call(&mut self, c: &OperationCall, callback_base: &str) -> Option<Prepared> {
        let now = self.now();
        let info = self.pending_nexus_operation(&c.key, c.sched)?;
        let call = super::call_in_flight(&info, c.cancel)?;
        if call.attempt != c.attempt || call.dispatched || info.handler_url.is_empty() {
            return None;
        }
        let timeout = Duration::from_millis((call.deadline - now).max(1) as u64);
        let mut header: Vec<(String, String)> = info.header.clone().into_iter().collect();
        let prepared = if c.cancel {
            Prepared::Cancel(CancelCall {
                url: info.handler_url.clone(),
                service: info.service.clone(),
                operation: info.operation.clone(),
                token: info.operation_token.clone(),
                header,
                timeout,
            })
        } else {
            let s2c = crate::engine::clock::dur_millis(&info.schedule_to_close_timeout);
            if s2c > 0 && !info.header.contains_key("operation-timeout") {
                let left = opt_ts_millis(&info.scheduled_time) + s2c - now;
                header.push(("operation-timeout".into(), format!("{}ms", left.max(0))));
            }
            let token = self
                .tokens
                .issue_nexus(&c.key, c.sched, 0, &c.key.namespace, false);
            Prepared::Start(StartCall {
                url: info.handler_url.clone(),
                service: info.service.clone(),
                operation: info.operation.clone(),
                request_id: info.request_id.clone(),
                input: info.input.clone(),
                header,
                callback_url: callback_url(callback_base, &c.key.namespace),
                callback_header: vec![(
                    CALLBACK_TOKEN_HEADER.to_string(),
                    String::from_utf8_lossy(&token).into_owned(),
                )],
                links: vec![self.caller_link(&c.key, c.sched)],
                timeout,
            })
        };
        if let Some(run) = self.runs.get_mut(&c.key)
            && let Some(op) = run.ms.nexus_operations.get_mut(&c.sched)
        {
            super::mark_dispatched(op, c.cancel);
        }
        self.changed(&c.key);
        Some(prepared)
    }

    /// Records the handler's answer to `c`, unless its attempt moved on meanwhile (timed out
    /// and retried, or the operation ended).
    fn http_call_answered(&mut self, c: &OperationCall, answer: Answer) {
        let in_flight = self
            .pending_nexus_operation(&c.key, c.sched)
            .and_then(|info| super::call_in_flight(&info, c.cancel));
        if in_flight.is_none_or(|call| call.attempt != c.attempt) {
            return;
        }
        let (key, sched) = (&c.key, c.sched);
        match answer {
            Answer::Completed(payload, links) => {
                self.nexus_start_answered(key, sched, Variant::SyncSuccess(Sync { payload, links }))
            }
            Answer::Started(operation_token, links) => self.nexus_start_answered(
                key,
                sched,
                Variant::AsyncSuccess(Async {
                    operation_token,
                    links,
                    ..Default::default()
                }),
            ),
            Answer::Unsuccessful(failure) => {
                self.nexus_start_answered(key, sched, Variant::Failure(failure))
            }
            Answer::CancelAccepted => self.nexus_cancel_succeeded(key, sched),
            Answer::HandlerError {
                error_type,
                message,
                retryable,
            } => {
                let failure = super::handler_failure(&error_type, &message, retryable);
                let retryable = match &failure.failure_info {
                    Some(temporalio_protos::temporal::api::failure::v1::failure::FailureInfo::NexusHandlerFailureInfo(i)) => super::is_retryable(i),
                    _ => true,
                };
                if c.cancel {
                    self.nexus_cancel_attempt_failed(key, sched, failure, retryable);
                } else {
                    self.nexus_attempt_failed(key, sched, failure, retryable);
                }
            }
        }
    }
}

impl Engine {
    /// Sets the base URL of the client port, from which handlers at external endpoints are
    /// given Durin's completion callback URL.
    pub fn set_nexus_callback_base(&self, base: String) {
        let _ = self.nexus_callback_base.set(base);
    }

    /// Makes the queued HTTP calls to external Nexus handlers until the engine is dropped.
    pub fn spawn_nexus_http_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let rx = self.nexus_calls_rx.lock().take();
        tokio::spawn(async move {
            let Some(mut rx) = rx else { return };
            let client = match HandlerClient::new() {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    tracing::error!(error = %e, "no HTTP client for Nexus handlers");
                    return;
                }
            };
            while let Some(call) = rx.recv().await {
                let Some(engine) = weak.upgrade() else { return };
                tokio::spawn(make_call(engine, client.clone(), call));
            }
        })
    }
}

async fn make_call(engine: Arc<Engine>, client: Arc<HandlerClient>, call: HttpCall) {
    match call {
        HttpCall::Operation(call) => call_handler(engine, client, call).await,
        HttpCall::Callback { key, request_id } => {
            super::callback_delivery::deliver(engine, client, key, request_id).await
        }
    }
}

async fn call_handler(engine: Arc<Engine>, client: Arc<HandlerClient>, call: OperationCall) {
    let base = engine
        .nexus_callback_base
        .get()
        .cloned()
        .unwrap_or_default();
    let prepared = engine
        .transact(|core| Ok(core.prepare_http_call(&call, &base)))
        .await;
    let answer = match prepared {
        Ok(Some(Prepared::Start(start))) => client.start(start).await,
        Ok(Some(Prepared::Cancel(cancel))) => client.cancel(cancel).await,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not prepare a Nexus call");
            return;
        }
    };
    let recorded = engine
        .transact(|core| {
            core.http_call_answered(&call, answer);
            Ok(())
        })
        .await;
    if let Err(e) = recorded {
        tracing::warn!(error = %e, "could not record a Nexus handler's answer");
    }
}

/// A completion a handler sent to Durin's callback endpoint.
pub struct HttpCompletion {
    /// The callback token the start carried (header `Temporal-Callback-Token`).
    pub token: Vec<u8>,
    pub operation_token: String,
    pub outcome: HttpOutcome,
    pub links: Vec<temporalio_protos::temporal::api::nexus::v1::Link>,
}

/// What the operation ended with.
pub enum HttpOutcome {
    Succeeded(Option<temporalio_protos::temporal::api::common::v1::Payload>),
    Failed(temporalio_protos::temporal::api::failure::v1::Failure),
    Canceled(temporalio_protos::temporal::api::failure::v1::Failure),
}

impl Engine {
    /// Ends the operation a completion's callback token names, in `namespace` (the callback
    /// URL's): INVALID_ARGUMENT for a token this server did not give for that namespace,
    /// NOT_FOUND when the operation is not pending (it ended, or its run closed). A caller
    /// another replica serves gets it from there, as an outbox item would reach it;
    /// UNAVAILABLE while that replica cannot be reached.
    pub async fn complete_nexus_operation_over_http(
        &self,
        namespace: &str,
        completion: HttpCompletion,
    ) -> crate::engine::Result<()> {
        use crate::engine::Error;
        use crate::engine::state::{Transfer, TransferKind};
        use crate::engine::transfer::Source;
        let (transfer, shard) = self
            .transact(|core| {
                let t = core.completion_from_http(namespace, completion)?;
                let shard = core.shard_of(&t.caller_namespace, &t.caller_workflow_id);
                Ok((t, shard))
            })
            .await?;
        if self.owns_shard(shard) {
            return self
                .transact(|core| {
                    core.complete_nexus_operation(&transfer)
                        .map_err(Error::NotFound)
                })
                .await;
        }
        let Some(router) = self.transfer_router.get() else {
            return Err(Error::Unavailable(format!(
                "no replica serves shard {shard}"
            )));
        };
        let caller = RunKey {
            namespace: transfer.caller_namespace.clone(),
            workflow_id: transfer.caller_workflow_id.clone(),
            run_id: transfer.caller_run_id.clone(),
        };
        let item = Transfer {
            id: 0,
            kind: Some(TransferKind::NexusCompletion(transfer)),
        };
        match router.deliver(shard, Source::Run(caller), item).await {
            Ok(outcome) if outcome.ok => Ok(()),
            Ok(outcome) => Err(Error::NotFound(outcome.message)),
            Err(e) => Err(Error::Unavailable(e)),
        }
    }
}

impl Core {
    /// The completion `c` carries, as the transfer that applies it to the caller; refused
    /// unless its token is one this server gave a handler for `namespace`.
    fn completion_from_http(
        &mut self,
        namespace: &str,
        c: HttpCompletion,
    ) -> crate::engine::Result<crate::engine::state::NexusCompletionTransfer> {
        use crate::engine::Error;
        use crate::engine::state::NexusCompletionTransfer;
        use temporalio_protos::temporal::api::common::v1::Payloads;
        use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
        use temporalio_protos::temporal::api::history::v1::{
            WorkflowExecutionCanceledEventAttributes, WorkflowExecutionCompletedEventAttributes,
            WorkflowExecutionFailedEventAttributes,
        };
        let invalid = || Error::InvalidArgument("invalid callback token".into());
        let (caller, token) = self
            .tokens
            .check(namespace, &c.token)
            .map_err(|_| invalid())?;
        if token.nexus_namespace.is_empty() || token.attempt != 0 {
            return Err(invalid());
        }
        // The outcome in the shape a handler workflow's close has (what completions carry).
        let mut canceled_failure = None;
        let close = match c.outcome {
            HttpOutcome::Succeeded(result) => {
                Attributes::WorkflowExecutionCompletedEventAttributes(
                    WorkflowExecutionCompletedEventAttributes {
                        result: Some(Payloads {
                            payloads: result.into_iter().collect(),
                        }),
                        ..Default::default()
                    },
                )
            }
            HttpOutcome::Failed(failure) => Attributes::WorkflowExecutionFailedEventAttributes(
                WorkflowExecutionFailedEventAttributes {
                    failure: Some(failure),
                    ..Default::default()
                },
            ),
            HttpOutcome::Canceled(failure) => {
                canceled_failure = Some(Box::new(failure));
                Attributes::WorkflowExecutionCanceledEventAttributes(
                    WorkflowExecutionCanceledEventAttributes::default(),
                )
            }
        };
        let now = self.now();
        Ok(NexusCompletionTransfer {
            caller_namespace: caller.namespace,
            caller_workflow_id: caller.workflow_id,
            caller_run_id: caller.run_id,
            scheduled_event_id: token.scheduled_event_id,
            operation_token: c.operation_token,
            close: Some(Box::new(crate::engine::events::new_event(close, now))),
            start_link: c.links.iter().find_map(super::links::from_nexus),
            callback_request_id: String::new(),
            canceled_failure,
        })
    }
}
