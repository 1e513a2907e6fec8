//! Retiring versions that are neither the target nor current: a version keeps its pods while
//! workflows are pinned to it (draining); once drained it is scaled to zero after
//! `scaledownDelay` and its Deployment deleted after `deleteDelay`. A version none of whose
//! workers ever polled is deleted at once: it never served.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::EventType;

use crate::go_duration;
use crate::operator::context::Context;
use crate::operator::crd::worker::{Rollout, Worker};
use crate::operator::reconcile::Error;

const DEFAULT_SCALEDOWN_MS: i64 = 3_600_000;
const DEFAULT_DELETE_MS: i64 = 24 * 3_600_000;

/// The Worker whose versions are retired, and where its Deployments live.
pub struct Scope<'a> {
    pub ctx: &'a Context,
    pub w: &'a Worker,
    pub api: &'a Api<Deployment>,
}

pub struct Sunset {
    scaledown_ms: i64,
    delete_ms: i64,
}

/// What retiring a version did.
pub struct Retired {
    pub drained_since: Option<String>,
    /// When the next sunset step is due.
    pub recheck: Option<Duration>,
    pub deleted: bool,
}

impl Sunset {
    pub fn of(rollout: &Rollout) -> Self {
        let sunset = rollout.sunset.clone().unwrap_or_default();
        let ms = |value: Option<String>, default| {
            value
                .and_then(|v| go_duration::parse_millis(&v))
                .unwrap_or(default)
        };
        Sunset {
            scaledown_ms: ms(sunset.scaledown_delay, DEFAULT_SCALEDOWN_MS),
            delete_ms: ms(sunset.delete_delay, DEFAULT_DELETE_MS),
        }
    }

    /// One pass over a version being retired; `since` is when it was first seen drained.
    pub async fn retire(
        &self,
        scope: &Scope<'_>,
        d: &Deployment,
        engine_status: &str,
        since: Option<String>,
        now_ms: i64,
    ) -> Result<Retired, Error> {
        let Scope { ctx, w, api } = *scope;
        let build = d
            .labels()
            .get(super::BUILD_LABEL)
            .cloned()
            .unwrap_or_default();
        let drained = match engine_status {
            "NotRegistered" => {
                delete(api, d).await?;
                let message = format!("build {build} never polled and is no longer the target");
                ctx.event(w, EventType::Normal, "VersionDeleted", message)
                    .await;
                return Ok(Retired {
                    drained_since: None,
                    recheck: None,
                    deleted: true,
                });
            }
            // Never routed to, or no workflow pinned to it any more.
            "Created" | "Inactive" | "Drained" => true,
            _ => false,
        };
        if !drained {
            return Ok(Retired {
                drained_since: None,
                recheck: None,
                deleted: false,
            });
        }
        let since_ms = since.as_deref().and_then(parse_millis).unwrap_or(now_ms);
        let elapsed = now_ms - since_ms;
        let mut retired = Retired {
            drained_since: Some(rfc3339_millis(since_ms)),
            recheck: None,
            deleted: false,
        };
        if elapsed >= self.delete_ms {
            delete(api, d).await?;
            let message = format!("build {build} is drained; its Deployment is deleted");
            ctx.event(w, EventType::Normal, "VersionDeleted", message)
                .await;
            retired.deleted = true;
            return Ok(retired);
        }
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        if elapsed >= self.scaledown_ms && replicas != 0 {
            scale(api, d, 0).await?;
            let message = format!("build {build} is drained; scaled to zero");
            ctx.event(w, EventType::Normal, "VersionScaledDown", message)
                .await;
        }
        let next = if elapsed < self.scaledown_ms {
            self.scaledown_ms
        } else {
            self.delete_ms
        };
        retired.recheck = Some(Duration::from_millis((next - elapsed).max(0) as u64));
        Ok(retired)
    }
}

/// The current version keeps the Worker's replica count while a newer one ramps.
pub async fn keep_replicas(
    api: &Api<Deployment>,
    d: &Deployment,
    replicas: Option<i32>,
) -> Result<(), Error> {
    let now = d.spec.as_ref().and_then(|s| s.replicas);
    match replicas {
        Some(r) if now != Some(r) => scale(api, d, r).await,
        _ => Ok(()),
    }
}

async fn scale(api: &Api<Deployment>, d: &Deployment, replicas: i32) -> Result<(), Error> {
    // A merge patch of the count alone: the template of an older version is no longer in
    // the Worker's spec, so applying the whole object is not possible.
    let patch = serde_json::json!({"spec": {"replicas": replicas}});
    api.patch(
        &d.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

async fn delete(api: &Api<Deployment>, d: &Deployment) -> Result<(), Error> {
    match api.delete(&d.name_any(), &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub fn rfc3339_millis(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

pub fn parse_millis(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}
