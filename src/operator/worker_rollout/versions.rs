//! Every version of a Worker as its status shows it: each version's Deployment (found by
//! label), what the engine says of it, its pollers and open workflows; versions no longer
//! wanted are retired on the way.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::ResourceExt;
use kube::api::ListParams;

use super::engine;
use super::sunset::{Scope, Sunset, keep_replicas};
use super::{BUILD_LABEL, earliest};
use crate::operator::crd::worker::{Poller, RolloutStatus, VersionStatus};
use crate::operator::frontend::Frontend;
use crate::operator::reconcile::Error;
use crate::operator::worker_controller::WORKER_LABEL;
use crate::proto::api::workflowservice::v1::CountWorkflowExecutionsRequest;

pub struct Census<'a> {
    pub scope: Scope<'a>,
    pub engine: &'a engine::Deployment,
    /// The status written last pass (when each version was first seen drained).
    pub previous: Option<&'a RolloutStatus>,
    pub pollers: &'a [Poller],
    pub sunset: Sunset,
}

impl Census<'_> {
    /// The versions, retiring those neither the target nor current; and when a retirement is
    /// next due. The current version, if not the target, keeps `replicas` while the target
    /// ramps.
    pub async fn take(
        &self,
        target: Option<&str>,
        replicas: Option<i32>,
        now_ms: i64,
    ) -> Result<(Vec<VersionStatus>, Option<Duration>), Error> {
        let Scope { w, api, .. } = self.scope;
        let selector = format!("{WORKER_LABEL}={},{BUILD_LABEL}", w.name_any());
        let listed = api.list(&ListParams::default().labels(&selector)).await?;
        let by_build: BTreeMap<String, Deployment> = listed
            .items
            .into_iter()
            .filter_map(|d| Some((d.labels().get(BUILD_LABEL)?.clone(), d)))
            .collect();
        let current = self.engine.view.current.as_deref();
        let kept = |build: &str| target == Some(build) || current == Some(build);
        let mut versions = Vec::new();
        let mut recheck = None;
        for (build, d) in &by_build {
            let engine_status = self.engine.status_of(build);
            let mut version = self.version(build, Some(d), &engine_status);
            if kept(build) {
                if current == Some(build) && target != Some(build) {
                    keep_replicas(api, d, replicas).await?;
                }
            } else {
                let since = self.drained_since(build);
                let retired = self
                    .sunset
                    .retire(&self.scope, d, &engine_status, since, now_ms)
                    .await?;
                version.drained_since = retired.drained_since;
                recheck = earliest(recheck, retired.recheck);
                if retired.deleted {
                    version.deployment = None;
                }
            }
            versions.push(version);
        }
        // Versions the engine still routes to or drains, whose Deployment is gone.
        for (build, v) in &self.engine.view.versions {
            let routed = kept(build) || v.status == "Draining" || v.status == "Ramping";
            if routed && !by_build.contains_key(build) {
                versions.push(self.version(build, None, &v.status));
            }
        }
        self.count_running(&mut versions).await;
        Ok((versions, recheck))
    }

    fn drained_since(&self, build: &str) -> Option<String> {
        self.previous?
            .versions
            .iter()
            .find(|v| v.build_id == build)?
            .drained_since
            .clone()
    }

    fn version(&self, build: &str, d: Option<&Deployment>, engine_status: &str) -> VersionStatus {
        let ds = d.and_then(|d| d.status.clone()).unwrap_or_default();
        VersionStatus {
            build_id: build.to_string(),
            deployment: d.map(|d| d.name_any()),
            replicas: d
                .and_then(|d| d.spec.as_ref())
                .and_then(|s| s.replicas)
                .unwrap_or(0),
            ready_replicas: ds.ready_replicas.unwrap_or(0),
            pollers: self
                .pollers
                .iter()
                .filter(|p| p.build_id.as_deref() == Some(build))
                .count() as i32,
            status: engine_status.to_string(),
            running_workflows: None,
            drained_since: None,
        }
    }

    /// Open workflows on each version, from visibility (the search attribute Temporal keeps).
    async fn count_running(&self, versions: &mut [VersionStatus]) {
        let (namespace, deployment) = (self.engine.namespace(), self.engine.name());
        for v in versions {
            let version = format!("{deployment}:{}", v.build_id);
            let query = format!(
                "TemporalWorkerDeploymentVersion = {version:?} AND ExecutionStatus = \"Running\""
            );
            let counted = self
                .scope
                .ctx
                .frontend
                .count_workflow_executions(CountWorkflowExecutionsRequest {
                    namespace: namespace.to_string(),
                    query,
                })
                .await;
            match counted {
                Ok(c) => v.running_workflows = Some(c.count),
                Err(e) => tracing::debug!(error = %e, %version, "counting open workflows failed"),
            }
        }
    }
}
