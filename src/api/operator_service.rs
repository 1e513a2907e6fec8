//! OperatorService: the search-attribute registry (the calls SDKs and the CLI use); other
//! calls answer UNIMPLEMENTED through the generated default stubs.

use std::sync::Arc;

use temporalio_protos::temporal::api::operatorservice::v1::*;
use tonic::{Request, Response, Status};

use super::errors::to_status;
use crate::engine::Engine;
use crate::proto::operatorservice::operator_service_server::OperatorService;

pub struct OperatorHandler {
    engine: Arc<Engine>,
}

impl OperatorHandler {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
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
            .map(|_| Response::new(AddSearchAttributesResponse {}))
            .map_err(to_status)
    }

    async fn remove_search_attributes(
        &self,
        req: Request<RemoveSearchAttributesRequest>,
    ) -> Result<Response<RemoveSearchAttributesResponse>, Status> {
        self.engine
            .remove_search_attributes(req.into_inner())
            .await
            .map(|_| Response::new(RemoveSearchAttributesResponse {}))
            .map_err(to_status)
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
}
