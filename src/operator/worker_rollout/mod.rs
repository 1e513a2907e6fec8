//! A `Worker` with `spec.rollout`: each pod template is a version of the worker deployment
//! `<Kubernetes namespace>/<Worker name>` and runs as its own Deployment. The controller
//! waits for a new version's workers to poll, ramps it and makes it current through the
//! worker-versioning RPCs (in process), keeps older versions running while workflows are
//! pinned to them, and scales a drained version down, then deletes it.

mod engine;
pub mod plan;
mod sunset;
mod versions;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::EventType;

use self::plan::{GateState, Move, Progress};
use super::conditions::{Standing, State};
use super::context::{Context, MANAGER};
use super::crd::worker::{Poller, Rollout, RolloutStatus, Worker};
use super::reconcile::Error;
use super::worker_controller::{self, Applied, Pods, QueueState, RolledOut};
use crate::stable_hash::fnv1a;

/// Pod label (and Deployment selector) naming a version's build id.
pub const BUILD_LABEL: &str = "durin.dev/build-id";

/// The worker deployment a Worker's versions belong to. Temporal writes a version as
/// `deployment.build`, so the name cannot hold a dot.
pub fn deployment_name(w: &Worker) -> Result<String, String> {
    let name = w.name_any();
    if name.contains('.') {
        return Err(format!(
            "a Worker with spec.rollout needs a name without dots ({name:?}): its versions are \
             written <deployment>.<build id>"
        ));
    }
    Ok(format!("{}/{name}", w.namespace().unwrap_or_default()))
}

/// The build id of the spec's pod template: as set, else the first container's image tag
/// and a hash of the whole template, so any change of the template is a new version.
pub fn build_id(w: &Worker, rollout: &Rollout) -> String {
    if let Some(b) = &rollout.build_id {
        return b.clone();
    }
    let template = serde_json::to_vec(&w.spec.template).unwrap_or_default();
    let hash = format!("{:08x}", fnv1a(template) as u32);
    let image = w
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|p| p.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let tag = image_tag(&image);
    if tag.is_empty() {
        hash
    } else {
        format!("{tag}-{hash}")
    }
}

/// An image's tag made fit for a label value and a Deployment name (lowercase letters,
/// digits, `.` and `-`, at most 40 characters, starting and ending with a letter or digit).
fn image_tag(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or("");
    let last = without_digest.rsplit('/').next().unwrap_or("");
    let tag = last.split_once(':').map_or("", |(_, t)| t);
    let cleaned: String = tag
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// One reconcile of a versioned Worker. `Ok(Err(message))` is a spec the controller cannot
/// use (a condition, not a retry).
pub async fn reconcile(
    ctx: &Context,
    w: &Worker,
    rollout: &Rollout,
    queue: &QueueState,
    status: &mut Option<RolloutStatus>,
    now_ms: i64,
) -> Result<Result<Applied, String>, Error> {
    let ns = w.namespace().unwrap_or_default();
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), &ns);
    let target = match apply_target(ctx, w, rollout, &deployments, queue.backlog).await? {
        Ok(t) => t,
        Err(message) => return Ok(Err(message)),
    };
    let durin_ns = worker_controller::durin_namespace(w);
    let mut deployment = engine::Deployment::describe(ctx, &durin_ns, &target.name).await?;
    deployment.take_management(ctx, rollout).await?;
    let previous = status.take();
    let advanced = match advance(
        ctx,
        w,
        rollout,
        &target,
        &mut deployment,
        previous.as_ref(),
        now_ms,
    )
    .await?
    {
        Ok(a) => a,
        Err(message) => return Ok(Err(message)),
    };
    let census = versions::Census {
        scope: sunset::Scope {
            ctx,
            w,
            api: &deployments,
        },
        engine: &deployment,
        previous: previous.as_ref(),
        pollers: &queue.pollers,
        sunset: sunset::Sunset::of(rollout),
    };
    let (versions, retire_at) = census
        .take(Some(&target.build_id), target.replicas, now_ms)
        .await?;
    let is_current = deployment.view.current.as_deref() == Some(target.build_id.as_str());
    let was_current = previous
        .as_ref()
        .and_then(|p| p.current_build_id.as_deref())
        == Some(target.build_id.as_str());
    if is_current && !was_current {
        // Once, as the target becomes current (not a read of the Deployment every pass).
        worker_controller::retire_unversioned(ctx, w, &deployments).await?;
    }
    let (replicas, ready_replicas) = versions.iter().fold((0, 0), |(r, ready), v| {
        (r + v.replicas, ready + v.ready_replicas)
    });
    let standing = if is_current {
        worker_controller::rollout_standing(&target.deployment)
    } else {
        let RolledOut {
            reason, message, ..
        } = &advanced.rolled_out;
        Standing::new(State::Progressing, reason, message)
    };
    let view = &deployment.view;
    *status = Some(RolloutStatus {
        deployment_name: target.name.clone(),
        target_build_id: target.build_id.clone(),
        current_build_id: view.current.clone(),
        ramping_build_id: view.ramping.as_ref().map(|(b, _)| b.clone()),
        ramp_percentage: view.ramping.as_ref().map(|(_, p)| *p),
        step: advanced.step.as_ref().map(|p| p.step),
        step_started_at: advanced
            .step
            .as_ref()
            .map(|p| sunset::rfc3339_millis(p.started_ms)),
        gate_workflow_id: advanced.gate.as_ref().map(|(id, _)| id.clone()),
        gate: advanced.gate.as_ref().map(|(_, s)| s.to_string()),
        versions,
    });
    Ok(Ok(Applied {
        replicas,
        ready_replicas,
        deployment: target.deployment.name_any(),
        standing,
        rolled_out: Some(advanced.rolled_out),
        recheck: earliest(advanced.recheck, retire_at),
    }))
}

/// The version the spec's pod template makes, and its applied Deployment.
struct Target {
    /// The worker deployment's name.
    name: String,
    build_id: String,
    deployment: Deployment,
    replicas: Option<i32>,
}

async fn apply_target(
    ctx: &Context,
    w: &Worker,
    rollout: &Rollout,
    deployments: &Api<Deployment>,
    backlog: i64,
) -> Result<Result<Target, String>, Error> {
    let name = match deployment_name(w) {
        Ok(n) => n,
        Err(message) => return Ok(Err(message)),
    };
    let build_id = build_id(w, rollout);
    let pods = Pods::Version {
        deployment_name: &name,
        build_id: &build_id,
    };
    let pods_name = format!("{}-{build_id}", w.name_any());
    let replicas = worker_controller::wanted_replicas(w, backlog, deployments, &pods_name).await?;
    let desired = match worker_controller::deployment(w, &ctx.engine_address, replicas, &pods) {
        Ok(d) => d,
        Err(message) => return Ok(Err(message)),
    };
    let deployment = deployments
        .patch(
            &pods_name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await?;
    Ok(Ok(Target {
        name,
        build_id,
        deployment,
        replicas,
    }))
}

/// What one rollout step came to.
struct Advanced {
    /// The Progressive step the target is on.
    step: Option<Progress>,
    /// The target's gate workflow and how it stands.
    gate: Option<(String, &'static str)>,
    rolled_out: RolledOut,
    recheck: Option<Duration>,
}

/// Takes the rollout's next step, if one is due, and describes the deployment again after it.
async fn advance(
    ctx: &Context,
    w: &Worker,
    rollout: &Rollout,
    target: &Target,
    deployment: &mut engine::Deployment,
    previous: Option<&RolloutStatus>,
    now_ms: i64,
) -> Result<Result<Advanced, String>, Error> {
    let build = target.build_id.as_str();
    let progress = previous.and_then(progress_of);
    let gate = deployment.gate_state(ctx, rollout, build).await?;
    let plan = match plan::next(
        rollout,
        build,
        &deployment.view,
        progress.as_ref(),
        &gate,
        now_ms,
    ) {
        Ok(p) => p,
        Err(invalid) => return Ok(Err(invalid.0)),
    };
    let gate_id = deployment.gate_workflow_id(build);
    let mut advanced = Advanced {
        step: progress.filter(|p| p.build_id == build && matches!(plan.step, Move::Hold { .. })),
        gate: gate_standing(&gate).map(|s| (gate_id.clone(), s)),
        rolled_out: rolled_out(&plan.step, build, &deployment.view),
        recheck: plan.recheck,
    };
    if let (Move::StartGate, Some(spec)) = (&plan.step, &rollout.gate) {
        deployment
            .start_gate(ctx, spec, &w.spec.task_queue, build)
            .await?;
        let message = format!(
            "gate workflow {gate_id} ({}) runs on build {build}",
            spec.workflow_type
        );
        ctx.event(w, EventType::Normal, "GateStarted", message.clone())
            .await;
        advanced.gate = Some((gate_id, "Running"));
        advanced.rolled_out = RolledOut::not_yet("GateRunning", message);
        advanced.recheck = Some(Duration::from_secs(1));
        return Ok(Ok(advanced));
    }
    let failed_before = previous.is_some_and(|p| p.gate.as_deref() == Some("Failed"));
    if let (GateState::Failed(_), false) = (&gate, failed_before) {
        let message = advanced.rolled_out.message.clone();
        ctx.event(w, EventType::Warning, "GateFailed", message)
            .await;
    }
    match deployment.carry_out(ctx, &plan.step, build).await? {
        None => {}
        Some(moved) if moved.warning => {
            ctx.event(w, EventType::Warning, moved.reason, moved.message.clone())
                .await;
            advanced.rolled_out = RolledOut::not_yet(moved.reason, moved.message);
        }
        Some(moved) => {
            ctx.event(w, EventType::Normal, moved.reason, moved.message)
                .await;
            if let Move::Ramp { step, .. } = plan.step {
                advanced.step = Some(Progress {
                    build_id: build.to_string(),
                    step,
                    started_ms: now_ms,
                });
            }
            *deployment =
                engine::Deployment::describe(ctx, deployment.namespace(), &target.name).await?;
            advanced.rolled_out = rolled_out(&Move::Done, build, &deployment.view);
            // The next step (or the sunset of the version just replaced) is due soon.
            advanced.recheck = Some(Duration::from_secs(1));
        }
    }
    Ok(Ok(advanced))
}

/// `spec.rollout` was removed: unversioned workers (the Worker's plain Deployment) take the
/// work again. The worker deployment routes to them, and the versions are retired as they
/// drain (with the default sunset delays); their status stays until the last one is gone.
pub async fn unversion(
    ctx: &Context,
    w: &Worker,
    previous: RolloutStatus,
    pollers: &[Poller],
    now_ms: i64,
) -> Result<Option<RolloutStatus>, Error> {
    let durin_ns = worker_controller::durin_namespace(w);
    let name = previous.deployment_name.clone();
    let mut deployment = engine::Deployment::describe(ctx, &durin_ns, &name).await?;
    if deployment.view.current.is_some() || deployment.view.ramping.is_some() {
        deployment.release(ctx).await?;
        let message = format!("worker deployment {name} routes to unversioned workers again");
        ctx.event(w, EventType::Normal, "RolloutRemoved", message)
            .await;
        deployment = engine::Deployment::describe(ctx, &durin_ns, &name).await?;
    }
    let deployments: Api<Deployment> =
        Api::namespaced(ctx.client.clone(), &w.namespace().unwrap_or_default());
    let census = versions::Census {
        scope: sunset::Scope {
            ctx,
            w,
            api: &deployments,
        },
        engine: &deployment,
        previous: Some(&previous),
        pollers,
        sunset: sunset::Sunset::of(&Rollout::default()),
    };
    let (versions, _) = census.take(None, None, now_ms).await?;
    let versions: Vec<_> = versions
        .into_iter()
        .filter(|v| v.deployment.is_some())
        .collect();
    Ok((!versions.is_empty()).then(|| RolloutStatus {
        deployment_name: name,
        versions,
        ..Default::default()
    }))
}

fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        _ => a.or(b),
    }
}

/// How a gate stands, for status (none without a gate or when it does not matter).
fn gate_standing(gate: &GateState) -> Option<&'static str> {
    match gate {
        GateState::None => None,
        GateState::NotStarted => Some("NotStarted"),
        GateState::Running => Some("Running"),
        GateState::Passed => Some("Passed"),
        GateState::Failed(_) => Some("Failed"),
    }
}

fn progress_of(status: &RolloutStatus) -> Option<Progress> {
    Some(Progress {
        build_id: status.target_build_id.clone(),
        step: status.step?,
        started_ms: sunset::parse_millis(status.step_started_at.as_deref()?)?,
    })
}

/// The `RolledOut` condition: the target is current, or why not yet.
fn rolled_out(step: &Move, target: &str, view: &plan::EngineView) -> RolledOut {
    match step {
        _ if view.current.as_deref() == Some(target) => RolledOut {
            done: true,
            reason: "VersionCurrent",
            message: format!("build {target} is the current version"),
        },
        Move::Hold { reason, message } => RolledOut::not_yet(reason, message.clone()),
        _ => RolledOut::not_yet("RollingOut", format!("build {target} is being rolled out")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::crd::worker::WorkerSpec;

    fn worker(name: &str, image: &str) -> Worker {
        let mut w = Worker::new(
            name,
            WorkerSpec {
                task_queue: "orders".into(),
                namespace: None,
                replicas: Some(1),
                autoscaling: None,
                rollout: Some(Rollout::default()),
                template: serde_json::from_value(serde_json::json!({
                    "spec": {"containers": [{"name": "worker", "image": image}]}
                }))
                .unwrap(),
            },
        );
        w.metadata.namespace = Some("shop".into());
        w.metadata.uid = Some("uid-1".into());
        w
    }

    #[test]
    fn the_build_id_follows_the_image_tag_and_the_whole_template() {
        let rollout = Rollout::default();
        let v1 = build_id(
            &worker("orders", "registry:5000/team/orders:V1.2_rc"),
            &rollout,
        );
        assert!(v1.starts_with("v1.2-rc-"), "{v1}");
        assert_eq!(v1.len(), "v1.2-rc-".len() + 8);
        let same = build_id(
            &worker("orders", "registry:5000/team/orders:V1.2_rc"),
            &rollout,
        );
        assert_eq!(v1, same, "stable for one template");
        let mut changed = worker("orders", "registry:5000/team/orders:V1.2_rc");
        changed.spec.template.spec.as_mut().unwrap().containers[0].args = Some(vec!["-v".into()]);
        assert_ne!(
            build_id(&changed, &rollout),
            v1,
            "any template change is a new version"
        );
        let untagged = build_id(&worker("orders", "orders@sha256:abc"), &rollout);
        assert_eq!(untagged.len(), 8, "{untagged}");
        let set = Rollout {
            build_id: Some("release-7".into()),
            ..Default::default()
        };
        assert_eq!(build_id(&worker("orders", "x:1"), &set), "release-7");
    }

    #[test]
    fn a_version_runs_as_its_own_deployment_told_its_version() {
        let w = worker("orders", "orders:v1");
        let name = deployment_name(&w).unwrap();
        assert_eq!(name, "shop/orders");
        let pods = Pods::Version {
            deployment_name: &name,
            build_id: "v1-0a1b2c3d",
        };
        let d = worker_controller::deployment(&w, "durin:7233", Some(1), &pods).unwrap();
        assert_eq!(d.name_any(), "orders-v1-0a1b2c3d");
        let get = |k: &str| worker_controller::env_value(&d, k);
        let selector = d.spec.clone().unwrap().selector.match_labels.unwrap();
        assert_eq!(selector[BUILD_LABEL], "v1-0a1b2c3d");
        assert_eq!(
            get("TEMPORAL_DEPLOYMENT_NAME").as_deref(),
            Some("shop/orders")
        );
        assert_eq!(
            get("TEMPORAL_WORKER_BUILD_ID").as_deref(),
            Some("v1-0a1b2c3d")
        );
        assert!(
            deployment_name(&worker("orders.eu", "x:1")).is_err(),
            "dots are refused"
        );
    }
}
