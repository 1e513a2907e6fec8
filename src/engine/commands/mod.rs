//! Applying the commands of a completed workflow task to a run, in order. Validation errors
//! stop the whole completion (the caller rolls the run back and fails the task).
// Temporal marks fields deprecated (`control`, per-command `namespace`) that SDKs still send;
// Durin carries them through faithfully.
#![allow(deprecated)]

use temporalio_protos::temporal::api::command::v1::{
    Command, RequestCancelExternalWorkflowExecutionCommandAttributes,
    SignalExternalWorkflowExecutionCommandAttributes, command,
};
use temporalio_protos::temporal::api::common::v1::{Memo, SearchAttributes};
use temporalio_protos::temporal::api::enums::v1::{
    CommandType, RetryState, WorkflowExecutionStatus, WorkflowTaskFailedCause,
};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::history::v1::*;

use super::chain::{self, Continuation};
use super::clock::{self, dur_from_millis, dur_millis, ts_from_millis};
use super::matching::{QueueKey, QueueKind, TaskRef};
use super::state::ChildInfo;
use super::state::{ActivityInfo, TimerInfo};
use super::timers::TimerTask;
use super::{ChangeKind, Run, RunKey, retry};

pub(crate) mod activities;
mod close;
mod external;
pub(crate) mod nexus;
mod properties;
#[cfg(test)]
mod tests;
mod timers;

pub struct CommandError {
    pub cause: WorkflowTaskFailedCause,
    pub message: String,
    /// The violation ends the run (oversized payloads), not just the workflow task.
    pub terminate: bool,
}

pub(super) fn bad(cause: WorkflowTaskFailedCause, message: impl Into<String>) -> CommandError {
    CommandError {
        cause,
        message: message.into(),
        terminate: false,
    }
}

/// Side effects applied only once the whole completion is accepted.
pub enum Effect {
    Task(QueueKey, TaskRef),
    /// An activity task the completing worker asked to run itself (eager execution): started
    /// and returned with the completion, or queued as usual when routed to a worker version.
    EagerActivity(QueueKey, TaskRef),
    Timer(i64, TimerTask),
    StartChild(
        i64,
        Box<StartChildWorkflowExecutionInitiatedEventAttributes>,
    ),
    SignalExternal(i64, Box<SignalExternalWorkflowExecutionCommandAttributes>),
    CancelExternal(
        i64,
        Box<RequestCancelExternalWorkflowExecutionCommandAttributes>,
    ),
    /// The first attempt of the Nexus operation scheduled by this event.
    NexusOperation(i64),
    /// The workflow asked to cancel the Nexus operation scheduled by this event.
    NexusCancel(i64),
}

#[derive(Default)]
pub struct Outcome {
    pub closed: Option<WorkflowExecutionStatus>,
    /// The run that continues this one (continue-as-new, retry, cron).
    pub continuation: Option<Continuation>,
    pub new_workflow_task: bool,
}

pub fn is_close_command(c: &Command) -> bool {
    matches!(
        c.attributes,
        Some(
            command::Attributes::CompleteWorkflowExecutionCommandAttributes(_)
                | command::Attributes::FailWorkflowExecutionCommandAttributes(_)
                | command::Attributes::CancelWorkflowExecutionCommandAttributes(_)
                | command::Attributes::ContinueAsNewWorkflowExecutionCommandAttributes(_)
        )
    )
}

/// What a workflow task's commands are applied in.
#[derive(Clone, Copy)]
pub struct TaskContext<'a> {
    pub key: &'a RunKey,
    /// The namespace's custom search attributes and their types.
    pub custom_search_attributes: &'a std::collections::BTreeMap<String, i32>,
    /// The Nexus endpoints the commands name that exist: name -> endpoint id.
    pub nexus_endpoints: &'a std::collections::BTreeMap<String, String>,
    /// The id of the task's WorkflowTaskCompleted event.
    pub wtc_id: i64,
    /// The operation's time.
    pub now: i64,
}

/// Applies a workflow task's commands and messages to its run: stages the events, returns
/// the outcome, and pushes what must happen outside the run to `effects`.
pub fn apply(
    run: &mut Run,
    context: TaskContext,
    commands: &[Command],
    messages: &[temporalio_protos::temporal::api::protocol::v1::Message],
    effects: &mut Vec<Effect>,
) -> Result<Outcome, CommandError> {
    let now = context.now;
    let mut used_messages = std::collections::HashSet::new();
    use WorkflowTaskFailedCause as C;
    use command::Attributes as CA;
    let mut outcome = Outcome::default();
    let mut pending = super::pending::PendingWork::of(run);
    for (i, cmd) in commands.iter().enumerate() {
        if outcome.closed.is_some() {
            return Err(bad(
                C::UnhandledCommand,
                "a workflow close command must be the last command",
            ));
        }
        let Some(attrs) = &cmd.attributes else {
            let name = CommandType::try_from(cmd.command_type)
                .map(|t| t.as_str_name().to_string())
                .unwrap_or_else(|_| cmd.command_type.to_string());
            return Err(bad(
                C::UnhandledCommand,
                format!("command {i} ({name}) has no attributes"),
            ));
        };
        if let Err(message) = check_command_size(attrs) {
            return Err(CommandError {
                cause: C::WorkflowWorkerUnhandledFailure,
                message,
                terminate: true,
            });
        }
        pending.admit(run, attrs)?;
        let user_metadata = cmd.user_metadata.clone();
        let before = run.staged.len();
        match attrs {
            CA::ScheduleActivityTaskCommandAttributes(a) => {
                activities::schedule_activity_task(run, context, a, effects)?
            }
            CA::RequestCancelActivityTaskCommandAttributes(a) => {
                activities::request_cancel_activity_task(run, context, a, &mut outcome)?
            }
            CA::StartTimerCommandAttributes(a) => timers::start_timer(run, context, a, effects)?,
            CA::CancelTimerCommandAttributes(a) => timers::cancel_timer(run, context, a)?,
            CA::CompleteWorkflowExecutionCommandAttributes(a) => {
                close::complete_workflow_execution(run, context, a, &mut outcome)?
            }
            CA::FailWorkflowExecutionCommandAttributes(a) => {
                close::fail_workflow_execution(run, context, a, &mut outcome)?
            }
            CA::ContinueAsNewWorkflowExecutionCommandAttributes(a) => {
                close::continue_as_new_workflow_execution(run, context, a, &mut outcome)?
            }
            CA::StartChildWorkflowExecutionCommandAttributes(a) => {
                external::start_child_workflow_execution(run, context, a, effects)?
            }
            CA::SignalExternalWorkflowExecutionCommandAttributes(a) => {
                external::signal_external_workflow_execution(run, context, a, effects)?
            }
            CA::RequestCancelExternalWorkflowExecutionCommandAttributes(a) => {
                external::request_cancel_external_workflow_execution(run, context, a, effects)?
            }
            CA::CancelWorkflowExecutionCommandAttributes(a) => {
                close::cancel_workflow_execution(run, context, a, &mut outcome)?
            }
            CA::RecordMarkerCommandAttributes(a) => properties::record_marker(run, context, a)?,
            CA::UpsertWorkflowSearchAttributesCommandAttributes(a) => {
                properties::upsert_workflow_search_attributes(run, context, a)?
            }
            CA::ModifyWorkflowPropertiesCommandAttributes(a) => {
                properties::modify_workflow_properties(run, context, a)?
            }
            CA::ProtocolMessageCommandAttributes(a) => {
                let message = messages
                    .iter()
                    .find(|m| m.id == a.message_id)
                    .ok_or_else(|| {
                        bad(
                            C::UnhandledCommand,
                            format!("no protocol message with id {}", a.message_id),
                        )
                    })?;
                used_messages.insert(message.id.clone());
                run.apply_update_message(message, now)?;
            }
            CA::ScheduleNexusOperationCommandAttributes(a) => {
                nexus::schedule_nexus_operation(run, context, a, effects)?
            }
            CA::RequestCancelNexusOperationCommandAttributes(a) => {
                nexus::request_cancel_nexus_operation(run, context, a, effects)?
            }
        }
        // Temporal puts a command's summary and details on the one event it records (a
        // cancel of an unstarted activity records two; the second is not the command's).
        if user_metadata.is_some()
            && let Some(event) = run.staged.get_mut(before)
        {
            run.ms.history_size_bytes += user_metadata
                .as_ref()
                .map_or(0, prost::Message::encoded_len)
                as i64;
            event.user_metadata = user_metadata;
        }
    }
    if outcome.closed.is_none() {
        for message in messages.iter().filter(|m| !used_messages.contains(&m.id)) {
            run.apply_update_message(message, now)?;
        }
    }
    Ok(outcome)
}

/// Merges upserted search attributes; a null or empty-list payload removes the key.
pub fn merge_search_attributes(current: &mut Option<SearchAttributes>, upsert: &SearchAttributes) {
    let cur = current.get_or_insert_with(Default::default);
    for (k, v) in &upsert.indexed_fields {
        if is_empty_payload(&v.data) {
            cur.indexed_fields.remove(k);
        } else {
            cur.indexed_fields.insert(k.clone(), v.clone());
        }
    }
}

pub fn merge_memo(current: &mut Option<Memo>, upsert: &Memo) {
    let cur = current.get_or_insert_with(Default::default);
    for (k, v) in &upsert.fields {
        if is_empty_payload(&v.data) {
            cur.fields.remove(k);
        } else {
            cur.fields.insert(k.clone(), v.clone());
        }
    }
}

fn is_empty_payload(data: &[u8]) -> bool {
    data.is_empty() || data == b"null" || data == b"[]"
}

/// The payloads a command carries must each stay under the payload limit.
fn check_command_size(attrs: &command::Attributes) -> Result<(), String> {
    use super::limits::check_payloads;
    use command::Attributes as CA;
    match attrs {
        CA::ScheduleActivityTaskCommandAttributes(a) => {
            check_payloads("ScheduleActivityTask input", &a.input)
        }
        CA::CompleteWorkflowExecutionCommandAttributes(a) => {
            check_payloads("CompleteWorkflowExecution result", &a.result)
        }
        CA::CancelWorkflowExecutionCommandAttributes(a) => {
            check_payloads("CancelWorkflowExecution details", &a.details)
        }
        CA::ContinueAsNewWorkflowExecutionCommandAttributes(a) => {
            check_payloads("ContinueAsNewWorkflowExecution input", &a.input)
        }
        CA::StartChildWorkflowExecutionCommandAttributes(a) => {
            check_payloads("StartChildWorkflowExecution input", &a.input)
        }
        CA::SignalExternalWorkflowExecutionCommandAttributes(a) => {
            check_payloads("SignalExternalWorkflowExecution input", &a.input)
        }
        CA::ScheduleNexusOperationCommandAttributes(a) => check_payloads(
            "ScheduleNexusOperationCommandAttributes.Input",
            &a.input
                .clone()
                .map(|p| temporalio_protos::temporal::api::common::v1::Payloads {
                    payloads: vec![p],
                }),
        ),
        CA::RecordMarkerCommandAttributes(a) => a.details.iter().try_for_each(|(name, p)| {
            check_payloads(&format!("marker detail {name}"), &Some(p.clone()))
        }),
        _ => Ok(()),
    }
}
