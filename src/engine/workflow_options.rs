//! UpdateWorkflowExecutionOptions: a running workflow's versioning override and priority,
//! changed by a client (or a batch operation). The change is an event in the run's history
//! and takes effect at the run's next task: a workflow task already waiting is routed again.

#![allow(deprecated)] // Temporal keeps the older override fields beside the oneof.

use temporalio_protos::temporal::api::history::v1::WorkflowExecutionOptionsUpdatedEventAttributes;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::workflow::v1::versioning_override::Override;
use temporalio_protos::temporal::api::workflow::v1::{
    VersioningOverride, WorkflowExecutionOptions,
};
use temporalio_protos::temporal::api::workflowservice::v1::{
    UpdateWorkflowExecutionOptionsRequest, UpdateWorkflowExecutionOptionsResponse,
};

use super::{Engine, Error, Result, clock, events};
use crate::store::state::RunVersioning;

/// The options a field mask may name.
const VERSIONING_OVERRIDE: &str = "versioning_override";
const PRIORITY: &str = "priority";

impl Engine {
    pub async fn update_workflow_execution_options(
        &self,
        req: UpdateWorkflowExecutionOptionsRequest,
    ) -> Result<UpdateWorkflowExecutionOptionsResponse> {
        let execution = req.workflow_execution.clone().unwrap_or_default();
        let options = req.workflow_execution_options.clone().unwrap_or_default();
        let paths = req.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(Error::InvalidArgument("UpdateMask is required.".into()));
        }
        if let Some(unknown) = paths
            .iter()
            .find(|p| ![VERSIONING_OVERRIDE, PRIORITY].contains(&p.as_str()))
        {
            return Err(Error::InvalidArgument(format!(
                "Unsupported path in UpdateMask: {unknown}."
            )));
        }
        let set_override = paths.iter().any(|p| p == VERSIONING_OVERRIDE);
        let set_priority = paths.iter().any(|p| p == PRIORITY);
        if set_override && let Some(o) = &options.versioning_override {
            check_override(o)?;
        }
        self.transact(|core| {
            let key =
                core.resolve_run(&req.namespace, &execution.workflow_id, &execution.run_id)?;
            let now = core.now();
            let run = core.run_mut(&key)?;
            if !run.is_open() {
                return Err(Error::FailedPrecondition(
                    "Workflow execution already completed.".into(),
                ));
            }
            let mut event = WorkflowExecutionOptionsUpdatedEventAttributes {
                identity: req.identity.clone(),
                ..Default::default()
            };
            let mut versioning = run.ms.versioning.clone().unwrap_or_default();
            if set_override && versioning.versioning_override != options.versioning_override {
                versioning.versioning_override = options.versioning_override.clone();
                event.unset_versioning_override = options.versioning_override.is_none();
                event.versioning_override = options.versioning_override.clone();
            }
            let started = run.ms.started.get_or_insert_with(Default::default);
            if set_priority && started.priority != options.priority {
                started.priority = options.priority.clone();
                event.priority = options.priority.clone();
            }
            let changed = event.versioning_override.is_some()
                || event.unset_versioning_override
                || event.priority.is_some();
            if changed {
                run.ms.versioning = (*versioning != RunVersioning::default()).then_some(versioning);
                // Like any event, it waits while a workflow task runs; it needs no task itself,
                // and workers skip it (as Temporal marks it).
                let mut event = events::new_event(
                    Attributes::WorkflowExecutionOptionsUpdatedEventAttributes(event),
                    now,
                );
                event.worker_may_ignore = true;
                run.ms.buffered.push(event);
                if !run.wft_started() {
                    run.flush_buffer();
                }
                core.reroute_run_tasks(&key);
                core.changed(&key);
            }
            let run = core.run(&key)?;
            Ok(UpdateWorkflowExecutionOptionsResponse {
                workflow_execution_options: Some(WorkflowExecutionOptions {
                    versioning_override: run
                        .ms
                        .versioning
                        .as_ref()
                        .and_then(|v| v.versioning_override.clone()),
                    priority: run.ms.started.as_ref().and_then(|s| s.priority.clone()),
                    ..Default::default()
                }),
                update_time: Some(clock::ts_from_millis(now)),
            })
        })
        .await
    }
}

/// An override must say what it pins to.
pub(crate) fn check_override(o: &VersioningOverride) -> Result<()> {
    let pinned = match &o.r#override {
        Some(Override::Pinned(p)) => p.version.as_ref().map(super::deployments::canonical_of),
        Some(Override::AutoUpgrade(_)) | Some(Override::OneTime(_)) => return Ok(()),
        None if o.behavior
            == temporalio_protos::temporal::api::enums::v1::VersioningBehavior::Pinned as i32 =>
        {
            Some(o.pinned_version.clone())
        }
        None => return Ok(()),
    };
    match pinned {
        Some(v) if !v.is_empty() => Ok(()),
        _ => Err(Error::InvalidArgument(
            "A pinned versioning override must name a version (deployment name and build id)."
                .into(),
        )),
    }
}
