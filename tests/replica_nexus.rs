//! Nexus across replicas sharing one PostgreSQL database.
//!
//! - The endpoint registry: an endpoint created through one replica is read, listed and
//!   changed through the other at once, and versions are checked against the newest change
//!   whichever replica made it.
//! - Operations of workflows: workflows whose shards either replica owns schedule operations;
//!   a handler connected to one replica only gets every attempt (fetched from the other) and
//!   its answers reach each caller's history; asynchronous ones start handler workflows in
//!   shards of either replica, whose completion callbacks reach callers served by the other.
//! - Standalone operations: started through either replica (each lands in its shard's
//!   owner), answered by a handler on one replica, completed by handler workflows in shards of
//!   either, polled, listed and counted through the other.
//! - The system endpoint: workflows signal-with-start targets in shards of either replica
//!   (through the outbox when the other serves the target).
//!
//! Nexus over HTTP across replicas is in `replica_nexus_http.rs`.

mod common;

use std::time::Duration;

use common::replicas::{
    nexus_operation_outcome as closed_outcome, poll_workflow_task as poll, retrying, start_spread,
    two_replicas,
};
use common::unique;
use temporalio_client::{
    Client,
    grpc::{OperatorService, WorkflowService},
    tonic::{Code, Request},
};
use temporalio_common::protos::temporal::api::{
    common::v1::{Payload, Payloads},
    nexus::v1::{EndpointSpec, EndpointTarget, endpoint_target},
    operatorservice::v1::{
        CreateNexusEndpointRequest, DeleteNexusEndpointRequest, GetNexusEndpointRequest,
        ListNexusEndpointsRequest, UpdateNexusEndpointRequest,
    },
    taskqueue::v1::TaskQueue,
};

const NAMESPACE: &str = "default";

fn endpoint_spec(name: &str, task_queue: &str) -> Option<EndpointSpec> {
    Some(EndpointSpec {
        name: name.into(),
        description: None,
        target: Some(EndpointTarget {
            variant: Some(endpoint_target::Variant::Worker(endpoint_target::Worker {
                namespace: NAMESPACE.into(),
                task_queue: task_queue.into(),
            })),
        }),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nexus_endpoint_registry_is_the_same_on_every_replica() {
    let (_pg, _replicas, clients) = two_replicas("nexus_endpoint_replicas").await;
    let (mut one, mut two) = (clients[0].clone(), clients[1].clone());
    let name = unique("ep");
    let created = one
        .create_nexus_endpoint(Request::new(CreateNexusEndpointRequest {
            spec: endpoint_spec(&name, "handlers"),
        }))
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    // Seen through the other replica as soon as the create answered.
    let seen = two
        .get_nexus_endpoint(Request::new(GetNexusEndpointRequest {
            id: created.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    assert_eq!(seen, created);
    let listed = two
        .list_nexus_endpoints(Request::new(ListNexusEndpointsRequest {
            name: name.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .endpoints;
    assert_eq!(listed, vec![created.clone()]);
    // A duplicate name through the other replica is refused.
    let duplicate = two
        .create_nexus_endpoint(Request::new(CreateNexusEndpointRequest {
            spec: endpoint_spec(&name, "elsewhere"),
        }))
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists, "{duplicate:?}");

    // Updated through replica 2; replica 1 then checks versions against that change.
    let updated = two
        .update_nexus_endpoint(Request::new(UpdateNexusEndpointRequest {
            id: created.id.clone(),
            version: created.version,
            spec: endpoint_spec(&name, "handlers-v2"),
        }))
        .await
        .unwrap()
        .into_inner()
        .endpoint
        .unwrap();
    assert_eq!(updated.version, created.version + 1);
    let stale = one
        .update_nexus_endpoint(Request::new(UpdateNexusEndpointRequest {
            id: created.id.clone(),
            version: created.version,
            spec: endpoint_spec(&name, "handlers-v3"),
        }))
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition, "{stale:?}");
    one.delete_nexus_endpoint(Request::new(DeleteNexusEndpointRequest {
        id: created.id.clone(),
        version: updated.version,
    }))
    .await
    .unwrap();
    let gone = two
        .get_nexus_endpoint(Request::new(GetNexusEndpointRequest {
            id: created.id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    // The name is free again, on either replica.
    two.create_nexus_endpoint(Request::new(CreateNexusEndpointRequest {
        spec: endpoint_spec(&name, "handlers"),
    }))
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nexus_operations_reach_a_handler_on_either_replica() {
    use temporalio_common::protos::temporal::api::{
        command::v1::{Command, ScheduleNexusOperationCommandAttributes, command},
        common::v1::WorkflowType,
        enums::v1::{CommandType, EventType},
        history::v1::history_event::Attributes,
        workflowservice::v1::{RespondWorkflowTaskCompletedRequest, StartWorkflowExecutionRequest},
    };
    let (_pg, _replicas, clients) = two_replicas("nexus_operation_replicas").await;
    let callers = unique("nexus-callers");
    let handlers = unique("nexus-handlers");
    let endpoint = unique("ep");
    let mut operator = clients[0].clone();
    operator
        .create_nexus_endpoint(Request::new(CreateNexusEndpointRequest {
            spec: endpoint_spec(&endpoint, &handlers),
        }))
        .await
        .unwrap();
    // Caller workflows in shards all over, each scheduling one operation in its first task.
    // Every fourth is answered synchronously, the others by a handler workflow.
    let ids: Vec<String> = (0..8).map(|i| format!("{callers}-{i}")).collect();
    let is_sync = |id: &str| id.ends_with(['0', '4']);
    for (i, id) in ids.iter().enumerate() {
        let client = &clients[i % clients.len()];
        retrying("start caller", || {
            let mut raw = client.clone();
            let req = StartWorkflowExecutionRequest {
                namespace: NAMESPACE.into(),
                workflow_id: id.clone(),
                workflow_type: Some(WorkflowType {
                    name: "Caller".into(),
                }),
                task_queue: queue(&callers),
                request_id: format!("start-{id}"),
                ..Default::default()
            };
            async move { raw.start_workflow_execution(Request::new(req)).await }
        })
        .await;
    }
    let mut scheduled = std::collections::HashSet::new();
    let since = std::time::Instant::now();
    while scheduled.len() < ids.len() {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "only {} callers got their first workflow task",
            scheduled.len()
        );
        let task = poll(&clients[0], &callers, None, Duration::from_secs(10))
            .await
            .expect("poll a caller's workflow task");
        if task.task_token.is_empty() {
            continue;
        }
        let caller = task.workflow_execution.clone().unwrap().workflow_id;
        // A later task (the operation completed) needs nothing more.
        let commands_now = !scheduled.contains(&caller);
        let mut raw = clients[0].clone();
        raw.respond_workflow_task_completed(Request::new(RespondWorkflowTaskCompletedRequest {
            namespace: NAMESPACE.into(),
            task_token: task.task_token,
            commands: std::iter::once(Command {
                command_type: CommandType::ScheduleNexusOperation as i32,
                attributes: Some(
                    command::Attributes::ScheduleNexusOperationCommandAttributes(
                        ScheduleNexusOperationCommandAttributes {
                            endpoint: endpoint.clone(),
                            service: "Echo".into(),
                            operation: "echo".into(),
                            input: Some(Payload {
                                data: task.workflow_execution.unwrap().workflow_id.into_bytes(),
                                ..Default::default()
                            }),
                            schedule_to_close_timeout: Some(
                                Duration::from_secs(60).try_into().unwrap(),
                            ),
                            ..Default::default()
                        },
                    ),
                ),
                ..Default::default()
            })
            .filter(|_| commands_now)
            .collect(),
            ..Default::default()
        }))
        .await
        .expect("schedule the operation");
        scheduled.insert(caller);
    }
    // A handler connected to replica 2 only answers every operation with its input; the
    // handler workflows, in shards of both replicas, complete with their input.
    answer_start_tasks(&clients[1], &handlers, ids.len(), is_sync).await;
    let handler_count = ids.iter().filter(|id| !is_sync(id)).count();
    complete_handler_workflows(&clients[0], &format!("{handlers}-wf"), handler_count).await;
    for id in &ids {
        let since = std::time::Instant::now();
        let history = loop {
            let history = caller_history(&clients[0], id).await;
            let closed = history.events.iter().any(|e| {
                matches!(
                    &e.attributes,
                    Some(Attributes::NexusOperationCompletedEventAttributes(_))
                )
            });
            if closed || since.elapsed() > Duration::from_secs(30) {
                break history;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let started = history.events.iter().any(|e| {
            matches!(
                &e.attributes,
                Some(Attributes::NexusOperationStartedEventAttributes(s))
                    if s.operation_token == format!("token-{id}")
            )
        });
        assert_eq!(started, !is_sync(id), "{id}: started only if asynchronous");
        let completed = history.events.iter().find_map(|e| match &e.attributes {
            Some(Attributes::NexusOperationCompletedEventAttributes(c)) => Some(c),
            _ => None,
        });
        let result = completed
            .and_then(|c| c.result.as_ref())
            .unwrap_or_else(|| {
                panic!(
                    "{id}: no NexusOperationCompleted in {:?}",
                    history
                        .events
                        .iter()
                        .map(|e| EventType::try_from(e.event_type))
                        .collect::<Vec<_>>()
                )
            });
        assert_eq!(result.data, id.as_bytes(), "{id} got its own answer");
    }
}

/// The history of the current run of `workflow_id`.
async fn caller_history(
    client: &Client,
    workflow_id: &str,
) -> temporalio_common::protos::temporal::api::history::v1::History {
    use temporalio_common::protos::temporal::api::workflowservice::v1::GetWorkflowExecutionHistoryRequest;
    let mut raw = client.clone();
    raw.get_workflow_execution_history(Request::new(GetWorkflowExecutionHistoryRequest {
        namespace: NAMESPACE.into(),
        execution: Some(
            temporalio_common::protos::temporal::api::common::v1::WorkflowExecution {
                workflow_id: workflow_id.into(),
                run_id: String::new(),
            },
        ),
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner()
    .history
    .unwrap()
}

/// Workflows in shards of both replicas signal-with-start targets in shards of both through
/// the system Nexus endpoint: a target another replica serves is reached through the outbox,
/// and every caller's operation completes with the target's run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_signal_with_start_reaches_targets_on_either_replica() {
    use prost::Message;
    use temporalio_common::protos::temporal::api::{
        command::v1::{Command, ScheduleNexusOperationCommandAttributes, command},
        common::v1::WorkflowType,
        enums::v1::CommandType,
        history::v1::history_event::Attributes,
        workflowservice::v1::{
            RespondWorkflowTaskCompletedRequest, SignalWithStartWorkflowExecutionRequest,
            SignalWithStartWorkflowExecutionResponse,
        },
    };
    let (_pg, _replicas, clients) = two_replicas("system_nexus_replicas").await;
    let callers = unique("posters");
    let targets = unique("inboxes");
    let ids: Vec<String> = (0..6).map(|i| format!("{callers}-{i}")).collect();
    start_spread(&clients, NAMESPACE, &ids, &callers).await;
    let queue = |name: &str| {
        Some(TaskQueue {
            name: name.into(),
            ..Default::default()
        })
    };
    let mut scheduled = std::collections::HashSet::new();
    let since = std::time::Instant::now();
    while scheduled.len() < ids.len() {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "only {} callers got their first workflow task",
            scheduled.len()
        );
        let task = poll(&clients[0], &callers, None, Duration::from_secs(10))
            .await
            .expect("poll a caller's workflow task");
        if task.task_token.is_empty() {
            continue;
        }
        let caller = task.workflow_execution.unwrap().workflow_id;
        // A later task (the operation completed) needs nothing more.
        let commands_now = !scheduled.contains(&caller);
        let request = SignalWithStartWorkflowExecutionRequest {
            workflow_id: format!("{targets}-for-{caller}"),
            workflow_type: Some(WorkflowType {
                name: "Inbox".into(),
            }),
            task_queue: queue(&targets),
            signal_name: "deliver".into(),
            ..Default::default()
        };
        let input = Payload {
            metadata: [
                ("encoding".to_string(), b"binary/protobuf".to_vec()),
                (
                    "messageType".to_string(),
                    b"temporal.api.workflowservice.v1.SignalWithStartWorkflowExecutionRequest"
                        .to_vec(),
                ),
            ]
            .into(),
            data: request.encode_to_vec(),
            ..Default::default()
        };
        let mut raw = clients[0].clone();
        raw.respond_workflow_task_completed(Request::new(RespondWorkflowTaskCompletedRequest {
            namespace: NAMESPACE.into(),
            task_token: task.task_token,
            commands: std::iter::once(Command {
                command_type: CommandType::ScheduleNexusOperation as i32,
                attributes: Some(
                    command::Attributes::ScheduleNexusOperationCommandAttributes(
                        ScheduleNexusOperationCommandAttributes {
                            endpoint: "__temporal_system".into(),
                            service: "temporal.api.workflowservice.v1.WorkflowService".into(),
                            operation: "SignalWithStartWorkflowExecution".into(),
                            input: Some(input),
                            ..Default::default()
                        },
                    ),
                ),
                ..Default::default()
            })
            .filter(|_| commands_now)
            .collect(),
            ..Default::default()
        }))
        .await
        .expect("schedule the system operation");
        scheduled.insert(caller);
    }
    for id in &ids {
        let since = std::time::Instant::now();
        let completed = loop {
            let history = caller_history(&clients[1], id).await;
            let completed = history.events.iter().find_map(|e| match &e.attributes {
                Some(Attributes::NexusOperationCompletedEventAttributes(c)) => c.result.clone(),
                _ => None,
            });
            if let Some(result) = completed {
                break result;
            }
            assert!(
                since.elapsed() < Duration::from_secs(30),
                "{id}: the system operation never completed: {:?}",
                history
                    .events
                    .iter()
                    .map(|e| (e.event_type, e.attributes.clone()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let response = SignalWithStartWorkflowExecutionResponse::decode(completed.data.as_slice())
            .expect("a SignalWithStartWorkflowExecutionResponse");
        assert!(
            response.started && !response.run_id.is_empty(),
            "{id}: {response:?}"
        );
        let target = caller_history(&clients[1], &format!("{targets}-for-{id}")).await;
        let signaled = target.events.iter().find(|e| {
            matches!(
                &e.attributes,
                Some(Attributes::WorkflowExecutionSignaledEventAttributes(_))
            )
        });
        let link = signaled
            .and_then(|e| e.links.first())
            .unwrap_or_else(|| panic!("{id}: the target's signal has no link back"));
        assert!(format!("{link:?}").contains(id.as_str()), "{id}: {link:?}");
    }
}

fn queue(name: &str) -> Option<TaskQueue> {
    Some(TaskQueue {
        name: name.into(),
        ..Default::default()
    })
}

/// A handler connected to `client` only answers `count` start tasks of `handlers`, each with
/// its input (the caller's key): synchronously when `is_sync` says so, else by starting a
/// handler workflow (on queue `<handlers>-wf`) whose completion callback answers.
async fn answer_start_tasks(
    client: &Client,
    handlers: &str,
    count: usize,
    is_sync: impl Fn(&str) -> bool,
) {
    use temporalio_common::protos::temporal::api::{
        common::v1::{Callback, WorkflowType, callback},
        nexus::v1::{
            Response as NexusResponse, StartOperationResponse, request, response,
            start_operation_response,
        },
        workflowservice::v1::{
            PollNexusTaskQueueRequest, RespondNexusTaskCompletedRequest,
            StartWorkflowExecutionRequest,
        },
    };
    let mut answered = 0;
    let since = std::time::Instant::now();
    while answered < count {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "the handler got {answered} of {count} operations"
        );
        let mut raw = client.clone();
        let mut req = Request::new(PollNexusTaskQueueRequest {
            namespace: NAMESPACE.into(),
            task_queue: queue(handlers),
            identity: "handler-on-one-replica".into(),
            ..Default::default()
        });
        req.set_timeout(Duration::from_secs(10));
        let task = raw.poll_nexus_task_queue(req).await.unwrap().into_inner();
        let Some(request::Variant::StartOperation(start)) = task.request.and_then(|r| r.variant)
        else {
            continue;
        };
        let caller = String::from_utf8(start.payload.clone().unwrap().data).unwrap();
        let answer = if is_sync(&caller) {
            start_operation_response::Variant::SyncSuccess(start_operation_response::Sync {
                payload: start.payload,
                links: Vec::new(),
            })
        } else {
            // A workflow does the work; its close calls back.
            let token = format!("token-{caller}");
            let mut header = start.callback_header.clone();
            header.insert("nexus-operation-token".into(), token.clone());
            raw.start_workflow_execution(Request::new(StartWorkflowExecutionRequest {
                namespace: NAMESPACE.into(),
                workflow_id: format!("handler-{caller}"),
                workflow_type: Some(WorkflowType {
                    name: "Handler".into(),
                }),
                task_queue: queue(&format!("{handlers}-wf")),
                input: Some(Payloads {
                    payloads: vec![start.payload.unwrap()],
                }),
                request_id: start.request_id.clone(),
                completion_callbacks: vec![Callback {
                    variant: Some(callback::Variant::Nexus(callback::Nexus {
                        url: start.callback.clone(),
                        header,
                    })),
                    links: Vec::new(),
                }],
                ..Default::default()
            }))
            .await
            .expect("start the handler workflow");
            start_operation_response::Variant::AsyncSuccess(start_operation_response::Async {
                operation_token: token,
                ..Default::default()
            })
        };
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
        .expect("the answer reaches the caller's replica");
        answered += 1;
    }
}

/// Completes `count` handler workflows of `task_queue` (polled through `client`) with their
/// input.
async fn complete_handler_workflows(client: &Client, task_queue: &str, count: usize) {
    use temporalio_common::protos::temporal::api::{
        command::v1::{Command, CompleteWorkflowExecutionCommandAttributes, command},
        enums::v1::CommandType,
        history::v1::history_event::Attributes,
        workflowservice::v1::RespondWorkflowTaskCompletedRequest,
    };
    let mut completed = 0;
    let since = std::time::Instant::now();
    while completed < count {
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "{completed} of {count} handler workflows completed"
        );
        let task = poll(client, task_queue, None, Duration::from_secs(10))
            .await
            .expect("poll a handler workflow's task");
        let Some(history) = task.history else {
            continue;
        };
        let input = history.events.iter().find_map(|e| match &e.attributes {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(s)) => s.input.clone(),
            _ => None,
        });
        let mut raw = client.clone();
        raw.respond_workflow_task_completed(Request::new(RespondWorkflowTaskCompletedRequest {
            namespace: NAMESPACE.into(),
            task_token: task.task_token,
            commands: vec![Command {
                command_type: CommandType::CompleteWorkflowExecution as i32,
                attributes: Some(
                    command::Attributes::CompleteWorkflowExecutionCommandAttributes(
                        CompleteWorkflowExecutionCommandAttributes { result: input },
                    ),
                ),
                ..Default::default()
            }],
            ..Default::default()
        }))
        .await
        .expect("complete the handler workflow");
        completed += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_operations_are_served_across_replicas() {
    use temporalio_common::protos::temporal::api::{
        enums::v1::NexusOperationExecutionStatus,
        workflowservice::v1::{
            CountNexusOperationExecutionsRequest, ListNexusOperationExecutionsRequest,
            StartNexusOperationExecutionRequest, poll_nexus_operation_execution_response::Outcome,
        },
    };
    let (_pg, _replicas, clients) = two_replicas("nexus_standalone_replicas").await;
    let handlers = unique("standalone-handlers");
    let endpoint = unique("ep");
    let mut operator = clients[0].clone();
    operator
        .create_nexus_endpoint(Request::new(CreateNexusEndpointRequest {
            spec: endpoint_spec(&endpoint, &handlers),
        }))
        .await
        .unwrap();
    // Operations in shards all over, started through either replica; every third is answered
    // synchronously, the others by a handler workflow.
    let prefix = unique("op");
    let ids: Vec<String> = (0..6).map(|i| format!("{prefix}-{i}")).collect();
    let is_sync = |id: &str| id.ends_with(['0', '3']);
    for (i, id) in ids.iter().enumerate() {
        let client = &clients[i % clients.len()];
        retrying("start an operation", || {
            let mut raw = client.clone();
            let req = StartNexusOperationExecutionRequest {
                namespace: NAMESPACE.into(),
                operation_id: id.clone(),
                endpoint: endpoint.clone(),
                service: "Echo".into(),
                operation: "echo".into(),
                input: Some(Payload {
                    data: id.clone().into_bytes(),
                    ..Default::default()
                }),
                request_id: format!("start-{id}"),
                schedule_to_close_timeout: Some(Duration::from_secs(60).try_into().unwrap()),
                ..Default::default()
            };
            async move { raw.start_nexus_operation_execution(Request::new(req)).await }
        })
        .await;
    }
    answer_start_tasks(&clients[1], &handlers, ids.len(), is_sync).await;
    let handler_count = ids.iter().filter(|id| !is_sync(id)).count();
    complete_handler_workflows(&clients[0], &format!("{handlers}-wf"), handler_count).await;
    // Each result is read through the replica that did not start it.
    for (i, id) in ids.iter().enumerate() {
        let client = &clients[(i + 1) % clients.len()];
        let outcome = closed_outcome(client, id).await;
        let Some(Outcome::Result(result)) = outcome else {
            panic!("{id}: {outcome:?}");
        };
        assert_eq!(result.data, id.as_bytes(), "{id} got its own answer");
    }
    let query = format!("Endpoint = '{endpoint}'");
    let mut raw = clients[1].clone();
    let listed = raw
        .list_nexus_operation_executions(Request::new(ListNexusOperationExecutionsRequest {
            namespace: NAMESPACE.into(),
            query: query.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .operations;
    let mut listed_ids: Vec<String> = listed.iter().map(|o| o.operation_id.clone()).collect();
    listed_ids.sort();
    assert_eq!(listed_ids, ids, "both replicas' operations are listed");
    assert!(
        listed
            .iter()
            .all(|o| o.status == NexusOperationExecutionStatus::Completed as i32)
    );
    let mut raw = clients[0].clone();
    let count = raw
        .count_nexus_operation_executions(Request::new(CountNexusOperationExecutionsRequest {
            namespace: NAMESPACE.into(),
            query,
        }))
        .await
        .unwrap()
        .into_inner()
        .count;
    assert_eq!(count, ids.len() as i64);
}
