//! Reconciles `NexusEndpoint` resources into the engine's Nexus endpoint registry: the
//! endpoint named by the spec routes to the spec's Durin namespace and task queue, and status
//! shows its id, version and whether it is in place.
//!
//! Every endpoint the operator creates carries its resource's UID (in the description's
//! metadata), so a create whose status was never written is adopted on the next reconcile,
//! and an endpoint the resource does not own — another resource's, or one made with the CLI —
//! is refused (`Accepted=False`, reason `EndpointNameTaken`), never changed or deleted.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{self, Event as Finalize};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use tonic::{Code, Request};

use super::conditions::{self, Standing, State};
use super::context::{Context, MANAGER};
use super::crd::nexus_endpoint::{NexusEndpoint, NexusEndpointStatus};
use super::reconcile::{Error, drain, retry_after_error};
use super::tenancy::{self, NAMESPACE_NOT_ALLOWED};
use super::workflow_controller::{FINALIZER, SKIP_CLEANUP_ANNOTATION};
use crate::proto::api::common::v1::Payload;
use crate::proto::api::nexus::v1::{Endpoint, EndpointSpec, EndpointTarget, endpoint_target};
use crate::proto::api::operatorservice::v1::*;
use crate::proto::operatorservice::operator_service_server::OperatorService;

/// Metadata key of the description payload naming the owning resource's UID.
pub const OWNER_UID_KEY: &str = "durin.dev/owner-uid";
/// The refusal of an endpoint name someone else holds.
pub const ENDPOINT_NAME_TAKEN: &str = "EndpointNameTaken";

pub async fn run(ctx: Arc<Context>, api: Api<NexusEndpoint>) {
    let controller = Controller::new(api, watcher::Config::default().any_semantic());
    let grants = tenancy::grant_dependents(controller.store(), |e| Wanted::of(e).namespace);
    let (namespaces, config) = ctx.tenancy.namespace_watch(&ctx.client);
    let results =
        controller
            .watches(namespaces, config, grants)
            .run(reconcile, retry_after_error, ctx);
    drain("nexusendpoint", results).await;
}

/// What the resource asks the engine for.
struct Wanted {
    name: String,
    namespace: String,
    task_queue: String,
    description: Option<String>,
}

impl Wanted {
    fn of(e: &NexusEndpoint) -> Self {
        Wanted {
            name: e.spec.endpoint_name.clone().unwrap_or_else(|| e.name_any()),
            namespace: e
                .spec
                .namespace
                .clone()
                .unwrap_or_else(|| kube_namespace(e)),
            task_queue: e.spec.task_queue.clone(),
            description: e.spec.description.clone(),
        }
    }

    /// The engine spec, marked as owned by the resource `uid`.
    fn spec(&self, uid: &str) -> EndpointSpec {
        let text = self.description.clone().unwrap_or_default();
        EndpointSpec {
            name: self.name.clone(),
            description: Some(Payload {
                metadata: [
                    ("encoding".to_string(), b"json/plain".to_vec()),
                    (OWNER_UID_KEY.to_string(), uid.as_bytes().to_vec()),
                ]
                .into(),
                data: serde_json::to_vec(&text).unwrap_or_default(),
                ..Default::default()
            }),
            target: Some(EndpointTarget {
                variant: Some(endpoint_target::Variant::Worker(endpoint_target::Worker {
                    namespace: self.namespace.clone(),
                    task_queue: self.task_queue.clone(),
                })),
            }),
        }
    }
}

fn kube_namespace(e: &NexusEndpoint) -> String {
    e.namespace().unwrap_or_else(|| "default".into())
}

/// Whether the engine endpoint was made for the resource `uid`.
fn owned_by(endpoint: &Endpoint, uid: &str) -> bool {
    endpoint
        .spec
        .as_ref()
        .and_then(|s| s.description.as_ref())
        .and_then(|d| d.metadata.get(OWNER_UID_KEY))
        .is_some_and(|owner| !uid.is_empty() && owner == uid.as_bytes())
}

async fn reconcile(e: Arc<NexusEndpoint>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<NexusEndpoint> = Api::namespaced(ctx.client.clone(), &kube_namespace(&e));
    finalizer::finalizer(&api, FINALIZER, e, |event| async {
        match event {
            Finalize::Apply(e) => apply(&e, &api, &ctx).await,
            Finalize::Cleanup(e) => cleanup(&e, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

/// The outcome of making the engine endpoint match the spec.
enum Applied {
    Unchanged(Endpoint),
    Created(Endpoint),
    Updated(Endpoint),
    /// Refused: the reason and message.
    Refused(&'static str, String),
}

async fn apply(
    e: &NexusEndpoint,
    api: &Api<NexusEndpoint>,
    ctx: &Context,
) -> Result<Action, Error> {
    let wanted = Wanted::of(e);
    let generation = e.meta().generation;
    let old = api
        .get_status(&e.name_any())
        .await?
        .status
        .unwrap_or_default();
    let mut status = old.clone();
    status.endpoint_name = Some(wanted.name.clone());
    status.namespace = Some(wanted.namespace.clone());
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    // Nothing is routed into a Durin namespace this one may not use.
    if let Some(message) = ctx
        .namespace_refusal(&kube_namespace(e), &wanted.namespace)
        .await?
    {
        return refused(e, api, ctx, &old, status, NAMESPACE_NOT_ALLOWED, message).await;
    }
    ctx.ensure_namespace(&wanted.namespace).await?;
    let uid = e.uid().unwrap_or_default();
    let endpoint = match ensure(ctx, &wanted, &uid, old.endpoint_id.as_deref()).await? {
        Applied::Refused(reason, message) => {
            return refused(e, api, ctx, &old, status, reason, message).await;
        }
        Applied::Unchanged(endpoint) => endpoint,
        Applied::Created(endpoint) | Applied::Updated(endpoint) => {
            let what = if old.endpoint_id.as_deref() == Some(endpoint.id.as_str()) {
                ("Updated", "endpoint updated from the spec")
            } else {
                ("Created", "endpoint created")
            };
            let note = format!("{}: {} ({})", what.1, wanted.name, endpoint.id);
            ctx.event(e, EventType::Normal, what.0, note).await;
            endpoint
        }
    };
    status.endpoint_id = Some(endpoint.id.clone());
    status.version = Some(endpoint.version);
    conditions::set(
        &mut status.conditions,
        "Accepted",
        true,
        "Applied",
        "the engine endpoint matches the spec",
        generation,
        &now,
    );
    status.observed_generation = generation;
    write_status(api, e, &old, status, &now).await?;
    Ok(Action::await_change())
}

/// Makes the engine endpoint match `wanted`: the one this resource made before (found by
/// its id, renamed if the name changed), else the one of that name if this resource owns it
/// (a create whose status was not written), else a new one.
async fn ensure(
    ctx: &Context,
    wanted: &Wanted,
    uid: &str,
    known_id: Option<&str>,
) -> Result<Applied, Error> {
    let spec = wanted.spec(uid);
    let mine = match known_id {
        Some(id) => get(ctx, id).await?.filter(|e| owned_by(e, uid)),
        None => None,
    };
    let mine = match mine {
        Some(endpoint) => Some(endpoint),
        None => match by_name(ctx, &wanted.name).await? {
            Some(endpoint) if owned_by(&endpoint, uid) => Some(endpoint),
            Some(_) => {
                return Ok(Applied::Refused(
                    ENDPOINT_NAME_TAKEN,
                    name_taken(&wanted.name),
                ));
            }
            None => None,
        },
    };
    let result = match mine {
        Some(endpoint) if endpoint.spec.as_ref() == Some(&spec) => {
            return Ok(Applied::Unchanged(endpoint));
        }
        Some(endpoint) => ctx
            .operator
            .update_nexus_endpoint(Request::new(UpdateNexusEndpointRequest {
                id: endpoint.id,
                version: endpoint.version,
                spec: Some(spec),
            }))
            .await
            .map(|r| Applied::Updated(r.into_inner().endpoint.unwrap_or_default())),
        None => ctx
            .operator
            .create_nexus_endpoint(Request::new(CreateNexusEndpointRequest {
                spec: Some(spec),
            }))
            .await
            .map(|r| Applied::Created(r.into_inner().endpoint.unwrap_or_default())),
    };
    match result {
        Ok(applied) => Ok(applied),
        // Someone took the name meanwhile (a rename onto a held name, or a race).
        Err(s) if s.code() == Code::AlreadyExists => Ok(Applied::Refused(
            ENDPOINT_NAME_TAKEN,
            name_taken(&wanted.name),
        )),
        Err(s) if s.code() == Code::InvalidArgument => {
            Ok(Applied::Refused("InvalidSpec", s.message().to_string()))
        }
        Err(s) => Err(Error::Engine(s)),
    }
}

fn name_taken(name: &str) -> String {
    format!(
        "the Nexus endpoint name {name:?} is held by another resource or was created outside \
         this operator; choose another spec.endpointName"
    )
}

async fn get(ctx: &Context, id: &str) -> Result<Option<Endpoint>, Error> {
    match ctx
        .operator
        .get_nexus_endpoint(Request::new(GetNexusEndpointRequest { id: id.into() }))
        .await
    {
        Ok(r) => Ok(r.into_inner().endpoint),
        Err(s) if s.code() == Code::NotFound => Ok(None),
        Err(s) => Err(Error::Engine(s)),
    }
}

async fn by_name(ctx: &Context, name: &str) -> Result<Option<Endpoint>, Error> {
    let listed = ctx
        .operator
        .list_nexus_endpoints(Request::new(ListNexusEndpointsRequest {
            name: name.into(),
            ..Default::default()
        }))
        .await?;
    Ok(listed.into_inner().endpoints.into_iter().next())
}

/// Records a refusal (`Accepted=False`, a Warning event); nothing to do until the spec (or,
/// for a namespace refusal, the grant) changes.
async fn refused(
    e: &NexusEndpoint,
    api: &Api<NexusEndpoint>,
    ctx: &Context,
    old: &NexusEndpointStatus,
    mut status: NexusEndpointStatus,
    reason: &str,
    message: String,
) -> Result<Action, Error> {
    let generation = e.meta().generation;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    ctx.refuse(e, &mut status.conditions, reason, message, generation, &now)
        .await;
    status.observed_generation = generation;
    write_status(api, e, old, status, &now).await?;
    // A name held by someone else may be released: look again now and then.
    Ok(if reason == ENDPOINT_NAME_TAKEN {
        Action::requeue(std::time::Duration::from_secs(30))
    } else {
        Action::await_change()
    })
}

fn standing(status: &NexusEndpointStatus) -> Standing {
    if let Some(refused) = conditions::refusal(&status.conditions) {
        return refused;
    }
    if !conditions::is_true(&status.conditions, "Accepted") {
        return Standing::new(
            State::Progressing,
            "Applying",
            "the endpoint is being set up",
        );
    }
    Standing::new(State::Ready, "Applied", "")
}

/// Writes `new` with the overall standing derived from it, unless nothing changed.
async fn write_status(
    api: &Api<NexusEndpoint>,
    e: &NexusEndpoint,
    old: &NexusEndpointStatus,
    mut new: NexusEndpointStatus,
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
        "kind": "NexusEndpoint",
        "status": new,
    });
    api.patch_status(
        &e.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}

/// Deletes the engine endpoint this resource owns (none other).
async fn cleanup(e: &NexusEndpoint, ctx: &Context) -> Result<Action, Error> {
    let skip = e
        .annotations()
        .get(SKIP_CLEANUP_ANNOTATION)
        .is_some_and(|v| v == "true");
    if skip {
        return Ok(Action::await_change());
    }
    let uid = e.uid().unwrap_or_default();
    let known = e.status.as_ref().and_then(|s| s.endpoint_id.clone());
    let mine = match known {
        Some(id) => get(ctx, &id).await?,
        None => by_name(ctx, &Wanted::of(e).name).await?,
    };
    let Some(endpoint) = mine.filter(|m| owned_by(m, &uid)) else {
        return Ok(Action::await_change());
    };
    let deleted = ctx
        .operator
        .delete_nexus_endpoint(Request::new(DeleteNexusEndpointRequest {
            id: endpoint.id,
            version: endpoint.version,
        }))
        .await;
    match deleted {
        Ok(_) => Ok(Action::await_change()),
        Err(s) if s.code() == Code::NotFound => Ok(Action::await_change()),
        Err(s) => Err(Error::Engine(s)),
    }
}
