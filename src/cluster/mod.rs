//! Several replicas sharing one PostgreSQL database.
//!
//! Executions are spread over a fixed number of shards (a hash of namespace and workflow id,
//! [`crate::store::shard_of`]); each replica serves the shards whose leases it holds
//! ([`membership`]). A request for a workflow whose shard another replica serves is forwarded
//! to that replica over Durin's own protocol, `proto/durin/cluster/v1` ([`route`]).

pub mod fetch;
pub mod membership;
pub mod route;
pub mod tls;
pub mod visibility;
pub mod workers;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prost::Message;
use tokio::sync::watch;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use crate::engine::Engine;
use crate::proto::cluster::ForwardRequest;
use crate::proto::cluster::cluster_service_client::ClusterServiceClient;
use crate::store::postgres::ClusterView;

/// Metadata carrying the cluster's secret on replica-to-replica calls.
const SECRET_HEADER: &str = "x-durin-cluster-secret";

pub use crate::rpc::{Forwarded, RouteKey};

pub struct Cluster {
    store: Arc<crate::store::postgres::PgStore>,
    me: String,
    shard_count: u32,
    engine: Arc<Engine>,
    view: watch::Receiver<ClusterView>,
    peers: Mutex<HashMap<String, ClusterServiceClient<Channel>>>,
    /// Queues polled here lately, with a poll to repeat at other replicas.
    polled: Mutex<HashMap<crate::engine::matching::QueueKey, fetch::PollTemplate>>,
    /// Fetchers running: (queue, replica address).
    fetchers: Mutex<std::collections::HashSet<(crate::engine::matching::QueueKey, String)>>,
    /// Mutual TLS between replicas (None: plaintext, with a warning at start).
    tls: Option<tls::ClusterTls>,
    /// The TLS files as the dialled connections were made with them, and when last checked.
    tls_seen: Mutex<(Vec<Option<std::time::SystemTime>>, std::time::Instant)>,
}

/// How often the cluster TLS files are checked for a rotation.
const TLS_RELOAD_CHECK: Duration = Duration::from_secs(2);

impl Cluster {
    pub fn new(
        store: Arc<crate::store::postgres::PgStore>,
        engine: Arc<Engine>,
        view: watch::Receiver<ClusterView>,
        tls: Option<tls::ClusterTls>,
    ) -> Arc<Self> {
        let seen = tls.as_ref().map(|t| t.mtimes()).unwrap_or_default();
        Arc::new(Self {
            tls,
            tls_seen: Mutex::new((seen, std::time::Instant::now())),
            me: store.replica_id().to_string(),
            shard_count: crate::store::Store::shard_count(&*store),
            store,
            engine,
            view,
            peers: Mutex::new(HashMap::new()),
            fetchers: Mutex::new(Default::default()),
            polled: Mutex::new(HashMap::new()),
        })
    }

    /// Where a request goes: None to serve it here, or the address of the replica that owns
    /// its shard. UNAVAILABLE while the shard has no live owner (it is moving; clients retry).
    pub fn remote_for(&self, key: RouteKey<'_>) -> Result<Option<String>, Status> {
        let (namespace, id) = match key {
            RouteKey::Local => return Ok(None),
            RouteKey::Id(ns, id) => (ns.to_string(), id.to_string()),
            RouteKey::Activity(ns, id) if !id.is_empty() => {
                (ns.to_string(), crate::engine::standalone::storage_id(id))
            }
            RouteKey::Activity(..) => return Ok(None),
            RouteKey::NexusOperation(ns, id) if !id.is_empty() => (
                ns.to_string(),
                crate::engine::nexus::standalone::storage_id(id),
            ),
            RouteKey::NexusOperation(..) => return Ok(None),
            RouteKey::Token(token) => match crate::engine::parse_token(token) {
                Ok((key, _)) => (key.namespace, key.workflow_id),
                // The handler answers a bad token.
                Err(_) => return Ok(None),
            },
        };
        if id.is_empty() {
            return Ok(None);
        }
        let shard = crate::store::shard_of(self.shard_count, &namespace, &id);
        if self.engine.owns_shard(shard) {
            return Ok(None);
        }
        self.owner_address(shard).map(Some)
    }

    /// The address of the replica serving `shard` (UNAVAILABLE while it has no live owner).
    fn owner_address(&self, shard: u32) -> Result<String, Status> {
        let view = self.view.borrow();
        match view.owners.get(shard as usize) {
            Some(Some(owner)) if *owner != self.me => match view.address_of(owner) {
                Some(address) => Ok(address.to_string()),
                None => Err(Status::unavailable(format!(
                    "shard {shard}'s owner {owner} is not reachable; retry"
                ))),
            },
            _ => Err(Status::unavailable(format!(
                "shard {shard} is moving between replicas; retry"
            ))),
        }
    }

    /// How long a call waits for a shard whose owner cannot be reached to be taken over: the
    /// owner's lease runs out after the lease TTL, and a survivor takes it at its next
    /// membership round (a third of the TTL later).
    pub fn takeover_bound(&self) -> Duration {
        self.store.lease_ttl() * 2 + Duration::from_secs(2)
    }

    /// A call for a shard whose owner is unreachable (or that is moving) answered `status`:
    /// waits a little, until the view of the cluster changes, so the caller can try again
    /// (here, if this replica took the shard over, or at the new owner). Gives `status` back
    /// once the call's deadline, or the takeover bound, has passed. Safe to retry: the call
    /// did not reach an owner, or the owner refused it without acting (UNAVAILABLE).
    pub async fn wait_for_takeover<T>(
        &self,
        req: &Request<T>,
        patience: &mut Option<tokio::time::Instant>,
        status: Status,
    ) -> Result<(), Status> {
        let now = tokio::time::Instant::now();
        let until = *patience.get_or_insert_with(|| {
            let client_deadline = req
                .metadata()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .and_then(crate::rpc::parse_grpc_timeout)
                .map(|t| t.saturating_sub(Duration::from_millis(500)));
            now + client_deadline
                .unwrap_or(Duration::MAX)
                .min(self.takeover_bound())
        });
        if now >= until {
            return Err(status);
        }
        tracing::debug!(error = %status.message(), "waiting for a shard's takeover before trying again");
        let mut view = self.view.clone();
        view.borrow_and_update();
        let pause = Duration::from_millis(250).min(until - now);
        let _ = tokio::time::timeout(pause, view.changed()).await;
        Ok(())
    }

    /// Re-reads namespaces and Nexus endpoints from the database into this replica's engine.
    pub async fn refresh_namespaces(&self) -> Result<(), Status> {
        let records = self
            .store
            .namespaces()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        self.engine
            .refresh_nexus_endpoints(&records)
            .await
            .map_err(crate::rpc::errors::to_status)?;
        self.engine
            .refresh_namespaces(records)
            .await
            .map_err(crate::rpc::errors::to_status)
    }

    /// Makes every other replica re-read namespaces (after a change here), so a client that
    /// changed one sees the change on every replica once it has its answer.
    pub async fn namespaces_changed(&self) -> Result<(), Status> {
        for peer in self.peer_addresses() {
            let mut req = Request::new(crate::proto::cluster::RefreshNamespacesRequest {});
            req.set_timeout(Duration::from_secs(5));
            self.sign(&mut req);
            self.client(&peer)?.refresh_namespaces(req).await?;
        }
        Ok(())
    }

    /// The other live replicas' addresses.
    pub fn peer_addresses(&self) -> Vec<String> {
        self.view
            .borrow()
            .replicas
            .iter()
            .filter(|(id, _)| *id != self.me)
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// Adds the cluster's secret: replicas accept each other's calls only with it.
    fn sign<T>(&self, req: &mut Request<T>) {
        if let Ok(v) = self.store.cluster_secret().parse() {
            req.metadata_mut().insert(SECRET_HEADER, v);
        }
    }

    /// Refuses a replica-to-replica call that does not carry the cluster's secret.
    pub fn check_secret(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let given = metadata
            .get(SECRET_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .as_bytes();
        let wanted = self.store.cluster_secret().as_bytes();
        // Compared in full whatever differs first, so timing tells nothing.
        let same = given.len() == wanted.len()
            && given
                .iter()
                .zip(wanted)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(())
        } else {
            Err(Status::permission_denied(
                "replica-to-replica calls need the cluster's secret",
            ))
        }
    }

    fn client(&self, address: &str) -> Result<ClusterServiceClient<Channel>, Status> {
        self.forget_peers_after_rotation();
        let mut peers = self.peers.lock();
        if let Some(c) = peers.get(address) {
            return Ok(c.clone());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
            .map_err(|e| Status::internal(format!("bad replica address {address}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30));
        if let Some(tls) = &self.tls {
            let config = tls
                .client_config(address)
                .map_err(|e| Status::unavailable(format!("cluster TLS: {e}")))?;
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| Status::unavailable(format!("cluster TLS: {e}")))?;
        }
        let client = ClusterServiceClient::new(endpoint.connect_lazy())
            .max_decoding_message_size(crate::rpc::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::rpc::MAX_MESSAGE_BYTES);
        peers.insert(address.to_string(), client.clone());
        Ok(client)
    }

    /// After the cluster's certificate files change, connections are dialled again with the
    /// new ones (the old certificate may be about to expire or be revoked).
    fn forget_peers_after_rotation(&self) {
        let Some(tls) = &self.tls else {
            return;
        };
        let mut seen = self.tls_seen.lock();
        if seen.1.elapsed() < TLS_RELOAD_CHECK {
            return;
        }
        seen.1 = std::time::Instant::now();
        let now = tls.mtimes();
        if now != seen.0 {
            seen.0 = now;
            self.peers.lock().clear();
            tracing::info!(cert = %tls.cert.display(), "cluster TLS files changed; replicas are dialled again");
        }
    }

    /// Runs `method` on the replica at `address` and returns its answer as if served here.
    pub async fn forward<Req: Message, Resp: Message + Default>(
        &self,
        address: &str,
        method: &str,
        req: Request<Req>,
    ) -> Result<Response<Resp>, Status> {
        let timeout = req
            .metadata()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::rpc::parse_grpc_timeout);
        let metadata = req
            .metadata()
            .iter()
            .filter_map(|entry| match entry {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) if k.as_str() != SECRET_HEADER => {
                    Some((k.as_str().to_string(), v.to_str().ok()?.to_string()))
                }
                tonic::metadata::KeyAndValueRef::Ascii(..) => None,
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        let mut outer = Request::new(ForwardRequest {
            method: method.to_string(),
            request: req.into_inner().encode_to_vec(),
            metadata,
        });
        if let Some(t) = timeout {
            outer.set_timeout(t + Duration::from_secs(1));
        }
        self.sign(&mut outer);
        let reply = self.client(address)?.forward(outer).await?;
        let bytes = reply.into_inner().response;
        Resp::decode(bytes.as_slice())
            .map(Response::new)
            .map_err(|e| Status::internal(format!("bad forwarded response: {e}")))
    }
}

impl crate::engine::transfer::TransferRouter for Cluster {
    fn deliver(
        &self,
        shard: u32,
        source: crate::engine::transfer::Source,
        transfer: crate::engine::state::Transfer,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<crate::engine::state::TransferOutcome, String>>
                + Send,
        >,
    > {
        let client = self.owner_address(shard).and_then(|a| self.client(&a));
        let secret = self.store.cluster_secret().to_string();
        Box::pin(async move {
            let mut client = client.map_err(|s| s.message().to_string())?;
            let mut req = Request::new(match source {
                crate::engine::transfer::Source::Run(key) => {
                    crate::proto::cluster::TransferRequest {
                        source_namespace: key.namespace,
                        source_workflow_id: key.workflow_id,
                        source_run_id: key.run_id,
                        transfer: transfer.encode_to_vec(),
                        ..Default::default()
                    }
                }
                crate::engine::transfer::Source::Schedule((namespace, schedule_id)) => {
                    crate::proto::cluster::TransferRequest {
                        source_namespace: namespace,
                        source_schedule_id: schedule_id,
                        transfer: transfer.encode_to_vec(),
                        ..Default::default()
                    }
                }
            });
            req.set_timeout(Duration::from_secs(10));
            if let Ok(v) = secret.parse() {
                req.metadata_mut().insert(SECRET_HEADER, v);
            }
            let reply = client
                .transfer(req)
                .await
                .map_err(|s| s.message().to_string())?
                .into_inner();
            crate::engine::state::TransferOutcome::decode(reply.outcome.as_slice())
                .map_err(|e| format!("bad transfer outcome: {e}"))
        })
    }
}

/// With several replicas, makes every one see a namespace change before the client that made
/// it gets its answer (nothing to do alone).
pub async fn propagate_namespaces(cluster: &Option<Arc<Cluster>>) -> Result<(), Status> {
    match cluster {
        Some(c) => c.namespaces_changed().await,
        None => Ok(()),
    }
}

/// With several replicas, takes in what the others changed of the namespaces and the Nexus
/// endpoint registry (nothing to do alone).
pub async fn refresh_from_store(cluster: &Option<Arc<Cluster>>) -> Result<(), Status> {
    match cluster {
        Some(c) => c.refresh_namespaces().await,
        None => Ok(()),
    }
}

/// The request metadata a forwarded call carried, restored for the handler.
pub fn restore_metadata(pairs: HashMap<String, String>) -> MetadataMap {
    let mut map = MetadataMap::new();
    for (k, v) in pairs {
        if let (Ok(key), Ok(value)) = (
            k.parse::<MetadataKey<tonic::metadata::Ascii>>(),
            v.parse::<MetadataValue<tonic::metadata::Ascii>>(),
        ) {
            map.insert(key, value);
        }
    }
    map
}
