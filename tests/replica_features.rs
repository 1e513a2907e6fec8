//! Features across replicas sharing one PostgreSQL database.
//!
//! - Worker versioning: a version registered by a worker polling one replica is seen, and
//!   made current, through the other; workflows started through either replica then reach
//!   that version's poller (fetched across replicas from its own queue), never an unversioned
//!   poller of the same task queue.
//! - Standalone activities: started through either replica (each lands in its shard's owner),
//!   listed and counted over both from either, run by a worker connected to one only, and
//!   their results read through the other.
//! - Nexus: see `replica_nexus.rs`.

mod common;

use std::time::Duration;

use common::replicas::{poll_workflow_task as poll, retrying, start_spread, two_replicas};
use common::{new_worker, sdk_runtime, unique, with_worker, within};
use temporalio_client::{
    grpc::WorkflowService,
    tonic::{Code, Request},
};
use temporalio_common::ActivityError;
use temporalio_common::protos::temporal::api::{
    common::v1::{ActivityType, Payload, Payloads},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        CountActivityExecutionsRequest, CountWorkflowExecutionsRequest,
        DescribeWorkerDeploymentRequest, ListActivityExecutionsRequest,
        SetWorkerDeploymentCurrentVersionRequest, StartActivityExecutionRequest,
    },
};
use temporalio_macros::activities;
use temporalio_sdk::{WorkerOptions, activities::ActivityContext};

const NAMESPACE: &str = "default";

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

pub struct EchoActivities;

#[activities]
impl EchoActivities {
    #[activity]
    pub async fn echo(_ctx: ActivityContext, text: String) -> Result<String, ActivityError> {
        Ok(format!("echo {text}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_activities_are_served_across_replicas() {
    let (_pg, _replicas, clients) = two_replicas("standalone_replicas").await;
    let task_queue = unique("standalone");
    let ids: Vec<String> = (0..8).map(|i| format!("{task_queue}-{i}")).collect();
    // Started through the replicas in turn: each goes to its shard's owner.
    for (i, id) in ids.iter().enumerate() {
        let client = &clients[i % clients.len()];
        retrying("start activity", || {
            let mut raw = client.clone();
            let req = StartActivityExecutionRequest {
                namespace: NAMESPACE.into(),
                activity_id: id.clone(),
                activity_type: Some(ActivityType {
                    name: "EchoActivities::echo".into(),
                }),
                task_queue: Some(TaskQueue {
                    name: task_queue.clone(),
                    ..Default::default()
                }),
                start_to_close_timeout: Some(Duration::from_secs(10).try_into().unwrap()),
                input: Some(Payloads {
                    payloads: vec![Payload {
                        metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
                        data: format!("{id:?}").into_bytes(),
                        ..Default::default()
                    }],
                }),
                request_id: format!("start-{id}"),
                ..Default::default()
            };
            async move { raw.start_activity_execution(Request::new(req)).await }
        })
        .await;
    }

    // Counted and listed, in small pages, from either replica: both replicas' shards.
    let query = format!("TaskQueue = '{task_queue}'");
    let mut raw = clients[1].clone();
    let count = raw
        .count_activity_executions(Request::new(CountActivityExecutionsRequest {
            namespace: NAMESPACE.into(),
            query: query.clone(),
        }))
        .await
        .expect("count")
        .into_inner();
    assert_eq!(count.count, ids.len() as i64);
    let mut listed = Vec::new();
    let mut token = Vec::new();
    loop {
        let mut raw = clients[0].clone();
        let page = raw
            .list_activity_executions(Request::new(ListActivityExecutionsRequest {
                namespace: NAMESPACE.into(),
                page_size: 3,
                next_page_token: token,
                query: query.clone(),
            }))
            .await
            .expect("list")
            .into_inner();
        listed.extend(page.executions.into_iter().map(|e| e.activity_id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    listed.sort();
    assert_eq!(listed, ids);
    // They are not workflows.
    let workflows = raw
        .count_workflow_executions(Request::new(CountWorkflowExecutionsRequest {
            namespace: NAMESPACE.into(),
            query,
        }))
        .await
        .expect("count workflows")
        .into_inner();
    assert_eq!(workflows.count, 0);

    // A worker connected to replica 1 runs every one; replica 2 answers their results.
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &clients[0],
        WorkerOptions::new(task_queue.clone())
            .register_activities(EchoActivities)
            .build(),
    );
    with_worker(&mut worker, async {
        for id in &ids {
            let handle = clients[1].get_activity_handle(EchoActivities::echo, id.clone(), None);
            let result = within(30, "activity result", handle.result())
                .await
                .unwrap_or_else(|e| panic!("{id}: {e:?}"));
            assert_eq!(result, format!("echo {id}"));
        }
    })
    .await;
}
