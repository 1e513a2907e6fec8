//! Child workflows and operations on other workflows (signal, cancel), and what a closing
//! run owes its parent and its children. Everything here happens inside the operation that
//! caused it, so the log records all runs involved together.
// Temporal marks fields deprecated (`control`, per-command `namespace`) that SDKs still send;
// Durin carries them through faithfully.
#![allow(deprecated)]

use temporalio_protos::temporal::api::command::v1::{
    RequestCancelExternalWorkflowExecutionCommandAttributes,
    SignalExternalWorkflowExecutionCommandAttributes,
};
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::enums::v1::{
    CancelExternalWorkflowExecutionFailedCause, ContinueAsNewInitiator, ParentClosePolicy,
    SignalExternalWorkflowExecutionFailedCause, StartChildWorkflowExecutionFailedCause,
};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::history::v1::*;

use super::chain::Continuation;
use super::state::{
    CancelTransfer, ChildClosedTransfer, ChildInfo, CloseChildTransfer, SignalTransfer,
    StartChildTransfer, TransferKind,
};
use super::{ChangeKind, Core, RunKey, start::normalize_timeouts};

/// Reset links followed at most from a parent to the run that took over its children (a
/// chain of resets; Temporal's bound).
const MAX_RESET_HOPS: usize = 100;

fn terminated_by_resetter(run: &super::Run) -> bool {
    run.ms.status
        == temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus::Terminated as i32
        && matches!(
            run.last_event().and_then(|e| e.attributes),
            Some(Attributes::WorkflowExecutionTerminatedEventAttributes(t))
                if t.identity == super::reset::TERMINATE_IDENTITY
        )
}

impl Core {
    /// Whether a child's workflow id is taken: by an open run, or by a closed one its id reuse
    /// policy refuses (Temporal starts children with the conflict policy Fail).
    fn child_id_in_use(
        &mut self,
        namespace: &str,
        initiated: &StartChildWorkflowExecutionInitiatedEventAttributes,
    ) -> bool {
        let Ok(Some(run_id)) = self.current_run_id(namespace, &initiated.workflow_id) else {
            return false;
        };
        let key = RunKey {
            namespace: namespace.to_string(),
            workflow_id: initiated.workflow_id.clone(),
            run_id,
        };
        let Ok(run) = self.run(&key) else {
            return false;
        };
        if run.is_open() {
            return true;
        }
        let reuse = initiated.workflow_id_reuse_policy;
        use temporalio_protos::temporal::api::enums::v1::WorkflowIdReusePolicy as Reuse;
        reuse == Reuse::RejectDuplicate as i32
            || (reuse == Reuse::AllowDuplicateFailedOnly as i32
                && !super::start::is_closed_unsuccessfully(run.ms.status))
    }

    /// Starts the child recorded by `StartChildWorkflowExecutionInitiated` event `initiated`.
    /// `record` is false when the parent closes in the same task (nothing more goes into its
    /// history; the parent-close policy then applies to the child).
    pub(crate) fn start_child(
        &mut self,
        parent: &RunKey,
        initiated: &StartChildWorkflowExecutionInitiatedEventAttributes,
        initiated_event_id: i64,
        record: bool,
    ) {
        let namespace = if initiated.namespace.is_empty() {
            parent.namespace.clone()
        } else {
            initiated.namespace.clone()
        };
        let failed = |cause: StartChildWorkflowExecutionFailedCause| {
            Attributes::StartChildWorkflowExecutionFailedEventAttributes(
                StartChildWorkflowExecutionFailedEventAttributes {
                    namespace: namespace.clone(),
                    workflow_id: initiated.workflow_id.clone(),
                    workflow_type: initiated.workflow_type.clone(),
                    cause: cause as i32,
                    control: initiated.control.clone(),
                    initiated_event_id,
                    workflow_task_completed_event_id: initiated.workflow_task_completed_event_id,
                    ..Default::default()
                },
            )
        };
        let cause = if !self.namespaces.contains_key(&namespace) {
            Some(StartChildWorkflowExecutionFailedCause::NamespaceNotFound)
        } else if self.child_id_in_use(&namespace, initiated) {
            Some(StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists)
        } else {
            None
        };
        if let Some(cause) = cause {
            if let Some(run) = self.runs.get_mut(parent) {
                run.ms.children.remove(&initiated_event_id);
            }
            if record {
                self.add_event(parent, failed(cause));
                self.changed(parent);
            }
            return;
        }
        let Some(parent_run) = self.runs.get(parent) else {
            return;
        };
        let parent_started = parent_run.ms.started.clone().unwrap_or_default();
        let run_id = super::clock::run_id_at(self.now());
        let mut started = WorkflowExecutionStartedEventAttributes {
            workflow_id: initiated.workflow_id.clone(),
            workflow_type: initiated.workflow_type.clone(),
            parent_workflow_namespace: parent.namespace.clone(),
            parent_workflow_execution: Some(parent_run.execution()),
            parent_initiated_event_id: initiated_event_id,
            task_queue: initiated.task_queue.clone(),
            input: initiated.input.clone(),
            workflow_execution_timeout: initiated.workflow_execution_timeout,
            workflow_run_timeout: initiated.workflow_run_timeout,
            workflow_task_timeout: initiated.workflow_task_timeout,
            initiator: ContinueAsNewInitiator::Unspecified as i32,
            original_execution_run_id: run_id.clone(),
            first_execution_run_id: run_id.clone(),
            retry_policy: initiated.retry_policy.clone(),
            attempt: 1,
            cron_schedule: initiated.cron_schedule.clone(),
            memo: initiated.memo.clone(),
            search_attributes: initiated.search_attributes.clone(),
            header: initiated.header.clone(),
            root_workflow_execution: parent_started
                .root_workflow_execution
                .clone()
                .or(Some(parent_run.execution())),
            priority: initiated.priority.clone(),
            ..Default::default()
        };
        started.inherited_pinned_version = self.child_pinned_version(parent, &namespace, &started);
        normalize_timeouts(&mut started, self.now());
        let request_id = format!("{}:{}:{}", parent.run_id, initiated_event_id, "child");
        if !self.owns(&namespace, &initiated.workflow_id) {
            // Another replica serves the child's shard: it starts there, and the parent
            // records the answer.
            if let Some(info) = self
                .runs
                .get_mut(parent)
                .and_then(|r| r.ms.children.get_mut(&initiated_event_id))
            {
                info.namespace = namespace.clone();
            }
            self.push_transfer(
                parent,
                TransferKind::StartChild(StartChildTransfer {
                    initiated_event_id,
                    initiated: Some(Box::new(initiated.clone())),
                    started: Some(Box::new(started)),
                    namespace,
                    run_id,
                    request_id,
                }),
            );
            self.changed(parent);
            return;
        }
        // The summary and details the command gave are the child's, on its started event.
        let user_metadata = self
            .runs
            .get(parent)
            .and_then(|r| r.events_from(initiated_event_id).next())
            .and_then(|e| e.user_metadata);
        let first = super::start::FirstEvents {
            user_metadata,
            ..Default::default()
        };
        let child = self.create_run_from(&namespace, &run_id, &request_id, started, first);
        if let Some(info) = self
            .runs
            .get_mut(parent)
            .and_then(|r| r.ms.children.get_mut(&initiated_event_id))
        {
            info.run_id = child.run_id.clone();
            info.namespace = namespace.clone();
        }
        if record {
            self.add_event(
                parent,
                Attributes::ChildWorkflowExecutionStartedEventAttributes(
                    ChildWorkflowExecutionStartedEventAttributes {
                        namespace,
                        initiated_event_id,
                        workflow_execution: Some(WorkflowExecution {
                            workflow_id: child.workflow_id,
                            run_id: child.run_id,
                        }),
                        workflow_type: initiated.workflow_type.clone(),
                        header: initiated.header.clone(),
                        ..Default::default()
                    },
                ),
            );
        }
        self.changed(parent);
    }

    /// The open run a workflow-to-workflow operation targets, if there is one.
    pub(crate) fn open_target(
        &self,
        namespace: &str,
        workflow_id: &str,
        run_id: &str,
    ) -> Option<RunKey> {
        self.resolve_resident(namespace, workflow_id, run_id)
            .ok()
            .filter(|k| self.runs.get(k).is_some_and(|r| r.is_open()))
    }

    /// Records the result of a workflow-to-workflow operation in the source run, unless that
    /// run is closing in the same task.
    fn record_in_source(&mut self, source: &RunKey, outcome: Attributes, record: bool) {
        if record {
            self.add_event(source, outcome);
            self.changed(source);
        }
    }

    pub(crate) fn signal_external(
        &mut self,
        source: &RunKey,
        a: &SignalExternalWorkflowExecutionCommandAttributes,
        initiated_event_id: i64,
        record: bool,
    ) {
        let namespace = if a.namespace.is_empty() {
            source.namespace.clone()
        } else {
            a.namespace.clone()
        };
        let target_exec = a.execution.clone().unwrap_or_default();
        let source_exec = WorkflowExecution {
            workflow_id: source.workflow_id.clone(),
            run_id: source.run_id.clone(),
        };
        let signal = WorkflowExecutionSignaledEventAttributes {
            signal_name: a.signal_name.clone(),
            input: a.input.clone(),
            header: a.header.clone(),
            external_workflow_execution: Some(source_exec),
            request_id: format!("{}:{}:signal", source.run_id, initiated_event_id),
            ..Default::default()
        };
        if !self.owns(&namespace, &target_exec.workflow_id) {
            self.push_transfer(
                source,
                TransferKind::Signal(SignalTransfer {
                    namespace,
                    workflow_id: target_exec.workflow_id,
                    run_id: target_exec.run_id,
                    signal: Some(signal),
                    initiated_event_id,
                    control: a.control.clone(),
                }),
            );
            self.changed(source);
            return;
        }
        let target = self.open_target(&namespace, &target_exec.workflow_id, &target_exec.run_id);
        let outcome = match target {
            Some(target) => {
                let _ = self.signal_run(&target, signal);
                Attributes::ExternalWorkflowExecutionSignaledEventAttributes(ExternalWorkflowExecutionSignaledEventAttributes {
                    initiated_event_id,
                    namespace,
                    workflow_execution: Some(target_exec),
                    control: a.control.clone(),
                    ..Default::default()
                })
            }
            None => Attributes::SignalExternalWorkflowExecutionFailedEventAttributes(
                SignalExternalWorkflowExecutionFailedEventAttributes {
                    cause: SignalExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound as i32,
                    namespace,
                    workflow_execution: Some(target_exec),
                    initiated_event_id,
                    control: a.control.clone(),
                    ..Default::default()
                },
            ),
        };
        self.record_in_source(source, outcome, record);
    }

    pub(crate) fn cancel_external(
        &mut self,
        source: &RunKey,
        a: &RequestCancelExternalWorkflowExecutionCommandAttributes,
        initiated_event_id: i64,
        record: bool,
    ) {
        let namespace = if a.namespace.is_empty() {
            source.namespace.clone()
        } else {
            a.namespace.clone()
        };
        let target_exec = WorkflowExecution {
            workflow_id: a.workflow_id.clone(),
            run_id: a.run_id.clone(),
        };
        if !self.owns(&namespace, &a.workflow_id) {
            self.push_transfer(
                source,
                TransferKind::Cancel(CancelTransfer {
                    namespace,
                    workflow_id: a.workflow_id.clone(),
                    run_id: a.run_id.clone(),
                    reason: a.reason.clone(),
                    initiated_event_id,
                    control: a.control.clone(),
                }),
            );
            self.changed(source);
            return;
        }
        let target = self.open_target(&namespace, &a.workflow_id, &a.run_id);
        let outcome = match target {
            Some(target) => {
                let source_exec = WorkflowExecution { workflow_id: source.workflow_id.clone(), run_id: source.run_id.clone() };
                self.request_cancel_run(&target, &a.reason, "", initiated_event_id, Some(source_exec));
                Attributes::ExternalWorkflowExecutionCancelRequestedEventAttributes(
                    ExternalWorkflowExecutionCancelRequestedEventAttributes {
                        initiated_event_id,
                        namespace,
                        workflow_execution: Some(target_exec),
                        ..Default::default()
                    },
                )
            }
            None => Attributes::RequestCancelExternalWorkflowExecutionFailedEventAttributes(
                RequestCancelExternalWorkflowExecutionFailedEventAttributes {
                    cause: CancelExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound as i32,
                    namespace,
                    workflow_execution: Some(target_exec),
                    initiated_event_id,
                    control: a.control.clone(),
                    ..Default::default()
                },
            ),
        };
        self.record_in_source(source, outcome, record);
    }

    /// Records a cancellation request on an open run (de-duplicated).
    pub(crate) fn request_cancel_run(
        &mut self,
        key: &RunKey,
        reason: &str,
        identity: &str,
        external_initiated_event_id: i64,
        external: Option<WorkflowExecution>,
    ) {
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        if !run.is_open() || run.ms.cancel_requested {
            return;
        }
        run.ms.cancel_requested = true;
        run.changes.push(ChangeKind::CancelRequested);
        self.add_event(
            key,
            Attributes::WorkflowExecutionCancelRequestedEventAttributes(
                WorkflowExecutionCancelRequestedEventAttributes {
                    cause: reason.to_string(),
                    identity: identity.to_string(),
                    external_initiated_event_id,
                    external_workflow_execution: external,
                },
            ),
        );
        self.changed(key);
    }

    /// After a run closed: apply each open child's parent-close policy, and, unless another
    /// run continues this one, report the close to the parent.
    pub(crate) fn after_close(&mut self, key: &RunKey, continuing: bool) {
        let Some(run) = self.runs.get(key) else {
            return;
        };
        let children: Vec<ChildInfo> = run.ms.children.values().cloned().collect();
        let mut transfers = false;
        for child in children {
            // A child still starting in another shard gets the policy once its start is
            // answered (see `transfer.rs`).
            if child.run_id.is_empty() {
                continue;
            }
            if child.parent_close_policy == ParentClosePolicy::Abandon as i32 {
                continue;
            }
            if !self.owns(&child.namespace, &child.workflow_id) {
                self.push_transfer(
                    key,
                    TransferKind::CloseChild(CloseChildTransfer {
                        namespace: child.namespace.clone(),
                        workflow_id: child.workflow_id.clone(),
                        policy: child.parent_close_policy,
                    }),
                );
                transfers = true;
                continue;
            }
            let Ok(child_key) = self.resolve_run(&child.namespace, &child.workflow_id, "") else {
                continue;
            };
            self.apply_parent_close_policy(&child_key, child.parent_close_policy);
        }
        if let Some(run) = self.runs.get_mut(key) {
            run.ms.children.clear();
        }
        // A run the resetter terminated does not report to its parent: the new run it was
        // reset to has the same parent and reports when it closes.
        if !continuing && !self.runs.get(key).is_some_and(terminated_by_resetter) {
            transfers |= self.report_to_parent(key);
            transfers |= self.deliver_completion_callbacks(key);
        }
        if transfers {
            self.changed(key);
        }
    }

    /// Cancels or terminates a child whose parent closed, as its policy says.
    pub(crate) fn apply_parent_close_policy(&mut self, child: &RunKey, policy: i32) {
        match ParentClosePolicy::try_from(policy).unwrap_or(ParentClosePolicy::Terminate) {
            ParentClosePolicy::Abandon => {}
            ParentClosePolicy::RequestCancel => self.request_cancel_run(
                child,
                "parent closed (parent close policy REQUEST_CANCEL)",
                "",
                0,
                None,
            ),
            ParentClosePolicy::Terminate | ParentClosePolicy::Unspecified => {
                let _ = self.terminate_run(
                    child,
                    "parent closed (parent close policy TERMINATE)",
                    None,
                    "durin",
                );
            }
        }
    }

    /// Reports a closed child's outcome to its parent; true if it went to the outbox (the
    /// parent's shard is served by another replica).
    fn report_to_parent(&mut self, key: &RunKey) -> bool {
        let Some(run) = self.runs.get(key) else {
            return false;
        };
        let Some(started) = run.ms.started.as_ref() else {
            return false;
        };
        let Some(parent_exec) = started.parent_workflow_execution.clone() else {
            return false;
        };
        let parent = RunKey {
            namespace: started.parent_workflow_namespace.clone(),
            workflow_id: parent_exec.workflow_id,
            run_id: parent_exec.run_id,
        };
        let initiated_event_id = started.parent_initiated_event_id;
        let Some(close_event) = run.last_event() else {
            return false;
        };
        let child = run.execution();
        if !self.owns(&parent.namespace, &parent.workflow_id) {
            self.push_transfer(
                key,
                TransferKind::ChildClosed(ChildClosedTransfer {
                    parent_namespace: parent.namespace,
                    parent_workflow_id: parent.workflow_id,
                    parent_run_id: parent.run_id,
                    initiated_event_id,
                    child: Some(child),
                    close: Some(Box::new(close_event)),
                }),
            );
            return true;
        }
        if let Some(close) = close_event.attributes {
            self.child_closed_in_parent(&parent, initiated_event_id, child, close);
        }
        false
    }

    /// The run that took over a parent's child by a reset: following `reset_run_id` from a
    /// parent that closed, the open run still waiting for the child initiated by event
    /// `initiated_event_id` (None when the parent was not reset or nobody waits).
    pub(crate) fn waiting_successor(
        &self,
        parent: &RunKey,
        initiated_event_id: i64,
    ) -> Option<RunKey> {
        let mut key = parent.clone();
        for _ in 0..MAX_RESET_HOPS {
            let run = self.runs.get(&key)?;
            if run.is_open() {
                let waits = key != *parent && run.ms.children.contains_key(&initiated_event_id);
                return waits.then_some(key);
            }
            if run.ms.reset_run_id.is_empty() {
                return None;
            }
            key.run_id = run.ms.reset_run_id.clone();
        }
        None
    }

    /// Records a child's close in its parent (if the parent is open and still waits for it,
    /// or was reset and the new run waits for it).
    pub(crate) fn child_closed_in_parent(
        &mut self,
        parent: &RunKey,
        initiated_event_id: i64,
        child: WorkflowExecution,
        close: Attributes,
    ) {
        let successor = self.waiting_successor(parent, initiated_event_id);
        let parent = successor.as_ref().unwrap_or(parent);
        let waiting = self
            .runs
            .get(parent)
            .filter(|p| p.is_open())
            .is_some_and(|p| p.ms.children.contains_key(&initiated_event_id));
        if !waiting {
            return;
        }
        self.record_child_started(parent, initiated_event_id, child.clone());
        let Some(info) = self
            .runs
            .get(parent)
            .and_then(|p| p.ms.children.get(&initiated_event_id))
            .cloned()
        else {
            return;
        };
        let exec = Some(child);
        let workflow_type = info.workflow_type.clone();
        let namespace = info.namespace.clone();
        let started_event_id = info.started_event_id;
        let outcome = match close {
            Attributes::WorkflowExecutionCompletedEventAttributes(c) => {
                Attributes::ChildWorkflowExecutionCompletedEventAttributes(
                    ChildWorkflowExecutionCompletedEventAttributes {
                        result: c.result,
                        namespace,
                        workflow_execution: exec,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        ..Default::default()
                    },
                )
            }
            Attributes::WorkflowExecutionFailedEventAttributes(f) => {
                Attributes::ChildWorkflowExecutionFailedEventAttributes(
                    ChildWorkflowExecutionFailedEventAttributes {
                        failure: f.failure,
                        namespace,
                        workflow_execution: exec,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        retry_state: f.retry_state,
                        ..Default::default()
                    },
                )
            }
            Attributes::WorkflowExecutionCanceledEventAttributes(c) => {
                Attributes::ChildWorkflowExecutionCanceledEventAttributes(
                    ChildWorkflowExecutionCanceledEventAttributes {
                        details: c.details,
                        namespace,
                        workflow_execution: exec,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        ..Default::default()
                    },
                )
            }
            Attributes::WorkflowExecutionTimedOutEventAttributes(t) => {
                Attributes::ChildWorkflowExecutionTimedOutEventAttributes(
                    ChildWorkflowExecutionTimedOutEventAttributes {
                        namespace,
                        workflow_execution: exec,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        retry_state: t.retry_state,
                        ..Default::default()
                    },
                )
            }
            Attributes::WorkflowExecutionTerminatedEventAttributes(_) => {
                Attributes::ChildWorkflowExecutionTerminatedEventAttributes(
                    ChildWorkflowExecutionTerminatedEventAttributes {
                        namespace,
                        workflow_execution: exec,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        ..Default::default()
                    },
                )
            }
            _ => return,
        };
        if let Some(p) = self.runs.get_mut(parent) {
            p.ms.children.remove(&initiated_event_id);
        }
        self.add_event(parent, outcome);
        self.changed(parent);
    }

    /// Creates the run that continues `prev` (continue-as-new, retry or cron) and points the
    /// parent's record of the child at it.
    pub(crate) fn start_continuation(&mut self, prev: &RunKey, next: Continuation) {
        let parent = next
            .started
            .parent_workflow_execution
            .clone()
            .map(|p| RunKey {
                namespace: next.started.parent_workflow_namespace.clone(),
                workflow_id: p.workflow_id,
                run_id: p.run_id,
            });
        let initiated = next.started.parent_initiated_event_id;
        let key = self.create_run_from(
            &prev.namespace,
            &next.run_id,
            "",
            next.started,
            Default::default(),
        );
        if let Some(parent) = parent
            && let Some(info) = self
                .runs
                .get_mut(&parent)
                .and_then(|p| p.ms.children.get_mut(&initiated))
        {
            info.run_id = key.run_id.clone();
            self.changed(&parent);
        }
    }
}

pub(crate) fn is_child_outcome(attrs: &Attributes) -> bool {
    matches!(
        attrs,
        Attributes::ChildWorkflowExecutionCompletedEventAttributes(_)
            | Attributes::ChildWorkflowExecutionFailedEventAttributes(_)
            | Attributes::ChildWorkflowExecutionCanceledEventAttributes(_)
            | Attributes::ChildWorkflowExecutionTimedOutEventAttributes(_)
            | Attributes::ChildWorkflowExecutionTerminatedEventAttributes(_)
    )
}
