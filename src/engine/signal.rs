//! Requests from outside a run: signals, cancellation requests, termination.

use temporalio_protos::temporal::api::history::v1::WorkflowExecutionSignaledEventAttributes;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::workflowservice::v1::{
    RequestCancelWorkflowExecutionRequest, SignalWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
};

use super::{ChangeKind, Core, Engine, Error, Result, RunKey};

impl Engine {
    /// Signals a run (its `links` kept on the signaled event); the run signaled.
    pub async fn signal(&self, req: SignalWorkflowExecutionRequest) -> Result<RunKey> {
        self.transact(|core| {
            let exec = req.workflow_execution.clone().unwrap_or_default();
            let key = core.resolve_run(&req.namespace, &exec.workflow_id, &exec.run_id)?;
            if req.signal_name.is_empty() {
                return Err(Error::InvalidArgument(
                    "SignalName is not set on request.".into(),
                ));
            }
            core.signal_run_linked(
                &key,
                WorkflowExecutionSignaledEventAttributes {
                    signal_name: req.signal_name,
                    input: req.input,
                    identity: req.identity,
                    header: req.header,
                    request_id: req.request_id,
                    ..Default::default()
                },
                req.links,
            )?;
            Ok(key)
        })
        .await
    }

    pub async fn request_cancel(&self, req: RequestCancelWorkflowExecutionRequest) -> Result<()> {
        self.transact(|core| {
            let exec = req.workflow_execution.clone().unwrap_or_default();
            let key = core.resolve_chain_run(
                &req.namespace,
                &exec.workflow_id,
                &exec.run_id,
                &req.first_execution_run_id,
            )?;
            // As Temporal: asking a closed run to cancel is not an error; nothing happens.
            if !core.run(&key)?.is_open() {
                return Ok(());
            }
            // Repeated requests are accepted once and then ignored.
            core.request_cancel_run(&key, &req.reason, &req.identity, 0, None);
            Ok(())
        })
        .await
    }

    pub async fn terminate(&self, req: TerminateWorkflowExecutionRequest) -> Result<()> {
        self.transact(|core| {
            let exec = req.workflow_execution.clone().unwrap_or_default();
            let key = core.resolve_chain_run(
                &req.namespace,
                &exec.workflow_id,
                &exec.run_id,
                &req.first_execution_run_id,
            )?;
            core.terminate_run(&key, &req.reason, req.details, &req.identity)
        })
        .await
    }
}

impl Engine {
    /// A worker stopped: tasks waiting on its sticky queue go to the normal queue now.
    pub async fn shutdown_worker(&self, namespace: &str, sticky_task_queue: &str) -> Result<()> {
        if sticky_task_queue.is_empty() {
            return Ok(());
        }
        self.transact(|core| {
            core.retire_sticky_queue(namespace, sticky_task_queue);
            Ok(())
        })
        .await
    }

    /// Forgets which worker has the run cached; its next task goes out with full history.
    pub async fn reset_sticky(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<()> {
        self.transact(|core| {
            let key = core.resolve_run(namespace, workflow_id, run_id)?;
            let run = core.run_mut(&key)?;
            if !run.ms.sticky_task_queue.is_empty() {
                run.ms.sticky_task_queue.clear();
                core.changed(&key);
            }
            Ok(())
        })
        .await
    }
}

impl Core {
    /// The run a cancel or terminate names: with `first_execution_run_id`, the current run of
    /// the chain that began with it (the run id is then ignored, as Temporal does), which must
    /// be that chain's.
    fn resolve_chain_run(
        &mut self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
        first_execution_run_id: &str,
    ) -> Result<RunKey> {
        if first_execution_run_id.is_empty() {
            return self.resolve_run(namespace, workflow_id, run_id);
        }
        let key = self.resolve_run(namespace, workflow_id, "")?;
        let run = self.run(&key)?;
        let chain = run
            .ms
            .started
            .as_ref()
            .map(|s| s.first_execution_run_id.as_str());
        if chain != Some(first_execution_run_id) {
            return Err(Error::NotFound("workflow execution not found".into()));
        }
        Ok(key)
    }

    pub(crate) fn signal_run(
        &mut self,
        key: &RunKey,
        signal: WorkflowExecutionSignaledEventAttributes,
    ) -> Result<()> {
        self.signal_run_linked(key, signal, Vec::new())
    }

    /// [`Core::signal_run`] with links to where the signal came from (a Nexus caller's
    /// event, say) on the signaled event.
    pub(crate) fn signal_run_linked(
        &mut self,
        key: &RunKey,
        signal: WorkflowExecutionSignaledEventAttributes,
        links: Vec<temporalio_protos::temporal::api::common::v1::Link>,
    ) -> Result<()> {
        super::limits::check_payloads("signal input", &signal.input)
            .map_err(Error::InvalidArgument)?;
        let run = self.run_mut(key)?;
        if !run.is_open() {
            return Err(Error::NotFound(
                "Workflow execution already completed.".into(),
            ));
        }
        // A retried signal is applied once however long ago the first try was.
        if !signal.request_id.is_empty() && run.ms.signal_request_ids.contains(&signal.request_id) {
            return Ok(());
        }
        if run.ms.signals_received >= super::limits::MAX_SIGNALS_PER_RUN {
            return Err(Error::InvalidArgument(format!(
                "exceeded workflow execution limit for signal ({} signals)",
                super::limits::MAX_SIGNALS_PER_RUN
            )));
        }
        run.ms.signals_received += 1;
        if !signal.request_id.is_empty() {
            run.ms.signal_request_ids.push(signal.request_id.clone());
        }
        run.changes.push(ChangeKind::Signaled);
        let mut event = super::events::new_event(
            Attributes::WorkflowExecutionSignaledEventAttributes(signal),
            self.now(),
        );
        event.links = links;
        self.add_history_events(key, vec![event]);
        self.changed(key);
        // Signals alone can grow a history past its limit; the run ends then, as it would
        // at its next workflow task.
        self.end_if_history_over_limit(key)
    }

    /// Terminates an open run whose history grew past the hard limits.
    pub(crate) fn end_if_history_over_limit(&mut self, key: &RunKey) -> Result<()> {
        let run = self.run(key)?;
        if run.is_open()
            && let Some(reason) = super::limits::history_over_limit(
                run.ms.next_event_id - 1,
                run.ms.history_size_bytes,
            )
        {
            self.terminate_run(key, &reason, None, "durin")?;
        }
        Ok(())
    }
}
