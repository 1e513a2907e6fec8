//! Reconciles `Schedule` resources into engine schedules: the spec kept in the engine, each
//! trigger and backfill entry executed once, and next/recent/running actions in status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, Event as Finalize};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use super::conditions::{self, Standing, State};
use super::context::{Context, MANAGER};
use super::crd::schedule::{RecentAction, RunningWorkflow, Schedule, ScheduleStatus};
use super::reconcile::{Error, drain, retry_after_error};
use super::schedule_actions::{self as actions, Ensured, InvalidOrStatus, ScheduleTarget};
use super::tenancy::{self, NAMESPACE_NOT_ALLOWED};
use super::translate;
use super::workflow_actions::StartError;
use super::workflow_controller::{FINALIZER, SKIP_CLEANUP_ANNOTATION};
use crate::proto::api::schedule::v1::ScheduleInfo;

/// Status shows at most this many next and recent actions.
const SHOWN: usize = 5;
/// Upper bound between status refreshes (next action times move with the clock).
const MAX_REFRESH: Duration = Duration::from_secs(30);

pub async fn run(ctx: Arc<Context>, api: Api<Schedule>) {
    let controller = Controller::new(api, watcher::Config::default().any_semantic());
    let grants = tenancy::grant_dependents(controller.store(), |s| ScheduleTarget::of(s).namespace);
    let (namespaces, config) = ctx.tenancy.namespace_watch(&ctx.client);
    let results =
        controller
            .watches(namespaces, config, grants)
            .run(reconcile, retry_after_error, ctx);
    drain("schedule", results).await;
}

fn kube_namespace(s: &Schedule) -> String {
    s.namespace().unwrap_or_else(|| "default".into())
}

async fn reconcile(s: Arc<Schedule>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = kube_namespace(&s);
    let api: Api<Schedule> = Api::namespaced(ctx.client.clone(), &ns);
    finalizer::finalizer(&api, FINALIZER, s, |event| async {
        match event {
            Finalize::Apply(s) => apply(&s, &api, &ctx).await,
            Finalize::Cleanup(s) => cleanup(&s, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

async fn apply(s: &Schedule, api: &Api<Schedule>, ctx: &Context) -> Result<Action, Error> {
    let target = ScheduleTarget::of(s);
    let generation = s.meta().generation;
    let old = api
        .get_status(&s.name_any())
        .await?
        .status
        .unwrap_or_default();
    let mut status = old.clone();
    status.schedule_id = Some(target.schedule_id.clone());
    status.namespace = Some(target.namespace.clone());
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let uid = s.uid().unwrap_or_default();
    // Nothing happens in the engine for a Durin namespace this one may not use, and nothing
    // of the engine's is copied into status.
    if let Some(message) = ctx
        .namespace_refusal(&kube_namespace(s), &target.namespace)
        .await?
    {
        return refused(s, api, ctx, &old, status, NAMESPACE_NOT_ALLOWED, message).await;
    }

    if old.observed_generation != generation || !conditions::is_true(&old.conditions, "Accepted") {
        match actions::ensure(&ctx.frontend, &target, &uid, s).await {
            Ok(done) => {
                conditions::set(
                    &mut status.conditions,
                    "Accepted",
                    true,
                    "Applied",
                    "the engine schedule matches the spec",
                    generation,
                    &now,
                );
                let (reason, note) = match done {
                    Ensured::Created => ("Created", "schedule created"),
                    Ensured::Updated => ("Updated", "schedule updated from the spec"),
                };
                ctx.event(
                    s,
                    EventType::Normal,
                    reason,
                    format!("{note}: {}", target.schedule_id),
                )
                .await;
            }
            Err(StartError::Transient(e)) => return Err(Error::Engine(e)),
            Err(e) => {
                return refused(s, api, ctx, &old, status, "InvalidSpec", e.to_string()).await;
            }
        }
    }
    for t in &s.spec.triggers {
        if status.triggers_done.contains(&t.id) {
            continue;
        }
        actions::trigger(&ctx.frontend, &target, t).await?;
        status.triggers_done.push(t.id.clone());
        ctx.event(
            s,
            EventType::Normal,
            "Triggered",
            format!("trigger {} ran", t.id),
        )
        .await;
    }
    for b in &s.spec.backfills {
        if status.backfills_done.contains(&b.id) {
            continue;
        }
        match actions::backfill(&ctx.frontend, &target, b).await {
            Ok(()) => {
                ctx.event(
                    s,
                    EventType::Normal,
                    "Backfilled",
                    format!("backfill {} ({} to {}) ran", b.id, b.start_at, b.end_at),
                )
                .await;
            }
            Err(InvalidOrStatus::Status(e)) => return Err(Error::Engine(e)),
            Err(InvalidOrStatus::Invalid(e)) => {
                ctx.event(
                    s,
                    EventType::Warning,
                    "InvalidBackfill",
                    format!("backfill {}: {e}", b.id),
                )
                .await;
            }
        }
        status.backfills_done.push(b.id.clone());
    }

    let mut requeue = MAX_REFRESH;
    if let Some(d) = actions::describe(&ctx.frontend, &target).await? {
        let info = d.info.unwrap_or_default();
        fold_info(&mut status, &info);
        if let Some(next) = info.future_action_times.first() {
            let wait_ms =
                translate::millis(next) - k8s_openapi::jiff::Timestamp::now().as_millisecond();
            requeue = requeue.min(Duration::from_millis(
                wait_ms.clamp(200, 30_000) as u64 + 200,
            ));
        }
        let paused = d.schedule.and_then(|s| s.state).is_some_and(|st| st.paused);
        conditions::set(
            &mut status.conditions,
            "Paused",
            paused,
            if paused { "Paused" } else { "Active" },
            "",
            generation,
            &now,
        );
    }
    status.observed_generation = generation;
    write_status(api, s, &old, status, &now).await?;
    Ok(Action::requeue(requeue))
}

/// Records a refusal (`Accepted=False`, a Warning event); nothing to do until the spec (or,
/// for a namespace refusal, the grant) changes.
async fn refused(
    s: &Schedule,
    api: &Api<Schedule>,
    ctx: &Context,
    old: &ScheduleStatus,
    mut status: ScheduleStatus,
    reason: &str,
    message: String,
) -> Result<Action, Error> {
    let generation = s.meta().generation;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    ctx.refuse(s, &mut status.conditions, reason, message, generation, &now)
        .await;
    status.observed_generation = generation;
    write_status(api, s, old, status, &now).await?;
    Ok(Action::await_change())
}

pub(super) fn fold_info(status: &mut ScheduleStatus, info: &ScheduleInfo) {
    status.next_action_times = info
        .future_action_times
        .iter()
        .take(SHOWN)
        .map(translate::rfc3339)
        .collect();
    status.recent_actions = info
        .recent_actions
        .iter()
        .rev()
        .take(SHOWN)
        .rev()
        .map(|a| RecentAction {
            scheduled_time: a
                .schedule_time
                .as_ref()
                .map(translate::rfc3339)
                .unwrap_or_default(),
            actual_time: a
                .actual_time
                .as_ref()
                .map(translate::rfc3339)
                .unwrap_or_default(),
            workflow_id: a
                .start_workflow_result
                .as_ref()
                .map(|r| r.workflow_id.clone())
                .unwrap_or_default(),
            run_id: a.start_workflow_result.as_ref().map(|r| r.run_id.clone()),
            status: Some(
                super::workflow_status::phase_of(a.start_workflow_status)
                    .as_str()
                    .to_string(),
            ),
        })
        .collect();
    status.last_action_time = status.recent_actions.last().map(|a| a.actual_time.clone());
    status.running_workflows = info
        .running_workflows
        .iter()
        .map(|w| RunningWorkflow {
            workflow_id: w.workflow_id.clone(),
            run_id: w.run_id.clone(),
        })
        .collect();
    status.running_count = Some(info.running_workflows.len() as i32);
    status.action_count = Some(info.action_count);
    status.missed_catchup_window = Some(info.missed_catchup_window);
    status.overlap_skipped = Some(info.overlap_skipped);
}

/// Where the schedule stands: ready once the engine's schedule matches the spec (paused or not).
fn standing(status: &ScheduleStatus) -> Standing {
    if let Some(refused) = conditions::refusal(&status.conditions) {
        return refused;
    }
    if !conditions::is_true(&status.conditions, "Accepted") {
        return Standing::new(
            State::Progressing,
            "Applying",
            "the engine schedule is being set up",
        );
    }
    let paused = conditions::is_true(&status.conditions, "Paused");
    let message = if paused { "the schedule is paused" } else { "" };
    Standing::new(State::Ready, "Applied", message)
}

/// Writes `new` with the overall standing derived from it, unless nothing changed.
async fn write_status(
    api: &Api<Schedule>,
    s: &Schedule,
    old: &ScheduleStatus,
    mut new: ScheduleStatus,
    now: &Time,
) -> Result<(), Error> {
    let generation = new.observed_generation;
    let standing = standing(&new);
    conditions::set_standing(&mut new.conditions, &standing, generation, now);
    if *old == new {
        return Ok(());
    }
    let patch = serde_json::json!({
        "apiVersion": "durin.dev/v1alpha1",
        "kind": "Schedule",
        "status": new,
    });
    api.patch_status(
        &s.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

async fn cleanup(s: &Schedule, ctx: &Context) -> Result<Action, Error> {
    let skip = s
        .annotations()
        .get(SKIP_CLEANUP_ANNOTATION)
        .is_some_and(|v| v == "true");
    if skip {
        return Ok(Action::await_change());
    }
    let target = ScheduleTarget::of(s);
    // The engine schedule of a Durin namespace this one may not use is left alone (it may
    // be another tenant's with the same id).
    if let Some(message) = ctx
        .namespace_refusal(&kube_namespace(s), &target.namespace)
        .await?
    {
        let note = format!("engine schedule not deleted: {message}");
        ctx.event(s, EventType::Warning, NAMESPACE_NOT_ALLOWED, note)
            .await;
        return Ok(Action::await_change());
    }
    actions::delete(&ctx.frontend, &target).await?;
    Ok(Action::await_change())
}
