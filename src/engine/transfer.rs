//! Operations between runs in different shards, when another replica serves the other shard.
//!
//! The source run records what it owes in its own state (`MutableState::outbox`), durably and
//! atomically with the change that caused it. After that record is durable a dispatcher
//! delivers the item to the replica serving the target's shard, which applies it
//! idempotently (a start by its pre-chosen run id, a signal by its request id, a cancel
//! request or a termination once); the answer is then applied to the source and the item
//! removed. A crash anywhere in between delivers again; a shard that moves is re-delivered by
//! its new owner when it re-arms the shard's runs.
// `control` is deprecated in Temporal's API but SDKs still send it; Durin carries it through.
#![allow(deprecated)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::enums::v1::{
    CancelExternalWorkflowExecutionFailedCause, ParentClosePolicy,
    SignalExternalWorkflowExecutionFailedCause, StartChildWorkflowExecutionFailedCause,
};
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_protos::temporal::api::history::v1::*;
use tokio::sync::mpsc;

use super::schedules::ScheduleKey;
use super::state::{
    CancelTransfer, CloseChildTransfer, SignalTransfer, StartChildTransfer, Transfer, TransferKind,
    TransferOutcome,
};
use super::{Core, Engine, Error, Result, RunKey};

/// Who owes a transfer: a run, or a schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Run(RunKey),
    Schedule(ScheduleKey),
}

/// Delivers transfers to the replica serving a shard (the cluster layer implements it).
pub trait TransferRouter: Send + Sync {
    fn deliver(
        &self,
        shard: u32,
        source: Source,
        transfer: Transfer,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<TransferOutcome, String>> + Send>>;
}

/// Wait before delivering an item again after a failed attempt.
const RETRY_AFTER: Duration = Duration::from_millis(500);

pub(crate) type TransferQueue = mpsc::UnboundedSender<(Source, u64)>;

impl TransferKind {
    /// The (namespace, workflow id) the operation acts on.
    fn target(&self) -> (&str, &str) {
        match self {
            TransferKind::StartChild(t) => (
                &t.namespace,
                t.initiated.as_ref().map_or("", |i| i.workflow_id.as_str()),
            ),
            TransferKind::ChildClosed(t) => (&t.parent_namespace, &t.parent_workflow_id),
            TransferKind::Signal(t) => (&t.namespace, &t.workflow_id),
            TransferKind::Cancel(t) => (&t.namespace, &t.workflow_id),
            TransferKind::CloseChild(t) => (&t.namespace, &t.workflow_id),
            TransferKind::ScheduleStart(t) => t
                .request
                .as_ref()
                .map_or(("", ""), |r| (r.namespace.as_str(), r.workflow_id.as_str())),
            TransferKind::ScheduleRunClosed(t) => (&t.namespace, &t.schedule_id),
            TransferKind::ScheduleOverlap(t) => (&t.namespace, &t.workflow_id),
            TransferKind::NexusCompletion(t) => (&t.caller_namespace, &t.caller_workflow_id),
            TransferKind::SystemSignalWithStart(t) => t
                .request
                .as_ref()
                .map_or(("", ""), |r| (r.namespace.as_str(), r.workflow_id.as_str())),
        }
    }
}

fn found(ok: bool) -> TransferOutcome {
    TransferOutcome {
        ok,
        ..Default::default()
    }
}

impl Core {
    /// Records an operation on a run another replica serves; it is delivered once the
    /// source's record is durable. The caller commits the source.
    pub(crate) fn push_transfer(&mut self, source: &RunKey, kind: TransferKind) {
        let Some(run) = self.runs.get_mut(source) else {
            return;
        };
        run.ms.next_transfer_id += 1;
        let id = run.ms.next_transfer_id;
        let first = run.ms.outbox.is_empty();
        run.ms.outbox.push(Transfer {
            id,
            kind: Some(kind),
        });
        // A source's items go one at a time, in order (the next when this one is answered).
        if first && let Some(queue) = &self.transfers {
            let _ = queue.send((Source::Run(source.clone()), id));
        }
    }

    /// The same for an operation a schedule owes; the caller commits the schedule.
    pub(crate) fn push_schedule_transfer(&mut self, source: &ScheduleKey, kind: TransferKind) {
        let Some(s) = self.schedules.get_mut(source) else {
            return;
        };
        s.record.next_transfer_id += 1;
        let id = s.record.next_transfer_id;
        let first = s.record.outbox.is_empty();
        s.record.outbox.push(Transfer {
            id,
            kind: Some(kind),
        });
        if first && let Some(queue) = &self.transfers {
            let _ = queue.send((Source::Schedule(source.clone()), id));
        }
    }

    /// Queues a run's undelivered transfers (after a restart, or when its shard moved here).
    pub(crate) fn requeue_transfers(&self, key: &RunKey) {
        // A frozen run owes no transfers.
        let (Some(queue), Some(run)) = (&self.transfers, self.runs.get_live(key)) else {
            return;
        };
        if let Some(t) = run.ms.outbox.first() {
            let _ = queue.send((Source::Run(key.clone()), t.id));
        }
    }

    /// The same for a schedule's.
    pub(crate) fn requeue_schedule_transfers(&self, key: &ScheduleKey) {
        let (Some(queue), Some(s)) = (&self.transfers, self.schedules.get(key)) else {
            return;
        };
        if let Some(t) = s.record.outbox.first() {
            let _ = queue.send((Source::Schedule(key.clone()), t.id));
        }
    }

    fn outbox(&self, source: &Source) -> Option<&Vec<Transfer>> {
        match source {
            Source::Run(key) => self.runs.get(key).map(|r| &r.ms.outbox),
            Source::Schedule(key) => self.schedules.get(key).map(|s| &s.record.outbox),
        }
    }

    /// Applies a transfer to its target, here. Unavailable when the target's shard is not
    /// served here (it moved again): the source delivers again.
    pub(crate) fn apply_transfer(
        &mut self,
        source: &Source,
        kind: &TransferKind,
    ) -> Result<TransferOutcome> {
        let (namespace, workflow_id) = kind.target();
        self.check_owned(namespace, workflow_id)?;
        let source_run = match source {
            Source::Run(key) => Some(key),
            Source::Schedule(_) => None,
        };
        Ok(match kind {
            TransferKind::StartChild(t) => self.apply_start_child(t)?,
            TransferKind::ChildClosed(t) => {
                let parent = RunKey {
                    namespace: t.parent_namespace.clone(),
                    workflow_id: t.parent_workflow_id.clone(),
                    run_id: t.parent_run_id.clone(),
                };
                if let (Some(child), Some(close)) = (
                    t.child.clone(),
                    t.close.as_ref().and_then(|e| e.attributes.clone()),
                ) {
                    self.child_closed_in_parent(&parent, t.initiated_event_id, child, close);
                }
                found(true)
            }
            TransferKind::Signal(t) => {
                match self.open_target(&t.namespace, &t.workflow_id, &t.run_id) {
                    Some(target) => {
                        let _ = self.signal_run(&target, t.signal.clone().unwrap_or_default());
                        found(true)
                    }
                    None => found(false),
                }
            }
            TransferKind::Cancel(t) => {
                match self.open_target(&t.namespace, &t.workflow_id, &t.run_id) {
                    Some(target) => {
                        let source_exec = source_run.map(|k| WorkflowExecution {
                            workflow_id: k.workflow_id.clone(),
                            run_id: k.run_id.clone(),
                        });
                        self.request_cancel_run(
                            &target,
                            &t.reason,
                            "",
                            t.initiated_event_id,
                            source_exec,
                        );
                        found(true)
                    }
                    None => found(false),
                }
            }
            TransferKind::CloseChild(t) => {
                if let Some(parent) = source_run {
                    self.apply_close_child(parent, t);
                }
                found(true)
            }
            TransferKind::ScheduleStart(t) => {
                let Some(req) = &t.request else {
                    return Ok(found(false));
                };
                match self.start_workflow((**req).clone(), None) {
                    Ok(resp) => TransferOutcome {
                        ok: true,
                        run_id: resp.run_id,
                        ..Default::default()
                    },
                    Err(e @ Error::Unavailable(_)) => return Err(e),
                    Err(e) => TransferOutcome {
                        message: e.to_string(),
                        ..Default::default()
                    },
                }
            }
            TransferKind::ScheduleRunClosed(t) => {
                self.schedule_closed(t.clone());
                found(true)
            }
            TransferKind::ScheduleOverlap(t) => {
                self.apply_schedule_overlap(t);
                found(true)
            }
            TransferKind::SystemSignalWithStart(t) => {
                let Some(req) = &t.request else {
                    return Ok(found(false));
                };
                match self.signal_with_start((**req).clone()) {
                    Ok(resp) => TransferOutcome {
                        ok: true,
                        run_id: resp.run_id,
                        started: resp.started,
                        ..Default::default()
                    },
                    Err(e @ Error::Unavailable(_)) => return Err(e),
                    Err(e) => TransferOutcome {
                        message: e.to_string(),
                        ..Default::default()
                    },
                }
            }
            TransferKind::NexusCompletion(t) => match self.complete_nexus_operation(t) {
                Ok(()) => found(true),
                Err(message) => TransferOutcome {
                    message,
                    ..Default::default()
                },
            },
        })
    }

    fn apply_start_child(&mut self, t: &StartChildTransfer) -> Result<TransferOutcome> {
        let (Some(initiated), Some(started)) = (&t.initiated, &t.started) else {
            return Ok(found(false));
        };
        let failed = |cause: StartChildWorkflowExecutionFailedCause| TransferOutcome {
            ok: false,
            cause: cause as i32,
            ..Default::default()
        };
        if !self.namespaces.contains_key(&t.namespace) {
            return Ok(failed(
                StartChildWorkflowExecutionFailedCause::NamespaceNotFound,
            ));
        }
        let key = RunKey {
            namespace: t.namespace.clone(),
            workflow_id: initiated.workflow_id.clone(),
            run_id: t.run_id.clone(),
        };
        // Delivered before: the run chosen for it exists.
        if self.runs.contains_key(&key) {
            return Ok(TransferOutcome {
                ok: true,
                run_id: key.run_id,
                ..Default::default()
            });
        }
        if self
            .open_target(&t.namespace, &initiated.workflow_id, "")
            .is_some()
        {
            return Ok(failed(
                StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists,
            ));
        }
        let key = self.create_run_from(
            &t.namespace,
            &t.run_id,
            &t.request_id,
            (**started).clone(),
            Default::default(),
        );
        Ok(TransferOutcome {
            ok: true,
            run_id: key.run_id,
            ..Default::default()
        })
    }

    /// A closed parent's policy, applied to the child's current run if that run is still
    /// the parent's child.
    fn apply_close_child(&mut self, parent: &RunKey, t: &CloseChildTransfer) {
        let Some(child) = self.open_target(&t.namespace, &t.workflow_id, "") else {
            return;
        };
        let is_child = self.runs.get(&child).is_some_and(|r| {
            r.ms.started.as_ref().is_some_and(|s| {
                s.parent_workflow_execution
                    .as_ref()
                    .is_some_and(|p| p.workflow_id == parent.workflow_id)
            })
        });
        if is_child {
            self.apply_parent_close_policy(&child, t.policy);
        }
    }

    /// The owner's answer, applied to the source; the item leaves the outbox.
    pub(crate) fn finish_transfer(&mut self, source: &Source, id: u64, outcome: TransferOutcome) {
        let was_head = self
            .outbox(source)
            .and_then(|o| o.first())
            .is_some_and(|t| t.id == id);
        match source {
            Source::Run(key) => self.finish_run_transfer(key, id, outcome),
            Source::Schedule(key) => self.finish_schedule_transfer(key, id, outcome),
        }
        // The next item of this source goes now.
        if was_head
            && let (Some(queue), Some(next)) =
                (&self.transfers, self.outbox(source).and_then(|o| o.first()))
        {
            let _ = queue.send((source.clone(), next.id));
        }
    }

    fn finish_schedule_transfer(&mut self, key: &ScheduleKey, id: u64, outcome: TransferOutcome) {
        let Some(s) = self.schedules.get_mut(key) else {
            return;
        };
        let Some(pos) = s.record.outbox.iter().position(|t| t.id == id) else {
            return;
        };
        let item = s.record.outbox.remove(pos);
        if let Some(TransferKind::ScheduleStart(t)) = item.kind {
            let workflow_id = t.request.map(|r| r.workflow_id).unwrap_or_default();
            let started = if outcome.ok {
                Ok(outcome.run_id)
            } else {
                Err(outcome.message)
            };
            self.record_schedule_action(key, t.nominal_ms, workflow_id, started);
        }
        self.changed_schedule(key);
    }

    fn finish_run_transfer(&mut self, source: &RunKey, id: u64, outcome: TransferOutcome) {
        let Some(run) = self.runs.get_mut(source) else {
            return;
        };
        let Some(pos) = run.ms.outbox.iter().position(|t| t.id == id) else {
            return;
        };
        let item = run.ms.outbox.remove(pos);
        let open = run.is_open();
        match item.kind {
            Some(TransferKind::StartChild(t)) => {
                self.child_start_answered(source, t, outcome, open)
            }
            Some(TransferKind::Signal(t)) if open => {
                self.add_event(source, signal_outcome(&t, outcome.ok))
            }
            Some(TransferKind::Cancel(t)) if open => {
                self.add_event(source, cancel_outcome(&t, outcome.ok))
            }
            Some(TransferKind::SystemSignalWithStart(t)) if open => {
                let outcome = if outcome.ok {
                    Ok((outcome.run_id, outcome.started))
                } else {
                    Err(outcome.message)
                };
                let req = t.request.map(|r| *r).unwrap_or_default();
                self.system_operation_done(source, t.scheduled_event_id, &req, outcome);
            }
            Some(TransferKind::NexusCompletion(t)) => {
                let result = if outcome.ok {
                    Ok(())
                } else {
                    Err(outcome.message)
                };
                self.callback_attempted(source, &t.callback_request_id, Some(result));
            }
            _ => {}
        }
        self.changed(source);
    }

    fn child_start_answered(
        &mut self,
        parent: &RunKey,
        t: StartChildTransfer,
        outcome: TransferOutcome,
        parent_open: bool,
    ) {
        let Some(initiated) = t.initiated.map(|i| *i) else {
            return;
        };
        // A parent reset while its child was starting: the new run waits for the child.
        let successor = self.waiting_successor(parent, t.initiated_event_id);
        let (parent, parent_open) = match &successor {
            Some(run) => (run, true),
            None => (parent, parent_open),
        };
        if !parent_open {
            // The parent closed before its child started: the close policy applies now.
            if outcome.ok {
                let policy = initiated.parent_close_policy;
                if policy != ParentClosePolicy::Abandon as i32 {
                    self.push_transfer(
                        parent,
                        TransferKind::CloseChild(CloseChildTransfer {
                            namespace: t.namespace,
                            workflow_id: initiated.workflow_id,
                            policy,
                        }),
                    );
                }
            }
            return;
        }
        if !outcome.ok {
            if let Some(run) = self.runs.get_mut(parent) {
                run.ms.children.remove(&t.initiated_event_id);
            }
            self.add_event(
                parent,
                Attributes::StartChildWorkflowExecutionFailedEventAttributes(
                    StartChildWorkflowExecutionFailedEventAttributes {
                        namespace: t.namespace,
                        workflow_id: initiated.workflow_id,
                        workflow_type: initiated.workflow_type,
                        cause: outcome.cause,
                        control: initiated.control,
                        initiated_event_id: t.initiated_event_id,
                        workflow_task_completed_event_id: initiated
                            .workflow_task_completed_event_id,
                        ..Default::default()
                    },
                ),
            );
            return;
        }
        self.record_child_started(
            parent,
            t.initiated_event_id,
            WorkflowExecution {
                workflow_id: initiated.workflow_id,
                run_id: outcome.run_id,
            },
        );
    }

    /// Records `ChildWorkflowExecutionStarted` in the parent unless it is there already (a
    /// child in another shard may report its close before its start was answered).
    pub(crate) fn record_child_started(
        &mut self,
        parent: &RunKey,
        initiated_event_id: i64,
        child: WorkflowExecution,
    ) {
        let Some(info) = self
            .runs
            .get_mut(parent)
            .and_then(|r| r.ms.children.get_mut(&initiated_event_id))
        else {
            return;
        };
        if !info.run_id.is_empty() {
            return;
        }
        info.run_id = child.run_id.clone();
        let (namespace, workflow_type) = (info.namespace.clone(), info.workflow_type.clone());
        self.add_event(
            parent,
            Attributes::ChildWorkflowExecutionStartedEventAttributes(
                ChildWorkflowExecutionStartedEventAttributes {
                    namespace,
                    initiated_event_id,
                    workflow_execution: Some(child),
                    workflow_type,
                    ..Default::default()
                },
            ),
        );
    }
}

fn signal_outcome(t: &SignalTransfer, ok: bool) -> Attributes {
    let execution = Some(WorkflowExecution {
        workflow_id: t.workflow_id.clone(),
        run_id: t.run_id.clone(),
    });
    if ok {
        Attributes::ExternalWorkflowExecutionSignaledEventAttributes(
            ExternalWorkflowExecutionSignaledEventAttributes {
                initiated_event_id: t.initiated_event_id,
                namespace: t.namespace.clone(),
                workflow_execution: execution,
                control: t.control.clone(),
                ..Default::default()
            },
        )
    } else {
        Attributes::SignalExternalWorkflowExecutionFailedEventAttributes(
            SignalExternalWorkflowExecutionFailedEventAttributes {
                cause: SignalExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound
                    as i32,
                namespace: t.namespace.clone(),
                workflow_execution: execution,
                initiated_event_id: t.initiated_event_id,
                control: t.control.clone(),
                ..Default::default()
            },
        )
    }
}

fn cancel_outcome(t: &CancelTransfer, ok: bool) -> Attributes {
    let execution = Some(WorkflowExecution {
        workflow_id: t.workflow_id.clone(),
        run_id: t.run_id.clone(),
    });
    if ok {
        Attributes::ExternalWorkflowExecutionCancelRequestedEventAttributes(
            ExternalWorkflowExecutionCancelRequestedEventAttributes {
                initiated_event_id: t.initiated_event_id,
                namespace: t.namespace.clone(),
                workflow_execution: execution,
                ..Default::default()
            },
        )
    } else {
        Attributes::RequestCancelExternalWorkflowExecutionFailedEventAttributes(
            RequestCancelExternalWorkflowExecutionFailedEventAttributes {
                cause: CancelExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound
                    as i32,
                namespace: t.namespace.clone(),
                workflow_execution: execution,
                initiated_event_id: t.initiated_event_id,
                control: t.control.clone(),
                ..Default::default()
            },
        )
    }
}

impl Engine {
    /// Where transfers to shards served by other replicas go (set once, with several
    /// replicas).
    pub fn set_transfer_router(&self, router: Arc<dyn TransferRouter>) {
        let _ = self.transfer_router.set(router);
    }

    /// Applies a transfer delivered from another shard (durable before it answers).
    pub async fn receive_transfer(
        &self,
        source: Source,
        transfer: Transfer,
    ) -> Result<TransferOutcome> {
        let Some(kind) = transfer.kind else {
            return Err(Error::InvalidArgument("empty transfer".into()));
        };
        self.transact(|core| core.apply_transfer(&source, &kind))
            .await
    }

    /// Delivers outbox items until the engine is dropped.
    pub fn spawn_transfer_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let rx = self.transfer_rx.lock().take();
        tokio::spawn(async move {
            let Some(mut rx) = rx else { return };
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(next) = rx.try_recv() {
                    batch.push(next);
                }
                let Some(engine) = weak.upgrade() else { return };
                // The records that carry the items must be durable before anyone acts on
                // them; taking the lock waits out the operation that queued them.
                let lsn = {
                    let _core = engine.core.lock();
                    engine.store.last_lsn()
                };
                if engine.store.wait_durable(lsn).await.is_err() {
                    engine.retry_later(batch);
                    continue;
                }
                for (source, id) in batch {
                    // Only the oldest item of a source goes; the next follows its answer.
                    let item = engine
                        .core
                        .lock()
                        .outbox(&source)
                        .and_then(|o| o.first().filter(|t| t.id == id).cloned());
                    if let Some(item) = item {
                        tokio::spawn(deliver(engine.clone(), source, item));
                    }
                }
            }
        })
    }

    fn retry_later(self: &Arc<Self>, items: Vec<(Source, u64)>) {
        let queue = self.core.lock().transfers.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RETRY_AFTER).await;
            if let Some(queue) = queue {
                for item in items {
                    let _ = queue.send(item);
                }
            }
        });
    }
}

async fn deliver(engine: Arc<Engine>, source: Source, item: Transfer) {
    let Some(kind) = &item.kind else { return };
    let (namespace, workflow_id) = kind.target();
    let shard = engine.core.lock().shard_of(namespace, workflow_id);
    let outcome = if engine.owns_shard(shard) {
        engine
            .receive_transfer(source.clone(), item.clone())
            .await
            .map_err(|e| e.to_string())
    } else {
        match engine.transfer_router.get() {
            Some(router) => router.deliver(shard, source.clone(), item.clone()).await,
            None => Err(format!("no replica serves shard {shard}")),
        }
    };
    match outcome {
        Ok(outcome) => {
            let id = item.id;
            let _ = engine
                .transact(|core| {
                    core.finish_transfer(&source, id, outcome);
                    Ok(())
                })
                .await;
        }
        Err(e) => {
            tracing::debug!(source = ?source, error = %e, "transfer not delivered yet; retrying");
            engine.retry_later(vec![(source, item.id)]);
        }
    }
}
