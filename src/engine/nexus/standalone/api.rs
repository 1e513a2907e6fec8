//! The engine's standalone Nexus operations, one transaction each: start, describe (with its
//! long poll for a change), poll for a stage (started or closed), request cancellation,
//! terminate and delete. Lists and counts are in `engine/visibility.rs`.

use temporalio_protos::temporal::api::enums::v1::{
    NexusOperationExecutionStatus, NexusOperationWaitStage as Stage,
};
use temporalio_protos::temporal::api::workflowservice::v1::*;

use super::info;
use crate::engine::clock::ts_from_millis;
use crate::engine::standalone::api::{long_poll_token, seen_transitions, waited};
use crate::engine::standalone::{cancel_needed, termination_needed};
use crate::engine::state::{NexusCancellation, STANDALONE_SCHEDULED_ID};
use crate::engine::{Engine, Error, Result, Run};

fn already_completed() -> Error {
    Error::FailedPrecondition("operation already completed".into())
}

/// Longest cancellation reason accepted.
const MAX_REASON_LENGTH: usize = 1000;

/// A closed operation's outcome, in the shape both Describe and Poll answer with.
enum Outcome {
    Result(temporalio_protos::temporal::api::common::v1::Payload),
    Failure(Box<temporalio_protos::temporal::api::failure::v1::Failure>),
}

/// The outcome of a closed operation (None while it runs): its result, its failure, or the
/// last attempt's failure when that attempt ended it.
fn outcome_of(run: &Run) -> Option<Outcome> {
    if run.is_open() {
        return None;
    }
    let record = super::standalone(run)?;
    if let Some(result) = &record.result {
        return Some(Outcome::Result(result.clone()));
    }
    record
        .failure
        .clone()
        .or_else(|| record.closed.as_ref()?.last_attempt_failure.clone())
        .map(|f| Outcome::Failure(Box::new(f)))
}

impl Engine {
    pub async fn start_nexus_operation_execution(
        &self,
        req: StartNexusOperationExecutionRequest,
    ) -> Result<StartNexusOperationExecutionResponse> {
        self.transact(|core| core.start_nexus_execution(req)).await
    }

    /// Describes an execution; with a long-poll token, first waits until its state has
    /// changed since that answer (an empty answer at `deadline`: the caller asks again).
    pub async fn describe_nexus_operation_execution(
        &self,
        req: DescribeNexusOperationExecutionRequest,
        deadline: tokio::time::Instant,
    ) -> Result<DescribeNexusOperationExecutionResponse> {
        use describe_nexus_operation_execution_response::Outcome as O;
        if !req.long_poll_token.is_empty() {
            let seen = seen_transitions(&req.long_poll_token, &req.run_id)?;
            let mut progress = self
                .transact(|core| {
                    let key = core.resolve_nexus_execution(
                        &req.namespace,
                        &req.operation_id,
                        &req.run_id,
                    )?;
                    Ok(core.run(&key)?.subscribe_progress())
                })
                .await?;
            if !waited(&mut progress, deadline, |p| p.transitions != seen).await {
                return Ok(Default::default());
            }
        }
        self.transact(|core| {
            let key =
                core.resolve_nexus_execution(&req.namespace, &req.operation_id, &req.run_id)?;
            let now = core.now();
            let run = core.run(&key)?;
            Ok(DescribeNexusOperationExecutionResponse {
                run_id: key.run_id.clone(),
                info: Some(info::describe(run, now)),
                input: info::operation_of(run)
                    .and_then(|o| o.input.clone())
                    .filter(|_| req.include_input),
                outcome: outcome_of(run)
                    .filter(|_| req.include_outcome)
                    .map(|o| match o {
                        Outcome::Result(r) => O::Result(r),
                        Outcome::Failure(f) => O::Failure(*f),
                    }),
                long_poll_token: long_poll_token(&key.run_id, run.ms.state_transition_count),
                completion_callbacks: Vec::new(),
            })
        })
        .await
    }

    /// Waits until the operation has reached the stage asked for (started, or closed: the
    /// default); an empty answer at `deadline` (the caller polls again).
    pub async fn poll_nexus_operation_execution(
        &self,
        req: PollNexusOperationExecutionRequest,
        deadline: tokio::time::Instant,
    ) -> Result<PollNexusOperationExecutionResponse> {
        use poll_nexus_operation_execution_response::Outcome as O;
        let stage = match Stage::try_from(req.wait_stage).unwrap_or(Stage::Unspecified) {
            Stage::Unspecified | Stage::Closed => Stage::Closed,
            Stage::Started => Stage::Started,
        };
        if req.wait_stage != stage as i32 && req.wait_stage != Stage::Unspecified as i32 {
            return Err(Error::InvalidArgument(format!(
                "unsupported wait_stage: {}",
                req.wait_stage
            )));
        }
        loop {
            let (answer, progress) = self
                .transact(|core| {
                    let key = core.resolve_nexus_execution(
                        &req.namespace,
                        &req.operation_id,
                        &req.run_id,
                    )?;
                    let run = core.run(&key)?;
                    let reached = match stage {
                        Stage::Started => info::started_or_closed(run),
                        _ => !run.is_open(),
                    };
                    if !reached {
                        return Ok((None, Some(run.subscribe_progress())));
                    }
                    let answer = PollNexusOperationExecutionResponse {
                        run_id: key.run_id.clone(),
                        wait_stage: if run.is_open() {
                            Stage::Started
                        } else {
                            Stage::Closed
                        } as i32,
                        operation_token: info::operation_of(run)
                            .map(|o| o.operation_token.clone())
                            .unwrap_or_default(),
                        outcome: outcome_of(run).map(|o| match o {
                            Outcome::Result(r) => O::Result(r),
                            Outcome::Failure(f) => O::Failure(*f),
                        }),
                    };
                    Ok((Some(answer), None))
                })
                .await?;
            if let Some(answer) = answer {
                return Ok(answer);
            }
            let Some(mut progress) = progress else {
                return Ok(Default::default());
            };
            let seen = progress.borrow().transitions;
            if !waited(&mut progress, deadline, |p| {
                p.transitions != seen || p.closed
            })
            .await
            {
                return Ok(Default::default());
            }
        }
    }

    /// Requests cancellation: the handler is asked once the operation has started (at once,
    /// or when its start arrives); the operation ends when the handler's outcome does.
    pub async fn request_cancel_nexus_operation_execution(
        &self,
        req: RequestCancelNexusOperationExecutionRequest,
    ) -> Result<()> {
        if req.reason.len() > MAX_REASON_LENGTH {
            return Err(Error::InvalidArgument(format!(
                "reason exceeds length limit. Length={} Limit={MAX_REASON_LENGTH}",
                req.reason.len()
            )));
        }
        self.transact(|core| {
            let key =
                core.resolve_nexus_execution(&req.namespace, &req.operation_id, &req.run_id)?;
            let now = core.now();
            let run = core.run_mut(&key)?;
            if !cancel_needed(run, &req.request_id, already_completed)? {
                return Ok(());
            }
            run.ms.cancel_requested = true;
            run.ms.cancel_request_id = req.request_id.clone();
            if let Some(record) = run.ms.standalone_nexus.as_mut() {
                record.cancel_reason = req.reason.clone();
            }
            if let Some(op) = run.ms.nexus_operations.get_mut(&STANDALONE_SCHEDULED_ID) {
                op.cancel_requested_event_id = STANDALONE_SCHEDULED_ID;
                op.cancellation = Some(NexusCancellation {
                    requested_time: Some(ts_from_millis(now)),
                    ..Default::default()
                });
            }
            core.changed(&key);
            core.nexus_cancel_requested(&key, STANDALONE_SCHEDULED_ID);
            Ok(())
        })
        .await
    }

    /// Ends the operation now, without telling the handler (as Temporal does).
    pub async fn terminate_nexus_operation_execution(
        &self,
        req: TerminateNexusOperationExecutionRequest,
    ) -> Result<()> {
        self.transact(|core| {
            let key =
                core.resolve_nexus_execution(&req.namespace, &req.operation_id, &req.run_id)?;
            let run = core.run_mut(&key)?;
            let open = run.is_open();
            let status = info::status_of(run);
            let Some(record) = run.ms.standalone_nexus.as_mut() else {
                return Err(Error::NotFound("operation not found".into()));
            };
            let terminated = status == NexusOperationExecutionStatus::Terminated;
            let recorded = &record.terminate_request_id;
            let needed = termination_needed(
                open,
                terminated,
                recorded,
                &req.request_id,
                already_completed,
            )?;
            if !needed {
                return Ok(());
            }
            record.terminate_request_id = req.request_id.clone();
            core.terminate_nexus_execution_now(&key, &req.reason, &req.identity)
        })
        .await
    }

    /// Deletes an execution (terminating it first if it is still running).
    pub async fn delete_nexus_operation_execution(
        &self,
        req: DeleteNexusOperationExecutionRequest,
    ) -> Result<()> {
        self.transact(|core| {
            let key =
                core.resolve_nexus_execution(&req.namespace, &req.operation_id, &req.run_id)?;
            if core.run(&key)?.is_open() {
                core.terminate_nexus_execution_now(&key, "Delete nexus operation execution", "")?;
            }
            core.delete_run(&key)
        })
        .await
    }
}
