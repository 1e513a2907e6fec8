//! Worker versioning across replicas sharing one PostgreSQL database: a version registered by
//! a worker polling one replica is seen, and made current, through the other; workflows
//! started through either replica then reach that version's poller (fetched across replicas
//! from its own queue), never an unversioned poller of the same task queue.

mod common;

use std::time::Duration;

use common::replicas::{retrying, start_spread, two_replicas};
use common::unique;
use temporalio_client::{
    Client,
    grpc::WorkflowService,
    tonic::{Code, Request},
};
use temporalio_common::protos::temporal::api::{
    deployment::v1::WorkerDeploymentOptions,
    enums::v1::WorkerVersioningMode,
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        DescribeWorkerDeploymentRequest, PollWorkflowTaskQueueRequest,
        PollWorkflowTaskQueueResponse, SetWorkerDeploymentCurrentVersionRequest,
    },
};

const NAMESPACE: &str = "default";

/// One long poll of `task_queue`, versioned when `build_id` is given, for at most `wait`.
async fn poll(
    client: &Client,
    task_queue: &str,
    build_id: Option<&str>,
    wait: Duration,
) -> Result<PollWorkflowTaskQueueResponse, temporalio_client::tonic::Status> {
    let mut raw = client.clone();
    let mut req = Request::new(PollWorkflowTaskQueueRequest {
        namespace: NAMESPACE.into(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_registered_on_one_replica_routes_workflows_started_on_any() {
    let (_pg, _replicas, clients) = two_replicas("versioning_replicas").await;
    let task_queue = unique("versioned");

    // A versioned worker's first poll, on replica 1, registers its version.
    let first = poll(
        &clients[0],
        &task_queue,
        Some("1.0"),
        Duration::from_secs(2),
    )
    .await;
    assert!(
        first.is_ok_and(|r| r.task_token.is_empty()),
        "nothing to do yet"
    );
    let described = retrying("describe", || {
        let mut raw = clients[1].clone();
        async move {
            raw.describe_worker_deployment(Request::new(DescribeWorkerDeploymentRequest {
                namespace: NAMESPACE.into(),
                deployment_name: "shipping".into(),
            }))
            .await
        }
    })
    .await
    .into_inner();
    let info = described.worker_deployment_info.expect("deployment info");
    let builds: Vec<_> = info
        .version_summaries
        .iter()
        .filter_map(|v| v.deployment_version.as_ref().map(|d| d.build_id.clone()))
        .collect();
    assert_eq!(
        builds,
        ["1.0"],
        "replica 2 sees the version replica 1 registered"
    );

    let mut raw = clients[1].clone();
    raw.set_worker_deployment_current_version(Request::new(
        SetWorkerDeploymentCurrentVersionRequest {
            namespace: NAMESPACE.into(),
            deployment_name: "shipping".into(),
            build_id: "1.0".into(),
            conflict_token: described.conflict_token,
            ..Default::default()
        },
    ))
    .await
    .expect("set current through replica 2");

    let ids: Vec<String> = (0..6).map(|i| format!("{task_queue}-{i}")).collect();
    start_spread(&clients, NAMESPACE, &ids, &task_queue).await;

    // An unversioned poller of the same task queue gets none of them.
    let unversioned = poll(&clients[1], &task_queue, None, Duration::from_secs(2)).await;
    match unversioned {
        Ok(r) => assert!(r.task_token.is_empty(), "an unversioned poller got a task"),
        Err(s) => assert_eq!(s.code(), Code::DeadlineExceeded, "{s:?}"),
    }
    // The 1.0 poller on replica 1 gets every one, wherever its run's shard is.
    let mut seen = Vec::new();
    while seen.len() < ids.len() {
        let r = poll(
            &clients[0],
            &task_queue,
            Some("1.0"),
            Duration::from_secs(10),
        )
        .await
        .expect("versioned poll");
        assert!(
            !r.task_token.is_empty(),
            "only {seen:?} reached the 1.0 poller"
        );
        seen.push(r.workflow_execution.expect("execution").workflow_id);
    }
    seen.sort();
    assert_eq!(seen, ids);
}
