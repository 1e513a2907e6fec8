//! `durin operator`: the controllers, started under leader election next to the engine.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use kube::{Api, Client};

use super::context::Context;
use super::crd::{NexusEndpoint, Schedule, Worker, Workflow};
use super::leader::{self, LeaseConfig};
use super::tenancy::{Grant, Tenancy};
use super::{
    nexus_endpoint_controller, schedule_controller, worker_controller, workflow_controller,
};
use crate::engine::Engine;

pub struct OperatorConfig {
    /// Address worker pods use to reach the engine.
    pub engine_address: String,
    /// Only watch this Kubernetes namespace (all when `None`).
    pub watch_namespace: Option<String>,
    /// `None` runs without leader election (a single replica).
    pub lease: Option<LeaseConfig>,
    /// With several engine replicas: routes calls to the replica owning each workflow.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Operator-wide grants of other Durin namespaces (besides the Namespace annotation).
    pub allowed_namespaces: Vec<Grant>,
}

pub async fn run(engine: Arc<Engine>, client: Client, cfg: OperatorConfig) {
    let OperatorConfig {
        engine_address,
        watch_namespace,
        lease,
        cluster,
        allowed_namespaces,
    } = cfg;
    let tenancy = Tenancy::new(&allowed_namespaces, watch_namespace.clone());
    let instance = lease.as_ref().map(|l| l.identity.clone());
    let lease_client = client.clone();
    let lead = move || {
        let (client, engine, cluster) = (client.clone(), engine.clone(), cluster.clone());
        let (address, ns, instance, tenancy) = (
            engine_address.clone(),
            watch_namespace.clone(),
            instance.clone(),
            tenancy.clone(),
        );
        async move { controllers(client, engine, cluster, address, ns, instance, tenancy).await }
    };
    match lease {
        Some(cfg) => leader::run_while_leader(lease_client, cfg, lead).await,
        None => lead().await,
    }
}

async fn controllers(
    client: Client,
    engine: Arc<Engine>,
    cluster: Option<Arc<crate::cluster::Cluster>>,
    engine_address: String,
    watch_namespace: Option<String>,
    instance: Option<String>,
    tenancy: Tenancy,
) {
    let (ctx, woken) = Context::new(
        client.clone(),
        engine,
        cluster,
        engine_address,
        instance,
        tenancy,
    );
    let (workflows, workers, deployments, schedules, endpoints) = match &watch_namespace {
        Some(ns) => (
            Api::<Workflow>::namespaced(client.clone(), ns),
            Api::<Worker>::namespaced(client.clone(), ns),
            Api::<Deployment>::namespaced(client.clone(), ns),
            Api::<Schedule>::namespaced(client.clone(), ns),
            Api::<NexusEndpoint>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::<Workflow>::all(client.clone()),
            Api::<Worker>::all(client.clone()),
            Api::<Deployment>::all(client.clone()),
            Api::<Schedule>::all(client.clone()),
            Api::<NexusEndpoint>::all(client.clone()),
        ),
    };
    tokio::join!(
        ctx.clone().forward_engine_changes(),
        workflow_controller::run(ctx.clone(), woken, workflows),
        worker_controller::run(ctx.clone(), workers, deployments),
        schedule_controller::run(ctx.clone(), schedules),
        nexus_endpoint_controller::run(ctx.clone(), endpoints),
    );
}
