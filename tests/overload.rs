//! Bursts beyond capacity: with a small in-flight limit, a burst of concurrent requests gets
//! RESOURCE_EXHAUSTED for what does not fit, the rest succeeds, and the server serves
//! normally afterwards. Oversized ids and attributes get INVALID_ARGUMENT.

mod common;

use common::DurinServer;
use durin::proto::api::{
    common::v1::WorkflowType, taskqueue::v1::TaskQueue,
    workflowservice::v1::StartWorkflowExecutionRequest,
};
use durin::proto::workflowservice::workflow_service_client::WorkflowServiceClient;
use tonic::{Code, Request};

fn start(id: String) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: "default".into(),
        workflow_id: id.clone(),
        workflow_type: Some(WorkflowType { name: "W".into() }),
        task_queue: Some(TaskQueue {
            name: "burst".into(),
            ..Default::default()
        }),
        request_id: format!("{id}-req"),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_beyond_capacity_are_refused_not_queued() {
    let server = DurinServer::start_with(
        vec!["dev".into(), "--max-inflight".into(), "2".into()],
        Vec::new(),
    )
    .await;
    // A plain gRPC client: the SDK's client would retry RESOURCE_EXHAUSTED by itself.
    let channel =
        tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", server.port()))
            .expect("uri")
            .connect()
            .await
            .expect("connect");
    let client = WorkflowServiceClient::new(channel);
    let mut calls = Vec::new();
    for i in 0..200 {
        let mut raw = client.clone();
        calls.push(tokio::spawn(async move {
            raw.start_workflow_execution(Request::new(start(format!("b{i}"))))
                .await
                .map(|_| ())
                .map_err(|s| s.code())
        }));
    }
    let mut ok = 0;
    let mut exhausted = 0;
    for c in calls {
        match c.await.expect("join") {
            Ok(()) => ok += 1,
            Err(Code::ResourceExhausted) => exhausted += 1,
            Err(other) => panic!("unexpected status {other:?}"),
        }
    }
    assert!(
        ok > 0 && exhausted > 0,
        "{ok} accepted, {exhausted} refused"
    );
    // After the burst the server answers normally.
    let mut raw = client.clone();
    raw.start_workflow_execution(Request::new(start("after".into())))
        .await
        .expect("served after the burst");

    for (what, req) in [
        ("workflow id", start("x".repeat(1001))),
        (
            "task queue",
            StartWorkflowExecutionRequest {
                task_queue: Some(TaskQueue {
                    name: "q".repeat(1001),
                    ..Default::default()
                }),
                ..start("tq".into())
            },
        ),
        (
            "search attributes",
            StartWorkflowExecutionRequest {
                search_attributes: Some(
                    temporalio_common::protos::temporal::api::common::v1::SearchAttributes {
                        indexed_fields: [(
                            "CustomKeywordField".to_string(),
                            temporalio_common::protos::temporal::api::common::v1::Payload {
                                metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
                                data: serde_json::to_vec(&"s".repeat(50_000)).unwrap_or_default(),
                                ..Default::default()
                            },
                        )]
                        .into(),
                    },
                ),
                ..start("sa".into())
            },
        ),
    ] {
        let mut raw = client.clone();
        let err = raw
            .start_workflow_execution(Request::new(req))
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
    }
}

/// Client connections past `--max-connections` wait in the listen backlog, unserved, until
/// one of the open ones closes; then they are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_one_closes() {
    use durin::proto::api::workflowservice::v1::GetSystemInfoRequest;
    use std::time::Duration;
    let server = DurinServer::start_with(
        vec!["dev".into(), "--max-connections".into(), "3".into()],
        Vec::new(),
    )
    .await;
    let endpoint =
        tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", server.port()))
            .expect("uri");
    let call = |channel: &tonic::transport::Channel, wait: Duration| {
        let mut client = WorkflowServiceClient::new(channel.clone());
        async move {
            tokio::time::timeout(wait, client.get_system_info(GetSystemInfoRequest {}))
                .await
                .map_err(|_| "timed out".to_string())?
                .map(|_| ())
                .map_err(|s| format!("{s:?}"))
        }
    };
    let mut open = Vec::new();
    for i in 0..3 {
        let channel = endpoint.connect_lazy();
        call(&channel, Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("connection {i} within the cap: {e}"));
        open.push(channel);
    }
    let fourth = endpoint.connect_lazy();
    let waiting = call(&fourth, Duration::from_millis(1500)).await;
    assert!(
        waiting.is_err(),
        "a fourth connection was served past the cap of 3"
    );
    drop(open.remove(0));
    call(&fourth, Duration::from_secs(10))
        .await
        .expect("served once a connection closed");
}
