//! How the controllers and `durin apply` reach the engine: the same WorkflowService calls an
//! SDK makes, either in-process (the operator runs the engine) or over gRPC (`durin apply`
//! against a `durin dev` server). Going through the API keeps one set of validation rules.

use std::future::Future;
use std::sync::Arc;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use super::connection::{ApiKey, ConnectionArgs, ConnectionError};
use crate::api::workflow_service::WorkflowHandler;
use crate::cluster::Cluster;
use crate::cluster::route::Routed;
use crate::engine::Engine;
use crate::proto::api::workflowservice::v1::*;
use crate::proto::workflowservice::workflow_service_client::WorkflowServiceClient;
use crate::proto::workflowservice::workflow_service_server::WorkflowService;

/// Retention given to namespaces the operator creates on first use.
const NAMESPACE_RETENTION_SECS: i64 = 3 * 24 * 3600;

/// The engine in this process, called through its gRPC handler without a network hop.
#[derive(Clone)]
pub struct Local {
    handler: Arc<Routed<WorkflowHandler>>,
}

impl Local {
    /// With several replicas (`cluster`), calls for another replica's shards go there.
    pub fn new(engine: Arc<Engine>, cluster: Option<Arc<Cluster>>) -> Self {
        Self {
            handler: Arc::new(Routed::new(
                WorkflowHandler::new(engine, cluster.clone()),
                cluster,
            )),
        }
    }
}

/// A Durin (or any Temporal-compatible) server over gRPC.
#[derive(Clone)]
pub struct Remote {
    client: WorkflowServiceClient<InterceptedService<Channel, ApiKey>>,
}

impl Remote {
    /// Connects with the `temporal` CLI's connection flags (TLS, mutual TLS, API key).
    pub async fn connect(args: &ConnectionArgs) -> Result<Self, ConnectionError> {
        let (channel, api_key) = args.connect().await?;
        Ok(Self {
            client: WorkflowServiceClient::with_interceptor(channel, api_key),
        })
    }
}

/// The trait, and its in-process and gRPC implementations, from the table of RPCs
/// (`crate::rpc`).
macro_rules! frontend {
    ([] $($method:ident($req:ty) -> $resp:ty, $name:literal, $ns:expr, $key:expr;)*) => {
        pub trait Frontend: Send + Sync {
            $(
                fn $method(&self, req: $req)
                    -> impl Future<Output = Result<$resp, Status>> + Send;
            )*

            /// Creates the namespace unless it exists.
            fn ensure_namespace(
                &self,
                namespace: &str,
            ) -> impl Future<Output = Result<(), Status>> + Send {
                let req = RegisterNamespaceRequest {
                    namespace: namespace.to_string(),
                    workflow_execution_retention_period: Some(prost_wkt_types::Duration {
                        seconds: NAMESPACE_RETENTION_SECS,
                        nanos: 0,
                    }),
                    ..Default::default()
                };
                async move {
                    match self.register_namespace(req).await {
                        Ok(_) => Ok(()),
                        Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
                        Err(s) => Err(s),
                    }
                }
            }
        }

        impl Frontend for Local {
            $(
                async fn $method(&self, req: $req) -> Result<$resp, Status> {
                    Ok(self.handler.$method(Request::new(req)).await?.into_inner())
                }
            )*
        }

        impl Frontend for Remote {
            $(
                async fn $method(&self, req: $req) -> Result<$resp, Status> {
                    Ok(self.client.clone().$method(req).await?.into_inner())
                }
            )*
        }
    };
}

crate::workflow_rpcs!(frontend[]);
