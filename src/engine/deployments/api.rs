//! The worker-deployment RPCs: describe and list deployments and versions, set the current
//! and the ramping version, the manager and version metadata, delete versions and
//! deployments. A routing change takes effect at once: tasks already waiting are routed
//! again in the same operation.

#![allow(deprecated)] // Temporal keeps the string forms of versions beside the messages.

use prost_wkt_types::Timestamp;
use temporalio_protos::temporal::api::deployment::v1::{
    RoutingConfig, VersionDrainageInfo, VersionMetadata, WorkerDeploymentInfo,
    WorkerDeploymentVersion, WorkerDeploymentVersionInfo, worker_deployment_info,
    worker_deployment_version_info,
};
use temporalio_protos::temporal::api::enums::v1::{
    RoutingConfigUpdateState, TaskQueueType, VersionDrainageStatus, WorkerDeploymentVersionStatus,
};
use temporalio_protos::temporal::api::workflowservice::v1::*;

use super::{UNVERSIONED, canonical, parse_version};
use crate::engine::matching::{QueueKey, QueueKind};
use crate::engine::{Core, Engine, Error, Result, clock};
use crate::store::records::{DeploymentVersionRecord, WorkerDeploymentRecord};

/// Versions listed per page of ListWorkerDeployments when the client names no page size.
const DEFAULT_PAGE: usize = 100;

impl Engine {
    pub async fn describe_worker_deployment(
        &self,
        req: DescribeWorkerDeploymentRequest,
    ) -> Result<DescribeWorkerDeploymentResponse> {
        self.transact(|core| {
            let d = core.deployment(&req.namespace, &req.deployment_name)?;
            Ok(DescribeWorkerDeploymentResponse {
                conflict_token: d.conflict_token(),
                worker_deployment_info: Some(core.deployment_info(&req.namespace, d)),
            })
        })
        .await
    }

    pub async fn list_worker_deployments(
        &self,
        req: ListWorkerDeploymentsRequest,
    ) -> Result<ListWorkerDeploymentsResponse> {
        self.transact(|core| {
            core.check_namespace(&req.namespace)?;
            let after = String::from_utf8_lossy(&req.next_page_token).to_string();
            let size = usize::try_from(req.page_size)
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or(DEFAULT_PAGE);
            let mut all: Vec<&WorkerDeploymentRecord> = core
                .deployments(&req.namespace)
                .iter()
                .filter(|d| after.is_empty() || d.name > after)
                .collect();
            all.sort_by(|a, b| a.name.cmp(&b.name));
            let more = all.len() > size;
            all.truncate(size);
            let summary_of = |d: &WorkerDeploymentRecord, build_id: &str| {
                d.version(build_id)
                    .map(|v| core.version_summary(&req.namespace, d, v))
            };
            let worker_deployments = all
                .iter()
                .map(|d| {
                    let latest = d
                        .versions
                        .iter()
                        .max_by_key(|v| clock::opt_ts_millis(&v.create_time));
                    list_worker_deployments_response::WorkerDeploymentSummary {
                        name: d.name.clone(),
                        create_time: d.create_time,
                        routing_config: Some(routing_config(d)),
                        latest_version_summary: latest
                            .map(|v| core.version_summary(&req.namespace, d, v)),
                        current_version_summary: summary_of(d, &d.current_build_id),
                        ramping_version_summary: if d.ramping {
                            summary_of(d, &d.ramping_build_id)
                        } else {
                            None
                        },
                    }
                })
                .collect();
            Ok(ListWorkerDeploymentsResponse {
                next_page_token: match (more, all.last()) {
                    (true, Some(last)) => last.name.clone().into_bytes(),
                    _ => Vec::new(),
                },
                worker_deployments,
            })
        })
        .await
    }

    pub async fn describe_worker_deployment_version(
        &self,
        req: DescribeWorkerDeploymentVersionRequest,
    ) -> Result<DescribeWorkerDeploymentVersionResponse> {
        self.transact(|core| {
            let version = requested_version(&req.deployment_version, &req.version)?;
            let d = core.deployment(&req.namespace, &version.deployment_name)?;
            let v = d
                .version(&version.build_id)
                .ok_or_else(|| version_not_found(&version))?;
            let version_task_queues = v
                .task_queues
                .iter()
                .map(
                    |q| describe_worker_deployment_version_response::VersionTaskQueue {
                        name: q.name.clone(),
                        r#type: q.kind,
                        ..Default::default()
                    },
                )
                .collect();
            Ok(DescribeWorkerDeploymentVersionResponse {
                worker_deployment_version_info: Some(core.version_info(&req.namespace, d, v)),
                version_task_queues,
            })
        })
        .await
    }

    pub async fn set_worker_deployment_current_version(
        &self,
        req: SetWorkerDeploymentCurrentVersionRequest,
    ) -> Result<SetWorkerDeploymentCurrentVersionResponse> {
        let build_id = target_build_id(&req.build_id, &req.version, &req.deployment_name)?;
        self.transact(|core| {
            let change = DeploymentChange {
                namespace: &req.namespace,
                deployment: &req.deployment_name,
                identity: &req.identity,
                conflict_token: &req.conflict_token,
            };
            let (previous, token) = core.change_deployment(change, |d, now| {
                d.ensure_version(&build_id, req.allow_no_pollers, now)?;
                let previous = d.current_build_id.clone();
                if previous == build_id {
                    return Ok(previous);
                }
                d.mark_inactive(&previous, now);
                if d.ramping && d.ramping_build_id == build_id {
                    d.ramping = false;
                    d.ramping_build_id.clear();
                    d.ramping_percentage = 0.0;
                    d.ramping_changed_time = Some(now);
                }
                d.current_build_id = build_id.clone();
                d.current_changed_time = Some(now);
                if let Some(v) = d.version_mut(&build_id) {
                    v.current_since_time = Some(now);
                    v.last_current_time = Some(now);
                    v.ramping_since_time = None;
                    v.routing_changed_time = Some(now);
                    v.first_activation_time.get_or_insert(now);
                    v.last_deactivation_time = None;
                }
                Ok(previous)
            })?;
            Ok(SetWorkerDeploymentCurrentVersionResponse {
                conflict_token: token,
                previous_version: canonical(&req.deployment_name, &previous),
                previous_deployment_version: version_message(&req.deployment_name, &previous),
            })
        })
        .await
    }

    pub async fn set_worker_deployment_ramping_version(
        &self,
        req: SetWorkerDeploymentRampingVersionRequest,
    ) -> Result<SetWorkerDeploymentRampingVersionResponse> {
        let unset = req.build_id.is_empty() && req.version.is_empty();
        let build_id = target_build_id(&req.build_id, &req.version, &req.deployment_name)?;
        if !(0.0..=100.0).contains(&req.percentage) {
            return Err(Error::InvalidArgument(
                "Percentage must be between 0 and 100 (inclusive).".into(),
            ));
        }
        self.transact(|core| {
            let change = DeploymentChange {
                namespace: &req.namespace,
                deployment: &req.deployment_name,
                identity: &req.identity,
                conflict_token: &req.conflict_token,
            };
            let ((previous, previous_percentage), token) =
                core.change_deployment(change, |d, now| {
                    let previous = (
                        if d.ramping {
                            d.ramping_build_id.clone()
                        } else {
                            String::new()
                        },
                        d.ramping_percentage,
                    );
                    if unset {
                        if d.ramping {
                            let was = d.ramping_build_id.clone();
                            d.ramping = false;
                            d.ramping_build_id.clear();
                            d.ramping_percentage = 0.0;
                            d.ramping_changed_time = Some(now);
                            d.mark_inactive(&was, now);
                        }
                        return Ok(previous);
                    }
                    if build_id == d.current_build_id {
                        return Err(Error::FailedPrecondition(format!(
                            "Ramping version {} is already current.",
                            canonical_or_unversioned(&req.deployment_name, &build_id)
                        )));
                    }
                    d.ensure_version(&build_id, req.allow_no_pollers, now)?;
                    if !d.ramping || d.ramping_build_id != build_id {
                        if d.ramping {
                            let was = d.ramping_build_id.clone();
                            d.mark_inactive(&was, now);
                        }
                        d.ramping = true;
                        d.ramping_build_id = build_id.clone();
                        d.ramping_changed_time = Some(now);
                        if let Some(v) = d.version_mut(&build_id) {
                            v.ramping_since_time = Some(now);
                            v.routing_changed_time = Some(now);
                            v.first_activation_time.get_or_insert(now);
                            v.last_deactivation_time = None;
                        }
                    }
                    if d.ramping_percentage != req.percentage {
                        d.ramping_percentage = req.percentage;
                        d.ramping_percentage_changed_time = Some(now);
                    }
                    Ok(previous)
                })?;
            Ok(SetWorkerDeploymentRampingVersionResponse {
                conflict_token: token,
                previous_version: canonical(&req.deployment_name, &previous),
                previous_deployment_version: version_message(&req.deployment_name, &previous),
                previous_percentage,
            })
        })
        .await
    }

    pub async fn set_worker_deployment_manager(
        &self,
        req: SetWorkerDeploymentManagerRequest,
    ) -> Result<SetWorkerDeploymentManagerResponse> {
        use set_worker_deployment_manager_request::NewManagerIdentity;
        let manager = match &req.new_manager_identity {
            Some(NewManagerIdentity::ManagerIdentity(m)) => m.clone(),
            Some(NewManagerIdentity::Self_(true)) => req.identity.clone(),
            _ => String::new(),
        };
        self.transact(|core| {
            let change = DeploymentChange {
                namespace: &req.namespace,
                deployment: &req.deployment_name,
                identity: &req.identity,
                conflict_token: &req.conflict_token,
            };
            let (previous, token) = core.change_deployment(change, |d, _| {
                Ok(std::mem::replace(&mut d.manager_identity, manager))
            })?;
            Ok(SetWorkerDeploymentManagerResponse {
                conflict_token: token,
                previous_manager_identity: previous,
            })
        })
        .await
    }

    pub async fn update_worker_deployment_version_metadata(
        &self,
        req: UpdateWorkerDeploymentVersionMetadataRequest,
    ) -> Result<UpdateWorkerDeploymentVersionMetadataResponse> {
        let version = requested_version(&req.deployment_version, &req.version)?;
        self.transact(|core| {
            let mut record = core.namespace_record(&req.namespace)?;
            let d = record
                .worker_deployments
                .iter_mut()
                .find(|d| d.name == version.deployment_name)
                .ok_or_else(|| deployment_not_found(&version.deployment_name))?;
            let v = d
                .version_mut(&version.build_id)
                .ok_or_else(|| version_not_found(&version))?;
            for key in &req.remove_entries {
                v.metadata.remove(key);
            }
            v.metadata.extend(req.upsert_entries.clone());
            v.last_modifier_identity = req.identity.clone();
            let metadata = VersionMetadata {
                entries: v.metadata.clone().into_iter().collect(),
            };
            core.write_namespace(record);
            Ok(UpdateWorkerDeploymentVersionMetadataResponse {
                metadata: Some(metadata),
            })
        })
        .await
    }

    pub async fn delete_worker_deployment_version(
        &self,
        req: DeleteWorkerDeploymentVersionRequest,
    ) -> Result<()> {
        let version = requested_version(&req.deployment_version, &req.version)?;
        self.transact(|core| {
            let now = core.now();
            let d = core.deployment(&req.namespace, &version.deployment_name)?;
            let v = d
                .version(&version.build_id)
                .ok_or_else(|| version_not_found(&version))?;
            let name = canonical(&version.deployment_name, &version.build_id);
            check_manager(d, &req.identity)?;
            if d.current_build_id == v.build_id || (d.ramping && d.ramping_build_id == v.build_id)
            {
                return Err(Error::FailedPrecondition(format!(
                    "Version {name} is current or ramping and cannot be deleted."
                )));
            }
            if !req.skip_drainage && core.pinned_runs_open(&req.namespace, &name) {
                return Err(Error::FailedPrecondition(format!(
                    "Version {name} is draining (pinned workflows still run on it) and cannot be deleted."
                )));
            }
            let polled = v.task_queues.iter().any(|q| {
                let kind = match TaskQueueType::try_from(q.kind) {
                    Ok(TaskQueueType::Activity) => QueueKind::Activity,
                    Ok(TaskQueueType::Nexus) => QueueKind::Nexus,
                    _ => QueueKind::Workflow,
                };
                let queue = QueueKey::new(&req.namespace, &q.name, kind).for_version(name.clone());
                core.matching.is_live(&queue, now)
            });
            if polled {
                return Err(Error::FailedPrecondition(format!(
                    "Version {name} still has pollers and cannot be deleted."
                )));
            }
            let mut record = core.namespace_record(&req.namespace)?;
            if let Some(d) = record
                .worker_deployments
                .iter_mut()
                .find(|d| d.name == version.deployment_name)
            {
                d.versions.retain(|v| v.build_id != version.build_id);
                d.last_modifier_identity = req.identity.clone();
            }
            core.write_namespace(record);
            Ok(())
        })
        .await
    }

    pub async fn delete_worker_deployment(&self, req: DeleteWorkerDeploymentRequest) -> Result<()> {
        self.transact(|core| {
            let d = core.deployment(&req.namespace, &req.deployment_name)?;
            check_manager(d, &req.identity)?;
            if !d.versions.is_empty() {
                return Err(Error::FailedPrecondition(format!(
                    "Worker Deployment {} still has versions; delete them first.",
                    req.deployment_name
                )));
            }
            let mut record = core.namespace_record(&req.namespace)?;
            record
                .worker_deployments
                .retain(|d| d.name != req.deployment_name);
            core.write_namespace(record);
            Ok(())
        })
        .await
    }
}

/// Who changes which deployment, with the token they read.
struct DeploymentChange<'a> {
    namespace: &'a str,
    deployment: &'a str,
    identity: &'a str,
    conflict_token: &'a [u8],
}

impl Core {
    fn deployment(&self, namespace: &str, name: &str) -> Result<&WorkerDeploymentRecord> {
        self.check_namespace(namespace)?;
        if name.is_empty() {
            return Err(Error::InvalidArgument(
                "Deployment name is required.".into(),
            ));
        }
        self.deployments(namespace)
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| deployment_not_found(name))
    }

    /// Changes a deployment's routing or manager: checks the caller's token and identity,
    /// bumps the revision, stores the namespace and routes waiting tasks again. Returns what
    /// `f` returned and the new conflict token.
    fn change_deployment<T>(
        &mut self,
        change: DeploymentChange,
        f: impl FnOnce(&mut WorkerDeploymentRecord, Timestamp) -> Result<T>,
    ) -> Result<(T, Vec<u8>)> {
        let current = self.deployment(change.namespace, change.deployment)?;
        if !change.conflict_token.is_empty() && change.conflict_token != current.conflict_token() {
            return Err(Error::FailedPrecondition(
                "Conflict token mismatch: the Worker Deployment changed since it was read.".into(),
            ));
        }
        check_manager(current, change.identity)?;
        let now = clock::ts_from_millis(self.now());
        let mut record = self.namespace_record(change.namespace)?;
        let d = record
            .worker_deployments
            .iter_mut()
            .find(|d| d.name == change.deployment)
            .expect("found above");
        let out = f(d, now)?;
        d.revision += 1;
        d.last_modifier_identity = change.identity.to_string();
        let token = d.conflict_token();
        self.write_namespace(record);
        self.reroute_waiting_tasks(change.namespace);
        Ok((out, token))
    }

    /// Whether open runs here are pinned to a version (it is draining until none are).
    fn pinned_runs_open(&self, namespace: &str, version: &str) -> bool {
        self.runs.iter().any(|(key, run)| {
            key.namespace == namespace
                && run.is_open()
                && run
                    .ms
                    .versioning
                    .as_ref()
                    .and_then(|v| v.pinned_version())
                    .is_some_and(|p| super::canonical_of(&p) == version)
        })
    }

    fn version_status(
        &self,
        namespace: &str,
        d: &WorkerDeploymentRecord,
        v: &DeploymentVersionRecord,
    ) -> (WorkerDeploymentVersionStatus, Option<VersionDrainageInfo>) {
        if d.current_build_id == v.build_id {
            return (WorkerDeploymentVersionStatus::Current, None);
        }
        if d.ramping && d.ramping_build_id == v.build_id {
            return (WorkerDeploymentVersionStatus::Ramping, None);
        }
        let Some(since) = v.last_deactivation_time else {
            return (WorkerDeploymentVersionStatus::Inactive, None);
        };
        let draining = self.pinned_runs_open(namespace, &canonical(&d.name, &v.build_id));
        let now = Some(clock::ts_from_millis(self.now()));
        let (status, drainage) = if draining {
            (
                WorkerDeploymentVersionStatus::Draining,
                VersionDrainageStatus::Draining,
            )
        } else {
            (
                WorkerDeploymentVersionStatus::Drained,
                VersionDrainageStatus::Drained,
            )
        };
        let info = VersionDrainageInfo {
            status: drainage as i32,
            last_changed_time: Some(since),
            last_checked_time: now,
        };
        (status, Some(info))
    }

    fn version_summary(
        &self,
        namespace: &str,
        d: &WorkerDeploymentRecord,
        v: &DeploymentVersionRecord,
    ) -> worker_deployment_info::WorkerDeploymentVersionSummary {
        let (status, drainage) = self.version_status(namespace, d, v);
        worker_deployment_info::WorkerDeploymentVersionSummary {
            version: canonical(&d.name, &v.build_id),
            status: status as i32,
            deployment_version: version_message(&d.name, &v.build_id),
            create_time: v.create_time,
            drainage_status: drainage.as_ref().map_or(0, |i| i.status),
            drainage_info: drainage,
            current_since_time: v.current_since_time,
            ramping_since_time: v.ramping_since_time,
            routing_update_time: v.routing_changed_time,
            first_activation_time: v.first_activation_time,
            last_current_time: v.last_current_time,
            last_deactivation_time: v.last_deactivation_time,
            ..Default::default()
        }
    }

    fn deployment_info(&self, namespace: &str, d: &WorkerDeploymentRecord) -> WorkerDeploymentInfo {
        WorkerDeploymentInfo {
            name: d.name.clone(),
            version_summaries: d
                .versions
                .iter()
                .map(|v| self.version_summary(namespace, d, v))
                .collect(),
            create_time: d.create_time,
            routing_config: Some(routing_config(d)),
            last_modifier_identity: d.last_modifier_identity.clone(),
            manager_identity: d.manager_identity.clone(),
            // A change is in force on every queue once its operation commits.
            routing_config_update_state: RoutingConfigUpdateState::Completed as i32,
        }
    }

    fn version_info(
        &self,
        namespace: &str,
        d: &WorkerDeploymentRecord,
        v: &DeploymentVersionRecord,
    ) -> WorkerDeploymentVersionInfo {
        let (status, drainage_info) = self.version_status(namespace, d, v);
        WorkerDeploymentVersionInfo {
            version: canonical(&d.name, &v.build_id),
            status: status as i32,
            deployment_version: version_message(&d.name, &v.build_id),
            deployment_name: d.name.clone(),
            create_time: v.create_time,
            routing_changed_time: v.routing_changed_time,
            current_since_time: v.current_since_time,
            ramping_since_time: v.ramping_since_time,
            first_activation_time: v.first_activation_time,
            last_current_time: v.last_current_time,
            last_deactivation_time: v.last_deactivation_time,
            ramp_percentage: if status == WorkerDeploymentVersionStatus::Ramping {
                d.ramping_percentage
            } else {
                0.0
            },
            task_queue_infos: v
                .task_queues
                .iter()
                .map(|q| worker_deployment_version_info::VersionTaskQueueInfo {
                    name: q.name.clone(),
                    r#type: q.kind,
                })
                .collect(),
            drainage_info,
            metadata: (!v.metadata.is_empty()).then(|| VersionMetadata {
                entries: v.metadata.clone().into_iter().collect(),
            }),
            last_modifier_identity: v.last_modifier_identity.clone(),
            ..Default::default()
        }
    }
}

impl WorkerDeploymentRecord {
    /// A version routing may name: one workers polled for, or (when the caller allows it) a
    /// version created now; unversioned workers ("") always qualify.
    fn ensure_version(
        &mut self,
        build_id: &str,
        allow_no_pollers: bool,
        now: Timestamp,
    ) -> Result<()> {
        if build_id.is_empty() || self.version(build_id).is_some() {
            return Ok(());
        }
        if !allow_no_pollers {
            return Err(Error::FailedPrecondition(format!(
                "Version {} has not been polled by any worker (pass allow_no_pollers to set it anyway).",
                canonical(&self.name, build_id)
            )));
        }
        self.versions.push(DeploymentVersionRecord {
            build_id: build_id.to_string(),
            create_time: Some(now),
            ..Default::default()
        });
        Ok(())
    }

    /// A version leaves the routing (it starts draining).
    fn mark_inactive(&mut self, build_id: &str, now: Timestamp) {
        if let Some(v) = self.version_mut(build_id) {
            v.current_since_time = None;
            v.ramping_since_time = None;
            v.routing_changed_time = Some(now);
            v.last_deactivation_time = Some(now);
        }
    }
}

/// Where a task queue of this deployment sends new work (DescribeTaskQueue).
pub fn task_queue_versioning(
    d: &WorkerDeploymentRecord,
) -> temporalio_protos::temporal::api::taskqueue::v1::TaskQueueVersioningInfo {
    let routing = routing_config(d);
    let changed = [
        d.current_changed_time,
        d.ramping_changed_time,
        d.ramping_percentage_changed_time,
    ]
    .into_iter()
    .flatten()
    .max_by_key(|t| (t.seconds, t.nanos));
    temporalio_protos::temporal::api::taskqueue::v1::TaskQueueVersioningInfo {
        current_deployment_version: routing.current_deployment_version,
        current_version: routing.current_version,
        ramping_deployment_version: routing.ramping_deployment_version,
        ramping_version: routing.ramping_version,
        ramping_version_percentage: routing.ramping_version_percentage,
        update_time: changed,
    }
}

fn routing_config(d: &WorkerDeploymentRecord) -> RoutingConfig {
    let ramping = if d.ramping {
        d.ramping_build_id.as_str()
    } else {
        ""
    };
    RoutingConfig {
        current_deployment_version: version_message(&d.name, &d.current_build_id),
        current_version: canonical_or_unversioned(&d.name, &d.current_build_id),
        ramping_deployment_version: version_message(&d.name, ramping),
        ramping_version: if d.ramping {
            canonical_or_unversioned(&d.name, ramping)
        } else {
            String::new()
        },
        ramping_version_percentage: if d.ramping { d.ramping_percentage } else { 0.0 },
        current_version_changed_time: d.current_changed_time,
        ramping_version_changed_time: d.ramping_changed_time,
        ramping_version_percentage_changed_time: d.ramping_percentage_changed_time,
        revision_number: d.revision,
    }
}

/// A version as a message (None for unversioned workers).
fn version_message(deployment: &str, build_id: &str) -> Option<WorkerDeploymentVersion> {
    (!build_id.is_empty()).then(|| WorkerDeploymentVersion {
        deployment_name: deployment.to_string(),
        build_id: build_id.to_string(),
    })
}

fn canonical_or_unversioned(deployment: &str, build_id: &str) -> String {
    if build_id.is_empty() {
        UNVERSIONED.to_string()
    } else {
        canonical(deployment, build_id)
    }
}

/// The build id a Set…Version request names: `build_id`, else the deprecated version string
/// (`deployment.build` or `__unversioned__`); "" means unversioned workers.
fn target_build_id(build_id: &str, version: &str, deployment: &str) -> Result<String> {
    if !build_id.is_empty() || version.is_empty() || version == UNVERSIONED {
        return Ok(build_id.to_string());
    }
    match parse_version(version) {
        Some(v) if v.deployment_name == deployment => Ok(v.build_id),
        _ => Err(Error::InvalidArgument(format!(
            "Version {version} is not a version of Worker Deployment {deployment}."
        ))),
    }
}

/// The version a request names, as a message or (deprecated) a string.
fn requested_version(
    message: &Option<WorkerDeploymentVersion>,
    string: &str,
) -> Result<WorkerDeploymentVersion> {
    match message {
        Some(v) if !v.build_id.is_empty() => Ok(v.clone()),
        _ => parse_version(string).ok_or_else(|| {
            Error::InvalidArgument(
                "A deployment version (deployment name and build id) is required.".into(),
            )
        }),
    }
}

fn check_manager(d: &WorkerDeploymentRecord, identity: &str) -> Result<()> {
    if !d.manager_identity.is_empty() && d.manager_identity != identity {
        return Err(Error::FailedPrecondition(format!(
            "Worker Deployment {} is managed by {}; only its manager may change it.",
            d.name, d.manager_identity
        )));
    }
    Ok(())
}

fn deployment_not_found(name: &str) -> Error {
    Error::NotFound(format!("Worker Deployment {name} not found."))
}

fn version_not_found(v: &WorkerDeploymentVersion) -> Error {
    Error::NotFound(format!(
        "Worker Deployment Version {} not found.",
        canonical(&v.deployment_name, &v.build_id)
    ))
}
