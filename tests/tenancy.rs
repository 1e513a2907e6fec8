//! Tenants stay apart on the gRPC port: a client whose token allows namespace `team-a` reaches
//! nothing of namespace `team-b` through any RPC family, and a task token of team-b is refused
//! when it is sent with team-a's namespace (which is what authorization checks).

mod common;

use common::DurinServer;
use durin::proto::api::command::v1::{
    Command, ScheduleActivityTaskCommandAttributes, command::Attributes,
};
use durin::proto::api::common::v1::{ActivityType, WorkflowExecution, WorkflowType};
use durin::proto::api::enums::v1::CommandType;
use durin::proto::api::operatorservice::v1::{DeleteNamespaceRequest, ListSearchAttributesRequest};
use durin::proto::api::query::v1::WorkflowQuery;
use durin::proto::api::schedule::v1::Schedule;
use durin::proto::api::taskqueue::v1::TaskQueue;
use durin::proto::api::update::v1::Request as UpdateRequest;
use durin::proto::api::workflowservice::v1::*;
use durin::proto::operatorservice::operator_service_client::OperatorServiceClient;
use durin::proto::workflowservice::workflow_service_client::WorkflowServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

const ADMIN: &str = "admin-token-0123456789";
const TEAM_A: &str = "team-a-token-0123456789";

/// `message` sent with `token`.
fn with<T>(token: &str, message: T) -> Request<T> {
    let mut req = Request::new(message);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    req
}

fn execution(id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: id.into(),
        run_id: String::new(),
    })
}

fn queue(name: &str) -> Option<TaskQueue> {
    Some(TaskQueue {
        name: name.into(),
        ..Default::default()
    })
}

fn start(namespace: &str, id: &str) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: namespace.into(),
        workflow_id: id.into(),
        workflow_type: Some(WorkflowType { name: "wf".into() }),
        task_queue: queue("tq"),
        request_id: format!("{namespace}-{id}"),
        ..Default::default()
    }
}

fn refused<T: std::fmt::Debug>(what: &str, result: Result<tonic::Response<T>, Status>, code: Code) {
    match result {
        Err(status) => assert_eq!(status.code(), code, "{what}: {status:?}"),
        Ok(r) => panic!("{what} must be refused, got {r:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_token_reaches_nothing_of_another_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = dir.path().join("tokens.yaml");
    std::fs::write(
        &auth,
        format!(
            "tokens:\n  - name: admin\n    token: {ADMIN}\n    namespaces: [\"*\"]\n  - name: team-a\n    token: {TEAM_A}\n    namespaces: [team-a]\n"
        ),
    )
    .expect("auth file");
    let server = DurinServer::start_listening(vec![
        "dev".into(),
        format!("--auth-file={}", auth.display()),
    ])
    .await;
    let channel = Channel::from_shared(format!("http://127.0.0.1:{}", server.port()))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut wf = WorkflowServiceClient::new(channel.clone());
    let mut op = OperatorServiceClient::new(channel);

    for ns in ["team-a", "team-b"] {
        wf.register_namespace(with(
            ADMIN,
            RegisterNamespaceRequest {
                namespace: ns.into(),
                workflow_execution_retention_period: Some(prost_wkt_types::Duration {
                    seconds: 86400,
                    nanos: 0,
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("admin registers the namespaces");
    }

    // Team B has a workflow with a running activity; the admin plays its worker.
    wf.start_workflow_execution(with(ADMIN, start("team-b", "b-wf")))
        .await
        .expect("start in team-b");
    let task = wf
        .poll_workflow_task_queue(with(
            ADMIN,
            PollWorkflowTaskQueueRequest {
                namespace: "team-b".into(),
                task_queue: queue("tq"),
                ..Default::default()
            },
        ))
        .await
        .expect("poll team-b")
        .into_inner();
    let schedule_activity = Command {
        command_type: CommandType::ScheduleActivityTask as i32,
        attributes: Some(Attributes::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                activity_id: "a1".into(),
                activity_type: Some(ActivityType { name: "act".into() }),
                task_queue: queue("tq"),
                start_to_close_timeout: Some(prost_wkt_types::Duration {
                    seconds: 300,
                    nanos: 0,
                }),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    wf.respond_workflow_task_completed(with(
        ADMIN,
        RespondWorkflowTaskCompletedRequest {
            namespace: "team-b".into(),
            task_token: task.task_token,
            commands: vec![schedule_activity],
            ..Default::default()
        },
    ))
    .await
    .expect("schedule the activity");
    let activity = wf
        .poll_activity_task_queue(with(
            ADMIN,
            PollActivityTaskQueueRequest {
                namespace: "team-b".into(),
                task_queue: queue("tq"),
                ..Default::default()
            },
        ))
        .await
        .expect("poll the activity")
        .into_inner();
    assert!(!activity.task_token.is_empty(), "an activity task");
    let token = activity.task_token.clone();

    // Team A, with team-b's task token, names its own namespace (which it may use): refused,
    // the token belongs to another namespace.
    refused(
        "complete by a token of another namespace",
        wf.respond_activity_task_completed(with(
            TEAM_A,
            RespondActivityTaskCompletedRequest {
                namespace: "team-a".into(),
                task_token: token.clone(),
                ..Default::default()
            },
        ))
        .await,
        Code::InvalidArgument,
    );
    refused(
        "fail by a token of another namespace",
        wf.respond_activity_task_failed(with(
            TEAM_A,
            RespondActivityTaskFailedRequest {
                namespace: "team-a".into(),
                task_token: token.clone(),
                ..Default::default()
            },
        ))
        .await,
        Code::InvalidArgument,
    );
    refused(
        "heartbeat by a token of another namespace",
        wf.record_activity_task_heartbeat(with(
            TEAM_A,
            RecordActivityTaskHeartbeatRequest {
                namespace: "team-a".into(),
                task_token: token.clone(),
                ..Default::default()
            },
        ))
        .await,
        Code::InvalidArgument,
    );
    refused(
        "cancel by a token of another namespace",
        wf.respond_activity_task_canceled(with(
            TEAM_A,
            RespondActivityTaskCanceledRequest {
                namespace: "team-a".into(),
                task_token: token.clone(),
                ..Default::default()
            },
        ))
        .await,
        Code::InvalidArgument,
    );

    // Every RPC family naming team-b: permission denied.
    let denied = Code::PermissionDenied;
    let b = || "team-b".to_string();
    refused(
        "complete by token",
        wf.respond_activity_task_completed(with(
            TEAM_A,
            RespondActivityTaskCompletedRequest {
                namespace: b(),
                task_token: token.clone(),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "complete by id",
        wf.respond_activity_task_completed_by_id(with(
            TEAM_A,
            RespondActivityTaskCompletedByIdRequest {
                namespace: b(),
                workflow_id: "b-wf".into(),
                activity_id: "a1".into(),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "start",
        wf.start_workflow_execution(with(TEAM_A, start("team-b", "intruder")))
            .await,
        denied,
    );
    refused(
        "signal",
        wf.signal_workflow_execution(with(
            TEAM_A,
            SignalWorkflowExecutionRequest {
                namespace: b(),
                workflow_execution: execution("b-wf"),
                signal_name: "s".into(),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "query",
        wf.query_workflow(with(
            TEAM_A,
            QueryWorkflowRequest {
                namespace: b(),
                execution: execution("b-wf"),
                query: Some(WorkflowQuery {
                    query_type: "q".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "update",
        wf.update_workflow_execution(with(
            TEAM_A,
            UpdateWorkflowExecutionRequest {
                namespace: b(),
                workflow_execution: execution("b-wf"),
                request: Some(UpdateRequest::default()),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "poll workflow tasks",
        wf.poll_workflow_task_queue(with(
            TEAM_A,
            PollWorkflowTaskQueueRequest {
                namespace: b(),
                task_queue: queue("tq"),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "poll activity tasks",
        wf.poll_activity_task_queue(with(
            TEAM_A,
            PollActivityTaskQueueRequest {
                namespace: b(),
                task_queue: queue("tq"),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "describe",
        wf.describe_workflow_execution(with(
            TEAM_A,
            DescribeWorkflowExecutionRequest {
                namespace: b(),
                execution: execution("b-wf"),
            },
        ))
        .await,
        denied,
    );
    refused(
        "history",
        wf.get_workflow_execution_history(with(
            TEAM_A,
            GetWorkflowExecutionHistoryRequest {
                namespace: b(),
                execution: execution("b-wf"),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "terminate",
        wf.terminate_workflow_execution(with(
            TEAM_A,
            TerminateWorkflowExecutionRequest {
                namespace: b(),
                workflow_execution: execution("b-wf"),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "list",
        wf.list_workflow_executions(with(
            TEAM_A,
            ListWorkflowExecutionsRequest {
                namespace: b(),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "count",
        wf.count_workflow_executions(with(
            TEAM_A,
            CountWorkflowExecutionsRequest {
                namespace: b(),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "scan",
        wf.scan_workflow_executions(with(
            TEAM_A,
            ScanWorkflowExecutionsRequest {
                namespace: b(),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "create schedule",
        wf.create_schedule(with(
            TEAM_A,
            CreateScheduleRequest {
                namespace: b(),
                schedule_id: "sched".into(),
                schedule: Some(Schedule::default()),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "list schedules",
        wf.list_schedules(with(
            TEAM_A,
            ListSchedulesRequest {
                namespace: b(),
                ..Default::default()
            },
        ))
        .await,
        denied,
    );
    refused(
        "operator: list search attributes",
        op.list_search_attributes(with(TEAM_A, ListSearchAttributesRequest { namespace: b() }))
            .await,
        denied,
    );
    // Deleting a namespace takes a token for every namespace: not another team's, and not
    // even the team's own.
    for ns in ["team-b", "team-a"] {
        refused(
            &format!("operator: delete namespace {ns}"),
            op.delete_namespace(with(
                TEAM_A,
                DeleteNamespaceRequest {
                    namespace: ns.into(),
                    ..Default::default()
                },
            ))
            .await,
            denied,
        );
    }

    // Team B's workflow is untouched: still running, its activity still pending.
    let described = wf
        .describe_workflow_execution(with(
            ADMIN,
            DescribeWorkflowExecutionRequest {
                namespace: "team-b".into(),
                execution: execution("b-wf"),
            },
        ))
        .await
        .expect("admin describes")
        .into_inner();
    assert_eq!(described.pending_activities.len(), 1, "{described:?}");
    assert_eq!(
        described.workflow_execution_info.expect("info").status,
        durin::proto::api::enums::v1::WorkflowExecutionStatus::Running as i32
    );
    // And its rightful worker still completes the activity with the same token.
    wf.respond_activity_task_completed(with(
        ADMIN,
        RespondActivityTaskCompletedRequest {
            namespace: "team-b".into(),
            task_token: token,
            ..Default::default()
        },
    ))
    .await
    .expect("the owner completes its activity");
}
