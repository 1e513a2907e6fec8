//! namespaces: register a namespace (with its own retention period) through the raw
//! `WorkflowService` gRPC API, describe it and find it in the namespace list, then run a
//! workflow in it with a client bound to it. Workflows of one namespace are invisible from
//! another.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use temporalio_client::{
    Client, ClientOptions, NamespacedClient, WorkflowExecutionStatus,
    errors::WorkflowInteractionError,
    grpc::WorkflowService,
    tonic::{Code, Request},
};
use temporalio_common::protos::temporal::api::{
    enums::v1::NamespaceState,
    workflowservice::v1::{
        DescribeNamespaceRequest, ListNamespacesRequest, RegisterNamespaceRequest,
    },
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkerOptions, WorkflowContext, WorkflowResult};

use crate::support::{Env, describe, run_handle, start_options, unique, with_worker, within};

/// Retention of closed workflows in the new namespace: 2 days.
const RETENTION: Duration = Duration::from_secs(2 * 24 * 3600);

/// Says which namespace it runs in.
#[workflow]
#[derive(Default)]
pub struct WhereAmIWorkflow;

#[workflow_methods]
impl WhereAmIWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        Ok(format!(
            "{name} runs in namespace {}",
            ctx.info().namespace()
        ))
    }
}

/// Every namespace name, following the list's pages.
async fn list_namespaces(client: &Client) -> Result<Vec<String>> {
    let mut service = client.clone();
    let mut names = Vec::new();
    let mut next_page_token = Vec::new();
    loop {
        let page = within(
            10,
            "ListNamespaces",
            WorkflowService::list_namespaces(
                &mut service,
                Request::new(ListNamespacesRequest {
                    page_size: 50,
                    next_page_token,
                    ..Default::default()
                }),
            ),
        )
        .await?
        .context("ListNamespaces")?
        .into_inner();
        names.extend(
            page.namespaces
                .iter()
                .filter_map(|ns| ns.namespace_info.as_ref())
                .map(|info| info.name.clone()),
        );
        if page.next_page_token.is_empty() {
            return Ok(names);
        }
        next_page_token = page.next_page_token;
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let mut service = client.clone();
    let namespace = unique("samples-ns");

    // 1. Register. Namespaces are created through the WorkflowService API itself (the CLI's
    //    `temporal operator namespace create` makes the same call).
    let register = || RegisterNamespaceRequest {
        namespace: namespace.clone(),
        description: "created by the namespaces sample".to_string(),
        owner_email: "samples@example.com".to_string(),
        workflow_execution_retention_period: Some(prost_wkt_types::Duration {
            seconds: RETENTION.as_secs() as i64,
            nanos: 0,
        }),
        ..Default::default()
    };
    within(
        10,
        "RegisterNamespace",
        WorkflowService::register_namespace(&mut service, Request::new(register())),
    )
    .await?
    .with_context(|| format!("RegisterNamespace {namespace}"))?;
    println!("registered namespace {namespace} (retention 48h)");

    // Registering the same name again is refused.
    let again = within(
        10,
        "RegisterNamespace",
        WorkflowService::register_namespace(&mut service, Request::new(register())),
    )
    .await?;
    match again {
        Err(status) if status.code() == Code::AlreadyExists => {
            println!("registering it again: AlreadyExists ({})", status.message())
        }
        Err(status) => bail!("expected AlreadyExists on a second registration, got {status:?}"),
        Ok(_) => bail!("registering {namespace} twice should fail"),
    }

    // 2. Describe.
    let described = within(
        10,
        "DescribeNamespace",
        WorkflowService::describe_namespace(
            &mut service,
            Request::new(DescribeNamespaceRequest {
                namespace: namespace.clone(),
                ..Default::default()
            }),
        ),
    )
    .await?
    .context("DescribeNamespace")?
    .into_inner();
    let info = described.namespace_info.clone().unwrap_or_default();
    let retention = described
        .config
        .as_ref()
        .and_then(|c| c.workflow_execution_retention_ttl.as_ref())
        .map(|d| d.seconds)
        .unwrap_or_default();
    println!(
        "describe: name {}, state {:?}, description {:?}, owner {}, retention {}h, id {}",
        info.name,
        info.state(),
        info.description,
        info.owner_email,
        retention / 3600,
        info.id
    );
    ensure!(info.name == namespace && info.state() == NamespaceState::Registered);
    ensure!(info.description == "created by the namespaces sample");
    ensure!(
        retention == RETENTION.as_secs() as i64,
        "retention is {retention}s, registered {}s",
        RETENTION.as_secs()
    );

    // 3. List.
    let names = list_namespaces(&client).await?;
    let home = client.namespace();
    println!(
        "list: {} namespaces, including {home} and {namespace}",
        names.len()
    );
    ensure!(
        names.contains(&home) && names.contains(&namespace),
        "the list should hold {home} and {namespace}: {names:?}"
    );

    // 4. A client (and a worker) bound to the new namespace: same connection, other namespace.
    let ns_client = Client::new(
        client.connection().clone(),
        ClientOptions::new(namespace.clone()).build(),
    )
    .context("client for the new namespace")?;
    let task_queue = unique("namespaces");
    let mut worker = env.worker(
        &ns_client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<WhereAmIWorkflow>()?
            .build(),
    )?;
    with_worker(&mut worker, async {
        let workflow_id = unique("where-am-i");
        let handle = ns_client
            .start_workflow(
                WhereAmIWorkflow::run,
                "the sample".to_string(),
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!(
            "started WhereAmIWorkflow {workflow_id} in {}",
            ns_client.namespace()
        );
        let result = within(
            30,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;
        println!("workflow result: {result:?}");
        ensure!(result == format!("the sample runs in namespace {namespace}"));
        let status = describe(&ns_client, &workflow_id, None).await?.status();
        println!("describe in {namespace}: {status:?}");
        ensure!(status == WorkflowExecutionStatus::Completed);

        // The same workflow id does not exist in the client's own namespace.
        let elsewhere = within(
            10,
            "describe",
            run_handle(&client, &workflow_id, None).describe(Default::default()),
        )
        .await?;
        match elsewhere {
            Err(WorkflowInteractionError::NotFound(_)) => {
                println!("describe in {}: not found", client.namespace())
            }
            other => bail!(
                "{workflow_id} should not exist in {}, got {other:?}",
                client.namespace()
            ),
        }
        Ok(())
    })
    .await
}
