//! The gRPC front door: Temporal's WorkflowService and OperatorService plus gRPC health.

pub mod auth;
pub mod authz;
pub mod multi_operation;
pub mod nexus_dispatch;
pub mod nexus_http;
pub mod operator_service;
pub mod overload;
pub mod rate;
pub mod workflow_service;

use std::sync::Arc;

use tonic::codec::CompressionEncoding;
use tonic::transport::Server;

use crate::cluster::route::{ClusterHandler, Routed};
use crate::engine::Engine;
use crate::proto::cluster::cluster_service_server::ClusterServiceServer;
use crate::proto::operatorservice::operator_service_server::OperatorServiceServer;
use crate::proto::workflowservice::workflow_service_server::WorkflowServiceServer;
use authz::Guarded;

/// Who may talk to the gRPC port, and how.
#[derive(Clone)]
pub struct Access {
    /// TLS (mutual TLS with a client CA) from files re-read when they change.
    pub tls: Option<Arc<crate::tls::ReloadingAcceptor>>,
    /// Bearer tokens with the namespaces each may use.
    pub auth: Option<Arc<auth::AuthPolicy>>,
    /// Requests in flight beyond which new ones get RESOURCE_EXHAUSTED.
    pub max_inflight: usize,
    /// The same for long polls and other calls that wait by design.
    pub max_waiting: usize,
    /// Requests per second each namespace may make (0: no limit).
    pub namespace_rps: u32,
    /// Client connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
}

/// Durin's own version (`--version`, the build_information metric).
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

macro_rules! temporal_version {
    () => {
        "1.32.0"
    };
}

/// The Temporal server release whose API Durin answers as, reported as `server_version` by
/// GetSystemInfo and GetClusterInfo: clients gate features on it (the Web UI hides counts,
/// bulk actions, child workflows and reset options from servers it thinks old; from 1.30 it
/// offers standalone activities, from 1.32 worker counts). The release `temporal server
/// start-dev` 1.9.1 runs, whose UI (v2.54.1) the tests drive.
pub const TEMPORAL_VERSION: &str = temporal_version!();

/// The commit the binary was built from (`git rev-parse HEAD` at build time).
pub const COMMIT: &str = env!("DURIN_COMMIT");

/// What `durin --version` prints after the name: the version, then the commit.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("DURIN_COMMIT"),
    "), Temporal API as server ",
    temporal_version!()
);

pub const DEFAULT_MAX_INFLIGHT: usize = 4096;
pub const DEFAULT_MAX_WAITING: usize = 16_384;

impl Default for Access {
    fn default() -> Self {
        Self {
            tls: None,
            auth: None,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            max_waiting: DEFAULT_MAX_WAITING,
            namespace_rps: rate::DEFAULT_NAMESPACE_RPS,
            max_connections: crate::connections::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// The replica-to-replica side of a replica with PostgreSQL: Durin's cluster protocol on its
/// own port (mutual TLS with the cluster's CA when configured), never on the client port.
pub struct ClusterPort {
    pub cluster: Arc<crate::cluster::Cluster>,
    pub listener: tokio::net::TcpListener,
    pub tls: Option<Arc<crate::tls::ReloadingAcceptor>>,
}

/// Serves the client port (and the cluster port, with several replicas) until `shutdown`
/// resolves.
pub async fn serve(
    engine: Arc<Engine>,
    cluster: Option<ClusterPort>,
    listener: tokio::net::TcpListener,
    access: Access,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    use futures::FutureExt;
    let shutdown = shutdown.shared();
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<WorkflowServiceServer<Guarded<Routed<workflow_service::WorkflowHandler>>>>()
        .await;
    let routing = cluster.as_ref().map(|c| c.cluster.clone());
    let rates = rate::NamespaceRates::new(access.namespace_rps).map(Arc::new);
    let handler = Arc::new(Guarded::new(
        Routed::new(
            workflow_service::WorkflowHandler::new(engine.clone(), routing.clone()),
            routing.clone(),
        ),
        access.auth.clone(),
        rates.clone(),
    ));
    // Forwarded calls run through the same handler stack (authorization included).
    let cluster_server = cluster.map(|port| {
        let service = ClusterServiceServer::new(ClusterHandler::new(
            handler.clone(),
            engine.clone(),
            port.cluster,
        ))
        .max_decoding_message_size(crate::rpc::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(crate::rpc::MAX_MESSAGE_BYTES);
        let router = Server::builder().add_service(service);
        let shutdown = shutdown.clone();
        // Peers keep a connection or two each.
        let cap = Arc::new(tokio::sync::Semaphore::new(
            crate::connections::DEFAULT_MAX_CONNECTIONS,
        ));
        async move {
            match port.tls {
                Some(acceptor) => {
                    let incoming = acceptor.incoming(port.listener, cap);
                    router
                        .serve_with_incoming_shutdown(incoming, shutdown)
                        .await
                }
                None => {
                    let incoming = crate::connections::plain(port.listener, cap);
                    router
                        .serve_with_incoming_shutdown(incoming, shutdown)
                        .await
                }
            }
        }
    });
    let workflow = WorkflowServiceServer::from_arc(handler)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(crate::rpc::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(crate::rpc::MAX_MESSAGE_BYTES);
    let nexus_http = nexus_http::routes(engine.clone(), access.auth.clone());
    let operator = OperatorServiceServer::new(Guarded::new(
        operator_service::OperatorHandler::new(engine, routing),
        access.auth.clone(),
        rates,
    ))
    .accept_compressed(CompressionEncoding::Gzip)
    .send_compressed(CompressionEncoding::Gzip);
    // Nexus over HTTP (HTTP/1.1) is served beside the gRPC services, on the same port.
    let routes = tonic::service::Routes::new(
        health_service
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip),
    )
    .add_service(workflow)
    .add_service(operator)
    .into_axum_router()
    .merge(nexus_http);
    let router = Server::builder()
        .accept_http1(true)
        .layer(crate::metrics::RpcMetricsLayer)
        .layer(auth::AuthenticateLayer::new(access.auth.clone()))
        .layer(overload::OverloadLayer::new(
            access.max_inflight,
            access.max_waiting,
        ))
        .add_routes(tonic::service::Routes::from(routes));
    let cap = Arc::new(tokio::sync::Semaphore::new(access.max_connections.max(1)));
    let clients = async move {
        match access.tls {
            Some(acceptor) => {
                let incoming = acceptor.incoming(listener, cap);
                router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await
            }
            None => {
                let incoming = crate::connections::plain(listener, cap);
                router
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await
            }
        }
    };
    match cluster_server {
        Some(replicas) => tokio::try_join!(clients, replicas).map(|_| ()),
        None => clients.await,
    }
}
