//! OperatorService: the search-attribute registry (the calls SDKs and the CLI use), namespace
//! deletion and the Nexus endpoint registry; other calls answer UNIMPLEMENTED through the
//! generated default stubs.

use std::sync::Arc;

use temporalio_protos::temporal::api::operatorservice::v1::*;
use tonic::{Request, Response, Status};

use crate::engine::Engine;
use crate::proto::operatorservice::operator_service_server::OperatorService;
use crate::rpc::errors::to_status;

pub struct OperatorHandler {
    engine: Arc<Engine>,
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl OperatorHandler {
    pub fn new(engine: Arc<Engine>, cluster: Option<Arc<crate::cluster::Cluster>>) -> Self {
        Self { engine, cluster }
    }
}

#[tonic::async_trait]
impl OperatorService for OperatorHandler {
    async fn add_search_attributes(
        &self,
        req: Request<AddSearchAttributesRequest>,
    ) -> Result<Response<AddSearchAttributesResponse>, Status> {
        self.engine
            .add_search_attributes(req.into_inner())
            .await
            .map_err(to_status)?;
        crate::cluster::propagate_namespaces(&self.cluster).await?;
        Ok(Response::new(AddSearchAttributesResponse {}))
    }

    async fn remove_search_attributes(
        &self,
        req: Request<RemoveSearchAttributesRequest>,
    ) -> Result<Response<RemoveSearchAttributesResponse>, Status> {
        self.engine
            .remove_search_attributes(req.into_inner())
            .await
            .map_err(to_status)?;
        crate::cluster::propagate_namespaces(&self.cluster).await?;
        Ok(Response::new(RemoveSearchAttributesResponse {}))
    }

    async fn delete_namespace(
        &self,
        req: Request<DeleteNamespaceRequest>,
    ) -> Result<Response<DeleteNamespaceResponse>, Status> {
        let deleted = self
            .engine
            .delete_namespace(req.into_inner())
            .await
            .map_err(to_status)?;
        // The other replicas see the tombstone and delete what their shards hold.
        crate::cluster::propagate_namespaces(&self.cluster).await?;
        Ok(Response::new(deleted))
    }

    async fn list_search_attributes(
        &self,
        req: Request<ListSearchAttributesRequest>,
    ) -> Result<Response<ListSearchAttributesResponse>, Status> {
        self.engine
            .list_search_attributes(req.into_inner())
            .await
            .map(Response::new)
            .map_err(to_status)
    }

    async fn create_nexus_endpoint(
        &self,
        req: Request<CreateNexusEndpointRequest>,
    ) -> Result<Response<CreateNexusEndpointResponse>, Status> {
        // Names and versions are checked against what other replicas changed.
        crate::cluster::refresh_from_store(&self.cluster).await?;
        let endpoint = self
            .engine
            .create_nexus_endpoint(req.into_inner())
            .await
            .map_err(to_status)?;
        crate::cluster::propagate_namespaces(&self.cluster).await?;
        Ok(Response::new(CreateNexusEndpointResponse {
            endpoint: Some(endpoint),
        }))
    }

    async fn update_nexus_endpoint(
        &self,
        req: Request<UpdateNexusEndpointRequest>,
    ) -> Result<Response<UpdateNexusEndpointResponse>, Status> {
        // Names and versions are checked against what other replicas changed.
        crate::cluster::refresh_from_store(&self.cluster).await?;
        let endpoint = self
            .engine
            .update_nexus_endpoint(req.into_inner())
            .await
            .map_err(to_status)?;
        crate::cluster::propagate_namespaces(&self.cluster).await?;
        Ok(Response::new(UpdateNexusEndpointResponse {
            endpoint: Some(endpoint),
        }))
    }

    async fn delete_nexus_endpoint(
        &self,
        req: Request<DeleteNexusEndpointRequest>,
    ) -> Result<Response<DeleteNexusEndpointResponse>, Status> {
        // Names and versions are checked against what other replicas changed.
        crate::cluster::refresh_from_store(&self.cluster).await?;
        self.engine
            .delete_nexus_endpoint(req.into_inner())
            .await
            .map_err(to_status)?;
        crate::cluster::propagate_namespaces(&self.cluster).await?;
        Ok(Response::new(DeleteNexusEndpointResponse {}))
    }

    async fn get_nexus_endpoint(
        &self,
        req: Request<GetNexusEndpointRequest>,
    ) -> Result<Response<GetNexusEndpointResponse>, Status> {
        let endpoint = self
            .engine
            .get_nexus_endpoint(req.into_inner())
            .await
            .map_err(to_status)?;
        Ok(Response::new(GetNexusEndpointResponse {
            endpoint: Some(endpoint),
        }))
    }

    async fn list_nexus_endpoints(
        &self,
        req: Request<ListNexusEndpointsRequest>,
    ) -> Result<Response<ListNexusEndpointsResponse>, Status> {
        self.engine
            .list_nexus_endpoints(req.into_inner())
            .await
            .map(Response::new)
            .map_err(to_status)
    }
}
