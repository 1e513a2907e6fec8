//! Workflow updates: admission, delivery to the worker as protocol messages on a workflow
//! task, acceptance/rejection/completion from the worker's reply, and callers waiting for a
//! lifecycle stage (also update-with-start through ExecuteMultiOperation).

use std::sync::Arc;

use prost::Message as _;
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::enums::v1::UpdateWorkflowExecutionLifecycleStage as Stage;
use temporalio_protos::temporal::api::failure::v1::{ApplicationFailureInfo, Failure, failure};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::history::v1::{
    WorkflowExecutionUpdateAcceptedEventAttributes, WorkflowExecutionUpdateCompletedEventAttributes,
};
use temporalio_protos::temporal::api::protocol::v1::{Message, message::SequencingId};
use temporalio_protos::temporal::api::update::v1::{
    Acceptance, Outcome, Rejection, Request, Response, UpdateRef, outcome,
};
use temporalio_protos::temporal::api::workflowservice::v1::{
    PollWorkflowExecutionUpdateRequest, PollWorkflowExecutionUpdateResponse,
    UpdateWorkflowExecutionRequest, UpdateWorkflowExecutionResponse,
};

use super::commands::CommandError;
use super::state::UpdateInfo;
use super::{Core, Engine, Error, Result, Run, RunKey};

const ACCEPTANCE: &str = "temporal.api.update.v1.Acceptance";
const REJECTION: &str = "temporal.api.update.v1.Rejection";
const RESPONSE: &str = "temporal.api.update.v1.Response";
const REQUEST: &str = "temporal.api.update.v1.Request";

impl Engine {
    pub async fn update_workflow(
        self: &Arc<Self>,
        req: UpdateWorkflowExecutionRequest,
        deadline: tokio::time::Instant,
    ) -> Result<UpdateWorkflowExecutionResponse> {
        let mut request = req.request.clone().unwrap_or_default();
        let update_id = check_request(&mut request)?;
        let key = self
            .transact(|core| {
                let exec = req.workflow_execution.clone().unwrap_or_default();
                let key = core.resolve_run(&req.namespace, &exec.workflow_id, &exec.run_id)?;
                let run = core.run(&key)?;
                if !req.first_execution_run_id.is_empty()
                    && run
                        .ms
                        .started
                        .as_ref()
                        .is_some_and(|s| s.first_execution_run_id != req.first_execution_run_id)
                {
                    return Err(Error::NotFound(
                        "workflow execution not found for the given first run id".into(),
                    ));
                }
                core.admit_update(&key, request)?;
                Ok(key)
            })
            .await?;
        let wanted = req
            .wait_policy
            .map(|w| w.lifecycle_stage)
            .unwrap_or(0)
            .max(Stage::Accepted as i32);
        self.wait_for_update(&key, &update_id, wanted, deadline)
            .await
    }

    pub async fn poll_update(
        self: &Arc<Self>,
        req: PollWorkflowExecutionUpdateRequest,
        deadline: tokio::time::Instant,
    ) -> Result<PollWorkflowExecutionUpdateResponse> {
        let update_ref = req.update_ref.clone().unwrap_or_default();
        let exec = update_ref.workflow_execution.clone().unwrap_or_default();
        let key = self
            .transact(|core| {
                let key = core.resolve_run(&req.namespace, &exec.workflow_id, &exec.run_id)?;
                if !core
                    .run(&key)?
                    .ms
                    .updates
                    .contains_key(&update_ref.update_id)
                {
                    return Err(Error::NotFound(format!(
                        "update {} not found",
                        update_ref.update_id
                    )));
                }
                Ok(key)
            })
            .await?;
        // Unlike an update request, a poll without a wait policy (or waiting for admission)
        // answers at once with the stage reached: that is how callers learn an update exists.
        let wanted = req.wait_policy.map(|w| w.lifecycle_stage).unwrap_or(0);
        let resp = self
            .wait_for_update(&key, &update_ref.update_id, wanted, deadline)
            .await?;
        Ok(PollWorkflowExecutionUpdateResponse {
            outcome: resp.outcome,
            stage: resp.stage,
            update_ref: resp.update_ref,
        })
    }

    /// Waits until the update reaches `wanted` or the deadline passes (then answers with the
    /// stage reached so far; callers poll again).
    pub(super) async fn wait_for_update(
        self: &Arc<Self>,
        key: &RunKey,
        update_id: &str,
        wanted: i32,
        deadline: tokio::time::Instant,
    ) -> Result<UpdateWorkflowExecutionResponse> {
        let mut key = key.clone();
        let key = &mut key;
        loop {
            let (info, mut changed) = {
                let core = self.core.lock();
                let run = core.run(key)?;
                let info = run.ms.updates.get(update_id).cloned();
                (info, run.subscribe_updates())
            };
            let Some(info) = info else {
                return Err(Error::NotFound(format!("update {update_id} not found")));
            };
            if !info.moved_to_run_id.is_empty() {
                key.run_id = info.moved_to_run_id.clone();
                continue;
            }
            if info.aborted_by_close && info.outcome.is_none() {
                return Err(Error::NotFound(
                    "workflow update was aborted by closing workflow".into(),
                ));
            }
            if info.stage >= wanted {
                // The stage was reached by an operation that may still be on its way to disk.
                self.reported_state_durable().await?;
                return Ok(response(key, update_id, &info));
            }
            let woke = tokio::select! {
                r = changed.changed() => r.is_ok(),
                _ = self.poll_expiry(deadline) => false,
            };
            if !woke {
                let mut info = info;
                info.stage = info.stage.max(Stage::Admitted as i32);
                return Ok(response(key, update_id, &info));
            }
        }
    }
}

/// Checks what an update request must name and gives it an id when it has none (as Temporal's
/// frontend does: the Web UI sends an empty one unless the user types one); returns the id.
pub(super) fn check_request(request: &mut Request) -> Result<String> {
    let Some(meta) = request.meta.as_mut() else {
        return Err(Error::InvalidArgument(
            "Update meta is not set on request.".into(),
        ));
    };
    if meta.update_id.is_empty() {
        meta.update_id = uuid::Uuid::new_v4().to_string();
    }
    let update_id = meta.update_id.clone();
    if request.input.as_ref().is_none_or(|i| i.name.is_empty()) {
        return Err(Error::InvalidArgument(
            "Update name is not set on request.".into(),
        ));
    }
    Ok(update_id)
}

fn response(key: &RunKey, update_id: &str, info: &UpdateInfo) -> UpdateWorkflowExecutionResponse {
    UpdateWorkflowExecutionResponse {
        update_ref: Some(UpdateRef {
            workflow_execution: Some(WorkflowExecution {
                workflow_id: key.workflow_id.clone(),
                run_id: key.run_id.clone(),
            }),
            update_id: update_id.to_string(),
        }),
        outcome: info.outcome.clone(),
        stage: info.stage,
        ..Default::default()
    }
}

/// The server's own failure of an update, as Temporal words it.
fn failure_outcome(type_: &str, message: &str) -> Outcome {
    Outcome {
        value: Some(outcome::Value::Failure(Failure {
            message: message.to_string(),
            source: "Server".into(),
            failure_info: Some(failure::FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo {
                    r#type: type_.into(),
                    non_retryable: true,
                    ..Default::default()
                },
            )),
            ..Default::default()
        })),
    }
}

fn any<M: prost::Message>(type_name: &str, m: &M) -> prost_wkt_types::Any {
    prost_wkt_types::Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value: m.encode_to_vec(),
    }
}

impl Core {
    /// Records a new update (idempotent by update id) and makes sure a workflow task will
    /// carry it to a worker.
    pub(super) fn admit_update(&mut self, key: &RunKey, request: Request) -> Result<()> {
        let update_id = request
            .meta
            .as_ref()
            .map(|m| m.update_id.clone())
            .unwrap_or_default();
        let run = self.run_mut(key)?;
        if run.ms.updates.contains_key(&update_id) {
            return Ok(());
        }
        if !run.is_open() {
            return Err(Error::NotFound(
                "workflow execution already completed".into(),
            ));
        }
        use super::limits::{MAX_IN_FLIGHT_UPDATES, MAX_TOTAL_UPDATES};
        if run.ms.updates.len() >= MAX_TOTAL_UPDATES {
            return Err(Error::FailedPrecondition(format!(
                "limit on number of total updates has been reached ({MAX_TOTAL_UPDATES})"
            )));
        }
        let in_flight = run
            .ms
            .updates
            .values()
            .filter(|u| u.stage < Stage::Completed as i32)
            .count();
        if in_flight >= MAX_IN_FLIGHT_UPDATES {
            return Err(Error::ResourceExhausted(format!(
                "limit on number of concurrent in-flight updates has been reached \
                 ({MAX_IN_FLIGHT_UPDATES})"
            )));
        }
        run.ms.updates.insert(
            update_id,
            UpdateInfo {
                request: Some(request),
                stage: Stage::Admitted as i32,
                ..Default::default()
            },
        );
        self.schedule_workflow_task(key, 1);
        self.changed(key);
        Ok(())
    }
}

impl Run {
    /// Protocol messages for the updates a starting workflow task carries.
    pub(crate) fn deliver_updates(
        &mut self,
        scheduled_event_id: i64,
        started_event_id: i64,
    ) -> Vec<Message> {
        let mut out = Vec::new();
        for (id, info) in self.ms.updates.iter_mut() {
            if info.stage != Stage::Admitted as i32 || info.delivered_in != 0 {
                continue;
            }
            info.delivered_in = scheduled_event_id;
            let request = info.request.clone().unwrap_or_default();
            out.push(Message {
                id: format!("{id}/request"),
                protocol_instance_id: id.clone(),
                body: Some(any(REQUEST, &request)),
                sequencing_id: Some(SequencingId::EventId(started_event_id - 1)),
            });
        }
        out
    }

    /// Updates sent with a task that failed go out again with the next one.
    pub(crate) fn redeliver_updates(&mut self) {
        for info in self.ms.updates.values_mut() {
            if info.stage == Stage::Admitted as i32 {
                info.delivered_in = 0;
            }
        }
    }

    pub(crate) fn has_undelivered_updates(&self) -> bool {
        self.ms
            .updates
            .values()
            .any(|u| u.stage == Stage::Admitted as i32 && u.delivered_in == 0)
    }

    /// Applies one protocol message from a workflow task completion.
    pub(crate) fn apply_update_message(
        &mut self,
        message: &Message,
        now: i64,
    ) -> std::result::Result<(), CommandError> {
        use temporalio_protos::temporal::api::enums::v1::WorkflowTaskFailedCause as C;
        let bad = |m: String| CommandError {
            cause: C::UnhandledCommand,
            message: m,
            terminate: false,
        };
        let body = message
            .body
            .as_ref()
            .ok_or_else(|| bad(format!("protocol message {} has no body", message.id)))?;
        let kind = body.type_url.rsplit('/').next().unwrap_or_default();
        let id = message.protocol_instance_id.clone();
        match kind {
            ACCEPTANCE => {
                let a =
                    Acceptance::decode(body.value.as_slice()).map_err(|e| bad(e.to_string()))?;
                let info = self
                    .ms
                    .updates
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| bad(format!("unknown update {id}")))?;
                let event_id = self.append(
                    now,
                    Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(
                        WorkflowExecutionUpdateAcceptedEventAttributes {
                            protocol_instance_id: id.clone(),
                            accepted_request_message_id: a.accepted_request_message_id,
                            accepted_request_sequencing_event_id: a
                                .accepted_request_sequencing_event_id,
                            accepted_request: a.accepted_request.or(info.request),
                        },
                    ),
                );
                if let Some(u) = self.ms.updates.get_mut(&id) {
                    u.stage = Stage::Accepted as i32;
                    u.accepted_event_id = event_id;
                }
            }
            REJECTION => {
                let r = Rejection::decode(body.value.as_slice()).map_err(|e| bad(e.to_string()))?;
                if let Some(u) = self.ms.updates.get_mut(&id) {
                    u.stage = Stage::Completed as i32;
                    u.outcome = Some(Outcome {
                        value: Some(outcome::Value::Failure(r.failure.unwrap_or_default())),
                    });
                }
            }
            RESPONSE => {
                let r = Response::decode(body.value.as_slice()).map_err(|e| bad(e.to_string()))?;
                let accepted_event_id = self
                    .ms
                    .updates
                    .get(&id)
                    .map(|u| u.accepted_event_id)
                    .unwrap_or_default();
                self.append(
                    now,
                    Attributes::WorkflowExecutionUpdateCompletedEventAttributes(
                        WorkflowExecutionUpdateCompletedEventAttributes {
                            meta: r.meta,
                            accepted_event_id,
                            outcome: r.outcome.clone(),
                        },
                    ),
                );
                if let Some(u) = self.ms.updates.get_mut(&id) {
                    u.stage = Stage::Completed as i32;
                    u.outcome = r.outcome;
                }
            }
            other => return Err(bad(format!("unsupported protocol message type {other}"))),
        }
        self.updates_dirty = true;
        Ok(())
    }

    /// Updates a completed task carried but the worker neither accepted nor rejected are
    /// rejected, as Temporal does.
    pub(crate) fn reject_unanswered_updates(&mut self, scheduled_event_id: i64) {
        for info in self.ms.updates.values_mut() {
            if info.stage == Stage::Admitted as i32 && info.delivered_in == scheduled_event_id {
                info.stage = Stage::Completed as i32;
                info.outcome = Some(failure_outcome(
                    "UnprocessedUpdate",
                    "Workflow Update is rejected because it wasn't processed by worker. \
                     Probably, Workflow Update is not supported by the worker.",
                ));
                self.updates_dirty = true;
            }
        }
    }

    /// A closing run ends every update still in flight, as Temporal does: an accepted one
    /// fails (its caller was promised an outcome); one not yet accepted is aborted, or, when
    /// the run continues as new, returned to go on to the next run.
    pub(crate) fn abort_updates(&mut self, continuing: bool) -> Vec<(String, UpdateInfo)> {
        let mut carried = Vec::new();
        for (id, info) in self.ms.updates.iter_mut() {
            if info.stage >= Stage::Completed as i32 || info.aborted_by_close {
                continue;
            }
            if info.stage >= Stage::Accepted as i32 {
                info.stage = Stage::Completed as i32;
                info.outcome = Some(failure_outcome(
                    "AcceptedUpdateCompletedWorkflow",
                    "Workflow Update failed because the Workflow completed before the Update \
                     completed.",
                ));
                info.aborted_by_close = true;
            } else if continuing {
                carried.push((
                    id.clone(),
                    UpdateInfo {
                        request: info.request.clone(),
                        stage: Stage::Admitted as i32,
                        ..Default::default()
                    },
                ));
                info.aborted_by_close = true;
            } else {
                info.aborted_by_close = true;
            }
            self.updates_dirty = true;
        }
        carried
    }
}
