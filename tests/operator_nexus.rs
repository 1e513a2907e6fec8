//! The `NexusEndpoint` resource against a real kube-apiserver and `durin operator`: the
//! example manifest publishes an endpoint that routes a caller's operation (a workflow in
//! another namespace) to the handlers' task queue; spec changes reach the engine; a name
//! someone else holds and a Durin namespace not granted are refused with a condition and an
//! event, never taken; deleting a resource deletes its endpoint and only its own.

mod common;

use std::time::Duration;

use common::DurinServer;
use common::kube_env::{KubeEnv, condition, eventually};
use durin::proto::api::command::v1::{Command, ScheduleNexusOperationCommandAttributes, command};
use durin::proto::api::common::v1::WorkflowType;
use durin::proto::api::enums::v1::CommandType;
use durin::proto::api::nexus::v1::{
    Endpoint, EndpointSpec, EndpointTarget, endpoint_target, request,
};
use durin::proto::api::operatorservice::v1::{
    CreateNexusEndpointRequest, ListNexusEndpointsRequest,
};
use durin::proto::api::taskqueue::v1::TaskQueue;
use durin::proto::api::workflowservice::v1::*;
use durin::proto::operatorservice::operator_service_client::OperatorServiceClient;
use durin::proto::workflowservice::workflow_service_client::WorkflowServiceClient;
use serde_json::Value;
use tonic::transport::Channel;

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/k8s/nexus-endpoint.yaml"
);

async fn endpoint_named(ops: &mut OperatorServiceClient<Channel>, name: &str) -> Option<Endpoint> {
    ops.list_nexus_endpoints(ListNexusEndpointsRequest {
        name: name.into(),
        ..Default::default()
    })
    .await
    .expect("list endpoints")
    .into_inner()
    .endpoints
    .into_iter()
    .next()
}

fn worker_target(e: &Endpoint) -> (String, String) {
    match e
        .spec
        .as_ref()
        .and_then(|s| s.target.as_ref())
        .and_then(|t| t.variant.clone())
    {
        Some(endpoint_target::Variant::Worker(w)) => (w.namespace, w.task_queue),
        other => panic!("not a worker target: {other:?}"),
    }
}

/// The status once its Accepted condition is `want`.
async fn accepted_is(kube: &KubeEnv, ns: &str, name: &str, want: &str) -> Value {
    eventually(
        30,
        &format!("{ns}/nexusendpoint/{name} Accepted={want}"),
        || async {
            let s = kube.get_json(&["-n", ns, "nexusendpoint", name]).await["status"].clone();
            (condition(&s, "Accepted")["status"] == want).then_some(s)
        },
    )
    .await
}

fn resource(ns: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: durin.dev/v1alpha1\nkind: NexusEndpoint\nmetadata:\n  name: {name}\n  \
         namespace: {ns}\nspec:\n{spec}"
    )
}

/// A workflow in Durin namespace `shop` schedules an operation on `endpoint`; the handler's
/// poll of `billing`/`queue` gets it (the endpoint routed it there).
async fn operation_reaches(port: u16, endpoint: &str, queue: &str) {
    let mut engine = WorkflowServiceClient::new(common::grpc_channel(port).await);
    let _ = engine
        .register_namespace(RegisterNamespaceRequest {
            namespace: "shop".into(),
            workflow_execution_retention_period: Some(
                Duration::from_secs(86400).try_into().unwrap(),
            ),
            ..Default::default()
        })
        .await;
    let tq = |name: &str| {
        Some(TaskQueue {
            name: name.into(),
            ..Default::default()
        })
    };
    engine
        .start_workflow_execution(StartWorkflowExecutionRequest {
            namespace: "shop".into(),
            workflow_id: format!("checkout-{queue}"),
            workflow_type: Some(WorkflowType {
                name: "Checkout".into(),
            }),
            task_queue: tq("checkout"),
            request_id: format!("checkout-{queue}"),
            ..Default::default()
        })
        .await
        .expect("start the caller");
    let task = engine
        .poll_workflow_task_queue(PollWorkflowTaskQueueRequest {
            namespace: "shop".into(),
            task_queue: tq("checkout"),
            ..Default::default()
        })
        .await
        .expect("poll the caller's task")
        .into_inner();
    engine
        .respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest {
            namespace: "shop".into(),
            task_token: task.task_token,
            commands: vec![Command {
                command_type: CommandType::ScheduleNexusOperation as i32,
                attributes: Some(
                    command::Attributes::ScheduleNexusOperationCommandAttributes(
                        ScheduleNexusOperationCommandAttributes {
                            endpoint: endpoint.into(),
                            service: "Billing".into(),
                            operation: "charge".into(),
                            schedule_to_close_timeout: Some(
                                Duration::from_secs(60).try_into().unwrap(),
                            ),
                            ..Default::default()
                        },
                    ),
                ),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("schedule the operation");
    let nexus = engine
        .poll_nexus_task_queue(PollNexusTaskQueueRequest {
            namespace: "billing".into(),
            task_queue: tq(queue),
            ..Default::default()
        })
        .await
        .expect("the handler's poll")
        .into_inner();
    let Some(request::Variant::StartOperation(start)) = nexus.request.and_then(|r| r.variant)
    else {
        panic!("the handler got no operation on {queue}");
    };
    assert_eq!(
        (start.service.as_str(), start.operation.as_str()),
        ("Billing", "charge")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nexus_endpoints_follow_their_resources_and_stay_with_their_tenant() {
    let kube = KubeEnv::start().await;
    kube.install_crds(concat!(env!("CARGO_MANIFEST_DIR"), "/crds/durin.dev.yaml"))
        .await;
    let operator = DurinServer::start_operator(&kube.kubeconfig, &[]).await;
    let port = operator.port();
    let mut ops = OperatorServiceClient::new(common::grpc_channel(port).await);

    // The example: billing publishes `billing`, routed to its own namespace.
    let example = std::fs::read_to_string(EXAMPLE).expect("example manifest");
    let out = kube.apply(&example).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = accepted_is(&kube, "billing", "billing", "True").await;
    assert_eq!(condition(&status, "Ready")["status"], "True", "{status}");
    let endpoint = endpoint_named(&mut ops, "billing")
        .await
        .expect("the endpoint exists");
    assert_eq!(status["endpointId"], endpoint.id.as_str(), "{status}");
    assert_eq!(
        worker_target(&endpoint),
        ("billing".into(), "billing".into())
    );
    let description = endpoint
        .spec
        .as_ref()
        .and_then(|s| s.description.clone())
        .unwrap();
    assert!(
        String::from_utf8_lossy(&description.data).contains("Charges and refunds"),
        "{description:?}"
    );
    operation_reaches(port, "billing", "billing").await;

    // A spec change reaches the engine as a new version.
    kube.kubectl_ok(&[
        "-n",
        "billing",
        "patch",
        "nexusendpoint",
        "billing",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"taskQueue":"billing-v2"}}"#,
    ])
    .await;
    let updated = eventually(30, "the endpoint routes to billing-v2", || async {
        let mut ops = OperatorServiceClient::new(common::grpc_channel(port).await);
        endpoint_named(&mut ops, "billing")
            .await
            .filter(|e| worker_target(e).1 == "billing-v2")
    })
    .await;
    assert_eq!(
        (updated.id.as_str(), updated.version),
        (endpoint.id.as_str(), 2)
    );

    // The shop team tries to take the name, and to route into billing's namespace.
    let squatter = resource(
        "shop",
        "squatter",
        "  endpointName: billing\n  taskQueue: mine\n",
    );
    let intruder = resource(
        "shop",
        "intruder",
        "  namespace: billing\n  taskQueue: billing\n",
    );
    // And a name someone made with the CLI.
    ops.create_nexus_endpoint(CreateNexusEndpointRequest {
        spec: Some(EndpointSpec {
            name: "made-by-cli".into(),
            target: Some(EndpointTarget {
                variant: Some(endpoint_target::Variant::Worker(endpoint_target::Worker {
                    namespace: "shop".into(),
                    task_queue: "cli".into(),
                })),
            }),
            ..Default::default()
        }),
    })
    .await
    .expect("create an endpoint outside the operator");
    let adopter = resource(
        "shop",
        "adopter",
        "  endpointName: made-by-cli\n  taskQueue: mine\n",
    );
    for manifest in [&squatter, &intruder, &adopter] {
        let out = kube.apply(manifest).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (name, reason) in [
        ("squatter", "EndpointNameTaken"),
        ("intruder", "NamespaceNotAllowed"),
        ("adopter", "EndpointNameTaken"),
    ] {
        let s = accepted_is(&kube, "shop", name, "False").await;
        assert_eq!(condition(&s, "Accepted")["reason"], reason, "{name}: {s}");
        assert!(s["endpointId"].is_null(), "{name}: {s}");
    }
    let billing = endpoint_named(&mut ops, "billing").await.unwrap();
    assert_eq!(
        (worker_target(&billing), billing.version),
        (("billing".into(), "billing-v2".into()), 2),
        "the squatter changed billing's endpoint"
    );
    assert!(
        endpoint_named(&mut ops, "intruder").await.is_none(),
        "an endpoint routes into a namespace shop may not use"
    );
    let events = kube
        .get_json(&[
            "-n",
            "shop",
            "events",
            "--field-selector",
            "reason=EndpointNameTaken",
        ])
        .await;
    assert!(
        events["items"].as_array().is_some_and(|i| !i.is_empty()),
        "a Warning event explains the refusal: {events}"
    );

    // Deleting the refused resources deletes nobody's endpoint; deleting billing's deletes it.
    for name in ["squatter", "adopter", "intruder"] {
        kube.kubectl_ok(&[
            "-n",
            "shop",
            "delete",
            "nexusendpoint",
            name,
            "--timeout=30s",
        ])
        .await;
    }
    assert!(endpoint_named(&mut ops, "billing").await.is_some());
    assert!(endpoint_named(&mut ops, "made-by-cli").await.is_some());
    kube.kubectl_ok(&[
        "-n",
        "billing",
        "delete",
        "nexusendpoint",
        "billing",
        "--timeout=30s",
    ])
    .await;
    assert!(
        endpoint_named(&mut ops, "billing").await.is_none(),
        "the deleted resource's endpoint is gone"
    );
}
