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
use common::replicas::{replica, retrying, serving, start_spread, two_replicas};
use common::{DurinServer, NAMESPACE, new_worker, sdk_runtime, unique, with_worker};
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
}

/// The cluster port a replica advertised, from its log.
fn cluster_address(server: &DurinServer) -> String {
    let log = std::fs::read_to_string(server.log_path()).expect("read log");
    log.lines()
        .filter(|l| l.contains("cluster port for the other replicas"))
        .find_map(|l| {
            let rest = &l[l.find("address=")? + "address=".len()..];
            Some(rest.split_whitespace().next()?.to_string())
        })
        .expect("the replica logs its cluster address")
}

/// A raw call on the cluster protocol: RefreshNamespaces, with or without the cluster's
/// secret, over plaintext or TLS with the given client certificate.
async fn cluster_call(
    address: &str,
    tls: Option<(&str, Option<&common::certs::Leaf>)>,
    secret: Option<&str>,
) -> Result<(), tonic::Status> {
    use durin::proto::cluster::RefreshNamespacesRequest;
    use durin::proto::cluster::cluster_service_client::ClusterServiceClient;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5));
    if let Some((ca, client)) = tls {
        let mut config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca))
            .domain_name("127.0.0.1");
        if let Some((cert, key)) = client {
            config = config.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(config).expect("tls config");
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connect: {e:?}")))?;
    let mut req = tonic::Request::new(RefreshNamespacesRequest {});
    if let Some(s) = secret {
        req.metadata_mut()
            .insert("x-durin-cluster-secret", s.parse().expect("ascii"));
    }
    ClusterServiceClient::new(channel)
        .refresh_namespaces(req)
        .await
        .map(|_| ())
}

/// Replica traffic is mutual TLS on its own port: plaintext, a client without a certificate
/// and a certificate from another CA are refused during the handshake; a certificate from
/// the cluster's CA without the cluster's secret is refused by the handler; the client port
/// does not serve the cluster protocol at all. Calls forwarded between the replicas work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_talk_over_mutual_tls_on_their_own_port() {
    let pg = PgServer::start();
    let db = pg.new_database("replica_tls");
    let mut replicas = Vec::new();
    for id in ["tls-1", "tls-2"] {
        replicas.push(DurinServer::start_with(replica(&db, id), Vec::new()).await);
    }
    let spread = Instant::now();
    while replicas.iter().any(|r| serving(r) < 1) {
        assert!(
            spread.elapsed() < Duration::from_secs(30),
            "shards never spread"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Forwarding works both ways: ids spread over both replicas' shards, started through
    // one and described through the other.
    let (c1, c2) = (replicas[0].client().await, replicas[1].client().await);
    let prefix = unique("tls-forwarded");
    for i in 0..16 {
        let id = format!("{prefix}-{i}");
        retrying("start", || {
            let mut svc = c2.clone();
            let id = id.clone();
            async move {
                svc.start_workflow_execution(Request::new(StartWorkflowExecutionRequest {
                    namespace: NAMESPACE.into(),
                    workflow_id: id.clone(),
                    workflow_type: Some(WorkflowType {
                        name: "Nobody".into(),
                    }),
                    task_queue: Some(TaskQueue {
                        name: "tls-nobody".into(),
                        ..Default::default()
                    }),
                    request_id: id,
                    ..Default::default()
                }))
                .await
            }
        })
        .await;
        let described = c1
            .clone()
            .describe_workflow_execution(Request::new(
                temporalio_common::protos::temporal::api::workflowservice::v1::DescribeWorkflowExecutionRequest {
                    namespace: NAMESPACE.into(),
                    execution: Some(WorkflowExecution {
                        workflow_id: id.clone(),
                        ..Default::default()
                    }),
                },
            ))
            .await;
        assert!(
            described.is_ok(),
            "describe {id} through the other replica: {described:?}"
        );
    }
    let forwarded = [&replicas[0], &replicas[1]]
        .iter()
        .map(|r| std::fs::read_to_string(r.log_path()).unwrap_or_default())
        .any(|log| log.contains("TLS handshake refused"));
    assert!(!forwarded, "replicas refused each other's handshakes");

    let certs = common::certs::cluster_certs();
    let ca = std::fs::read_to_string(&certs.ca).expect("ca");
    let member: common::certs::Leaf = (
        std::fs::read_to_string(&certs.cert).expect("cert"),
        std::fs::read_to_string(&certs.key).expect("key"),
    );
    let rogue = common::certs::Ca::new("rogue-ca").leaf(
        "intruder",
        &["127.0.0.1"],
        &[rcgen::ExtendedKeyUsagePurpose::ClientAuth],
    );
    let address = cluster_address(&replicas[0]);
    assert!(
        !address.ends_with(&format!(":{}", replicas[0].port())),
        "the cluster port is not the client port: {address}"
    );

    // Refused before any handler runs: a handler would answer PERMISSION_DENIED (a wrong
    // secret), a refused connection fails as a transport error.
    let refused_at_connection = |what: &str, result: Result<(), tonic::Status>| {
        let status = result.expect_err(what);
        assert_ne!(
            status.code(),
            Code::PermissionDenied,
            "{what}: reached the handler: {status:?}"
        );
    };
    refused_at_connection(
        "plaintext",
        cluster_call(&address, None, Some("guess")).await,
    );
    refused_at_connection(
        "a client without a certificate",
        cluster_call(&address, Some((&ca, None)), Some("guess")).await,
    );
    refused_at_connection(
        "a certificate from another CA",
        cluster_call(&address, Some((&ca, Some(&rogue))), Some("guess")).await,
    );
    let without_secret = cluster_call(&address, Some((&ca, Some(&member))), None).await;
    assert_eq!(
        without_secret.expect_err("no secret").code(),
        Code::PermissionDenied,
        "a member's certificate reaches the handler, which wants the secret too"
    );
    let client_port = format!("127.0.0.1:{}", replicas[0].port());
    let on_client_port = cluster_call(&client_port, None, None).await;
    assert_eq!(
        on_client_port.expect_err("not served").code(),
        Code::Unimplemented,
        "the client port does not serve the cluster protocol"
    );
}

/// A batch operation started through one replica acts on workflows in every replica's shards
/// (each terminate is routed to the shard's owner), and every replica lists and describes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_operation_reaches_every_replicas_workflows() {
    use temporalio_common::protos::temporal::api::{
        batch::v1::BatchOperationTermination,
        enums::v1::{BatchOperationState, WorkflowExecutionStatus},
        workflowservice::v1::{
            DescribeBatchOperationRequest, DescribeWorkflowExecutionRequest,
            ListBatchOperationsRequest, ScanWorkflowExecutionsRequest, StartBatchOperationRequest,
            start_batch_operation_request::Operation,
        },
    };
    let (_pg, _replicas, clients) = two_replicas("batch_replicas").await;
    let tq = unique("tq-batch");
    let ids: Vec<String> = (0..12).map(|i| format!("{tq}-{i}")).collect();
    start_spread(&clients, NAMESPACE, &ids, &tq).await;
    let job = unique("sweep");
    let mut raw = clients[0].clone();
    raw.start_batch_operation(Request::new(StartBatchOperationRequest {
        namespace: NAMESPACE.into(),
        job_id: job.clone(),
        reason: "sweep".into(),
        visibility_query: format!("TaskQueue = '{tq}'"),
        operation: Some(Operation::TerminationOperation(
            BatchOperationTermination::default(),
        )),
        ..Default::default()
    }))
    .await
    .expect("start batch");
    let started = Instant::now();
    let done = loop {
        let mut other = clients[1].clone();
        let d = other
            .describe_batch_operation(Request::new(DescribeBatchOperationRequest {
                namespace: NAMESPACE.into(),
                job_id: job.clone(),
            }))
            .await
            .expect("describe batch through the other replica")
            .into_inner();
        if d.state != BatchOperationState::Running as i32 {
            break d;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{d:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        done.state,
        BatchOperationState::Completed as i32,
        "{done:?}"
    );
    assert_eq!(
        (done.complete_operation_count, done.failure_operation_count),
        (12, 0)
    );
    for id in &ids {
        let mut raw = clients[1].clone();
        let info = raw
            .describe_workflow_execution(Request::new(DescribeWorkflowExecutionRequest {
                namespace: NAMESPACE.into(),
                execution: Some(WorkflowExecution {
                    workflow_id: id.clone(),
                    run_id: String::new(),
                }),
            }))
            .await
            .expect("describe")
            .into_inner()
            .workflow_execution_info
            .expect("info");
        assert_eq!(
            info.status,
            WorkflowExecutionStatus::Terminated as i32,
            "{id}"
        );
    }
    // A scan through either replica sees every replica's runs, as a list does.
    for client in &clients {
        let mut raw = client.clone();
        let scanned = raw
            .scan_workflow_executions(Request::new(ScanWorkflowExecutionsRequest {
                namespace: NAMESPACE.into(),
                query: format!("TaskQueue = '{tq}'"),
                ..Default::default()
            }))
            .await
            .expect("scan")
            .into_inner();
        assert_eq!(
            scanned.executions.len(),
            ids.len(),
            "a scan through one replica missed the others' runs"
        );
    }
    for client in &clients {
        let mut raw = client.clone();
        let listed = raw
            .list_batch_operations(Request::new(ListBatchOperationsRequest {
                namespace: NAMESPACE.into(),
                ..Default::default()
            }))
            .await
            .expect("list batches")
            .into_inner();
        assert!(
            listed.operation_info.iter().any(|o| o.job_id == job),
            "{listed:?}"
        );
    }
}

/// A reset across replicas: the workflow started and reset through one replica, its worker and
/// signal on the other (whichever serves the workflow's shard, calls are routed there). The
/// new run shares the history up to the first workflow task, runs the activity again, takes
/// the signal, and completes; the old run is terminated and points at the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_works_across_replicas() {
    use temporalio_common::protos::temporal::api::{
        enums::v1::{EventType, WorkflowExecutionStatus},
        workflowservice::v1::{DescribeWorkflowExecutionRequest, ResetWorkflowExecutionRequest},
    };
    let (_pg, _replicas, clients) = two_replicas("reset_replicas").await;
    let tq = unique("tq-reset");
    let wid = unique("reset-across");
    let executions: Executions = Arc::default();
    let runtime = sdk_runtime();
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
    let history = |client: Client, run_id: String| {
        let wid = wid.clone();
        async move {
            let mut raw = client;
            WorkflowService::get_workflow_execution_history(
                &mut raw,
                Request::new(GetWorkflowExecutionHistoryRequest {
                    namespace: NAMESPACE.into(),
                    execution: Some(WorkflowExecution {
                        workflow_id: wid,
                        run_id,
                    }),
                    ..Default::default()
                }),
            )
            .await
            .expect("history")
            .into_inner()
            .history
            .map(|h| h.events)
            .unwrap_or_default()
        }
    };
    with_worker(&mut worker, async {
        let mut raw = clients[1].clone();
        let base_run = WorkflowService::start_workflow_execution(
            &mut raw,
            Request::new(StartWorkflowExecutionRequest {
                namespace: NAMESPACE.into(),
                workflow_id: wid.clone(),
                workflow_type: Some(WorkflowType {
                    name: "ReplicaWorkflow".into(),
                }),
                task_queue: Some(TaskQueue {
                    name: tq.clone(),
                    ..Default::default()
                }),
                input: Some(json(7u64)),
                request_id: format!("{wid}-start"),
                ..Default::default()
            }),
        )
        .await
        .expect("start")
        .into_inner()
        .run_id;
        // Wait until the activity's result was taken in by a workflow task.
        let started = Instant::now();
        let first_completed = loop {
            let events = history(clients[1].clone(), base_run.clone()).await;
            let done = events
                .iter()
                .position(|e| e.event_type == EventType::ActivityTaskCompleted as i32);
            if done.is_some_and(|at| {
                events[at..]
                    .iter()
                    .any(|e| e.event_type == EventType::WorkflowTaskCompleted as i32)
            }) {
                break events
                    .iter()
                    .find(|e| e.event_type == EventType::WorkflowTaskCompleted as i32)
                    .expect("a completed workflow task")
                    .event_id;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{events:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let mut raw = clients[1].clone();
        let new_run = WorkflowService::reset_workflow_execution(
            &mut raw,
            Request::new(ResetWorkflowExecutionRequest {
                namespace: NAMESPACE.into(),
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: wid.clone(),
                    run_id: base_run.clone(),
                }),
                reason: "again".into(),
                workflow_task_finish_event_id: first_completed,
                request_id: format!("{wid}-reset"),
                ..Default::default()
            }),
        )
        .await
        .expect("reset through the other replica")
        .into_inner()
        .run_id;
        assert_ne!(new_run, base_run);
        let mut raw = clients[0].clone();
        WorkflowService::signal_workflow_execution(
            &mut raw,
            Request::new(SignalWorkflowExecutionRequest {
                namespace: NAMESPACE.into(),
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: wid.clone(),
                    run_id: String::new(),
                }),
                signal_name: "go".into(),
                input: Some(json("after")),
                request_id: format!("{wid}-signal"),
                ..Default::default()
            }),
        )
        .await
        .expect("signal the new run");
        let started = Instant::now();
        let result = loop {
            let events = history(clients[0].clone(), new_run.clone()).await;
            if let Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) =
                events.last().and_then(|e| e.attributes.clone())
            {
                let p = a
                    .result
                    .and_then(|r| r.payloads.into_iter().next())
                    .unwrap_or_default();
                break serde_json::from_slice::<String>(&p.data).unwrap_or_default();
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{events:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(result, "7:14:after");
        let mut raw = clients[0].clone();
        let base = WorkflowService::describe_workflow_execution(
            &mut raw,
            Request::new(DescribeWorkflowExecutionRequest {
                namespace: NAMESPACE.into(),
                execution: Some(WorkflowExecution {
                    workflow_id: wid.clone(),
                    run_id: base_run.clone(),
                }),
            }),
        )
        .await
        .expect("describe the base run")
        .into_inner();
        let info = base.workflow_execution_info.expect("info");
        assert_eq!(info.status, WorkflowExecutionStatus::Terminated as i32);
        assert_eq!(
            base.workflow_extended_info.expect("extended").reset_run_id,
            new_run
        );
    })
    .await;
    let ran = executions
        .lock()
        .unwrap()
        .get(&(wid.clone(), 1))
        .copied()
        .unwrap_or(0);
    assert_eq!(ran, 2, "the activity ran once in each run");
}

/// Worker heartbeats reach whichever replica a worker's connection lands on; a client of any
/// replica lists, counts and describes them all, a worker seen by both once (its latest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_lists_cover_every_replicas_heartbeats() {
    use temporalio_common::protos::temporal::api::{
        enums::v1::WorkerStatus,
        worker::v1::WorkerHeartbeat,
        workflowservice::v1::{
            CountWorkersRequest, DescribeWorkerRequest, ListWorkersRequest,
            RecordWorkerHeartbeatRequest,
        },
    };
    let (_pg, _replicas, clients) = two_replicas("workers_replicas").await;
    let tq = unique("tq-workers");
    let heartbeat = |key: &str, at_secs: i64| WorkerHeartbeat {
        worker_instance_key: key.to_string(),
        task_queue: tq.clone(),
        status: WorkerStatus::Running as i32,
        heartbeat_time: Some(prost_wkt_types::Timestamp {
            seconds: at_secs,
            nanos: 0,
        }),
        ..Default::default()
    };
    let record = |client: &Client, hb: WorkerHeartbeat| {
        let mut raw = client.clone();
        async move {
            WorkflowService::record_worker_heartbeat(
                &mut raw,
                Request::new(RecordWorkerHeartbeatRequest {
                    namespace: NAMESPACE.to_string(),
                    worker_heartbeat: vec![hb],
                    ..Default::default()
                }),
            )
            .await
            .expect("heartbeat recorded");
        }
    };
    record(&clients[0], heartbeat("worker-a", 100)).await;
    record(&clients[1], heartbeat("worker-b", 100)).await;
    // worker-a's connection moved to the other replica.
    record(&clients[1], heartbeat("worker-a", 200)).await;

    let query = format!("TaskQueue = '{tq}'");
    for client in &clients {
        let mut raw = client.clone();
        let mut keys = Vec::new();
        let mut token = Vec::new();
        loop {
            let page = WorkflowService::list_workers(
                &mut raw,
                Request::new(ListWorkersRequest {
                    namespace: NAMESPACE.to_string(),
                    page_size: 1,
                    next_page_token: token,
                    query: query.clone(),
                    ..Default::default()
                }),
            )
            .await
            .expect("list workers")
            .into_inner();
            keys.extend(page.workers.iter().map(|w| w.worker_instance_key.clone()));
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        assert_eq!(keys, ["worker-a", "worker-b"], "one page per worker");
        let count = WorkflowService::count_workers(
            &mut raw,
            Request::new(CountWorkersRequest {
                namespace: NAMESPACE.to_string(),
                query: query.clone(),
                ..Default::default()
            }),
        )
        .await
        .expect("count workers")
        .into_inner();
        assert_eq!(count.count, 2);
        let described = WorkflowService::describe_worker(
            &mut raw,
            Request::new(DescribeWorkerRequest {
                namespace: NAMESPACE.to_string(),
                worker_instance_key: "worker-a".into(),
            }),
        )
        .await
        .expect("describe worker")
        .into_inner();
        let hb = described.worker_info.unwrap().worker_heartbeat.unwrap();
        assert_eq!(
            hb.heartbeat_time.unwrap().seconds,
            200,
            "the latest heartbeat"
        );
        let missing = WorkflowService::describe_worker(
            &mut raw,
            Request::new(DescribeWorkerRequest {
                namespace: NAMESPACE.to_string(),
                worker_instance_key: "no-such-worker".into(),
            }),
        )
        .await
        .expect_err("an unknown worker");
        assert_eq!(missing.code(), Code::NotFound);
    }
}

/// A namespace deleted through one replica is gone on every replica: each deletes the runs of
/// its own shards, and the name registered again starts empty everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_deleted_through_one_replica_is_gone_from_all() {
    use durin::proto::api::operatorservice::v1::DeleteNamespaceRequest;
    use durin::proto::operatorservice::operator_service_client::OperatorServiceClient;
    use temporalio_common::protos::temporal::api::workflowservice::v1::{
        DescribeWorkflowExecutionRequest, RegisterNamespaceRequest,
    };
    let (_pg, replicas, clients) = two_replicas("delete_ns_replicas").await;
    let ns = unique("doomed");
    let register = |client: &Client| {
        let mut raw = client.clone();
        let req = RegisterNamespaceRequest {
            namespace: ns.clone(),
            workflow_execution_retention_period: Some(prost_wkt_types::Duration {
                seconds: 86400,
                nanos: 0,
            }),
            ..Default::default()
        };
        async move {
            raw.register_namespace(Request::new(req))
                .await
                .expect("register");
        }
    };
    register(&clients[0]).await;
    let ids: Vec<String> = (0..8).map(|i| format!("{ns}-{i}")).collect();
    start_spread(&clients, &ns, &ids, "tq").await;
    let count = |client: &Client| {
        let mut raw = client.clone();
        let req = CountWorkflowExecutionsRequest {
            namespace: ns.clone(),
            query: String::new(),
        };
        async move { raw.count_workflow_executions(Request::new(req)).await }
    };
    assert_eq!(
        count(&clients[1]).await.expect("count").into_inner().count,
        8
    );

    OperatorServiceClient::new(common::grpc_channel(replicas[0].port()).await)
        .delete_namespace(tonic::Request::new(DeleteNamespaceRequest {
            namespace: ns.clone(),
            ..Default::default()
        }))
        .await
        .expect("delete namespace");
    for client in &clients {
        let err = count(client).await.expect_err("the namespace is gone");
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
    }
    register(&clients[1]).await;
    for client in &clients {
        assert_eq!(count(client).await.expect("count").into_inner().count, 0);
        for id in &ids {
            let mut raw = client.clone();
            let err = raw
                .describe_workflow_execution(Request::new(DescribeWorkflowExecutionRequest {
                    namespace: ns.clone(),
                    execution: Some(WorkflowExecution {
                        workflow_id: id.clone(),
                        run_id: String::new(),
                    }),
                }))
                .await
                .expect_err("the run went with its namespace");
            assert_eq!(err.code(), Code::NotFound, "{id}: {err:?}");
        }
    }
}
