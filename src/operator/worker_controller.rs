//! Reconciles `Worker` resources into `apps/v1` Deployments and reports the task queue's
//! pollers and backlog from the engine.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::EnvVar;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::conditions::{self, Standing, State};
use super::context::{Context, MANAGER};
use super::crd::worker::{Poller, Worker, WorkerStatus};
use super::frontend::Frontend;
use super::reconcile::{Error, drain, retry_after_error};
use super::tenancy::{self, NAMESPACE_NOT_ALLOWED};
use super::worker_rollout::{self, BUILD_LABEL};
use crate::proto::api::enums::v1::{TaskQueueType, WorkerVersioningMode};
use crate::proto::api::taskqueue::v1::TaskQueue;
use crate::proto::api::workflowservice::v1::DescribeTaskQueueRequest;

/// Pollers and backlog live in the engine's matching layer, not in the change feed; they are
/// re-read this often.
const REFRESH: Duration = Duration::from_secs(5);
pub const WORKER_LABEL: &str = "durin.dev/worker";
const DEFAULT_BACKLOG_PER_REPLICA: i64 = 10;
/// With a rollout: true once the spec's version is the current one (`kubectl wait`).
const ROLLED_OUT: &str = "RolledOut";

pub async fn run(ctx: Arc<Context>, api: Api<Worker>, deployments: Api<Deployment>) {
    let controller = Controller::new(api, watcher::Config::default().any_semantic());
    let grants = tenancy::grant_dependents(controller.store(), durin_namespace);
    let (namespaces, config) = ctx.tenancy.namespace_watch(&ctx.client);
    let results = controller
        .owns(deployments, watcher::Config::default().labels(WORKER_LABEL))
        .watches(namespaces, config, grants)
        .run(reconcile, retry_after_error, ctx);
    drain("worker", results).await;
}

/// Which of a Worker's Deployments: its only one, or (with `spec.rollout`) one version's.
pub enum Pods<'a> {
    Unversioned,
    Version {
        deployment_name: &'a str,
        build_id: &'a str,
    },
}

/// A Deployment a Worker stands for, or why its template is unusable.
pub fn deployment(
    w: &Worker,
    engine_address: &str,
    replicas: Option<i32>,
    pods: &Pods,
) -> Result<Deployment, String> {
    let worker = w.name_any();
    let durin_ns = durin_namespace(w);
    let mut template = w.spec.template.clone();
    let mut selector = BTreeMap::from([(WORKER_LABEL.to_string(), worker.clone())]);
    let mut env = vec![
        ("TEMPORAL_ADDRESS", engine_address.to_string()),
        ("TEMPORAL_NAMESPACE", durin_ns),
        ("TEMPORAL_TASK_QUEUE", w.spec.task_queue.clone()),
    ];
    let name = match pods {
        Pods::Unversioned => worker.clone(),
        Pods::Version {
            deployment_name,
            build_id,
        } => {
            selector.insert(BUILD_LABEL.to_string(), build_id.to_string());
            env.push(("TEMPORAL_DEPLOYMENT_NAME", deployment_name.to_string()));
            env.push(("TEMPORAL_WORKER_BUILD_ID", build_id.to_string()));
            format!("{worker}-{build_id}")
        }
    };
    let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.extend(selector.clone());
    labels.insert("app.kubernetes.io/name".into(), "durin-worker".into());
    labels.insert("app.kubernetes.io/instance".into(), worker.clone());
    let pod = template
        .spec
        .as_mut()
        .ok_or_else(|| "spec.template.spec is required".to_string())?;
    if pod.containers.is_empty() {
        return Err("spec.template.spec.containers needs at least one container".into());
    }
    for c in &mut pod.containers {
        let vars = c.env.get_or_insert_with(Vec::new);
        for (k, v) in &env {
            // A value the user set explicitly wins.
            if !vars.iter().any(|e| e.name == *k) {
                vars.push(EnvVar {
                    name: k.to_string(),
                    value: Some(v.clone()),
                    value_from: None,
                });
            }
        }
    }
    let mut labels = BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "durin-worker".to_string(),
        ),
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGER.to_string(),
        ),
    ]);
    labels.extend(selector.clone());
    let owner = w
        .controller_owner_ref(&())
        .ok_or_else(|| "resource has no uid yet".to_string())?;
    Ok(Deployment {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: w.namespace(),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas,
            selector: LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            },
            template,
            ..Default::default()
        }),
        status: None,
    })
}

pub fn durin_namespace(w: &Worker) -> String {
    w.spec
        .namespace
        .clone()
        .or_else(|| w.namespace())
        .unwrap_or_else(|| "default".into())
}

/// Replicas for backlog-driven scaling: enough pods for the backlog, within the bounds.
pub fn autoscaled_replicas(w: &Worker, backlog: i64, current: Option<i32>) -> Option<i32> {
    let a = w.spec.autoscaling.as_ref()?;
    let per = a
        .target_backlog_per_replica
        .unwrap_or(DEFAULT_BACKLOG_PER_REPLICA)
        .max(1);
    let min = a.min_replicas.unwrap_or(1);
    let wanted = ((backlog + per - 1) / per) as i32;
    // Scale down one step at a time to avoid flapping on a momentarily empty queue.
    let wanted = match current {
        Some(c) if wanted < c => c - 1,
        _ => wanted,
    };
    Some(wanted.clamp(min, a.max_replicas.max(min)))
}

pub struct QueueState {
    pub pollers: Vec<Poller>,
    pub backlog: i64,
}

async fn queue_state(ctx: &Context, w: &Worker) -> Result<QueueState, tonic::Status> {
    let namespace = durin_namespace(w);
    let mut pollers = Vec::new();
    let mut backlog = 0;
    for (kind, label) in [
        (TaskQueueType::Workflow, "workflow"),
        (TaskQueueType::Activity, "activity"),
    ] {
        let resp = ctx
            .frontend
            .describe_task_queue(DescribeTaskQueueRequest {
                namespace: namespace.clone(),
                task_queue: Some(TaskQueue {
                    name: w.spec.task_queue.clone(),
                    ..Default::default()
                }),
                task_queue_type: kind as i32,
                ..Default::default()
            })
            .await?;
        backlog += resp.stats.map(|s| s.approximate_backlog_count).unwrap_or(0);
        pollers.extend(resp.pollers.into_iter().map(|p| {
            Poller {
                identity: p.identity,
                last_access_time: p.last_access_time.as_ref().map(super::translate::rfc3339),
                kind: label.into(),
                build_id: p
                    .deployment_options
                    .filter(|o| o.worker_versioning_mode == WorkerVersioningMode::Versioned as i32)
                    .map(|o| o.build_id),
            }
        }));
    }
    Ok(QueueState { pollers, backlog })
}

async fn reconcile(w: Arc<Worker>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = w.namespace().unwrap_or_else(|| "default".into());
    let api: Api<Worker> = Api::namespaced(ctx.client.clone(), &ns);
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let generation = w.meta().generation;
    let old = w.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let now = Time(k8s_openapi::jiff::Timestamp::now());

    // No Deployment points workers at a Durin namespace this one may not use, and nothing of
    // the engine's (pollers, backlog) is copied into status.
    if let Some(message) = ctx.namespace_refusal(&ns, &durin_namespace(&w)).await? {
        ctx.refuse(
            &*w,
            &mut status.conditions,
            NAMESPACE_NOT_ALLOWED,
            message,
            generation,
            &now,
        )
        .await;
        status.observed_generation = generation;
        if let Some(refused) = conditions::refusal(&status.conditions) {
            conditions::set_standing(&mut status.conditions, &refused, generation, &now);
        }
        if status != old {
            write_status(&api, &w, &status).await?;
        }
        return Ok(Action::await_change());
    }
    ctx.ensure_namespace(&durin_namespace(&w)).await?;
    let queue = queue_state(&ctx, &w).await?;
    let now_ms = now.0.as_millisecond();
    let applied = match &w.spec.rollout {
        Some(rollout) => {
            worker_rollout::reconcile(&ctx, &w, rollout, &queue, &mut status.rollout, now_ms)
                .await?
        }
        None => {
            if let Some(previous) = status.rollout.take() {
                status.rollout =
                    worker_rollout::unversion(&ctx, &w, previous, &queue.pollers, now_ms).await?;
            }
            apply_unversioned(&ctx, &w, &deployments, queue.backlog).await?
        }
    };
    let mut standing = None;
    let mut recheck = REFRESH;
    match applied {
        Ok(applied) => {
            status.replicas = Some(applied.replicas);
            status.ready_replicas = Some(applied.ready_replicas);
            status.deployment = Some(applied.deployment.clone());
            status.selector = Some(format!("{WORKER_LABEL}={}", w.name_any()));
            if let Some(r) = &applied.rolled_out {
                conditions::set(
                    &mut status.conditions,
                    ROLLED_OUT,
                    r.done,
                    r.reason,
                    &r.message,
                    generation,
                    &now,
                );
            } else {
                status.conditions.retain(|c| c.type_ != ROLLED_OUT);
            }
            standing = Some(applied.standing);
            recheck = applied.recheck.map_or(REFRESH, |r| r.min(REFRESH));
            let accepted_before = conditions::is_true(&old.conditions, "Accepted");
            conditions::set(
                &mut status.conditions,
                "Accepted",
                true,
                "DeploymentApplied",
                "",
                generation,
                &now,
            );
            if !accepted_before {
                let message = format!(
                    "deployment {} polls task queue {}",
                    applied.deployment, w.spec.task_queue
                );
                ctx.event(&*w, EventType::Normal, "DeploymentApplied", message)
                    .await;
            }
        }
        Err(message) => {
            ctx.refuse(
                &*w,
                &mut status.conditions,
                "InvalidSpec",
                message,
                generation,
                &now,
            )
            .await;
        }
    }
    let ready = status.ready_replicas.unwrap_or(0);
    conditions::set(
        &mut status.conditions,
        "Available",
        ready > 0,
        if ready > 0 {
            "PodsReady"
        } else {
            "NoReadyPods"
        },
        "",
        generation,
        &now,
    );
    let polling = !queue.pollers.is_empty();
    conditions::set(
        &mut status.conditions,
        "Polling",
        polling,
        if polling { "PollersSeen" } else { "NoPollers" },
        "",
        generation,
        &now,
    );
    let standing = conditions::refusal(&status.conditions)
        .or(standing)
        .unwrap_or_else(|| Standing::new(State::Progressing, "Applying", ""));
    conditions::set_standing(&mut status.conditions, &standing, generation, &now);
    status.poller_count = Some(queue.pollers.len() as i32);
    status.pollers = queue.pollers;
    status.backlog = Some(queue.backlog);
    status.observed_generation = generation;
    if status != old {
        write_status(&api, &w, &status).await?;
    }
    Ok(Action::requeue(recheck))
}

/// What applying a Worker's Deployments came to, for its status.
pub struct Applied {
    pub replicas: i32,
    pub ready_replicas: i32,
    /// The Deployment running the spec's pod template.
    pub deployment: String,
    pub standing: Standing,
    /// With a rollout: the `RolledOut` condition.
    pub rolled_out: Option<RolledOut>,
    /// Look again this soon (a rollout step is due), if sooner than the usual refresh.
    pub recheck: Option<Duration>,
}

/// Whether the spec's version is the current one, and why not yet.
pub struct RolledOut {
    pub done: bool,
    pub reason: &'static str,
    pub message: String,
}

impl RolledOut {
    pub fn not_yet(reason: &'static str, message: String) -> Self {
        RolledOut {
            done: false,
            reason,
            message,
        }
    }
}

/// The replicas a Worker's Deployment `name` should have: backlog-driven with autoscaling
/// (from what it has now), else the spec's.
pub async fn wanted_replicas(
    w: &Worker,
    backlog: i64,
    deployments: &Api<Deployment>,
    name: &str,
) -> Result<Option<i32>, Error> {
    let existing = deployments.get_opt(name).await?;
    let current = existing
        .as_ref()
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.replicas);
    Ok(autoscaled_replicas(w, backlog, current).or(w.spec.replicas))
}

/// A Worker without a rollout: one Deployment named after it.
async fn apply_unversioned(
    ctx: &Context,
    w: &Worker,
    deployments: &Api<Deployment>,
    backlog: i64,
) -> Result<Result<Applied, String>, Error> {
    let replicas = wanted_replicas(w, backlog, deployments, &w.name_any()).await?;
    let desired = match deployment(w, &ctx.engine_address, replicas, &Pods::Unversioned) {
        Ok(d) => d,
        Err(message) => return Ok(Err(message)),
    };
    let applied = deployments
        .patch(
            &w.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await?;
    let ds = applied.status.clone().unwrap_or_default();
    Ok(Ok(Applied {
        replicas: ds.replicas.unwrap_or(0),
        ready_replicas: ds.ready_replicas.unwrap_or(0),
        deployment: w.name_any(),
        standing: rollout_standing(&applied),
        rolled_out: None,
        recheck: None,
    }))
}

/// Once a rollout's first version is current, the Deployment the Worker ran before it had a
/// rollout (unversioned workers) is no longer needed.
pub async fn retire_unversioned(
    ctx: &Context,
    w: &Worker,
    deployments: &Api<Deployment>,
) -> Result<(), Error> {
    let Some(old) = deployments.get_opt(&w.name_any()).await? else {
        return Ok(());
    };
    if old.labels().contains_key(BUILD_LABEL) {
        return Ok(());
    }
    deployments
        .delete(&w.name_any(), &kube::api::DeleteParams::background())
        .await?;
    let message = format!(
        "deployment {} (unversioned workers) is deleted",
        w.name_any()
    );
    ctx.event(w, EventType::Normal, "UnversionedRetired", message)
        .await;
    Ok(())
}

/// Where the worker pods stand, judged as kstatus judges a Deployment: ready once the
/// Deployment controller saw the latest template and every wanted pod is updated and available.
pub fn rollout_standing(d: &Deployment) -> Standing {
    let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let seen = d.metadata.generation;
    let ds = d.status.clone().unwrap_or_default();
    if ds.observed_generation < seen {
        return Standing::new(
            State::Progressing,
            "RolloutPending",
            "the Deployment controller has not seen the latest template yet",
        );
    }
    let (updated, available) = (
        ds.updated_replicas.unwrap_or(0),
        ds.available_replicas.unwrap_or(0),
    );
    let message = format!("{available} of {wanted} pods available, {updated} updated");
    if updated >= wanted && available >= wanted && ds.replicas.unwrap_or(0) <= wanted {
        Standing::new(State::Ready, "PodsAvailable", &message)
    } else {
        Standing::new(State::Progressing, "RollingOut", &message)
    }
}

async fn write_status(api: &Api<Worker>, w: &Worker, status: &WorkerStatus) -> Result<(), Error> {
    let patch = serde_json::json!({
        "apiVersion": "durin.dev/v1alpha1",
        "kind": "Worker",
        "status": status,
    });
    api.patch_status(
        &w.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// The value a Deployment's first container gets for `name`.
#[cfg(test)]
pub(crate) fn env_value(d: &Deployment, name: &str) -> Option<String> {
    let pod = d.spec.as_ref()?.template.spec.as_ref()?;
    let env = pod.containers.first()?.env.as_ref()?;
    env.iter().find(|e| e.name == name)?.value.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::crd::worker::{Autoscaling, WorkerSpec};

    fn worker(autoscaling: Option<Autoscaling>) -> Worker {
        let mut w = Worker::new(
            "greeter",
            WorkerSpec {
                task_queue: "greetings".into(),
                namespace: None,
                replicas: Some(2),
                autoscaling,
                rollout: None,
                template: serde_json::from_value(serde_json::json!({
                    "spec": {"containers": [{"name": "worker", "image": "example/worker:1",
                        "env": [{"name": "TEMPORAL_NAMESPACE", "value": "mine"}]}]}
                }))
                .unwrap(),
            },
        );
        w.metadata.namespace = Some("team-a".into());
        w.metadata.uid = Some("uid-1".into());
        w
    }

    #[test]
    fn deployment_carries_engine_environment_and_owner() {
        let d = deployment(
            &worker(None),
            "durin.durin-system:7233",
            Some(2),
            &Pods::Unversioned,
        )
        .unwrap();
        let get = |k: &str| env_value(&d, k);
        let spec = d.spec.clone().unwrap();
        assert_eq!(spec.replicas, Some(2));
        assert_eq!(
            get("TEMPORAL_ADDRESS").as_deref(),
            Some("durin.durin-system:7233")
        );
        assert_eq!(
            get("TEMPORAL_NAMESPACE").as_deref(),
            Some("mine"),
            "user value wins"
        );
        assert_eq!(get("TEMPORAL_TASK_QUEUE").as_deref(), Some("greetings"));
        let owner = &d.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Worker", Some(true))
        );
        assert_eq!(spec.selector.match_labels.unwrap()[WORKER_LABEL], "greeter");
    }

    #[test]
    fn bad_template_is_reported() {
        let mut w = worker(None);
        w.spec.template.spec.as_mut().unwrap().containers.clear();
        assert!(
            deployment(&w, "x:1", None, &Pods::Unversioned)
                .unwrap_err()
                .contains("container")
        );
    }

    #[test]
    fn autoscaling_follows_backlog_within_bounds() {
        let w = worker(Some(Autoscaling {
            min_replicas: Some(1),
            max_replicas: 5,
            target_backlog_per_replica: Some(10),
        }));
        assert_eq!(autoscaled_replicas(&w, 0, None), Some(1));
        assert_eq!(autoscaled_replicas(&w, 25, Some(1)), Some(3));
        assert_eq!(autoscaled_replicas(&w, 1000, Some(3)), Some(5));
        assert_eq!(
            autoscaled_replicas(&w, 0, Some(5)),
            Some(4),
            "one step down at a time"
        );
        assert_eq!(autoscaled_replicas(&worker(None), 100, Some(2)), None);
    }

    #[test]
    fn ready_once_every_wanted_pod_is_updated_and_available() {
        let d = deployment(&worker(None), "x:1", Some(2), &Pods::Unversioned).unwrap();
        let with = |generation, observed, updated, available, replicas| {
            let mut d = d.clone();
            d.metadata.generation = Some(generation);
            d.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus {
                observed_generation: Some(observed),
                updated_replicas: Some(updated),
                available_replicas: Some(available),
                replicas: Some(replicas),
                ..Default::default()
            });
            rollout_standing(&d).state
        };
        assert_eq!(with(2, 2, 2, 2, 2), State::Ready);
        assert_eq!(with(3, 2, 2, 2, 2), State::Progressing, "template not seen");
        assert_eq!(with(2, 2, 1, 2, 3), State::Progressing, "old pods remain");
        assert_eq!(
            with(2, 2, 2, 1, 2),
            State::Progressing,
            "a pod not available"
        );
        assert_eq!(
            rollout_standing(&d).state,
            State::Progressing,
            "no status yet"
        );
    }
}
