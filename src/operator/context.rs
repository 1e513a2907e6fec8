//! What every controller shares: the Kubernetes client, the in-process engine, the event
//! recorder, and the map from engine executions back to the resources that own them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::crd::Workflow;
use super::frontend::{Frontend, Local};
use super::tenancy::Tenancy;
use super::workflow_actions::Target;
use crate::engine::Engine;

/// Field manager for every write the operator makes (server-side apply).
pub const MANAGER: &str = "durin-operator";

pub struct Context {
    pub client: Client,
    pub engine: Arc<Engine>,
    pub frontend: Local,
    /// The engine's OperatorService in this process (the Nexus endpoint registry).
    pub operator: crate::api::operator_service::OperatorHandler,
    pub recorder: Recorder,
    /// The engine address worker pods are given (`TEMPORAL_ADDRESS`).
    pub engine_address: String,
    /// Several engine replicas: changes to executions in other replicas' shards do not
    /// reach this replica's change stream, so running workflows are refreshed often.
    pub clustered: bool,
    /// Which Durin namespaces each Kubernetes namespace may use.
    pub tenancy: Tenancy,
    /// Execution → resource, so an engine change wakes the right reconcile.
    workflows: Mutex<HashMap<Target, ObjectRef<Workflow>>>,
    wake_workflow: mpsc::UnboundedSender<ObjectRef<Workflow>>,
    namespaces: Mutex<HashSet<String>>,
    /// When the engine first changed an execution whose status is not yet written.
    unreflected: Mutex<HashMap<Target, std::time::Instant>>,
}

impl Context {
    pub fn new(
        client: Client,
        engine: Arc<Engine>,
        cluster: Option<Arc<crate::cluster::Cluster>>,
        engine_address: String,
        reporter_instance: Option<String>,
        tenancy: Tenancy,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<ObjectRef<Workflow>>) {
        let (wake_workflow, woken) = mpsc::unbounded_channel();
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: MANAGER.into(),
                instance: reporter_instance,
            },
        );
        let ctx = Arc::new(Self {
            clustered: cluster.is_some(),
            operator: crate::api::operator_service::OperatorHandler::new(
                engine.clone(),
                cluster.clone(),
            ),
            frontend: Local::new(engine.clone(), cluster),
            client,
            engine,
            recorder,
            engine_address,
            tenancy,
            workflows: Mutex::new(HashMap::new()),
            wake_workflow,
            namespaces: Mutex::new(HashSet::new()),
            unreflected: Mutex::new(HashMap::new()),
        });
        (ctx, woken)
    }

    pub fn track_workflow(&self, target: Target, obj: ObjectRef<Workflow>) {
        self.workflows.lock().insert(target, obj);
    }

    /// Stops waking `obj` for `target`'s changes (only if `obj` is the one woken: another
    /// resource may stand for the same execution).
    pub fn forget_workflow(&self, target: &Target, obj: &ObjectRef<Workflow>) {
        let mut workflows = self.workflows.lock();
        if workflows.get(target) == Some(obj) {
            workflows.remove(target);
            self.unreflected.lock().remove(target);
        }
    }

    /// `None` when resources in Kubernetes namespace `kube_ns` may use Durin namespace
    /// `durin_ns`, else why not (see [`super::tenancy`]). Checked before anything is done in
    /// the engine for a resource.
    pub async fn namespace_refusal(
        &self,
        kube_ns: &str,
        durin_ns: &str,
    ) -> Result<Option<String>, kube::Error> {
        self.tenancy.check(&self.client, kube_ns, durin_ns).await
    }

    /// When the engine first changed this execution since its status was last written.
    pub fn take_unreflected(&self, target: &Target) -> Option<std::time::Instant> {
        self.unreflected.lock().remove(target)
    }

    /// Creates a Durin namespace on first use (remembered, so only the first call pays).
    pub async fn ensure_namespace(&self, namespace: &str) -> Result<(), tonic::Status> {
        if self.namespaces.lock().contains(namespace) {
            return Ok(());
        }
        self.frontend.ensure_namespace(namespace).await?;
        self.namespaces.lock().insert(namespace.to_string());
        Ok(())
    }

    /// Publishes a Kubernetes event; a failure is logged, never fails a reconcile.
    pub async fn event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let ev = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &obj.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "could not publish event");
        }
    }

    /// Marks the resource `Accepted=False` with `reason` and `message`, and publishes a
    /// Warning event unless the same refusal is already recorded (no event per reconcile).
    pub async fn refuse<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        conditions: &mut Vec<Condition>,
        reason: &str,
        message: String,
        generation: Option<i64>,
        now: &Time,
    ) {
        let already = super::conditions::find(conditions, "Accepted")
            .is_some_and(|c| c.status == "False" && c.message == message);
        super::conditions::set(
            conditions, "Accepted", false, reason, &message, generation, now,
        );
        if !already {
            self.event(obj, EventType::Warning, reason, message).await;
        }
    }

    /// Forwards engine changes to the reconciles of the resources that own them: status
    /// follows the engine without polling.
    pub async fn forward_engine_changes(self: Arc<Self>) {
        let mut changes = self.engine.subscribe();
        loop {
            match changes.recv().await {
                Ok(change) => {
                    let target = Target {
                        namespace: change.key.namespace,
                        workflow_id: change.key.workflow_id,
                    };
                    let obj = self.workflows.lock().get(&target).cloned();
                    if let Some(obj) = obj {
                        self.unreflected
                            .lock()
                            .entry(target)
                            .or_insert_with(std::time::Instant::now);
                        let _ = self.wake_workflow.send(obj);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let all: Vec<_> = self.workflows.lock().values().cloned().collect();
                    for obj in all {
                        let _ = self.wake_workflow.send(obj);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}
