//! Replicas for the tests: `durin dev` processes sharing one PostgreSQL database, and calls
//! that retry while a shard moves between them.

use std::time::{Duration, Instant};

use temporalio_client::Client;
use temporalio_client::grpc::WorkflowService;
use temporalio_client::tonic::{Code, Request};
use temporalio_common::protos::temporal::api::{
    deployment::v1::WorkerDeploymentOptions,
    enums::v1::WorkerVersioningMode,
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{PollWorkflowTaskQueueRequest, PollWorkflowTaskQueueResponse},
};

use super::pg_env::PgServer;
use super::{DurinServer, serving_shards};

/// Retries a call while its shard is moving (UNAVAILABLE) or its owner is unreachable.
pub async fn retrying<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, temporalio_client::tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match tokio::time::timeout(Duration::from_secs(5), call()).await {
            Ok(Ok(v)) => return v,
            Ok(Err(s)) if Instant::now() < deadline && s.code() != Code::InvalidArgument => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) if Instant::now() < deadline => {}
            Ok(Err(s)) => panic!("{what}: {s:?}"),
            Err(_) => panic!("{what}: timed out"),
        }
    }
}

pub fn replica(db: &str, id: &str) -> Vec<String> {
    [
        "dev",
        "--postgres",
        db,
        "--replica-id",
        id,
        "--lease-ttl",
        "2",
        "--shards",
        "8",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(super::certs::cluster_tls_args())
    .collect()
}

pub fn serving(server: &DurinServer) -> usize {
    serving_shards(server.log_path())
}

/// Two replicas sharing a fresh database, the shards spread over both, and a client of each.
pub async fn two_replicas(db: &str) -> (PgServer, Vec<DurinServer>, Vec<Client>) {
    two_replicas_with(db, |_| Vec::new()).await
}

/// The same, the second replica started with the environment `second_env` gives from the
/// first (its address, say).
pub async fn two_replicas_with(
    db: &str,
    second_env: impl FnOnce(&DurinServer) -> Vec<(String, String)>,
) -> (PgServer, Vec<DurinServer>, Vec<Client>) {
    let pg = PgServer::start();
    let db = pg.new_database(db);
    let first = DurinServer::start_with(replica(&db, "replica-1"), Vec::new()).await;
    let env = second_env(&first);
    let second = DurinServer::start_with(replica(&db, "replica-2"), env).await;
    let replicas = vec![first, second];
    let balanced = Instant::now();
    while replicas.iter().any(|r| serving(r) < 2) {
        assert!(
            balanced.elapsed() < Duration::from_secs(30),
            "shards never spread"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut clients = Vec::new();
    for r in &replicas {
        clients.push(r.client().await);
    }
    (pg, replicas, clients)
}

/// Starts a workflow under each id, through the replicas' clients in turn (so the runs land
/// in shards all over), with a type no worker runs; retried while shards move.
pub async fn start_spread(clients: &[Client], namespace: &str, ids: &[String], task_queue: &str) {
    use temporalio_client::grpc::WorkflowService;
    use temporalio_client::tonic::Request;
    use temporalio_common::protos::temporal::api::common::v1::WorkflowType;
    use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
    use temporalio_common::protos::temporal::api::workflowservice::v1::StartWorkflowExecutionRequest;
    for (i, id) in ids.iter().enumerate() {
        let client = &clients[i % clients.len()];
        retrying("start", || {
            let mut raw = client.clone();
            let req = StartWorkflowExecutionRequest {
                namespace: namespace.into(),
                workflow_id: id.clone(),
                workflow_type: Some(WorkflowType {
                    name: "NobodyRunsThis".into(),
                }),
                task_queue: Some(TaskQueue {
                    name: task_queue.into(),
                    ..Default::default()
                }),
                request_id: format!("start-{id}"),
                ..Default::default()
            };
            async move { raw.start_workflow_execution(Request::new(req)).await }
        })
        .await;
    }
}

/// One long poll of `task_queue`, versioned when `build_id` is given, for at most `wait`.
pub async fn poll_workflow_task(
    client: &Client,
    task_queue: &str,
    build_id: Option<&str>,
    wait: Duration,
) -> Result<PollWorkflowTaskQueueResponse, temporalio_client::tonic::Status> {
    let mut raw = client.clone();
    let mut req = Request::new(PollWorkflowTaskQueueRequest {
        namespace: "default".into(),
        task_queue: Some(TaskQueue {
            name: task_queue.into(),
            ..Default::default()
        }),
        identity: format!("poller-{}", build_id.unwrap_or("unversioned")),
        deployment_options: build_id.map(|b| WorkerDeploymentOptions {
            deployment_name: "shipping".into(),
            build_id: b.into(),
            worker_versioning_mode: WorkerVersioningMode::Versioned as i32,
        }),
        ..Default::default()
    });
    req.set_timeout(wait);
    raw.poll_workflow_task_queue(req)
        .await
        .map(|r| r.into_inner())
}

/// The outcome of the standalone Nexus operation `id` (in `default`) once it has closed,
/// polled through `client`.
pub async fn nexus_operation_outcome(
    client: &Client,
    id: &str,
) -> Option<temporalio_common::protos::temporal::api::workflowservice::v1::poll_nexus_operation_execution_response::Outcome>{
    use temporalio_common::protos::temporal::api::{
        enums::v1::NexusOperationWaitStage, workflowservice::v1::PollNexusOperationExecutionRequest,
    };
    let since = std::time::Instant::now();
    loop {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "{id} never closed"
        );
        let mut raw = client.clone();
        let mut req = Request::new(PollNexusOperationExecutionRequest {
            namespace: "default".into(),
            operation_id: id.to_string(),
            wait_stage: NexusOperationWaitStage::Closed as i32,
            ..Default::default()
        });
        req.set_timeout(Duration::from_secs(10));
        match raw.poll_nexus_operation_execution(req).await {
            Ok(r) if r.get_ref().outcome.is_some() => return r.into_inner().outcome,
            Ok(_) => {}
            Err(s) if s.code() == Code::Unavailable => {}
            Err(s) => panic!("{id}: {s:?}"),
        }
    }
}
