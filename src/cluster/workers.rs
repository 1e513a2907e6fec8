//! Worker heartbeats across replicas: each replica holds the heartbeats it received, and the
//! replica a client asked gathers everyone's. A worker whose heartbeats reached two replicas
//! (its connection moved) is reported once, as its latest heartbeat says.

use std::collections::HashMap;

use temporalio_protos::temporal::api::worker::v1::WorkerHeartbeat;
use temporalio_protos::temporal::api::workflowservice::v1::{
    DescribeWorkerRequest, DescribeWorkerResponse, ListWorkersRequest, ListWorkersResponse,
};
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Status};

use super::Cluster;
use crate::engine::clock::opt_ts_millis;

impl Cluster {
    /// The workers `req` selects on every replica, `local` (this replica's) included.
    #[allow(deprecated)] // `workers_info`: the full heartbeats travel there
    pub async fn workers_everywhere(
        &self,
        local: Vec<WorkerHeartbeat>,
        req: &ListWorkersRequest,
        metadata: &MetadataMap,
    ) -> Result<Vec<WorkerHeartbeat>, Status> {
        let mut all = local;
        let everything = ListWorkersRequest {
            page_size: 0,
            next_page_token: Vec::new(),
            ..req.clone()
        };
        for peer in self.peer_addresses() {
            let mut one = Request::new(everything.clone());
            *one.metadata_mut() = metadata.clone();
            let part: ListWorkersResponse =
                self.forward(&peer, "ListWorkers", one).await?.into_inner();
            all.extend(
                part.workers_info
                    .into_iter()
                    .filter_map(|info| info.worker_heartbeat),
            );
        }
        Ok(latest_per_worker(all))
    }

    /// A worker described by whichever replicas hold it (the latest heartbeat wins).
    pub async fn describe_worker_everywhere(
        &self,
        local: Option<WorkerHeartbeat>,
        req: &Request<DescribeWorkerRequest>,
    ) -> Result<Option<WorkerHeartbeat>, Status> {
        let mut found: Vec<WorkerHeartbeat> = local.into_iter().collect();
        for peer in self.peer_addresses() {
            let mut one = Request::new(req.get_ref().clone());
            *one.metadata_mut() = req.metadata().clone();
            match self
                .forward::<_, DescribeWorkerResponse>(&peer, "DescribeWorker", one)
                .await
            {
                Ok(resp) => found.extend(
                    resp.into_inner()
                        .worker_info
                        .and_then(|info| info.worker_heartbeat),
                ),
                Err(status) if status.code() == Code::NotFound => {}
                Err(status) => return Err(status),
            }
        }
        Ok(latest_per_worker(found).into_iter().next())
    }
}

fn latest_per_worker(all: Vec<WorkerHeartbeat>) -> Vec<WorkerHeartbeat> {
    let mut latest: HashMap<String, WorkerHeartbeat> = HashMap::new();
    for hb in all {
        match latest.get(&hb.worker_instance_key) {
            Some(seen)
                if opt_ts_millis(&seen.heartbeat_time) >= opt_ts_millis(&hb.heartbeat_time) => {}
            _ => {
                latest.insert(hb.worker_instance_key.clone(), hb);
            }
        }
    }
    latest.into_values().collect()
}
