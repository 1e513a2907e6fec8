//! Several replicas sharing one PostgreSQL database (a real server from Debian's packages;
//! `scripts/pg-env`): three Durin processes on loopback spread the shards among themselves.
//! Workflows started through any replica complete with a worker connected to only one of them
//! (requests are forwarded to the shard's owner, tasks fetched to where the worker polls). One
//! replica is SIGKILLed mid-run: its shards are taken over within a bounded time, and every
//! workflow still completes once, with the one signal it was sent and no activity run twice.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pg_env::PgServer;
use common::{
    DurinServer, NAMESPACE, new_worker, sdk_runtime, serving_shards, unique, with_worker,
};
use temporalio_client::{
    Client,
    grpc::WorkflowService,
    tonic::{Code, Request},
};
use temporalio_common::protos::temporal::api::{
    common::v1::{Payload, Payloads, WorkflowExecution, WorkflowType},
    enums::v1::{HistoryEventFilterType, WorkflowIdConflictPolicy},
    history::v1::history_event::Attributes,
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        CountWorkflowExecutionsRequest, GetWorkflowExecutionHistoryRequest,
        SignalWorkflowExecutionRequest, StartWorkflowExecutionRequest,
    },
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, SyncWorkflowContext, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

type Executions = Arc<Mutex<HashMap<(String, u32), u32>>>;

pub struct ReplicaActivities {
    executions: Executions,
}

#[activities]
impl ReplicaActivities {
    #[activity]
    pub async fn double(
        self: Arc<Self>,
        ctx: ActivityContext,
        n: u64,
    ) -> Result<u64, ActivityError> {
        let info = ctx.info();
        let key = (info.workflow_id.clone().unwrap_or_default(), info.attempt);
        *self.executions.lock().unwrap().entry(key).or_default() += 1;
        Ok(n * 2)
    }
}

#[workflow]
#[derive(Default)]
pub struct ReplicaWorkflow {
    signals: Vec<String>,
}

#[workflow_methods]
impl ReplicaWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, n: u64) -> WorkflowResult<String> {
        let doubled = ctx
            .execute_activity(
                ReplicaActivities::double,
                n,
                ActivityOptions::start_to_close_timeout(Duration::from_secs(10)),
            )
            .await?;
        ctx.timer(Duration::from_millis(300)).await;
        ctx.wait_condition(|s| !s.signals.is_empty()).await?;
        let signals = ctx.state(|s| s.signals.clone());
        Ok(format!("{n}:{doubled}:{}", signals.join(",")))
    }

    #[signal]
    pub fn go(&mut self, _ctx: &mut SyncWorkflowContext<Self>, tag: String) {
        self.signals.push(tag);
    }
}

fn json(v: impl serde::Serialize) -> Payloads {
    Payloads {
        payloads: vec![Payload {
            metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
            data: serde_json::to_vec(&v).expect("json"),
            ..Default::default()
        }],
    }
}

/// Retries a call while its shard is moving (UNAVAILABLE) or its owner is unreachable.
async fn retrying<T, F, Fut>(what: &str, mut call: F) -> T
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

fn replica(db: &str, id: &str) -> Vec<String> {
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
    .collect()
}

fn serving(server: &DurinServer) -> usize {
    serving_shards(server.log_path())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_the_work_and_survive_a_sigkill() {
    let workflows = 60;
    let pg = PgServer::start();
    let db = pg.new_database("replicas");
    let mut replicas = Vec::new();
    for id in ["replica-1", "replica-2", "replica-3"] {
        replicas.push(DurinServer::start_with(replica(&db, id), Vec::new()).await);
    }
    // The first replica took all eight shards; the others join and it hands shards over.
    let balanced = Instant::now();
    while replicas.iter().any(|r| serving(r) < 2) {
        assert!(
            balanced.elapsed() < Duration::from_secs(30),
            "shards never spread: {:?}",
            replicas.iter().map(serving).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let spread: Vec<usize> = replicas.iter().map(serving).collect();
    eprintln!(
        "shards per replica after {:?}: {spread:?}",
        balanced.elapsed()
    );
    assert_eq!(spread.iter().sum::<usize>(), 8, "{spread:?}");

    let mut clients: Vec<Client> = Vec::new();
    for r in &replicas {
        clients.push(r.client().await);
    }
    let tq = unique("tq-replicas");
    let prefix = unique("replicated");
    let executions: Executions = Arc::default();
    let runtime = sdk_runtime();
    // The worker talks to replica 1 only.
    let mut worker = new_worker(
        &runtime,
        &clients[0],
        WorkerOptions::new(tq.clone())
            .register_workflow::<ReplicaWorkflow>()
            .unwrap()
            .register_activities(ReplicaActivities {
                executions: executions.clone(),
            })
            .build(),
    );
    let mut victim = replicas.pop().expect("three replicas");
    let mut takeover = Duration::ZERO;
    with_worker(&mut worker, async {
        // Started through every replica in turn.
        for i in 0..workflows {
            let id = format!("{prefix}-{i}");
            let client = clients[i % 3].clone();
            retrying("start", || {
                let mut raw = client.clone();
                let req = StartWorkflowExecutionRequest {
                    namespace: NAMESPACE.into(),
                    workflow_id: id.clone(),
                    workflow_type: Some(WorkflowType {
                        name: "ReplicaWorkflow".into(),
                    }),
                    task_queue: Some(TaskQueue {
                        name: tq.clone(),
                        ..Default::default()
                    }),
                    input: Some(json(i as u64)),
                    identity: "replicas-test".into(),
                    request_id: format!("{id}-start"),
                    workflow_id_conflict_policy: WorkflowIdConflictPolicy::UseExisting as i32,
                    ..Default::default()
                };
                async move {
                    WorkflowService::start_workflow_execution(&mut raw, Request::new(req)).await
                }
            })
            .await;
        }
        // Let the activities and timers run, then kill replica 3 with its runs waiting.
        tokio::time::sleep(Duration::from_secs(2)).await;
        victim.kill();
        let killed = Instant::now();
        // Signals go through replicas 1 and 2; those for replica 3's shards wait in the
        // replica for the takeover. No call fails and none is retried by the client.
        for i in 0..workflows {
            let id = format!("{prefix}-{i}");
            let mut raw = clients[(i + 1) % 2].clone();
            {
                let req = SignalWorkflowExecutionRequest {
                    namespace: NAMESPACE.into(),
                    workflow_execution: Some(WorkflowExecution {
                        workflow_id: id.clone(),
                        run_id: String::new(),
                    }),
                    signal_name: "go".into(),
                    input: Some(json(format!("s{i}"))),
                    identity: "replicas-test".into(),
                    request_id: format!("{id}-signal"),
                    ..Default::default()
                };
                let mut req = Request::new(req);
                req.set_timeout(Duration::from_secs(30));
                if let Err(status) = WorkflowService::signal_workflow_execution(&mut raw, req).await
                {
                    panic!("signal {id} failed after the kill: {status:?}");
                }
            }
        }
        takeover = killed.elapsed();
        for i in 0..workflows {
            let id = format!("{prefix}-{i}");
            let client = clients[i % 2].clone();
            let result = retrying("result", || {
                let mut raw = client.clone();
                let req = GetWorkflowExecutionHistoryRequest {
                    namespace: NAMESPACE.into(),
                    execution: Some(WorkflowExecution {
                        workflow_id: id.clone(),
                        run_id: String::new(),
                    }),
                    wait_new_event: true,
                    history_event_filter_type: HistoryEventFilterType::CloseEvent as i32,
                    ..Default::default()
                };
                let id = id.clone();
                async move {
                    let mut req = Request::new(req);
                    req.set_timeout(Duration::from_secs(4));
                    let h = WorkflowService::get_workflow_execution_history(&mut raw, req)
                        .await?
                        .into_inner();
                    match h
                        .history
                        .and_then(|h| h.events.into_iter().next())
                        .and_then(|e| e.attributes)
                    {
                        Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => {
                            let p = a
                                .result
                                .and_then(|r| r.payloads.into_iter().next())
                                .unwrap_or_default();
                            Ok(serde_json::from_slice::<String>(&p.data).unwrap_or_default())
                        }
                        Some(other) => panic!("{id} closed unexpectedly: {other:?}"),
                        None => Err(temporalio_client::tonic::Status::unavailable(
                            "not closed yet",
                        )),
                    }
                }
            })
            .await;
            let n = i as u64;
            assert_eq!(result, format!("{n}:{}:s{i}", n * 2), "workflow {id}");
        }
    })
    .await;

    // The survivors serve all eight shards and count every workflow once.
    let spread: Vec<usize> = replicas.iter().map(serving).collect();
    assert_eq!(
        spread.iter().sum::<usize>(),
        8,
        "after the kill: {spread:?}"
    );
    let mut raw = clients[1].clone();
    let count = WorkflowService::count_workflow_executions(
        &mut raw,
        Request::new(CountWorkflowExecutionsRequest {
            namespace: NAMESPACE.into(),
            query: String::new(),
        }),
    )
    .await
    .expect("count")
    .into_inner()
    .count;
    assert_eq!(count, workflows as i64);
    {
        let executions = executions.lock().unwrap();
        let repeated: Vec<_> = executions.iter().filter(|(_, c)| **c > 1).collect();
        assert!(
            repeated.is_empty(),
            "activities ran twice under one attempt: {repeated:?}"
        );
        let distinct = executions
            .keys()
            .map(|(w, _)| w)
            .collect::<std::collections::HashSet<_>>();
        assert_eq!(distinct.len(), workflows, "every workflow ran its activity");
    }
    eprintln!(
        "three replicas: {workflows} workflows; after SIGKILL of one, every signal was accepted \
         within {takeover:?} (lease 2 s)"
    );
    assert!(
        takeover < Duration::from_secs(20),
        "takeover took {takeover:?}"
    );

    // Replica-to-replica calls need the cluster's secret (kept in the database).
    let channel =
        tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", replicas[0].port()))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
    let mut raw = durin::proto::cluster::cluster_service_client::ClusterServiceClient::new(channel);
    let denied = raw
        .transfer(durin::proto::cluster::TransferRequest::default())
        .await
        .expect_err("a call without the secret is refused");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
}
