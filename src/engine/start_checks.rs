//! The checks a start request passes before anything changes: Temporal's rules for ids,
//! policies, timeouts, sizes, callbacks and links, with Temporal's messages.

use temporalio_protos::temporal::api::enums::v1::{
    WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
};
use temporalio_protos::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest;

use super::{Error, Result, clock};

const MAX_ID_LENGTH: usize = 1000;
/// Temporal's `frontend.maxLinksPerRequest`.
const MAX_LINKS: usize = 10;

/// The policy pairs Temporal refuses, for a start and a signal-with-start alike.
#[allow(deprecated)]
pub(crate) fn check_policy_pair(reuse: i32, conflict: i32) -> Result<()> {
    if reuse == WorkflowIdReusePolicy::TerminateIfRunning as i32
        && conflict != WorkflowIdConflictPolicy::Unspecified as i32
    {
        return Err(Error::InvalidArgument(
            "Invalid WorkflowIDReusePolicy: WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING cannot \
             be used together with a WorkflowIDConflictPolicy."
                .into(),
        ));
    }
    if reuse == WorkflowIdReusePolicy::RejectDuplicate as i32
        && conflict == WorkflowIdConflictPolicy::TerminateExisting as i32
    {
        return Err(Error::InvalidArgument(
            "Invalid WorkflowIDReusePolicy: WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE cannot be \
             used together with WorkflowIdConflictPolicy WORKFLOW_ID_CONFLICT_POLICY_TERMINATE_EXISTING"
                .into(),
        ));
    }
    Ok(())
}

/// A signal-with-start's policies as Temporal reads them: the conflict policy defaults to
/// use-existing, and the deprecated terminate-if-running means terminate-existing.
#[allow(deprecated)]
pub(crate) fn signal_with_start_policies(reuse: i32, conflict: i32) -> (i32, i32) {
    if reuse == WorkflowIdReusePolicy::TerminateIfRunning as i32 {
        return (
            WorkflowIdReusePolicy::AllowDuplicate as i32,
            WorkflowIdConflictPolicy::TerminateExisting as i32,
        );
    }
    if conflict == WorkflowIdConflictPolicy::Unspecified as i32 {
        return (reuse, WorkflowIdConflictPolicy::UseExisting as i32);
    }
    (reuse, conflict)
}

pub(crate) fn validate_start(
    req: &StartWorkflowExecutionRequest,
    addresses: &super::nexus::callbacks::CallbackAddresses,
) -> Result<()> {
    let invalid = |m: &str| Err(Error::InvalidArgument(m.to_string()));
    check_policy_pair(
        req.workflow_id_reuse_policy,
        req.workflow_id_conflict_policy,
    )?;
    if req.workflow_id.is_empty() {
        return invalid("WorkflowId is not set on request.");
    }
    if super::standalone::is_reserved(&req.workflow_id) {
        // The standalone activities' key space (see `standalone/mod.rs`).
        return invalid("WorkflowId must not start with a NUL character.");
    }
    if req.workflow_id.len() > MAX_ID_LENGTH {
        return invalid("WorkflowId exceeds length limit.");
    }
    if req.workflow_type.as_ref().is_none_or(|t| t.name.is_empty()) {
        return invalid("WorkflowType is not set on request.");
    }
    if req.task_queue.as_ref().is_none_or(|t| t.name.is_empty()) {
        return invalid("TaskQueue is not set on request.");
    }
    if req
        .task_queue
        .as_ref()
        .is_some_and(|t| t.name.len() > MAX_ID_LENGTH)
    {
        return invalid("TaskQueue length exceeds limit.");
    }
    if req
        .workflow_type
        .as_ref()
        .is_some_and(|t| t.name.len() > MAX_ID_LENGTH)
    {
        return invalid("WorkflowType length exceeds limit.");
    }
    if req.request_id.len() > MAX_ID_LENGTH {
        return invalid("RequestId length exceeds limit.");
    }
    super::limits::check_memo(&req.memo).map_err(Error::InvalidArgument)?;
    super::limits::check_search_attributes(&req.search_attributes)
        .map_err(Error::InvalidArgument)?;
    if clock::is_negative(&req.workflow_execution_timeout) {
        return invalid("Invalid WorkflowExecutionTimeout.");
    }
    if clock::is_negative(&req.workflow_run_timeout) {
        return invalid("Invalid WorkflowRunTimeout.");
    }
    if clock::is_negative(&req.workflow_task_timeout) {
        return invalid("Invalid WorkflowTaskTimeout.");
    }
    if clock::is_negative(&req.workflow_start_delay) {
        return invalid("Invalid WorkflowStartDelay.");
    }
    if !req.cron_schedule.is_empty() {
        super::chain::validate_cron(&req.cron_schedule).map_err(Error::InvalidArgument)?;
    }
    super::limits::check_payloads("workflow input", &req.input).map_err(Error::InvalidArgument)?;
    if let Some(p) = &req.retry_policy {
        super::retry::validate(p).map_err(Error::InvalidArgument)?;
    }
    if let Some(o) = &req.versioning_override {
        super::workflow_options::check_override(o)?;
    }
    super::nexus::callbacks::validate(&req.completion_callbacks, addresses)?;
    if req.links.len() > MAX_LINKS {
        return Err(Error::InvalidArgument(format!(
            "cannot attach more than {MAX_LINKS} links per request"
        )));
    }
    Ok(())
}
