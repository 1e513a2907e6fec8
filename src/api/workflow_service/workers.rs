//! Worker heartbeats and the worker lists made from them (the engine side is
//! `engine/workers.rs`); with several replicas a client's list, count or describe covers
//! every replica's heartbeats.

use temporalio_protos::temporal::api::worker::v1::{WorkerHeartbeat, WorkerInfo};
use temporalio_protos::temporal::api::workflowservice::v1::*;
use tonic::{Request, Response};

use super::{Reply, WorkflowHandler, ok};
use crate::engine::Error;
use crate::rpc::errors::to_status;

impl WorkflowHandler {
    pub(super) async fn record_heartbeats(
        &self,
        req: Request<RecordWorkerHeartbeatRequest>,
    ) -> Reply<RecordWorkerHeartbeatResponse> {
        ok(self
            .engine
            .record_worker_heartbeats(req.into_inner())
            .await
            .map(|_| RecordWorkerHeartbeatResponse {}))
    }

    pub(super) async fn workers_page(
        &self,
        req: Request<ListWorkersRequest>,
    ) -> Reply<ListWorkersResponse> {
        let Some(cluster) = self.merging(&req) else {
            return ok(self.engine.list_workers(req.into_inner()).await);
        };
        let r = req.get_ref();
        let all = self.workers_everywhere(cluster, r, req.metadata()).await?;
        ok(crate::engine::workers::page_of(
            all,
            r.page_size,
            &r.next_page_token,
        ))
    }

    pub(super) async fn workers_count(
        &self,
        req: Request<CountWorkersRequest>,
    ) -> Reply<CountWorkersResponse> {
        let Some(cluster) = self.merging(&req) else {
            return ok(self.engine.count_workers(req.into_inner()).await);
        };
        let r = req.get_ref();
        let list = ListWorkersRequest {
            namespace: r.namespace.clone(),
            query: r.query.clone(),
            include_system_workers: r.include_system_workers,
            ..Default::default()
        };
        let all = self
            .workers_everywhere(cluster, &list, req.metadata())
            .await?;
        Ok(Response::new(CountWorkersResponse {
            count: all.len() as i64,
        }))
    }

    /// The workers a list selects, here and on every other replica.
    async fn workers_everywhere(
        &self,
        cluster: &crate::cluster::Cluster,
        list: &ListWorkersRequest,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<Vec<WorkerHeartbeat>, tonic::Status> {
        let local = self
            .engine
            .matching_workers(&list.namespace, &list.query, list.include_system_workers)
            .await
            .map_err(to_status)?;
        cluster.workers_everywhere(local, list, metadata).await
    }

    pub(super) async fn worker_described(
        &self,
        req: Request<DescribeWorkerRequest>,
    ) -> Reply<DescribeWorkerResponse> {
        let Some(cluster) = self.merging(&req) else {
            return ok(self.engine.describe_worker(req.into_inner()).await);
        };
        let local = match self.engine.describe_worker(req.get_ref().clone()).await {
            Ok(found) => found.worker_info.and_then(|info| info.worker_heartbeat),
            Err(Error::NotFound(_)) => None,
            Err(e) => return Err(to_status(e)),
        };
        match cluster.describe_worker_everywhere(local, &req).await? {
            Some(heartbeat) => Ok(Response::new(DescribeWorkerResponse {
                worker_info: Some(WorkerInfo {
                    worker_heartbeat: Some(heartbeat),
                }),
            })),
            None => Err(to_status(Error::NotFound(format!(
                "Worker {} not found",
                req.get_ref().worker_instance_key
            )))),
        }
    }
}
