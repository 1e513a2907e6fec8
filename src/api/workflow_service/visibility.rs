//! Listing and counting: workflows (also the legacy open/closed lists and scans), schedules
//! and batch operations; with several replicas a client's list or count covers every
//! replica's shards (`cluster/visibility.rs` merges them).

use temporalio_protos::temporal::api::workflowservice::v1::*;
use tonic::{Request, Response};

use super::{Reply, WorkflowHandler, ok, same_call};
use crate::cluster::visibility::{ActivityList, ExecutionList, NexusOperationList, WorkflowList};
use crate::engine::visibility::ExecutionCount;
use crate::rpc::errors::to_status;

impl WorkflowHandler {
    pub(super) async fn legacy_open_page(
        &self,
        req: Request<ListOpenWorkflowExecutionsRequest>,
    ) -> Reply<ListOpenWorkflowExecutionsResponse> {
        let list = crate::engine::visibility::legacy_open(req.get_ref());
        let resp = self.workflows_page(same_call(&req, list)).await?;
        let resp = resp.into_inner();
        Ok(Response::new(ListOpenWorkflowExecutionsResponse {
            executions: resp.executions,
            next_page_token: resp.next_page_token,
        }))
    }

    pub(super) async fn legacy_closed_page(
        &self,
        req: Request<ListClosedWorkflowExecutionsRequest>,
    ) -> Reply<ListClosedWorkflowExecutionsResponse> {
        let list = crate::engine::visibility::legacy_closed(req.get_ref());
        let resp = self.workflows_page(same_call(&req, list)).await?;
        let resp = resp.into_inner();
        Ok(Response::new(ListClosedWorkflowExecutionsResponse {
            executions: resp.executions,
            next_page_token: resp.next_page_token,
        }))
    }

    pub(super) async fn workflows_page(
        &self,
        req: Request<ListWorkflowExecutionsRequest>,
    ) -> Reply<ListWorkflowExecutionsResponse> {
        self.executions_page::<WorkflowList>(req).await
    }

    /// A page of workflows or standalone activities; with several replicas, merged from
    /// every replica's own.
    async fn executions_page<L: ExecutionList>(&self, mut req: Request<L::Req>) -> Reply<L::Resp> {
        if req
            .extensions()
            .get::<crate::cluster::Forwarded>()
            .is_none()
        {
            let page_size = L::page_size(req.get_mut());
            *page_size = crate::engine::visibility::capped_page_size(*page_size);
        }
        let Some(cluster) = self.merging(&req) else {
            return ok(L::list(&self.engine, req.into_inner()).await);
        };
        // With several replicas each lists its own shards; the pages are merged here.
        let (offset, page_size) =
            crate::engine::visibility::page_of(&L::paging(req.get_ref())).map_err(to_status)?;
        let first = L::first_n(req.get_ref(), offset + page_size);
        let local = L::list(&self.engine, first).await.map_err(to_status)?;
        cluster
            .list_everywhere::<L>(local, &req, offset, page_size)
            .await
            .map(Response::new)
    }

    pub(super) async fn workflows_scan(
        &self,
        req: Request<ScanWorkflowExecutionsRequest>,
    ) -> Reply<ScanWorkflowExecutionsResponse> {
        // A scan is a list without an order promise: answered as one, merged across
        // replicas the same way.
        let r = req.get_ref();
        let list = ListWorkflowExecutionsRequest {
            namespace: r.namespace.clone(),
            page_size: r.page_size,
            next_page_token: r.next_page_token.clone(),
            query: r.query.clone(),
        };
        let resp = self
            .workflows_page(same_call(&req, list))
            .await?
            .into_inner();
        Ok(Response::new(ScanWorkflowExecutionsResponse {
            executions: resp.executions,
            next_page_token: resp.next_page_token,
        }))
    }

    pub(super) async fn workflows_count(
        &self,
        req: Request<CountWorkflowExecutionsRequest>,
    ) -> Reply<CountWorkflowExecutionsResponse> {
        let local = self
            .engine
            .count_workflows(req.get_ref().clone())
            .await
            .map_err(to_status)?;
        self.merged_count(&req, local).await
    }

    /// This replica's count; with several replicas, added up with every other's.
    async fn merged_count<C: ExecutionCount>(&self, req: &Request<C::Req>, local: C) -> Reply<C> {
        match self.merging(req) {
            // With several replicas each counts its own shards.
            Some(cluster) => cluster
                .count_everywhere(local, req)
                .await
                .map(Response::new),
            None => Ok(Response::new(local)),
        }
    }

    pub(super) async fn activities_page(
        &self,
        req: Request<ListActivityExecutionsRequest>,
    ) -> Reply<ListActivityExecutionsResponse> {
        self.executions_page::<ActivityList>(req).await
    }

    pub(super) async fn activities_count(
        &self,
        req: Request<CountActivityExecutionsRequest>,
    ) -> Reply<CountActivityExecutionsResponse> {
        let local = self
            .engine
            .count_activities(req.get_ref().clone())
            .await
            .map_err(to_status)?;
        self.merged_count(&req, local).await
    }

    pub(super) async fn nexus_operations_page(
        &self,
        req: Request<ListNexusOperationExecutionsRequest>,
    ) -> Reply<ListNexusOperationExecutionsResponse> {
        self.executions_page::<NexusOperationList>(req).await
    }

    pub(super) async fn nexus_operations_count(
        &self,
        req: Request<CountNexusOperationExecutionsRequest>,
    ) -> Reply<CountNexusOperationExecutionsResponse> {
        let local = self
            .engine
            .count_nexus_operations(req.get_ref().clone())
            .await
            .map_err(to_status)?;
        self.merged_count(&req, local).await
    }

    pub(super) async fn schedules_page(
        &self,
        req: Request<ListSchedulesRequest>,
    ) -> Reply<ListSchedulesResponse> {
        let Some(cluster) = self.merging(&req) else {
            return ok(self.engine.list_schedules(req.into_inner()).await);
        };
        // With several replicas each lists the schedules of its own shards.
        let page_size = match req.get_ref().maximum_page_size {
            n if n > 0 => (n as usize).min(crate::engine::schedule_api::DEFAULT_PAGE),
            _ => crate::engine::schedule_api::DEFAULT_PAGE,
        };
        let local = self
            .engine
            .list_schedules(req.get_ref().clone())
            .await
            .map_err(to_status)?;
        cluster
            .list_schedules_everywhere(local, &req, page_size)
            .await
            .map(Response::new)
    }

    pub(super) async fn batches_page(
        &self,
        req: Request<ListBatchOperationsRequest>,
    ) -> Reply<ListBatchOperationsResponse> {
        let Some(cluster) = self.merging(&req) else {
            return ok(self.engine.list_batches(req.into_inner()).await);
        };
        // With several replicas each lists the jobs of its own shards; merged here.
        cluster
            .list_batches_everywhere(&self.engine, &req)
            .await
            .map(Response::new)
    }

    pub(super) async fn schedules_count(
        &self,
        req: Request<CountSchedulesRequest>,
    ) -> Reply<CountSchedulesResponse> {
        let local = self
            .engine
            .count_schedules(req.get_ref().clone())
            .await
            .map_err(to_status)?;
        let Some(cluster) = self.merging(&req) else {
            return Ok(Response::new(local));
        };
        // With several replicas each counts the schedules of its own shards.
        cluster
            .count_schedules_everywhere(local, &req)
            .await
            .map(Response::new)
    }
}
