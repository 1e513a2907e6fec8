//! The engine's standalone activity operations, one transaction each: start, describe (with
//! its long poll for a change), poll for the outcome, request cancellation, terminate and
//! delete. Lists and counts are in `engine/visibility.rs`.

use temporalio_protos::temporal::api::enums::v1::{
    ActivityExecutionStatus, WorkflowExecutionStatus,
};
use temporalio_protos::temporal::api::workflowservice::v1::*;
use tokio::sync::watch;

use super::canceled_failure;
use super::info::{self, Include};
use crate::engine::run::RunProgress;
use crate::engine::start::json_string_payloads;
use crate::engine::state::STANDALONE_SCHEDULED_ID;
use crate::engine::{Core, Engine, Error, Result, RunKey};

impl Engine {
    pub async fn start_activity_execution(
        &self,
        req: StartActivityExecutionRequest,
    ) -> Result<StartActivityExecutionResponse> {
        self.transact(|core| core.start_activity_execution(req))
            .await
    }

    /// Describes an execution; with a long-poll token, first waits until its state has
    /// changed since that answer (an empty answer at `deadline`: the caller asks again).
    pub async fn describe_activity_execution(
        &self,
        req: DescribeActivityExecutionRequest,
        deadline: tokio::time::Instant,
    ) -> Result<DescribeActivityExecutionResponse> {
        if !req.long_poll_token.is_empty() {
            let seen = seen_transitions(&req.long_poll_token, &req.run_id)?;
            let mut progress = self
                .transact(|core| {
                    let key = core.resolve_activity_execution(
                        &req.namespace,
                        &req.activity_id,
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
                core.resolve_activity_execution(&req.namespace, &req.activity_id, &req.run_id)?;
            let run = core.run(&key)?;
            let include = Include {
                heartbeat_details: req.include_heartbeat_details,
                last_failure: req.include_last_failure,
            };
            let record = super::standalone(run);
            Ok(DescribeActivityExecutionResponse {
                run_id: key.run_id.clone(),
                info: Some(info::describe(run, include)),
                input: info::activity_of(run)
                    .and_then(|a| a.input.clone())
                    .filter(|_| req.include_input),
                outcome: record
                    .and_then(|r| r.outcome.clone())
                    .filter(|_| req.include_outcome),
                long_poll_token: if run.is_open() {
                    long_poll_token(&key.run_id, run.ms.state_transition_count)
                } else {
                    Vec::new()
                },
                callbacks: run.ms.callbacks.iter().map(info::callback_info).collect(),
            })
        })
        .await
    }

    /// Waits for the execution's outcome; an empty answer at `deadline` (the caller polls
    /// again).
    pub async fn poll_activity_execution(
        &self,
        req: PollActivityExecutionRequest,
        deadline: tokio::time::Instant,
    ) -> Result<PollActivityExecutionResponse> {
        loop {
            let (answer, progress) = self
                .transact(|core| {
                    let key = core.resolve_activity_execution(
                        &req.namespace,
                        &req.activity_id,
                        &req.run_id,
                    )?;
                    let run = core.run(&key)?;
                    if run.is_open() {
                        return Ok((None, Some(run.subscribe_progress())));
                    }
                    let answer = PollActivityExecutionResponse {
                        run_id: key.run_id.clone(),
                        outcome: super::standalone(run).and_then(|r| r.outcome.clone()),
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
            if !waited(&mut progress, deadline, |p| p.closed).await {
                return Ok(Default::default());
            }
        }
    }

    /// Requests cancellation: an activity no worker holds is canceled at once; a running
    /// attempt learns of it from its next heartbeat.
    pub async fn request_cancel_activity_execution(
        &self,
        req: RequestCancelActivityExecutionRequest,
    ) -> Result<()> {
        self.transact(|core| {
            let key =
                core.resolve_activity_execution(&req.namespace, &req.activity_id, &req.run_id)?;
            let run = core.run_mut(&key)?;
            let closed = || terminal(info::status_of(run).as_str_name());
            if !super::cancel_needed(run, &req.request_id, closed)? {
                return Ok(());
            }
            run.ms.cancel_requested = true;
            run.ms.cancel_request_id = req.request_id.clone();
            if let Some(record) = run.ms.standalone_activity.as_mut() {
                record.canceled_reason = req.reason.clone();
            }
            let running = match run.ms.activities.get_mut(&STANDALONE_SCHEDULED_ID) {
                Some(info) => {
                    info.cancel_requested = true;
                    info.started_time.is_some()
                }
                None => false,
            };
            core.changed(&key);
            if !running {
                let mut failure = canceled_failure(json_string_payloads(&req.reason));
                if let Some(
                    temporalio_protos::temporal::api::failure::v1::failure::FailureInfo::CanceledFailureInfo(c),
                ) = failure.failure_info.as_mut()
                {
                    c.identity = req.identity.clone();
                }
                core.end_activity_execution(&key, failure, WorkflowExecutionStatus::Canceled)?;
            }
            Ok(())
        })
        .await
    }

    /// Ends the execution now; a running attempt learns of it from its next heartbeat (the
    /// activity is gone).
    pub async fn terminate_activity_execution(
        &self,
        req: TerminateActivityExecutionRequest,
    ) -> Result<()> {
        self.transact(|core| {
            let key =
                core.resolve_activity_execution(&req.namespace, &req.activity_id, &req.run_id)?;
            let run = core.run_mut(&key)?;
            let open = run.is_open();
            let status = info::status_of(run);
            let Some(record) = run.ms.standalone_activity.as_mut() else {
                return Err(Error::NotFound("activity execution not found".into()));
            };
            let terminated = status == ActivityExecutionStatus::Terminated;
            let closed = || terminal(status.as_str_name());
            let recorded = &record.terminate_request_id;
            if !super::termination_needed(open, terminated, recorded, &req.request_id, closed)? {
                return Ok(());
            }
            record.terminate_request_id = req.request_id.clone();
            core.terminate_activity_execution_now(&key, &req.reason, &req.identity)
        })
        .await
    }

    /// Deletes an execution (terminating it first if it is still running).
    pub async fn delete_activity_execution(
        &self,
        req: DeleteActivityExecutionRequest,
    ) -> Result<()> {
        self.transact(|core| {
            let key =
                core.resolve_activity_execution(&req.namespace, &req.activity_id, &req.run_id)?;
            if core.run(&key)?.is_open() {
                core.terminate_activity_execution_now(&key, "Delete activity execution", "")?;
            }
            core.delete_run(&key)
        })
        .await
    }
}

impl Core {
    /// Counts a heartbeat of a standalone activity (shown by Describe).
    pub(crate) fn count_standalone_heartbeat(&mut self, key: &RunKey) {
        if let Some(record) = self
            .runs
            .get_mut(key)
            .and_then(|r| r.ms.standalone_activity.as_mut())
        {
            record.heartbeat_count += 1;
        }
    }
}

fn terminal(status: &str) -> Error {
    Error::FailedPrecondition(format!("activity is in terminal state {status}"))
}

/// Waits until `changed` holds for the run's progress; false when `deadline` came first. A
/// run that left memory (archived or deleted) counts as changed: the caller looks again.
pub(crate) async fn waited(
    progress: &mut watch::Receiver<RunProgress>,
    deadline: tokio::time::Instant,
    changed: impl FnMut(&RunProgress) -> bool,
) -> bool {
    tokio::time::timeout_at(deadline, progress.wait_for(changed))
        .await
        .is_ok()
}

/// A describe answer's long-poll token: the run and the state it saw.
pub(crate) fn long_poll_token(run_id: &str, transitions: i64) -> Vec<u8> {
    format!("{run_id}/{transitions}").into_bytes()
}

/// The state transition count a long-poll token saw, checked against the request's run.
pub(crate) fn seen_transitions(token: &[u8], run_id: &str) -> Result<i64> {
    if run_id.is_empty() {
        return Err(Error::InvalidArgument(
            "run_id is required with a long_poll_token".into(),
        ));
    }
    let invalid = || Error::InvalidArgument("invalid long poll token".into());
    let text = std::str::from_utf8(token).map_err(|_| invalid())?;
    let (token_run, transitions) = text.rsplit_once('/').ok_or_else(invalid)?;
    if token_run != run_id {
        return Err(Error::InvalidArgument(
            "long poll token does not match execution".into(),
        ));
    }
    transitions.parse().map_err(|_| invalid())
}
