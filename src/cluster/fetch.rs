//! Matching across replicas. A task waits in the queue of the replica that owns its run, but a
//! worker polls whichever replica its connection reached. So while a client polls a queue
//! here, one fetcher per other replica long-polls that replica's queue on its behalf (as a
//! forwarded poll, served only from that replica's own tasks) and hands what it gets to a
//! poller here. The owner starts the task as for any poller; fetched tasks are never fetched
//! on again, so they cannot travel in circles.

use std::sync::Arc;
use std::time::Duration;

use temporalio_protos::temporal::api::workflowservice::v1::{
    PollActivityTaskQueueRequest, PollActivityTaskQueueResponse, PollNexusTaskQueueRequest,
    PollNexusTaskQueueResponse, PollWorkflowTaskQueueRequest, PollWorkflowTaskQueueResponse,
};
use tonic::Request;

use super::Cluster;
use crate::engine::Engine;
use crate::engine::matching::{QueueKey, QueueKind, ReadyTask};

/// How long one remote poll waits.
const REMOTE_POLL: Duration = Duration::from_secs(20);
/// Pause after a failed remote poll (the replica may be gone).
const AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Pause while a fetched task still waits for a poller here.
const WHILE_UNTAKEN: Duration = Duration::from_millis(20);

/// The poll a fetcher repeats at another replica.
#[derive(Clone)]
pub enum PollTemplate {
    Workflow(PollWorkflowTaskQueueRequest),
    Activity(PollActivityTaskQueueRequest),
    Nexus(PollNexusTaskQueueRequest),
}

impl PollTemplate {
    fn queue(&self) -> Option<QueueKey> {
        let (namespace, queue, kind, options) = match self {
            PollTemplate::Workflow(r) => (
                &r.namespace,
                &r.task_queue,
                QueueKind::Workflow,
                &r.deployment_options,
            ),
            PollTemplate::Activity(r) => (
                &r.namespace,
                &r.task_queue,
                QueueKind::Activity,
                &r.deployment_options,
            ),
            // Nexus queues are not versioned.
            PollTemplate::Nexus(r) => (&r.namespace, &r.task_queue, QueueKind::Nexus, &None),
        };
        let name = queue.as_ref().map(|q| q.name.as_str()).unwrap_or("");
        let version = crate::engine::deployments::poller_version(options);
        (!name.is_empty()).then(|| QueueKey::new(namespace, name, kind).for_version(version))
    }

    async fn poll(
        &self,
        cluster: &Cluster,
        peer: &str,
    ) -> Result<Option<ReadyTask>, tonic::Status> {
        match self {
            PollTemplate::Workflow(r) => {
                let mut req = Request::new(r.clone());
                req.set_timeout(REMOTE_POLL);
                let resp: PollWorkflowTaskQueueResponse = cluster
                    .forward(peer, "PollWorkflowTaskQueue", req)
                    .await?
                    .into_inner();
                Ok((!resp.task_token.is_empty()).then_some(ReadyTask::Workflow(resp)))
            }
            PollTemplate::Activity(r) => {
                let mut req = Request::new(r.clone());
                req.set_timeout(REMOTE_POLL);
                let resp: PollActivityTaskQueueResponse = cluster
                    .forward(peer, "PollActivityTaskQueue", req)
                    .await?
                    .into_inner();
                Ok((!resp.task_token.is_empty()).then_some(ReadyTask::Activity(resp)))
            }
            PollTemplate::Nexus(r) => {
                let mut req = Request::new(r.clone());
                req.set_timeout(REMOTE_POLL);
                let resp: PollNexusTaskQueueResponse = cluster
                    .forward(peer, "PollNexusTaskQueue", req)
                    .await?
                    .into_inner();
                Ok((!resp.task_token.is_empty()).then_some(ReadyTask::Nexus(resp)))
            }
        }
    }
}

impl Cluster {
    /// Makes sure every other replica is being fetched from for the queue of this poll.
    pub fn ensure_fetching(self: &Arc<Self>, template: PollTemplate) {
        let Some(queue) = template.queue() else {
            return;
        };
        self.polled.lock().insert(queue.clone(), template.clone());
        for peer in self.peer_addresses() {
            let key = (queue.clone(), peer.clone());
            if !self.fetchers.lock().insert(key.clone()) {
                continue;
            }
            let cluster = self.clone();
            let template = template.clone();
            tokio::spawn(async move {
                fetch_loop(&cluster, &cluster.engine, &key.0, &key.1, &template).await;
                cluster.fetchers.lock().remove(&key);
            });
        }
    }
}

impl Cluster {
    /// When replicas join, fetching from them starts for every queue polled here lately
    /// (pollers already waiting in a long poll would otherwise not ask again for a minute).
    pub fn spawn_refetch(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let mut view = self.view.clone();
        tokio::spawn(async move {
            while view.changed().await.is_ok() {
                let Some(cluster) = weak.upgrade() else {
                    return;
                };
                let templates: Vec<(QueueKey, PollTemplate)> = cluster
                    .polled
                    .lock()
                    .iter()
                    .map(|(q, t)| (q.clone(), t.clone()))
                    .collect();
                for (queue, template) in templates {
                    if cluster.engine.wants_fetch(&queue).0 {
                        cluster.ensure_fetching(template);
                    } else {
                        cluster.polled.lock().remove(&queue);
                    }
                }
            }
        });
    }
}

async fn fetch_loop(
    cluster: &Cluster,
    engine: &Engine,
    queue: &QueueKey,
    peer: &str,
    template: &PollTemplate,
) {
    loop {
        if !cluster.peer_addresses().iter().any(|p| p == peer) {
            return;
        }
        let (polled_lately, nothing_waiting) = engine.wants_fetch(queue);
        if !polled_lately {
            return;
        }
        if !nothing_waiting {
            tokio::time::sleep(WHILE_UNTAKEN).await;
            continue;
        }
        match template.poll(cluster, peer).await {
            Ok(Some(task)) => engine.push_fetched(queue.clone(), task),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(peer, error = %e, "fetching from another replica failed");
                tokio::time::sleep(AFTER_FAILURE).await;
            }
        }
    }
}
