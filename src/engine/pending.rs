//! Caps on a run's pending work (activities, child workflows, signals and cancel requests to
//! other workflows), checked for each command of a completed workflow task.

use temporalio_protos::temporal::api::command::v1::command;
use temporalio_protos::temporal::api::enums::v1::WorkflowTaskFailedCause;

use super::Run;
use super::commands::{CommandError, bad};
use super::limits;

/// What counts against a run's caps while one workflow task's commands are applied. Signals
/// and cancel requests to other workflows are pending while they wait in the outbox for
/// another shard; those to this shard are delivered in the same operation, so only the ones
/// the commands so far initiate count.
pub(super) struct PendingWork {
    signals: usize,
    cancels: usize,
}

impl PendingWork {
    pub(super) fn of(run: &Run) -> Self {
        use super::state::TransferKind;
        let count = |f: fn(&TransferKind) -> bool| {
            run.ms
                .outbox
                .iter()
                .filter(|t| t.kind.as_ref().is_some_and(f))
                .count()
        };
        Self {
            signals: count(|k| matches!(k, TransferKind::Signal(_))),
            cancels: count(|k| matches!(k, TransferKind::Cancel(_))),
        }
    }

    /// Refuses a command that would take the run past one of its caps on pending work
    /// ([`limits::MAX_PENDING_ACTIVITIES`] and the others).
    pub(super) fn admit(
        &mut self,
        run: &Run,
        attrs: &command::Attributes,
    ) -> Result<(), CommandError> {
        use WorkflowTaskFailedCause as C;
        use command::Attributes as CA;
        let (cause, what, pending, cap) = match attrs {
            CA::ScheduleActivityTaskCommandAttributes(_) => (
                C::PendingActivitiesLimitExceeded,
                "activities",
                run.ms.activities.len(),
                limits::MAX_PENDING_ACTIVITIES,
            ),
            CA::StartChildWorkflowExecutionCommandAttributes(_) => (
                C::PendingChildWorkflowsLimitExceeded,
                "child workflows",
                run.ms.children.len(),
                limits::MAX_PENDING_CHILDREN,
            ),
            CA::SignalExternalWorkflowExecutionCommandAttributes(_) => {
                self.signals += 1;
                (
                    C::PendingSignalsLimitExceeded,
                    "signals to other workflows",
                    self.signals - 1,
                    limits::MAX_PENDING_EXTERNAL_SIGNALS,
                )
            }
            CA::RequestCancelExternalWorkflowExecutionCommandAttributes(_) => {
                self.cancels += 1;
                (
                    C::PendingRequestCancelLimitExceeded,
                    "cancel requests to other workflows",
                    self.cancels - 1,
                    limits::MAX_PENDING_CANCEL_REQUESTS,
                )
            }
            _ => return Ok(()),
        };
        if pending >= cap {
            return Err(bad(
                cause,
                format!("the run has {pending} pending {what}, the most it may have"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use temporalio_protos::temporal::api::command::v1::{
        Command, ScheduleActivityTaskCommandAttributes,
        SignalExternalWorkflowExecutionCommandAttributes, command::Attributes as CA,
    };
    use temporalio_protos::temporal::api::common::v1::{ActivityType, WorkflowExecution};
    use temporalio_protos::temporal::api::enums::v1::WorkflowTaskFailedCause as C;
    use temporalio_protos::temporal::api::taskqueue::v1::TaskQueue;

    use super::super::state::{ActivityInfo, MutableState};
    use super::super::{Run, RunKey, commands, limits};

    fn activity(id: &str) -> Command {
        Command {
            attributes: Some(CA::ScheduleActivityTaskCommandAttributes(
                ScheduleActivityTaskCommandAttributes {
                    activity_id: id.into(),
                    activity_type: Some(ActivityType {
                        name: "work".into(),
                    }),
                    task_queue: Some(TaskQueue {
                        name: "q".into(),
                        ..Default::default()
                    }),
                    start_to_close_timeout: Some(prost_wkt_types::Duration {
                        seconds: 10,
                        nanos: 0,
                    }),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }

    fn signal() -> Command {
        Command {
            attributes: Some(CA::SignalExternalWorkflowExecutionCommandAttributes(
                SignalExternalWorkflowExecutionCommandAttributes {
                    execution: Some(WorkflowExecution {
                        workflow_id: "other".into(),
                        ..Default::default()
                    }),
                    signal_name: "poke".into(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }

    /// The cause a workflow task with `commands` fails with on a run with `pending`
    /// activities (None: it is accepted).
    fn outcome(pending: usize, commands: &[Command]) -> Option<C> {
        let mut run = Run::new(MutableState::default());
        for i in 0..pending {
            run.ms.activities.insert(
                i as i64 + 100,
                ActivityInfo {
                    activity_id: format!("old-{i}"),
                    ..Default::default()
                },
            );
        }
        let key = RunKey {
            namespace: "ns".into(),
            workflow_id: "w".into(),
            run_id: "r".into(),
        };
        let mut effects = Vec::new();
        let context = commands::TaskContext {
            key: &key,
            custom_search_attributes: &Default::default(),
            nexus_endpoints: &Default::default(),
            wtc_id: 5,
            now: 0,
        };
        commands::apply(&mut run, context, commands, &[], &mut effects)
            .err()
            .map(|e| e.cause)
    }

    #[test]
    fn a_run_has_at_most_its_cap_of_pending_activities() {
        let cap = limits::MAX_PENDING_ACTIVITIES;
        assert_eq!(outcome(cap - 1, &[activity("new")]), None);
        assert_eq!(
            outcome(cap, &[activity("new")]),
            Some(C::PendingActivitiesLimitExceeded)
        );
        // Counted within one workflow task too.
        assert_eq!(
            outcome(cap - 1, &[activity("a"), activity("b")]),
            Some(C::PendingActivitiesLimitExceeded)
        );
    }

    #[test]
    fn one_workflow_task_initiates_at_most_the_cap_of_external_signals() {
        let cap = limits::MAX_PENDING_EXTERNAL_SIGNALS;
        assert_eq!(outcome(0, &vec![signal(); cap]), None);
        assert_eq!(
            outcome(0, &vec![signal(); cap + 1]),
            Some(C::PendingSignalsLimitExceeded)
        );
    }
}
