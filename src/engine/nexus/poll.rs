//! Nexus task queues, the handler's side: a poll takes the next attempt of an operation some
//! workflow scheduled on an endpoint that routes to this queue, with the request as a handler
//! would get it over HTTP from Temporal (headers with the attempt's deadline, the callback and
//! the link back to the caller). Pollers are seen by DescribeTaskQueue under the Nexus type.
//! SDK workers also poll Nexus queues for their own purposes, such as the worker-commands
//! queue each process polls once the namespace advertises worker heartbeats.

use std::collections::HashMap;
use std::sync::Arc;

use temporalio_protos::temporal::api::nexus::v1::{
    CancelOperationRequest, Link as NexusLink, Request as NexusRequest, StartOperationRequest,
    request,
};
use temporalio_protos::temporal::api::workflowservice::v1::{
    PollNexusTaskQueueRequest, PollNexusTaskQueueResponse,
};

use super::callbacks::{CALLBACK_TOKEN_HEADER, SYSTEM_CALLBACK_URL};
use super::links::{operation_link, scheduled_event_link};
use super::standalone;
use crate::engine::clock::{opt_ts_millis, ts_from_millis};
use crate::engine::matching::{QueueKey, QueueKind, TaskRef};
use crate::engine::{Core, Engine, Result, RunKey};

/// The handler is told to answer this much before the attempt's deadline, so its answer
/// arrives in time (Temporal's `limit.dispatch.task.timeout.min`).
pub(super) const ANSWER_MARGIN_MS: i64 = 1_000;

impl Engine {
    pub async fn poll_nexus_task(
        self: &Arc<Self>,
        req: PollNexusTaskQueueRequest,
        deadline: tokio::time::Instant,
        forwarded: bool,
    ) -> Result<PollNexusTaskQueueResponse> {
        let queue_name = self.poll_target(&req.namespace, &req.task_queue).await?;
        let queue = QueueKey::new(&req.namespace, &queue_name, QueueKind::Nexus);
        let poller = crate::engine::Poller::new(&req.identity, forwarded, &req.worker_instance_key);
        let resp = self
            .poll_queue(queue, &poller, deadline, |core, task| {
                Ok(core.start_nexus_task(task, &req.namespace, &queue_name))
            })
            .await?;
        Ok(resp.unwrap_or_default())
    }
}

impl Core {
    /// The link a handler gets to its caller: the workflow's scheduled event, or the
    /// standalone operation itself.
    pub(super) fn caller_link(&self, key: &RunKey, sched: i64) -> NexusLink {
        match self.runs.get(key).and_then(|r| standalone::standalone(r)) {
            Some(record) => operation_link(&key.namespace, &record.operation_id, &key.run_id),
            None => scheduled_event_link(key, sched),
        }
    }

    /// Hands an operation's attempt (to start or to cancel it) to a handler polling
    /// `namespace`/`queue`, unless the task is stale: the attempt moved on, was taken, or has
    /// too little time left to be answered.
    fn start_nexus_task(
        &mut self,
        task: TaskRef,
        namespace: &str,
        queue: &str,
    ) -> Option<PollNexusTaskQueueResponse> {
        if let TaskRef::Inbound { id } = &task {
            return self.start_inbound_task(id, namespace, queue);
        }
        let now = self.now();
        let TaskRef::Nexus {
            key,
            scheduled_event_id: sched,
            attempt,
            cancel,
        } = task
        else {
            return None;
        };
        let info = self.pending_nexus_operation(&key, sched)?;
        let call = super::call_in_flight(&info, cancel)?;
        let answer_within = call.deadline - now - ANSWER_MARGIN_MS;
        if call.attempt != attempt
            || call.dispatched
            || info.handler_namespace != namespace
            || info.handler_task_queue != queue
            || answer_within <= 0
        {
            return None;
        }
        let mut header: HashMap<String, String> = info.header.clone().into_iter().collect();
        header.insert("request-timeout".into(), format!("{answer_within}ms"));
        let s2c = crate::engine::clock::dur_millis(&info.schedule_to_close_timeout);
        if s2c > 0 {
            let left = opt_ts_millis(&info.scheduled_time) + s2c - now;
            header
                .entry("operation-timeout".into())
                .or_insert_with(|| format!("{}ms", left.max(0)));
        }
        let task_token = self
            .tokens
            .issue_nexus(&key, sched, attempt, namespace, cancel);
        let variant = if cancel {
            #[allow(deprecated)]
            request::Variant::CancelOperation(CancelOperationRequest {
                service: info.service.clone(),
                operation: info.operation.clone(),
                operation_id: info.operation_token.clone(),
                operation_token: info.operation_token.clone(),
            })
        } else {
            let callback_token = self.tokens.issue_nexus(&key, sched, 0, namespace, false);
            request::Variant::StartOperation(StartOperationRequest {
                service: info.service.clone(),
                operation: info.operation.clone(),
                request_id: info.request_id.clone(),
                callback: SYSTEM_CALLBACK_URL.into(),
                payload: info.input.clone(),
                callback_header: HashMap::from([(
                    CALLBACK_TOKEN_HEADER.to_string(),
                    String::from_utf8_lossy(&callback_token).into_owned(),
                )]),
                links: vec![self.caller_link(&key, sched)],
            })
        };
        if let Some(run) = self.runs.get_mut(&key)
            && let Some(info) = run.ms.nexus_operations.get_mut(&sched)
        {
            super::mark_dispatched(info, cancel);
        }
        self.changed(&key);
        let request = task_request(header, now, info.endpoint.clone(), variant);
        Some(PollNexusTaskQueueResponse {
            task_token,
            request: Some(request),
            ..Default::default()
        })
    }
}

/// A Nexus request as a handler's poll gets it, scheduled `now`.
pub(super) fn task_request(
    header: HashMap<String, String>,
    now: i64,
    endpoint: String,
    variant: request::Variant,
) -> NexusRequest {
    NexusRequest {
        header,
        scheduled_time: Some(ts_from_millis(now)),
        capabilities: Some(request::Capabilities {
            temporal_failure_responses: true,
        }),
        endpoint,
        variant: Some(variant),
    }
}
