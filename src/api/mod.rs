//! The gRPC front door: Temporal's WorkflowService and OperatorService plus gRPC health.

pub mod errors;
pub mod multi_operation;
pub mod operator_service;
pub mod workflow_service;

use std::sync::Arc;

use tonic::codec::CompressionEncoding;
use tonic::transport::Server;

use crate::engine::Engine;
use crate::proto::operatorservice::operator_service_server::OperatorServiceServer;
use crate::proto::workflowservice::workflow_service_server::WorkflowServiceServer;

/// Largest request or response the server handles (histories ship in one response).
const MAX_MESSAGE_BYTES: usize = 128 * 1024 * 1024;

/// Serves until `shutdown` resolves.
pub async fn serve(
    engine: Arc<Engine>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<WorkflowServiceServer<workflow_service::WorkflowHandler>>()
        .await;
    let workflow =
        WorkflowServiceServer::new(workflow_service::WorkflowHandler::new(engine.clone()))
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let operator = OperatorServiceServer::new(operator_service::OperatorHandler::new(engine))
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip);
    // The builder's TCP options only apply to listeners it binds itself; with our own listener
    // Nagle must be turned off per connection, or small replies wait for delayed ACKs (~40 ms).
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |conn| {
            if let Ok(stream) = &conn {
                let _ = stream.set_nodelay(true);
            }
            conn
        },
    );
    Server::builder()
        .layer(crate::metrics::RpcMetricsLayer)
        .add_service(
            health_service
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip),
        )
        .add_service(workflow)
        .add_service(operator)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
