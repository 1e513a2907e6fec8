//! Sticky queues: a worker keeps a run's state cached and polls its own queue for that run's
//! next workflow tasks (which carry only new events). When nobody takes a sticky task in time,
//! or the worker shuts down, the task goes to the normal queue with full history.

use temporalio_protos::temporal::api::enums::v1::TimeoutType;
use temporalio_protos::temporal::api::history::v1::WorkflowTaskTimedOutEventAttributes;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;

use super::matching::{QueueKey, QueueKind, TaskRef};
use super::{Core, RunKey};

impl Core {
    /// Nobody took a sticky workflow task in time: record the timeout and hand the task to
    /// the normal queue (same attempt) with full history.
    pub(crate) fn sticky_schedule_to_start_fired(
        &mut self,
        key: &RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    ) {
        let now = self.now();
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        let still_waiting = run.ms.workflow_task.as_ref().is_some_and(|w| {
            w.sticky
                && w.scheduled_event_id == scheduled_event_id
                && w.attempt == attempt
                && w.started_event_id == 0
        });
        if !run.is_open() || !still_waiting {
            return;
        }
        run.append(
            now,
            Attributes::WorkflowTaskTimedOutEventAttributes(WorkflowTaskTimedOutEventAttributes {
                scheduled_event_id,
                started_event_id: 0,
                timeout_type: TimeoutType::ScheduleToStart as i32,
            }),
        );
        run.ms.workflow_task = None;
        run.ms.sticky_task_queue.clear();
        run.redeliver_updates();
        self.schedule_workflow_task(key, attempt);
        self.changed(key);
    }

    /// A worker shut down: its sticky queue is gone, so its runs' pending tasks move to the
    /// normal queue now instead of waiting for the sticky timeout.
    pub(crate) fn retire_sticky_queue(&mut self, namespace: &str, name: &str) {
        let queue = QueueKey::new(namespace, name, QueueKind::Workflow);
        for task in self.matching.retire(&queue) {
            if let TaskRef::Workflow {
                key,
                scheduled_event_id,
                attempt,
            } = task
            {
                self.sticky_schedule_to_start_fired(&key, scheduled_event_id, attempt);
            }
        }
    }
}
