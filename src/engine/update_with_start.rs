//! Update-with-start (ExecuteMultiOperation): start a workflow, or find the one running, and
//! update it — in one operation, as Temporal does, including its attach rules: an update id
//! the workflow's current run already has is attached to whatever the policies say (when the
//! update completed, or the run is still open); otherwise the start follows the id reuse and
//! conflict policies and the update is admitted on the run it lands on.

use std::sync::Arc;

use temporalio_protos::temporal::api::enums::v1::UpdateWorkflowExecutionLifecycleStage as Stage;
use temporalio_protos::temporal::api::workflowservice::v1::{
    StartWorkflowExecutionRequest, StartWorkflowExecutionResponse, UpdateWorkflowExecutionRequest,
    UpdateWorkflowExecutionResponse,
};

use super::{Engine, Error, RunKey};

/// Which of the two operations failed, and why.
#[derive(Debug)]
pub struct OperationError {
    /// 0 for the start, 1 for the update.
    pub index: usize,
    pub error: Box<Error>,
}

fn failed(index: usize) -> impl Fn(Error) -> OperationError {
    move |error| OperationError {
        index,
        error: Box::new(error),
    }
}

impl Engine {
    pub async fn update_with_start(
        self: &Arc<Self>,
        start: StartWorkflowExecutionRequest,
        update: UpdateWorkflowExecutionRequest,
        deadline: tokio::time::Instant,
    ) -> Result<
        (
            StartWorkflowExecutionResponse,
            UpdateWorkflowExecutionResponse,
        ),
        OperationError,
    > {
        let mut request = update.request.clone().unwrap_or_default();
        // Checked before anything starts: a refused update must not leave a started run.
        let update_id = super::update::check_request(&mut request).map_err(failed(1))?;
        // (The outer error is the store's, which the start reports.)
        let (key, started) = self
            .transact(|core| Ok(core.start_for_update(start, &update_id, request)))
            .await
            .map_err(failed(0))??;
        let wanted = update
            .wait_policy
            .map(|w| w.lifecycle_stage)
            .unwrap_or(0)
            .max(Stage::Accepted as i32);
        let updated = self
            .wait_for_update(&key, &update_id, wanted, deadline)
            .await
            .map_err(failed(1))?;
        Ok((started, updated))
    }
}

impl super::Core {
    /// Attaches to the run that has the update, or starts (or finds) a run as the policies say
    /// and admits the update on it.
    fn start_for_update(
        &mut self,
        start: StartWorkflowExecutionRequest,
        update_id: &str,
        request: temporalio_protos::temporal::api::update::v1::Request,
    ) -> Result<(RunKey, StartWorkflowExecutionResponse), OperationError> {
        self.check_namespace(&start.namespace).map_err(failed(0))?;
        if let Some(attached) = self
            .attachable(&start.namespace, &start.workflow_id, update_id)
            .map_err(failed(0))?
        {
            return Ok(attached);
        }
        let (namespace, workflow_id) = (start.namespace.clone(), start.workflow_id.clone());
        let started = self.start_workflow(start, None).map_err(failed(0))?;
        let key = RunKey {
            namespace,
            workflow_id,
            run_id: started.run_id.clone(),
        };
        self.admit_update(&key, request).map_err(failed(1))?;
        Ok((key, started))
    }

    /// The workflow's current run, as a start response, when the update is to be attached to
    /// it: the run has the update, and the worker completed it or the run is open (an update
    /// the run's close ended was never completed; a new start may take its id).
    fn attachable(
        &mut self,
        namespace: &str,
        workflow_id: &str,
        update_id: &str,
    ) -> super::Result<Option<(RunKey, StartWorkflowExecutionResponse)>> {
        let Some(run_id) = self.current_run_id(namespace, workflow_id)? else {
            return Ok(None);
        };
        let key = RunKey {
            namespace: namespace.to_string(),
            workflow_id: workflow_id.to_string(),
            run_id,
        };
        let run = self.run(&key)?;
        let attach = run.ms.updates.get(update_id).is_some_and(|u| {
            (u.stage >= Stage::Completed as i32 && !u.aborted_by_close) || run.is_open()
        });
        if !attach {
            return Ok(None);
        }
        let response = StartWorkflowExecutionResponse {
            run_id: key.run_id.clone(),
            first_execution_run_id: run
                .ms
                .started
                .as_ref()
                .map(|s| s.first_execution_run_id.clone())
                .unwrap_or_default(),
            started: false,
            status: run.ms.status,
            ..Default::default()
        };
        Ok(Some((key, response)))
    }
}
