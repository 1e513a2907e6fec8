//! Worker deployments — Temporal's Worker Versioning. A deployment groups the versions of one
//! worker program; a version (one build id) appears when a worker polls with versioning on,
//! and the deployment's routing names the current version (new and auto-upgrade workflows)
//! and a ramping version with the share of those it takes. Pinned workflows stay on the
//! version they started on.
//!
//! Deployments live in the namespace's record (every replica routes by the same copy); each
//! version has its own queue per task queue (`QueueKey::version`), so a worker only ever gets
//! the tasks of its own version. `routing.rs` decides which queue a run's task goes to;
//! `api.rs` serves the deployment RPCs.

pub mod api;
mod routing;

use temporalio_protos::temporal::api::deployment::v1::{
    WorkerDeploymentOptions, WorkerDeploymentVersion,
};
use temporalio_protos::temporal::api::enums::v1::{TaskQueueType, WorkerVersioningMode};

use super::{Core, clock};
use crate::store::records::{
    DeploymentVersionRecord, VersionTaskQueueRecord, WorkerDeploymentRecord,
};

/// How Temporal writes "unversioned workers" where a version string is expected.
pub const UNVERSIONED: &str = "__unversioned__";

/// A version's canonical string, `deployment.build` ("" for unversioned workers).
pub fn canonical(deployment: &str, build_id: &str) -> String {
    if build_id.is_empty() {
        String::new()
    } else {
        format!("{deployment}.{build_id}")
    }
}

/// The canonical string of a version message.
pub fn canonical_of(v: &WorkerDeploymentVersion) -> String {
    canonical(&v.deployment_name, &v.build_id)
}

/// A version from its canonical string (deployment names have no dots; build ids may).
pub fn parse_version(s: &str) -> Option<WorkerDeploymentVersion> {
    let (deployment_name, build_id) = s.split_once('.')?;
    Some(WorkerDeploymentVersion {
        deployment_name: deployment_name.to_string(),
        build_id: build_id.to_string(),
    })
}

/// The queue version a poller with these options polls for: its version when it asks for
/// versioning, "" (the unversioned queue) otherwise.
pub fn poller_version(options: &Option<WorkerDeploymentOptions>) -> String {
    match options {
        Some(o) if o.worker_versioning_mode == WorkerVersioningMode::Versioned as i32 => {
            canonical(&o.deployment_name, &o.build_id)
        }
        _ => String::new(),
    }
}

impl WorkerDeploymentRecord {
    pub fn version(&self, build_id: &str) -> Option<&DeploymentVersionRecord> {
        self.versions.iter().find(|v| v.build_id == build_id)
    }

    pub fn version_mut(&mut self, build_id: &str) -> Option<&mut DeploymentVersionRecord> {
        self.versions.iter_mut().find(|v| v.build_id == build_id)
    }

    /// Whether any of its versions is polled on this task queue for this task type.
    fn serves(&self, task_queue: &str, kind: TaskQueueType) -> bool {
        self.versions.iter().any(|v| v.serves(task_queue, kind))
    }

    /// The conflict token clients pass back: the routing's revision.
    pub fn conflict_token(&self) -> Vec<u8> {
        self.revision.to_be_bytes().to_vec()
    }
}

impl DeploymentVersionRecord {
    pub fn serves(&self, task_queue: &str, kind: TaskQueueType) -> bool {
        self.task_queues
            .iter()
            .any(|q| q.name == task_queue && q.kind == kind as i32)
    }
}

impl Core {
    /// The namespace's deployments (none when it has no record).
    pub(crate) fn deployments(&self, namespace: &str) -> &[WorkerDeploymentRecord] {
        self.namespaces
            .get(namespace)
            .map_or(&[], |n| n.worker_deployments.as_slice())
    }

    /// The deployment whose versions serve a task queue (a task queue belongs to one).
    pub(crate) fn deployment_of_queue(
        &self,
        namespace: &str,
        task_queue: &str,
        kind: TaskQueueType,
    ) -> Option<&WorkerDeploymentRecord> {
        self.deployments(namespace)
            .iter()
            .find(|d| d.serves(task_queue, kind))
    }

    /// Whether the version a poller names is known to serve this task queue.
    fn version_serves(
        &self,
        namespace: &str,
        o: &WorkerDeploymentOptions,
        task_queue: &str,
        kind: TaskQueueType,
    ) -> bool {
        self.deployments(namespace)
            .iter()
            .find(|d| d.name == o.deployment_name)
            .and_then(|d| d.version(&o.build_id))
            .is_some_and(|v| v.serves(task_queue, kind))
    }

    /// Records that a versioned worker polls `task_queue`: its deployment and version are
    /// created on first sight, and the task queue added to the version. Returns whether the
    /// namespace record changed (the caller tells the other replicas).
    pub(crate) fn register_poller_version(
        &mut self,
        namespace: &str,
        options: &Option<WorkerDeploymentOptions>,
        task_queue: &str,
        kind: TaskQueueType,
    ) -> bool {
        let Some(o) = options else { return false };
        if poller_version(options).is_empty() || self.version_serves(namespace, o, task_queue, kind)
        {
            return false;
        }
        let Some(mut record) = self.namespaces.get(namespace).cloned() else {
            return false;
        };
        let now = Some(clock::ts_from_millis(self.now()));
        let deployment = match record
            .worker_deployments
            .iter()
            .position(|d| d.name == o.deployment_name)
        {
            Some(i) => &mut record.worker_deployments[i],
            None => {
                record.worker_deployments.push(WorkerDeploymentRecord {
                    name: o.deployment_name.clone(),
                    create_time: now,
                    ..Default::default()
                });
                record.worker_deployments.last_mut().expect("just pushed")
            }
        };
        if deployment.version(&o.build_id).is_none() {
            deployment.versions.push(DeploymentVersionRecord {
                build_id: o.build_id.clone(),
                create_time: now,
                ..Default::default()
            });
        }
        let version = deployment
            .version_mut(&o.build_id)
            .expect("the version exists");
        version.task_queues.push(VersionTaskQueueRecord {
            name: task_queue.to_string(),
            kind: kind as i32,
        });
        tracing::info!(namespace, deployment = %o.deployment_name, build_id = %o.build_id, task_queue, "worker deployment version polled");
        self.write_namespace(record);
        true
    }
}

impl super::Engine {
    /// Registers the version a versioned poller polls for (see
    /// [`Core::register_poller_version`]); returns whether the namespace changed.
    pub async fn register_poller(
        &self,
        namespace: &str,
        options: &Option<WorkerDeploymentOptions>,
        task_queue: &Option<temporalio_protos::temporal::api::taskqueue::v1::TaskQueue>,
        kind: TaskQueueType,
    ) -> super::Result<bool> {
        let is_normal = task_queue.as_ref().is_some_and(|q| {
            q.kind != temporalio_protos::temporal::api::enums::v1::TaskQueueKind::Sticky as i32
        });
        let name = task_queue.as_ref().map_or("", |q| q.name.as_str());
        if poller_version(options).is_empty() || !is_normal || name.is_empty() {
            return Ok(false);
        }
        // Nearly every poll finds its version known: look before taking a transaction.
        let o = options.as_ref().expect("versioned");
        if self.core.lock().version_serves(namespace, o, name, kind) {
            return Ok(false);
        }
        self.transact(|core| Ok(core.register_poller_version(namespace, options, name, kind)))
            .await
    }
}

/// What a workflow task's completion says about the worker that completed it.
pub struct Completion {
    /// Set when the worker runs versioned: its version.
    version: Option<WorkerDeploymentVersion>,
    behavior: i32,
    deployment_name: String,
    stamp: Option<temporalio_protos::temporal::api::common::v1::WorkerVersionStamp>,
}

pub fn completed_by(
    req: &temporalio_protos::temporal::api::workflowservice::v1::RespondWorkflowTaskCompletedRequest,
) -> Completion {
    let options = &req.deployment_options;
    let version = parse_version(&poller_version(options));
    #[allow(deprecated)]
    let stamp = req.worker_version_stamp.clone().or_else(|| {
        // A worker with deployment options but versioning off still has a build id.
        options
            .as_ref()
            .filter(|o| !o.build_id.is_empty())
            .map(
                |o| temporalio_protos::temporal::api::common::v1::WorkerVersionStamp {
                    build_id: o.build_id.clone(),
                    use_versioning: false,
                },
            )
    });
    Completion {
        behavior: if version.is_some() {
            req.versioning_behavior
        } else {
            0
        },
        version,
        deployment_name: options
            .as_ref()
            .map_or(String::new(), |o| o.deployment_name.clone()),
        stamp,
    }
}

impl Completion {
    /// The run's versioning after this completion (None: nothing to remember).
    pub fn next_state(
        &self,
        before: Option<crate::store::state::RunVersioning>,
    ) -> Option<crate::store::state::RunVersioning> {
        let state = crate::store::state::RunVersioning {
            behavior: self.behavior,
            version: self.version.clone(),
            versioning_override: before.and_then(|b| b.versioning_override),
            // What the run inherited held until its first task completed.
            inherited_pinned: None,
            use_ramping: false,
        };
        (state != Default::default()).then_some(state)
    }

    /// The completed event with what it records of the worker.
    #[allow(deprecated)]
    pub fn event(
        &self,
        mut attrs: temporalio_protos::temporal::api::history::v1::WorkflowTaskCompletedEventAttributes,
    ) -> temporalio_protos::temporal::api::history::v1::WorkflowTaskCompletedEventAttributes {
        attrs.worker_version = self.stamp.clone();
        attrs.versioning_behavior = self.behavior;
        attrs.worker_deployment_name = self.deployment_name.clone();
        attrs.worker_deployment_version = self.version.as_ref().map_or(String::new(), canonical_of);
        attrs.deployment_version = self.version.clone();
        attrs
    }
}

/// A run's versioning as DescribeWorkflowExecution shows it.
#[allow(deprecated)]
pub fn versioning_info(
    v: &crate::store::state::RunVersioning,
) -> temporalio_protos::temporal::api::workflow::v1::WorkflowExecutionVersioningInfo {
    temporalio_protos::temporal::api::workflow::v1::WorkflowExecutionVersioningInfo {
        behavior: v.behavior,
        version: v.version.as_ref().map_or(String::new(), canonical_of),
        deployment_version: v.version.clone(),
        versioning_override: v.versioning_override.clone(),
        ..Default::default()
    }
}

/// A new run's versioning, from its started event: an override given at start, a version
/// inherited from the run before it or its parent, or the ramping version asked for by
/// continue-as-new.
pub fn initial_versioning(
    started: &temporalio_protos::temporal::api::history::v1::WorkflowExecutionStartedEventAttributes,
) -> Option<crate::store::state::RunVersioning> {
    use temporalio_protos::temporal::api::enums::v1::ContinueAsNewVersioningBehavior;
    let use_ramping = started
        .inherited_auto_upgrade_info
        .as_ref()
        .is_some_and(|i| {
            i.continue_as_new_initial_versioning_behavior
                == ContinueAsNewVersioningBehavior::UseRampingVersion as i32
        });
    let state = crate::store::state::RunVersioning {
        versioning_override: started.versioning_override.clone(),
        inherited_pinned: started.inherited_pinned_version.clone(),
        use_ramping,
        ..Default::default()
    };
    (state != Default::default()).then_some(state)
}

/// Continue-as-new may leave the pinned version: `AUTO_UPGRADE` starts the new run on the
/// current version, `USE_RAMPING_VERSION` on the ramping one.
pub fn continue_as_new_versioning(
    ms: &crate::store::state::MutableState,
    a: &temporalio_protos::temporal::api::command::v1::ContinueAsNewWorkflowExecutionCommandAttributes,
    started: &mut temporalio_protos::temporal::api::history::v1::WorkflowExecutionStartedEventAttributes,
) {
    use temporalio_protos::temporal::api::enums::v1::ContinueAsNewVersioningBehavior;
    if a.initial_versioning_behavior == ContinueAsNewVersioningBehavior::Unspecified as i32 {
        return;
    }
    started.inherited_pinned_version = None;
    started.inherited_auto_upgrade_info = Some(
        temporalio_protos::temporal::api::deployment::v1::InheritedAutoUpgradeInfo {
            source_deployment_version: ms.versioning.as_ref().and_then(|v| v.version.clone()),
            continue_as_new_initial_versioning_behavior: a.initial_versioning_behavior,
            ..Default::default()
        },
    );
}

impl Core {
    /// The version a child inherits: its parent's pinned version, when the child's task
    /// queue is in that version.
    pub(crate) fn child_pinned_version(
        &self,
        parent: &super::RunKey,
        namespace: &str,
        started: &temporalio_protos::temporal::api::history::v1::WorkflowExecutionStartedEventAttributes,
    ) -> Option<WorkerDeploymentVersion> {
        let pinned = self
            .runs
            .get(parent)?
            .ms
            .versioning
            .as_ref()?
            .pinned_version()?;
        let task_queue = started.task_queue.as_ref()?.name.as_str();
        let deployment =
            self.deployment_of_queue(namespace, task_queue, TaskQueueType::Workflow)?;
        let serves = deployment.name == pinned.deployment_name
            && deployment
                .version(&pinned.build_id)
                .is_some_and(|v| v.serves(task_queue, TaskQueueType::Workflow));
        serves.then_some(pinned)
    }
}

/// A run's versioning search attributes as Temporal's visibility holds them: the deployment
/// and version (`deployment:build`) the run is on, and its behavior (`Pinned`,
/// `AutoUpgrade`), an override winning over what the worker declared.
pub fn search_attribute(v: &crate::store::state::RunVersioning, name: &str) -> Option<String> {
    use temporalio_protos::temporal::api::enums::v1::VersioningBehavior;
    use temporalio_protos::temporal::api::workflow::v1::versioning_override::Override;
    let pinned = v.pinned_version();
    let auto_override = matches!(
        v.versioning_override
            .as_ref()
            .and_then(|o| o.r#override.as_ref()),
        Some(Override::AutoUpgrade(true))
    );
    let version = pinned.clone().or_else(|| v.version.clone());
    match name {
        "TemporalWorkerDeployment" => version.map(|v| v.deployment_name),
        "TemporalWorkerDeploymentVersion" => {
            version.map(|v| format!("{}:{}", v.deployment_name, v.build_id))
        }
        "TemporalWorkflowVersioningBehavior" => {
            if pinned.is_some() {
                Some("Pinned".into())
            } else if auto_override || v.behavior == VersioningBehavior::AutoUpgrade as i32 {
                Some("AutoUpgrade".into())
            } else {
                None
            }
        }
        _ => None,
    }
}
