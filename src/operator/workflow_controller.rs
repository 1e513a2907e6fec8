//! Reconciles `Workflow` resources: start once, signals once each, desired state, deletion
//! policy through a finalizer, and status that follows the engine.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, Event as Finalize};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::conditions;
use super::context::{Context, MANAGER};
use super::crd::workflow::{DeletionPolicy, DesiredState, Workflow, WorkflowPhase, WorkflowStatus};
use super::reconcile::{Error, drain, retry_after_error};
use super::tenancy::{self, NAMESPACE_NOT_ALLOWED};
use super::workflow_actions::{self as actions, SignalOutcome, StartError, Target};
use super::workflow_status;

pub const FINALIZER: &str = "durin.dev/cleanup";
/// Set to "true" to let a deletion proceed without touching the engine (escape hatch when
/// the engine is gone for good).
pub const SKIP_CLEANUP_ANNOTATION: &str = "durin.dev/skip-cleanup";
/// A running workflow is re-read at least this often even without engine notifications.
const RESYNC: Duration = Duration::from_secs(300);
/// The same with several engine replicas, where most changes happen elsewhere.
const CLUSTER_RESYNC: Duration = Duration::from_secs(2);

pub async fn run(
    ctx: Arc<Context>,
    woken: mpsc::UnboundedReceiver<ObjectRef<Workflow>>,
    api: Api<Workflow>,
) {
    let controller = Controller::new(api, watcher::Config::default().any_semantic());
    let grants = tenancy::grant_dependents(controller.store(), |wf| Target::of(wf).namespace);
    let (namespaces, config) = ctx.tenancy.namespace_watch(&ctx.client);
    let results = controller
        .watches(namespaces, config, grants)
        .reconcile_on(UnboundedReceiverStream::new(woken))
        .run(reconcile, retry_after_error, ctx);
    drain("workflow", results).await;
}

async fn reconcile(wf: Arc<Workflow>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = kube_namespace(&wf);
    let api: Api<Workflow> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer::finalizer(&api, FINALIZER, wf, |event| async {
        match event {
            Finalize::Apply(wf) => apply(&wf, &api, &ctx).await,
            Finalize::Cleanup(wf) => cleanup(&wf, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

fn now() -> (Time, i64) {
    let t = k8s_openapi::jiff::Timestamp::now();
    (Time(t), t.as_millisecond())
}

fn kube_namespace(wf: &Workflow) -> String {
    wf.namespace().unwrap_or_else(|| "default".into())
}

async fn apply(wf: &Workflow, api: &Api<Workflow>, ctx: &Context) -> Result<Action, Error> {
    let target = Target::of(wf);
    let refusal = ctx
        .namespace_refusal(&kube_namespace(wf), &target.namespace)
        .await?;
    if refusal.is_none() {
        ctx.track_workflow(target.clone(), ObjectRef::from_obj(wf));
    }
    let uid = wf.uid().unwrap_or_default();
    let generation = wf.meta().generation;
    // The watch cache may not show our last status write yet; acting on a stale copy could
    // undo it (a signal marked delivered, a recorded run id).
    let old = api
        .get_status(&wf.name_any())
        .await?
        .status
        .unwrap_or_default();
    let mut status = old.clone();
    status.namespace = Some(target.namespace.clone());
    status.workflow_id = Some(target.workflow_id.clone());
    let (now, now_ms) = now();
    // Nothing happens in the engine for a Durin namespace this one may not use, and nothing
    // of the engine's is copied into status.
    if let Some(message) = refusal {
        return refused(wf, api, ctx, &old, status, NAMESPACE_NOT_ALLOWED, message).await;
    }

    if status.first_run_id.is_none() {
        match actions::start(&ctx.frontend, &target, &uid, wf).await {
            Ok(run_id) => {
                status.run_id = Some(run_id.clone());
                status.first_run_id = Some(run_id.clone());
                status.phase = Some(WorkflowPhase::Running);
                ctx.event(
                    wf,
                    EventType::Normal,
                    "Started",
                    format!(
                        "started workflow {} (run {run_id}) in namespace {}",
                        target.workflow_id, target.namespace
                    ),
                )
                .await;
            }
            Err(StartError::Transient(s)) => return Err(Error::Engine(s)),
            Err(e) => {
                let reason = match e {
                    StartError::Invalid(_) => "InvalidSpec",
                    _ => "StartRejected",
                };
                return refused(wf, api, ctx, &old, status, reason, e.to_string()).await;
            }
        }
    }
    ctx.ensure_namespace(&target.namespace).await?;

    let finished = status.phase.is_some_and(WorkflowPhase::is_final);
    for entry in &wf.spec.signals {
        if finished || status.signals_delivered.contains(&entry.id) {
            continue;
        }
        match actions::signal(&ctx.frontend, &target, &uid, entry).await? {
            SignalOutcome::Delivered => {
                status.signals_delivered.push(entry.id.clone());
                ctx.event(
                    wf,
                    EventType::Normal,
                    "SignalDelivered",
                    format!("signal {} ({}) delivered", entry.id, entry.name),
                )
                .await;
            }
            SignalOutcome::Undeliverable(why) => {
                ctx.event(
                    wf,
                    EventType::Warning,
                    "SignalUndeliverable",
                    format!(
                        "signal {} ({}) cannot be delivered: {why}",
                        entry.id, entry.name
                    ),
                )
                .await;
                break;
            }
        }
    }

    let desired = wf.spec.desired_state.unwrap_or_default();
    if desired != DesiredState::Running && status.applied_state != Some(desired) {
        let reason = wf.spec.reason.clone().unwrap_or_else(|| {
            format!(
                "desiredState set to {desired:?} on Workflow {}",
                wf.name_any()
            )
        });
        if !finished {
            actions::apply_state(&ctx.frontend, &target, &uid, desired, &reason).await?;
            ctx.event(
                wf,
                EventType::Normal,
                "DesiredStateApplied",
                format!("{desired:?}: {reason}"),
            )
            .await;
        }
        status.applied_state = Some(desired);
    }

    // Changes the engine reports from here on are covered by the status written below.
    let since_change = ctx.take_unreflected(&target);
    let observed = workflow_status::observe(&ctx.frontend, &target, &status).await?;
    if let Some(obs) = &observed {
        status = workflow_status::fold(status, obs, generation, &now, now_ms);
    }
    if old.phase != status.phase
        && let Some(phase) = status.phase
        && phase.is_final()
    {
        let kind = if phase == WorkflowPhase::Completed {
            EventType::Normal
        } else {
            EventType::Warning
        };
        let note = status
            .failure
            .as_ref()
            .map(|f| f.message.clone())
            .unwrap_or_else(|| format!("workflow {phase:?}"));
        ctx.event(wf, kind, &format!("{phase:?}"), note).await;
    }
    write_status(api, wf, &old, status.clone(), &now).await?;
    if let Some(since) = since_change {
        crate::metrics::record_reflection_lag(since.elapsed());
    }

    let phase = status.phase.unwrap_or(WorkflowPhase::Pending);
    if phase.is_final() {
        if let Some(ttl) = wf.spec.ttl_seconds_after_finished {
            let closed = status
                .close_time
                .as_deref()
                .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
                .map(|t| t.as_millisecond())
                .unwrap_or(now_ms);
            let due = closed + ttl * 1000;
            if due <= now_ms {
                api.delete(&wf.name_any(), &Default::default()).await?;
                return Ok(Action::await_change());
            }
            return Ok(Action::requeue(Duration::from_millis(
                (due - now_ms) as u64,
            )));
        }
        return Ok(Action::await_change());
    }
    // A Running phase with a duration column: refresh it now and then (engine changes wake
    // the reconcile immediately, but only those of this replica's shards).
    Ok(Action::requeue(if ctx.clustered {
        CLUSTER_RESYNC
    } else {
        RESYNC
    }))
}

/// Records a refusal (`Accepted=False`, a Warning event); nothing to do until the spec (or,
/// for a namespace refusal, the grant) changes.
async fn refused(
    wf: &Workflow,
    api: &Api<Workflow>,
    ctx: &Context,
    old: &WorkflowStatus,
    mut status: WorkflowStatus,
    reason: &str,
    message: String,
) -> Result<Action, Error> {
    let generation = wf.meta().generation;
    let (now, _) = now();
    ctx.refuse(
        wf,
        &mut status.conditions,
        reason,
        message,
        generation,
        &now,
    )
    .await;
    status.phase.get_or_insert(WorkflowPhase::Pending);
    status.observed_generation = generation;
    write_status(api, wf, old, status, &now).await?;
    Ok(Action::await_change())
}

/// Writes `new` with the overall standing derived from it, unless nothing changed.
async fn write_status(
    api: &Api<Workflow>,
    wf: &Workflow,
    old: &WorkflowStatus,
    mut new: WorkflowStatus,
    now: &Time,
) -> Result<(), Error> {
    let standing = workflow_status::standing(&wf.spec, &new);
    let generation = new.observed_generation;
    conditions::set_standing(&mut new.conditions, &standing, generation, now);
    if *old == new {
        return Ok(());
    }
    let patch = serde_json::json!({
        "apiVersion": "durin.dev/v1alpha1",
        "kind": "Workflow",
        "status": new,
    });
    api.patch_status(
        &wf.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

async fn cleanup(wf: &Workflow, ctx: &Context) -> Result<Action, Error> {
    let target = Target::of(wf);
    ctx.forget_workflow(&target, &ObjectRef::from_obj(wf));
    let skip = wf
        .annotations()
        .get(SKIP_CLEANUP_ANNOTATION)
        .is_some_and(|v| v == "true");
    let started = wf.status.as_ref().is_some_and(|s| s.first_run_id.is_some());
    let finished = wf
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .is_some_and(WorkflowPhase::is_final);
    if skip || !started || finished {
        return Ok(Action::await_change());
    }
    let uid = wf.uid().unwrap_or_default();
    let reason = format!("Workflow resource {} deleted", wf.name_any());
    let state = match wf.spec.deletion_policy.unwrap_or_default() {
        DeletionPolicy::Abandon => return Ok(Action::await_change()),
        DeletionPolicy::Cancel => DesiredState::Canceled,
        DeletionPolicy::Terminate => DesiredState::Terminated,
    };
    // A grant revoked since the start: the execution is left alone.
    if let Some(message) = ctx
        .namespace_refusal(&kube_namespace(wf), &target.namespace)
        .await?
    {
        let note = format!("deletionPolicy not applied: {message}");
        ctx.event(wf, EventType::Warning, NAMESPACE_NOT_ALLOWED, note)
            .await;
        return Ok(Action::await_change());
    }
    actions::apply_state(&ctx.frontend, &target, &uid, state, &reason).await?;
    tracing::info!(workflow = %wf.name_any(), ?state, "deletion policy applied");
    Ok(Action::await_change())
}
