//! Routing of WorkflowService calls: each call is served here when this replica owns its
//! shard, and forwarded to the owner otherwise. The same table drives the receiving side:
//! a forwarded call is decoded and run through the full handler stack (auth included).

use std::sync::Arc;

use prost::Message;
use temporalio_protos::temporal::api::workflowservice::v1::*;
use tonic::{Request, Response, Status};

use super::Cluster;
use crate::engine::transfer::Source;
use crate::proto::cluster::cluster_service_server::ClusterService;
use crate::proto::cluster::{
    ForwardRequest, ForwardResponse, RefreshNamespacesRequest, RefreshNamespacesResponse,
    TransferRequest, TransferResponse,
};
use crate::proto::workflowservice::workflow_service_server::WorkflowService;
use crate::rpc::{Forwarded, RouteKey};

/// A handler that forwards calls for shards another replica owns.
pub struct Routed<H> {
    inner: H,
    cluster: Option<Arc<Cluster>>,
}

impl<H> Routed<H> {
    pub fn new(inner: H, cluster: Option<Arc<Cluster>>) -> Self {
        Self { inner, cluster }
    }

    /// The owner's address when the call must go there.
    fn remote<T>(
        &self,
        req: &Request<T>,
        key: RouteKey<'_>,
    ) -> Result<Option<(&Cluster, String)>, Status> {
        let Some(cluster) = &self.cluster else {
            return Ok(None);
        };
        if req.extensions().get::<Forwarded>().is_some() {
            return Ok(None);
        }
        Ok(cluster.remote_for(key)?.map(|a| (&**cluster, a)))
    }
}

impl<H: Send + Sync> Routed<H> {
    /// Like [`Routed::remote`], but while the shard has no reachable owner, waits for the
    /// takeover (see [`Cluster::wait_for_takeover`]).
    async fn remote_or_wait<T>(
        &self,
        req: &Request<T>,
        key: RouteKey<'_>,
        patience: &mut Option<tokio::time::Instant>,
    ) -> Result<Option<(&Cluster, String)>, Status> {
        loop {
            match self.remote(req, key) {
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    let Some(cluster) = &self.cluster else {
                        return Err(status);
                    };
                    cluster.wait_for_takeover(req, patience, status).await?;
                }
                other => return other,
            }
        }
    }
}

/// A copy of a request to forward (its message and metadata), so it can be sent again.
fn copy<T: Clone>(req: &Request<T>) -> Request<T> {
    let mut copy = Request::new(req.get_ref().clone());
    *copy.metadata_mut() = req.metadata().clone();
    copy
}

/// Serving or forwarding every WorkflowService RPC of the table (`crate::rpc`).
macro_rules! routes {
    ([] $($method:ident($req:ty) -> $resp:ty, $name:literal, $ns:expr, $key:expr;)*) => {
        #[tonic::async_trait]
        impl<H: WorkflowService> WorkflowService for Routed<H> {
            $(
                async fn $method(&self, req: Request<$req>) -> Result<Response<$resp>, Status> {
                    let key: fn(&$req) -> RouteKey<'_> = $key;
                    let mut patience = None;
                    loop {
                        let Some((cluster, address)) = self.remote_or_wait(&req, key(req.get_ref()), &mut patience).await? else {
                            return self.inner.$method(req).await;
                        };
                        match cluster.forward(&address, $name, copy(&req)).await {
                            Err(status) if status.code() == tonic::Code::Unavailable => {
                                cluster.wait_for_takeover(&req, &mut patience, status).await?
                            }
                            answer => return answer,
                        }
                    }
                }
            )*
        }

        /// Runs a forwarded call through the whole handler stack.
        pub(crate) async fn dispatch(
            svc: &dyn WorkflowService,
            method: &str,
            bytes: &[u8],
            metadata: tonic::metadata::MetadataMap,
        ) -> Result<Vec<u8>, Status> {
            match method {
                $(
                    $name => {
                        let message = <$req>::decode(bytes)
                            .map_err(|e| Status::invalid_argument(format!("bad forwarded {}: {e}", $name)))?;
                        let mut req = Request::new(message);
                        *req.metadata_mut() = metadata;
                        req.extensions_mut().insert(Forwarded);
                        Ok(svc.$method(req).await?.into_inner().encode_to_vec())
                    }
                )*
                other => Err(Status::unimplemented(format!("cannot forward {other}"))),
            }
        }
    };
}

crate::workflow_rpcs!(routes[]);

/// The receiving end of `durin.cluster.v1.ClusterService`.
pub struct ClusterHandler {
    svc: Arc<dyn WorkflowService>,
    engine: Arc<crate::engine::Engine>,
    cluster: Arc<Cluster>,
}

impl ClusterHandler {
    pub fn new(
        svc: Arc<dyn WorkflowService>,
        engine: Arc<crate::engine::Engine>,
        cluster: Arc<Cluster>,
    ) -> Self {
        Self {
            svc,
            engine,
            cluster,
        }
    }
}

impl ClusterHandler {
    /// The cluster's secret, besides the peer's certificate (with cluster TLS).
    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        self.cluster.check_secret(req.metadata())
    }
}

#[tonic::async_trait]
impl ClusterService for ClusterHandler {
    async fn forward(
        &self,
        req: Request<ForwardRequest>,
    ) -> Result<Response<ForwardResponse>, Status> {
        self.check(&req)?;
        let ForwardRequest {
            method,
            request,
            metadata,
        } = req.into_inner();
        let response = dispatch(
            &*self.svc,
            &method,
            &request,
            super::restore_metadata(metadata),
        )
        .await?;
        Ok(Response::new(ForwardResponse { response }))
    }

    async fn refresh_namespaces(
        &self,
        req: Request<RefreshNamespacesRequest>,
    ) -> Result<Response<RefreshNamespacesResponse>, Status> {
        self.check(&req)?;
        self.cluster.refresh_namespaces().await?;
        Ok(Response::new(RefreshNamespacesResponse {}))
    }

    async fn transfer(
        &self,
        req: Request<TransferRequest>,
    ) -> Result<Response<TransferResponse>, Status> {
        self.check(&req)?;
        let req = req.into_inner();
        let transfer = crate::engine::state::Transfer::decode(req.transfer.as_slice())
            .map_err(|e| Status::invalid_argument(format!("bad transfer: {e}")))?;
        let source = if req.source_schedule_id.is_empty() {
            Source::Run(crate::engine::RunKey {
                namespace: req.source_namespace,
                workflow_id: req.source_workflow_id,
                run_id: req.source_run_id,
            })
        } else {
            Source::Schedule((req.source_namespace, req.source_schedule_id))
        };
        let outcome = self
            .engine
            .receive_transfer(source, transfer)
            .await
            .map_err(crate::rpc::errors::to_status)?;
        Ok(Response::new(TransferResponse {
            outcome: outcome.encode_to_vec(),
        }))
    }
}
