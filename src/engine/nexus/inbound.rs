//! Nexus requests from callers outside Durin, arriving over HTTP (`api/nexus_http.rs`) for an
//! endpoint whose target is a handler worker's task queue. As in Temporal, the HTTP request
//! is held open until a handler answers or the request's deadline passes: the request waits
//! here, in memory (it is the caller's to retry, nothing is stored), as a task on the
//! handler's Nexus queue. A handler's poll takes it like any Nexus task, and its answer
//! (RespondNexusTaskCompleted / Failed) is handed back to the waiting HTTP request.
//!
//! The answer is routed by its task token like every Nexus answer: the token names a key in
//! the key space of [`KEY_PREFIX`], chosen in a shard this replica serves, so the answer
//! comes back to the replica holding the request (a poller on another replica takes the task
//! through that replica's fetcher, see `cluster::fetch`).

use std::collections::HashMap;
use std::sync::Arc;

use temporalio_protos::temporal::api::common::v1::Payload;
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::nexus::v1::{
    CancelOperationRequest, Link as NexusLink, StartOperationRequest, request, response,
};
use temporalio_protos::temporal::api::workflowservice::v1::PollNexusTaskQueueResponse;
use tokio::sync::oneshot;

use super::poll::ANSWER_MARGIN_MS;
use crate::engine::matching::{QueueKey, QueueKind, TaskRef};
use crate::engine::{Core, Engine, Error, Result, RunKey};

/// Marks a run key's id as an inbound HTTP request's (no workflow id starts with NUL).
const KEY_PREFIX: &str = "\0nexus-http:";
/// Tries at finding a request id in a shard this replica serves before giving up.
const ID_TRIES: usize = 256;

/// What an outside caller asks of an operation.
pub enum InboundKind {
    Start {
        request_id: String,
        /// Where the handler sends an asynchronous operation's completion ("" for none).
        callback: String,
        callback_header: HashMap<String, String>,
        payload: Option<Payload>,
        links: Vec<NexusLink>,
    },
    Cancel {
        operation_token: String,
    },
}

/// A request to an endpoint's handler, as it came over HTTP.
pub struct InboundRequest {
    pub service: String,
    pub operation: String,
    /// The caller's Nexus headers (lowercased names).
    pub header: HashMap<String, String>,
    pub kind: InboundKind,
}

/// Where a request goes: the endpoint's name ("" when addressed by task queue) and the
/// handler's namespace and task queue.
pub struct InboundTarget {
    pub endpoint: String,
    pub namespace: String,
    pub task_queue: String,
}

/// The handler's answer.
pub enum InboundAnswer {
    /// RespondNexusTaskCompleted: the start's or the cancellation's response.
    Answered(response::Variant),
    /// RespondNexusTaskFailed: a handler error (a failure with `NexusHandlerFailureInfo`).
    Failed(Failure),
}

/// A request waiting for its handler.
struct Waiting {
    target: InboundTarget,
    request: InboundRequest,
    deadline_ms: i64,
    /// A handler took it (its answer is awaited).
    dispatched: bool,
    answer: oneshot::Sender<InboundAnswer>,
}

/// The requests held here, by id.
#[derive(Default)]
pub(crate) struct InboundCalls {
    waiting: HashMap<String, Waiting>,
}

impl InboundCalls {
    /// Whether a queued reference to request `id` still stands for a request.
    pub(crate) fn is_waiting(&self, id: &str) -> bool {
        self.waiting.get(id).is_some_and(|w| !w.dispatched)
    }
}

/// The request id of a task token's key, if the token is an inbound request's.
pub(crate) fn request_id_of(key: &RunKey) -> Option<&str> {
    key.workflow_id.strip_prefix(KEY_PREFIX)
}

fn request_key(namespace: &str, id: &str) -> RunKey {
    RunKey {
        namespace: namespace.to_string(),
        workflow_id: format!("{KEY_PREFIX}{id}"),
        run_id: String::new(),
    }
}

/// Forgets a request when its HTTP request ends (answered, timed out or dropped by the
/// caller), so nothing is kept for a caller that is gone.
struct Forget {
    engine: Arc<Engine>,
    id: String,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.engine
            .core
            .lock()
            .inbound_nexus
            .waiting
            .remove(&self.id);
    }
}

impl Engine {
    /// The handler an endpoint routes to, given its id (NotFound: no such endpoint, or one
    /// that forwards to an external URL, which callers reach directly).
    pub fn inbound_nexus_target(&self, endpoint_id: &str) -> Result<InboundTarget> {
        use temporalio_protos::temporal::api::nexus::v1::endpoint_target::Variant;
        let core = self.core.lock();
        let spec = core
            .live_endpoint(endpoint_id)
            .and_then(|r| r.spec.as_ref())
            .ok_or_else(|| Error::NotFound("nexus endpoint not found".into()))?;
        match spec.target.as_ref().and_then(|t| t.variant.as_ref()) {
            Some(Variant::Worker(worker)) => Ok(InboundTarget {
                endpoint: spec.name.clone(),
                namespace: worker.namespace.clone(),
                task_queue: worker.task_queue.clone(),
            }),
            _ => Err(Error::NotFound(
                "nexus endpoint not found: it has no worker target".into(),
            )),
        }
    }

    /// Hands a request to the target's handlers and waits up to `wait_ms` for the answer
    /// (None: no handler answered in time).
    pub async fn dispatch_inbound_nexus(
        self: &Arc<Self>,
        target: InboundTarget,
        request: InboundRequest,
        wait_ms: i64,
    ) -> Result<Option<InboundAnswer>> {
        let (tx, rx) = oneshot::channel();
        let deadline_ms = self.now() + wait_ms;
        let (queued, _) = self.with_core(|core| {
            core.check_namespace(&target.namespace)?;
            core.queue_inbound(Waiting {
                target,
                request,
                deadline_ms,
                dispatched: false,
                answer: tx,
            })
        });
        let _forget = Forget {
            engine: self.clone(),
            id: queued?,
        };
        let sleep = std::time::Duration::from_millis(wait_ms.max(0) as u64);
        tokio::select! {
            answer = rx => Ok(answer.ok()),
            _ = tokio::time::sleep(sleep) => Ok(None),
        }
    }

    /// Hands a handler's answer to the request a task token names, if it still waits.
    /// Returns the answer back when the token is not an inbound request's.
    pub(super) fn answer_inbound_nexus(
        &self,
        namespace: &str,
        token: &[u8],
        answer: InboundAnswer,
    ) -> Result<Option<InboundAnswer>> {
        let Ok((key, _)) = crate::engine::parse_token(token) else {
            return Ok(Some(answer));
        };
        let Some(id) = request_id_of(&key) else {
            return Ok(Some(answer));
        };
        let mut core = self.core.lock();
        let (_, token) = core.tokens.check(namespace, token)?;
        let not_found = || Error::NotFound("Nexus task not found or already expired".into());
        let waiting = core
            .inbound_nexus
            .waiting
            .get(id)
            .filter(|w| w.dispatched)
            .ok_or_else(not_found)?;
        let is_cancel = matches!(waiting.request.kind, InboundKind::Cancel { .. });
        let fits = match &answer {
            InboundAnswer::Answered(response::Variant::StartOperation(_)) => !is_cancel,
            InboundAnswer::Answered(response::Variant::CancelOperation(_)) => is_cancel,
            InboundAnswer::Failed(_) => true,
        };
        if !fits || token.nexus_cancel != is_cancel {
            return Err(Error::InvalidArgument(
                "the response does not answer the task's request".into(),
            ));
        }
        let waiting = core
            .inbound_nexus
            .waiting
            .remove(id)
            .ok_or_else(not_found)?;
        // The caller may have just gone (its request ended): the answer has nowhere to go.
        let _ = waiting.answer.send(answer);
        Ok(None)
    }
}

impl Core {
    /// Queues a request on its handler queue under a fresh id in a shard served here.
    fn queue_inbound(&mut self, waiting: Waiting) -> Result<String> {
        let namespace = waiting.target.namespace.clone();
        let id = std::iter::repeat_with(|| uuid::Uuid::new_v4().simple().to_string())
            .take(ID_TRIES)
            .find(|id| self.owns(&namespace, &request_key(&namespace, id).workflow_id))
            .ok_or_else(|| {
                Error::Unavailable("this replica serves no shards at the moment; retry".into())
            })?;
        let queue = QueueKey::new(&namespace, &waiting.target.task_queue, QueueKind::Nexus);
        self.inbound_nexus.waiting.insert(id.clone(), waiting);
        self.push_task(queue, TaskRef::Inbound { id: id.clone() });
        Ok(id)
    }

    /// Hands a waiting request to a handler polling `namespace`/`queue`, unless it is gone,
    /// taken, or too close to its deadline to be answered.
    pub(super) fn start_inbound_task(
        &mut self,
        id: &str,
        namespace: &str,
        queue: &str,
    ) -> Option<PollNexusTaskQueueResponse> {
        let now = self.now();
        let waiting = self.inbound_nexus.waiting.get_mut(id)?;
        let answer_within = waiting.deadline_ms - now - ANSWER_MARGIN_MS;
        if waiting.dispatched
            || waiting.answer.is_closed()
            || waiting.target.namespace != namespace
            || waiting.target.task_queue != queue
            || answer_within <= 0
        {
            return None;
        }
        waiting.dispatched = true;
        let request = &waiting.request;
        let mut header = request.header.clone();
        header.insert("request-timeout".into(), format!("{answer_within}ms"));
        let cancel = matches!(request.kind, InboundKind::Cancel { .. });
        let variant = match &request.kind {
            #[allow(deprecated)]
            InboundKind::Cancel { operation_token } => {
                request::Variant::CancelOperation(CancelOperationRequest {
                    service: request.service.clone(),
                    operation: request.operation.clone(),
                    operation_id: operation_token.clone(),
                    operation_token: operation_token.clone(),
                })
            }
            InboundKind::Start {
                request_id,
                callback,
                callback_header,
                payload,
                links,
            } => request::Variant::StartOperation(StartOperationRequest {
                service: request.service.clone(),
                operation: request.operation.clone(),
                request_id: request_id.clone(),
                callback: callback.clone(),
                payload: payload.clone(),
                callback_header: callback_header.clone(),
                links: links.clone(),
            }),
        };
        let endpoint = waiting.target.endpoint.clone();
        let task_token =
            self.tokens
                .issue_nexus(&request_key(namespace, id), 0, 1, namespace, cancel);
        Some(PollNexusTaskQueueResponse {
            task_token,
            request: Some(super::poll::task_request(header, now, endpoint, variant)),
            ..Default::default()
        })
    }
}
