//! Nexus over HTTP across replicas sharing one PostgreSQL database.
//!
//! - Outbound: operations on an external endpoint (the Nexus Go SDK's HTTP handler) started
//!   through either replica; every completion is posted to the first replica's callback,
//!   which forwards those of operations the second serves.
//! - Inbound: outside callers (the Nexus Go SDK's HTTP client) start operations through
//!   either replica while the endpoint's only handler polls the second: each request waits
//!   on the replica it reached, the handler gets it through that replica's fetcher, and its
//!   answer is routed back there.

mod common;

use std::time::Duration;

use common::replicas::{nexus_operation_outcome as closed_outcome, retrying, two_replicas_with};
use common::unique;
use temporalio_client::{
    Client,
    grpc::{OperatorService, WorkflowService},
    tonic::Request,
};
use temporalio_common::protos::temporal::api::{
    common::v1::Payload,
    nexus::v1::{EndpointSpec, EndpointTarget, endpoint_target},
    operatorservice::v1::CreateNexusEndpointRequest,
    taskqueue::v1::TaskQueue,
};

const NAMESPACE: &str = "default";

/// A process killed when dropped (also when a test panics).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The Go program of `tests/nexus-http-handler` (the Nexus Go SDK's HTTP handler, completion
/// receiver and client), built: its path.
fn build_go_nexus_program() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/nexus-http-handler");
    let binary = std::env::temp_dir().join(format!("nexus-http-handler-{}", std::process::id()));
    let built = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&dir)
        .status()
        .expect("Go builds the Nexus handler");
    assert!(built.success(), "go build failed");
    binary
}

/// The Go program listening as a Nexus handler: the process and its base URL.
fn start_http_handler() -> (KillOnDrop, String) {
    use std::io::BufRead;
    let binary = build_go_nexus_program();
    let mut child = std::process::Command::new(&binary)
        .arg("127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the Nexus handler");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected handler output {line:?}"))
        .to_string();
    (KillOnDrop(child), format!("http://{address}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_completions_reach_operations_on_either_replica() {
    use temporalio_common::protos::temporal::api::{
        nexus::v1::endpoint_target::External,
        workflowservice::v1::{
            StartNexusOperationExecutionRequest, poll_nexus_operation_execution_response::Outcome,
        },
    };
    let (_handler, url) = start_http_handler();
    // Both replicas give handlers the first one's callback URL: completions for operations
    // the second serves arrive at the first, which forwards them.
    let (_pg, _replicas, clients) = two_replicas_with("nexus_http_replicas", |first| {
        vec![(
            "DURIN_NEXUS_CALLBACK_URL".to_string(),
            format!("http://127.0.0.1:{}", first.port()),
        )]
    })
    .await;
    let endpoint = unique("ep-http");
    let mut operator = clients[0].clone();
    operator
        .create_nexus_endpoint(Request::new(CreateNexusEndpointRequest {
            spec: Some(EndpointSpec {
                name: endpoint.clone(),
                description: None,
                target: Some(EndpointTarget {
                    variant: Some(endpoint_target::Variant::External(External { url })),
                }),
            }),
        }))
        .await
        .unwrap();
    let prefix = unique("http-op");
    let ids: Vec<String> = (0..6).map(|i| format!("{prefix}-{i}")).collect();
    let json = |text: &str| Payload {
        metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
        data: serde_json::to_vec(text).unwrap(),
        ..Default::default()
    };
    for (i, id) in ids.iter().enumerate() {
        let client = &clients[i % clients.len()];
        retrying("start an operation", || {
            let mut raw = client.clone();
            let req = StartNexusOperationExecutionRequest {
                namespace: NAMESPACE.into(),
                operation_id: id.clone(),
                endpoint: endpoint.clone(),
                service: "ledger".into(),
                operation: "later".into(),
                input: Some(json(id)),
                request_id: format!("start-{id}"),
                schedule_to_close_timeout: Some(Duration::from_secs(60).try_into().unwrap()),
                ..Default::default()
            };
            async move { raw.start_nexus_operation_execution(Request::new(req)).await }
        })
        .await;
    }
    for (i, id) in ids.iter().enumerate() {
        let client = &clients[i % clients.len()];
        let outcome = closed_outcome(client, id).await;
        let Some(Outcome::Result(result)) = outcome else {
            panic!("{id}: {outcome:?}");
        };
        assert_eq!(result.data, json(&format!("later: {id}")).data, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_callers_reach_a_handler_on_the_other_replica() {
    let program = build_go_nexus_program();
    let (_pg, replicas, clients) =
        two_replicas_with("nexus_inbound_replicas", |_| Vec::new()).await;
    let handlers = unique("inbound-handlers");
    let mut operator = clients[0].clone();
    let created = operator
        .create_nexus_endpoint(Request::new(CreateNexusEndpointRequest {
            spec: Some(EndpointSpec {
                name: unique("ep-inbound"),
                description: None,
                target: Some(EndpointTarget {
                    variant: Some(endpoint_target::Variant::Worker(endpoint_target::Worker {
                        namespace: NAMESPACE.into(),
                        task_queue: handlers.clone(),
                    })),
                }),
            }),
        }))
        .await
        .unwrap()
        .into_inner();
    let endpoint_id = created.endpoint.unwrap().id;
    let calls = 6;
    // The only handler polls the second replica.
    let answering = tokio::spawn(echo_nexus_starts(clients[1].clone(), handlers, calls));
    let callers: Vec<_> = (0..calls)
        .map(|i| {
            let base = format!(
                "http://127.0.0.1:{}/nexus/endpoints/{endpoint_id}/services",
                replicas[i % replicas.len()].port()
            );
            let input = format!("caller-{i}");
            let program = program.clone();
            tokio::spawn(async move {
                let out = tokio::process::Command::new(&program)
                    .args(["start", &base, "ledger", "echo", &input])
                    .output()
                    .await
                    .expect("run the Nexus client");
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                (
                    input,
                    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
                )
            })
        })
        .collect();
    for caller in callers {
        let (input, outcome) = caller.await.unwrap();
        assert_eq!(outcome["outcome"], "sync", "{input}: {outcome}");
        assert_eq!(outcome["result"], input.as_str(), "{input}: {outcome}");
    }
    answering.await.unwrap();
}

/// A handler connected to `client` only: answers `count` start tasks of `task_queue` with
/// their input.
async fn echo_nexus_starts(client: Client, task_queue: String, count: usize) {
    use temporalio_common::protos::temporal::api::{
        nexus::v1::{
            Response as NexusResponse, StartOperationResponse, request, response,
            start_operation_response,
        },
        workflowservice::v1::{PollNexusTaskQueueRequest, RespondNexusTaskCompletedRequest},
    };
    let since = std::time::Instant::now();
    let mut answered = 0;
    while answered < count {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "the handler got {answered} of {count} requests"
        );
        let mut raw = client.clone();
        let mut req = Request::new(PollNexusTaskQueueRequest {
            namespace: NAMESPACE.into(),
            task_queue: Some(TaskQueue {
                name: task_queue.clone(),
                ..Default::default()
            }),
            identity: "handler-on-the-second-replica".into(),
            ..Default::default()
        });
        req.set_timeout(Duration::from_secs(10));
        let task = raw.poll_nexus_task_queue(req).await.unwrap().into_inner();
        let Some(request::Variant::StartOperation(start)) = task.request.and_then(|r| r.variant)
        else {
            continue;
        };
        let answer =
            start_operation_response::Variant::SyncSuccess(start_operation_response::Sync {
                payload: start.payload,
                links: Vec::new(),
            });
        raw.respond_nexus_task_completed(Request::new(RespondNexusTaskCompletedRequest {
            namespace: NAMESPACE.into(),
            task_token: task.task_token,
            response: Some(NexusResponse {
                variant: Some(response::Variant::StartOperation(StartOperationResponse {
                    variant: Some(answer),
                })),
            }),
            ..Default::default()
        }))
        .await
        .expect("the answer reaches the replica holding the request");
        answered += 1;
    }
}
