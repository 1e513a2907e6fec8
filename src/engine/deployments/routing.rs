//! Which version's queue a run's tasks go to.
//!
//! A pinned run (pinned by its last workflow task, by an override, or by what it inherited)
//! goes to its version. Any other run of a task queue in a deployment goes to the current
//! version — or to the ramping version, for the ramp's share of workflow ids (stable: one id
//! always falls on the same side) or when it continued as new asking for the ramping
//! version. A task queue in no deployment is unversioned (version "").

use temporalio_protos::temporal::api::deployment::v1::WorkerDeploymentVersion;
use temporalio_protos::temporal::api::enums::v1::{TaskQueueType, VersioningBehavior};
use temporalio_protos::temporal::api::workflow::v1::versioning_override::Override;

use super::{canonical, canonical_of, parse_version};
use crate::engine::matching::{QueueKey, QueueKind, TaskRef};
use crate::engine::{Core, RunKey};
use crate::store::records::WorkerDeploymentRecord;
use crate::store::state::RunVersioning;

impl RunVersioning {
    /// The version the run is pinned to, if it is.
    pub fn pinned_version(&self) -> Option<WorkerDeploymentVersion> {
        if let Some(o) = &self.versioning_override {
            #[allow(deprecated)]
            return match &o.r#override {
                Some(Override::Pinned(p)) => p.version.clone(),
                Some(Override::AutoUpgrade(_)) => None,
                _ if o.behavior == VersioningBehavior::Pinned as i32 => {
                    parse_version(&o.pinned_version)
                }
                _ => None,
            };
        }
        if self.behavior == VersioningBehavior::Pinned as i32 {
            return self.version.clone();
        }
        if self.behavior == VersioningBehavior::Unspecified as i32 {
            return self.inherited_pinned.clone();
        }
        None
    }
}

/// Whether a workflow id falls in a ramp of `percentage` (0–100): a stable hash of the id,
/// so the same id always lands on the same side.
fn in_ramp(workflow_id: &str, percentage: f32) -> bool {
    let hash = crate::stable_hash::fnv1a(workflow_id.bytes());
    ((hash % 10_000) as f32) < percentage * 100.0
}

/// The version a deployment routes a run to when nothing pins it.
fn routed(deployment: &WorkerDeploymentRecord, workflow_id: &str, use_ramping: bool) -> String {
    let ramped =
        deployment.ramping && (use_ramping || in_ramp(workflow_id, deployment.ramping_percentage));
    let build_id = if ramped {
        &deployment.ramping_build_id
    } else {
        &deployment.current_build_id
    };
    canonical(&deployment.name, build_id)
}

fn queue_type(kind: QueueKind) -> TaskQueueType {
    match kind {
        QueueKind::Workflow => TaskQueueType::Workflow,
        QueueKind::Activity => TaskQueueType::Activity,
        QueueKind::Nexus => TaskQueueType::Nexus,
    }
}

impl Core {
    /// The queue a run's task on `task_queue` goes to: the task queue's queue for the version
    /// the run is routed to.
    pub(crate) fn run_queue(&self, key: &RunKey, task_queue: &str, kind: QueueKind) -> QueueKey {
        let queue = QueueKey::new(&key.namespace, task_queue, kind);
        let version = self.routed_version(key, task_queue, kind);
        queue.for_version(version)
    }

    /// The same for a run whose versioning the caller holds (a frozen run stays frozen).
    pub(crate) fn run_queue_with(
        &self,
        key: &RunKey,
        versioning: Option<&RunVersioning>,
        task_queue: &str,
        kind: QueueKind,
    ) -> QueueKey {
        let queue = QueueKey::new(&key.namespace, task_queue, kind);
        queue.for_version(self.routed_version_with(key, versioning, task_queue, kind))
    }

    /// The version (canonical string, "" unversioned) a run's task on `task_queue` goes to.
    pub(crate) fn routed_version(&self, key: &RunKey, task_queue: &str, kind: QueueKind) -> String {
        let run = self.runs.peek(key);
        let versioning = run.as_ref().and_then(|r| r.ms.versioning.as_deref());
        self.routed_version_with(key, versioning, task_queue, kind)
    }

    /// The same for a run whose versioning the caller holds.
    pub(crate) fn routed_version_with(
        &self,
        key: &RunKey,
        versioning: Option<&RunVersioning>,
        task_queue: &str,
        kind: QueueKind,
    ) -> String {
        let deployment = self.deployment_of_queue(&key.namespace, task_queue, queue_type(kind));
        let pinned = versioning.and_then(RunVersioning::pinned_version);
        if let Some(pinned) = pinned {
            // A workflow task always goes to the pinned version; an activity only when its
            // task queue is in that version too.
            let in_version = deployment.is_some_and(|d| {
                d.name == pinned.deployment_name
                    && d.version(&pinned.build_id)
                        .is_some_and(|v| v.serves(task_queue, queue_type(kind)))
            });
            if kind == QueueKind::Workflow || in_version {
                return canonical_of(&pinned);
            }
        }
        let Some(deployment) = deployment else {
            return String::new();
        };
        let use_ramping = versioning.is_some_and(|v| v.use_ramping);
        routed(deployment, &key.workflow_id, use_ramping)
    }

    /// Whether a pinned run's version is no longer where its deployment would send it (told
    /// to the worker on each workflow task, so the run can move on by continuing as new).
    pub(crate) fn target_version_changed(&self, key: &RunKey) -> bool {
        let Some(run) = self.runs.get(key) else {
            return false;
        };
        let Some(own) = run.ms.versioning.as_ref().and_then(|v| v.pinned_version()) else {
            return false;
        };
        let task_queue = run.task_queue();
        let Some(deployment) =
            self.deployment_of_queue(&key.namespace, &task_queue, TaskQueueType::Workflow)
        else {
            return false;
        };
        routed(deployment, &key.workflow_id, false) != canonical_of(&own)
    }

    /// Routes again the tasks waiting in a namespace's queues (after its routing changed):
    /// each goes to the queue its run is routed to now, a sticky task whose run moves to
    /// another version to the normal queue.
    pub(crate) fn reroute_waiting_tasks(&mut self, namespace: &str) {
        self.reroute_queues(namespace, |_| true);
    }

    /// Routes again the tasks waiting for one run (its options changed): those in the queues
    /// of its task queue and of its sticky queue.
    pub(crate) fn reroute_run_tasks(&mut self, key: &RunKey) {
        let Some(run) = self.runs.get(key) else {
            return;
        };
        let names = [run.task_queue(), run.ms.sticky_task_queue.clone()];
        self.reroute_queues(&key.namespace, |q| names.contains(&q.name));
    }

    fn reroute_queues(&mut self, namespace: &str, wanted: impl Fn(&QueueKey) -> bool) {
        for queue in self
            .matching
            .queues_with_backlog(namespace)
            .into_iter()
            .filter(|q| wanted(q))
        {
            for task in self.matching.drain(&queue) {
                self.reroute(&queue, task);
            }
        }
    }

    fn reroute(&mut self, from: &QueueKey, task: TaskRef) {
        let Some(key) = task.key().cloned() else {
            self.matching.push(from.clone(), task);
            return;
        };
        let Some(run) = self.runs.get(&key) else {
            return;
        };
        let normal = match from.kind {
            QueueKind::Workflow => run.task_queue(),
            _ => from.name.clone(),
        };
        let sticky = from.name != normal;
        let target = self.routed_version(&key, &normal, from.kind);
        if target == from.version {
            self.matching.push(from.clone(), task);
        } else if let (
            true,
            TaskRef::Workflow {
                scheduled_event_id,
                attempt,
                ..
            },
        ) = (sticky, &task)
        {
            // The sticky worker is of the old version: the task goes to the normal queue.
            self.sticky_schedule_to_start_fired(&key, *scheduled_event_id, *attempt);
        } else {
            let queue = QueueKey::new(&key.namespace, &normal, from.kind).for_version(target);
            self.push_task(queue, task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::in_ramp;

    #[test]
    fn a_ramp_takes_its_share_of_ids_and_always_the_same_ones() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("wf-{i}")).collect();
        let share = |p: f32| ids.iter().filter(|id| in_ramp(id, p)).count();
        assert_eq!(share(0.0), 0);
        assert_eq!(share(100.0), ids.len());
        let half = share(50.0);
        assert!((4_500..5_500).contains(&half), "{half}");
        let quarter = share(25.0);
        assert!((2_000..3_000).contains(&quarter), "{quarter}");
        assert!(ids.iter().all(|id| in_ramp(id, 30.0) == in_ramp(id, 30.0)));
        // Raising a ramp only adds ids.
        assert!(ids.iter().all(|id| !in_ramp(id, 20.0) || in_ramp(id, 40.0)));
    }
}
