//! Visibility: search attributes set at start and upserted by workflows, list / count queries
//! (with GROUP BY and limits, and invalid queries), and registering new search attributes
//! through the operator service.

use crate::common;
use crate::helpers::*;

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, Instant},
};

use common::{DurinServer, NAMESPACE, new_worker, sdk_runtime, unique, with_worker, within};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use temporalio_client::{
    Client, WorkflowCountOptions, WorkflowExecutionStatus, WorkflowListOptions,
    errors::{ClientError, WorkflowStartError},
    grpc::OperatorService,
    tonic::{Code, Request},
};
use temporalio_common::{
    protos::temporal::api::{
        enums::v1::IndexedValueType,
        operatorservice::v1::{AddSearchAttributesRequest, ListSearchAttributesRequest},
    },
    search_attributes::{SearchAttributeKey, SearchAttributes, Timestamp},
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkerOptions, WorkflowContext, WorkflowResult};

// ---- 2. visibility --------------------------------------------------------------------------

const KEYWORD: SearchAttributeKey<String> = SearchAttributeKey::keyword("CustomKeywordField");
const INT: SearchAttributeKey<i64> = SearchAttributeKey::int("CustomIntField");
const TEXT: SearchAttributeKey<String> = SearchAttributeKey::text("CustomTextField");
const DOUBLE: SearchAttributeKey<f64> = SearchAttributeKey::float("CustomDoubleField");
const BOOL: SearchAttributeKey<bool> = SearchAttributeKey::bool("CustomBoolField");
const DATETIME: SearchAttributeKey<Timestamp> = SearchAttributeKey::datetime("CustomDatetimeField");
/// Registered by `register_search_attribute_through_operator_service`.
const REGION: SearchAttributeKey<String> = SearchAttributeKey::keyword("DurinTestRegion");
/// Registered by `register_search_attribute_through_operator_service`.
const PRIORITY: SearchAttributeKey<i64> = SearchAttributeKey::int("DurinTestPriority");

/// What a `TaggedWorkflow` upserts, and whether it then waits for `finish`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TagPlan {
    pub int: Option<i64>,
    pub keyword: Option<String>,
    pub boolean: Option<bool>,
    pub double: Option<f64>,
    pub priority: Option<i64>,
    pub wait: bool,
}

#[workflow]
#[derive(Default)]
pub struct TaggedWorkflow {
    finish: bool,
}

#[workflow_methods]
impl TaggedWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, plan: TagPlan) -> WorkflowResult<String> {
        let mut updates = Vec::new();
        if let Some(v) = plan.int {
            updates.push(INT.value_set(v));
        }
        if let Some(v) = plan.keyword.clone() {
            updates.push(KEYWORD.value_set(v));
        }
        if let Some(v) = plan.boolean {
            updates.push(BOOL.value_set(v));
        }
        if let Some(v) = plan.double {
            updates.push(DOUBLE.value_set(v));
        }
        if let Some(v) = plan.priority {
            updates.push(PRIORITY.value_set(v));
        }
        if !updates.is_empty() {
            ctx.upsert_search_attributes(updates);
        }
        if plan.wait {
            ctx.wait_condition(|s| s.finish).await?;
        }
        Ok("tagged".to_string())
    }

    #[signal]
    pub fn finish(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _: ()) {
        self.finish = true;
    }
}

/// A second workflow type, to filter on `WorkflowType`.
#[workflow]
#[derive(Default)]
pub struct OtherWorkflow;

#[workflow_methods]
impl OtherWorkflow {
    #[run]
    pub async fn run(_ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        Ok("other".to_string())
    }
}

/// Workflow ids matching `query`, sorted (duplicates kept, so they show up as a failure).
async fn list_ids(client: &Client, query: &str) -> Result<Vec<String>, ClientError> {
    let mut stream = client.list_workflows(query, WorkflowListOptions::default());
    let mut ids = Vec::new();
    while let Some(item) = within(10, "list page", stream.next()).await {
        ids.push(item?.id().to_string());
    }
    ids.sort();
    Ok(ids)
}

/// Poll `query` until it returns exactly `expected` (visibility may lag a little behind).
async fn assert_list(client: &Client, query: &str, expected: &[&String]) {
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = list_ids(client, query)
            .await
            .unwrap_or_else(|e| panic!("list `{query}` failed: {e:?}"));
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            panic!("list `{query}`: expected {want:?}, got {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Poll until the count of `query` is `expected`.
async fn assert_count(client: &Client, query: &str, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = within(
            10,
            "count",
            client.count_workflows(query, WorkflowCountOptions::default()),
        )
        .await
        .unwrap_or_else(|e| panic!("count `{query}` failed: {e:?}"))
        .count();
        if got == expected {
            return;
        }
        if Instant::now() > deadline {
            panic!("count `{query}`: expected {expected}, got {got}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_invalid_argument<T: std::fmt::Debug>(res: Result<T, ClientError>, what: &str) {
    match res {
        Err(ClientError::Rpc(status)) => assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{what}: expected InvalidArgument, got {status:?}"
        ),
        other => panic!("{what}: expected an InvalidArgument error, got {other:?}"),
    }
}

/// Search attributes set at start and upserted by workflows, queried through list and count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visibility_list_and_count_with_search_attributes() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-vis");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<TaggedWorkflow>()
            .unwrap()
            .register_workflow::<OtherWorkflow>()
            .unwrap()
            .build(),
    );
    let p = unique("vis");
    let [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map(|s| format!("{p}-{s}"));

    with_worker(&mut worker, async {
        let start_tagged = |id: &String, attrs: Option<SearchAttributes>, plan: TagPlan| {
            let mut opts = start_opts(&tq, id);
            opts.search_attributes = attrs;
            client.start_workflow(TaggedWorkflow::run, plan, opts)
        };
        // a: completes; int 3, keyword pre-alpha, text, datetime 2024-01-01.
        let ha = start_tagged(
            &a,
            Some(SearchAttributes::new([
                INT.value_set(3),
                KEYWORD.value_set("pre-alpha".to_string()),
                TEXT.value_set("the quick brown fox".to_string()),
                DATETIME.value_set(Timestamp::new(1_704_067_200, 0)),
            ])),
            TagPlan::default(),
        )
        .await
        .expect("start a");
        // b: keeps running; int 7, keyword pre-beta.
        start_tagged(
            &b,
            Some(SearchAttributes::new([
                INT.value_set(7),
                KEYWORD.value_set("pre-beta".to_string()),
            ])),
            TagPlan {
                wait: true,
                ..Default::default()
            },
        )
        .await
        .expect("start b");
        // c: keeps running; starts with int 1 / pre-gamma, then upserts new values.
        start_tagged(
            &c,
            Some(SearchAttributes::new([
                INT.value_set(1),
                KEYWORD.value_set("pre-gamma".to_string()),
            ])),
            TagPlan {
                int: Some(10),
                keyword: Some("upserted-gamma".to_string()),
                boolean: Some(true),
                double: Some(2.5),
                wait: true,
                ..Default::default()
            },
        )
        .await
        .expect("start c");
        // d: another workflow type; completes.
        let mut d_opts = start_opts(&tq, &d);
        d_opts.search_attributes = Some(SearchAttributes::new([
            INT.value_set(9),
            KEYWORD.value_set("pre-delta".to_string()),
        ]));
        let hd = client
            .start_workflow(OtherWorkflow::run, (), d_opts)
            .await
            .expect("start d");
        // e: no search attributes; completes.
        let he = start_tagged(&e, None, TagPlan::default())
            .await
            .expect("start e");

        for (name, r) in [
            (
                "a",
                within(15, "a result", ha.get_result(result_opts())).await,
            ),
            (
                "e",
                within(15, "e result", he.get_result(result_opts())).await,
            ),
        ] {
            assert_eq!(
                r.unwrap_or_else(|e| panic!("{name} failed: {e:?}")),
                "tagged"
            );
        }
        within(15, "d result", hd.get_result(result_opts()))
            .await
            .expect("d completes");
        // Wait until c's upsert has been applied (describe reads the live execution).
        within(15, "c upsert", async {
            loop {
                let sa = describe(&client, &c, None).await.search_attributes();
                if sa.get(&INT) == Some(10) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;

        // describe shows start-time and upserted attributes, typed.
        let a_sa = describe(&client, &a, None).await.search_attributes();
        assert_eq!(a_sa.get(&INT), Some(3));
        assert_eq!(a_sa.get(&KEYWORD).as_deref(), Some("pre-alpha"));
        assert_eq!(a_sa.get(&TEXT).as_deref(), Some("the quick brown fox"));
        assert_eq!(
            a_sa.get(&DATETIME).map(|t| t.seconds()),
            Some(1_704_067_200)
        );
        let c_sa = describe(&client, &c, None).await.search_attributes();
        assert_eq!(c_sa.get(&INT), Some(10));
        assert_eq!(c_sa.get(&KEYWORD).as_deref(), Some("upserted-gamma"));
        assert_eq!(c_sa.get(&BOOL), Some(true));
        assert_eq!(c_sa.get(&DOUBLE), Some(2.5));
        assert!(
            describe(&client, &e, None)
                .await
                .search_attributes()
                .get(&INT)
                .is_none()
        );

        let tagged = "WorkflowType = 'TaggedWorkflow'";
        assert_list(&client, "", &[&a, &b, &c, &d, &e]).await;
        assert_list(
            &client,
            &format!("{tagged} AND CustomIntField > 5"),
            &[&b, &c],
        )
        .await;
        assert_list(&client, &format!("WorkflowId IN ('{a}', '{d}')"), &[&a, &d]).await;
        assert_list(&client, "ExecutionStatus = 'Running'", &[&b, &c]).await;
        assert_list(
            &client,
            &format!("ExecutionStatus = 'Completed' AND {tagged}"),
            &[&a, &e],
        )
        .await;
        assert_list(&client, "WorkflowType = 'OtherWorkflow'", &[&d]).await;
        assert_list(
            &client,
            "CustomKeywordField STARTS_WITH 'pre'",
            &[&a, &b, &d],
        )
        .await;
        assert_list(&client, "CustomKeywordField = 'pre-gamma'", &[]).await;
        assert_list(&client, "CustomKeywordField = 'upserted-gamma'", &[&c]).await;
        assert_list(
            &client,
            "CustomBoolField = true AND CustomDoubleField > 2.0",
            &[&c],
        )
        .await;
        assert_list(
            &client,
            "CustomDatetimeField > '2023-06-01T00:00:00Z'",
            &[&a],
        )
        .await;
        assert_list(
            &client,
            &format!("(CustomIntField >= 3 AND CustomIntField <= 9) OR WorkflowId = '{e}'"),
            &[&a, &b, &d, &e],
        )
        .await;

        // A listed execution carries its current search attributes and status.
        let listed = {
            let mut stream = client.list_workflows(
                format!("WorkflowId = '{c}'"),
                WorkflowListOptions::default(),
            );
            let mut items = Vec::new();
            while let Some(item) = stream.next().await {
                items.push(item.expect("list item"));
            }
            items
        };
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].workflow_type(), "TaggedWorkflow");
        assert_eq!(listed[0].status(), WorkflowExecutionStatus::Running);
        assert_eq!(listed[0].search_attributes().get(&INT), Some(10));

        // The list limit caps the number of results.
        let limited: Vec<_> = client
            .list_workflows("", WorkflowListOptions::builder().limit(2).build())
            .collect()
            .await;
        assert_eq!(limited.len(), 2, "limit 2: {limited:?}");

        // Counts.
        assert_count(&client, "", 5).await;
        assert_count(&client, tagged, 4).await;
        assert_count(&client, "CustomIntField > 5", 3).await;
        let grouped = within(
            10,
            "grouped count",
            client.count_workflows("GROUP BY ExecutionStatus", WorkflowCountOptions::default()),
        )
        .await
        .expect("count with GROUP BY ExecutionStatus");
        assert_eq!(grouped.count(), 5);
        let groups: BTreeMap<String, usize> = grouped
            .groups()
            .iter()
            .map(|g| (g.get::<String>(0).unwrap_or_default(), g.count()))
            .collect();
        assert_eq!(
            groups,
            BTreeMap::from([("Completed".to_string(), 3), ("Running".to_string(), 2)])
        );

        // Invalid queries are InvalidArgument errors.
        assert_invalid_argument(
            list_ids(&client, "NoSuchAttribute = 'x'").await,
            "list with an unknown attribute",
        );
        assert_invalid_argument(
            client
                .count_workflows("NoSuchAttribute = 'x'", WorkflowCountOptions::default())
                .await,
            "count with an unknown attribute",
        );
        assert_invalid_argument(
            list_ids(&client, "WorkflowId = ").await,
            "list with a syntax error",
        );
    })
    .await;
}

/// A new search attribute registered through the operator service can be set at start,
/// upserted, seen in describe() and queried; before registration it is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_search_attribute_through_operator_service() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-sa-reg");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<TaggedWorkflow>()
            .unwrap()
            .build(),
    );
    let mut op = client.clone();

    with_worker(&mut worker, async {
        let listed = OperatorService::list_search_attributes(
            &mut op,
            Request::new(ListSearchAttributesRequest {
                namespace: NAMESPACE.to_string(),
            }),
        )
        .await
        .expect("list search attributes")
        .into_inner();
        for (name, ty) in [
            ("CustomKeywordField", IndexedValueType::Keyword),
            ("CustomIntField", IndexedValueType::Int),
            ("CustomTextField", IndexedValueType::Text),
            ("CustomDoubleField", IndexedValueType::Double),
            ("CustomBoolField", IndexedValueType::Bool),
            ("CustomDatetimeField", IndexedValueType::Datetime),
        ] {
            assert_eq!(
                listed.custom_attributes.get(name).copied(),
                Some(ty as i32),
                "pre-registered {name}: {:?}",
                listed.custom_attributes
            );
        }
        assert!(!listed.custom_attributes.contains_key(REGION.name()));

        // Not registered yet: starting with it is refused.
        let mut opts = start_opts(&tq, &unique("too-early"));
        opts.search_attributes = Some(SearchAttributes::new([
            REGION.value_set("eu-west".to_string())
        ]));
        let early = client
            .start_workflow(TaggedWorkflow::run, TagPlan::default(), opts)
            .await;
        match early {
            Err(WorkflowStartError::Rpc(status)) => {
                assert_eq!(status.code(), Code::InvalidArgument, "{status:?}")
            }
            Err(other) => {
                panic!("expected InvalidArgument for an unregistered attribute, got {other:?}")
            }
            Ok(h) => panic!(
                "start with an unregistered attribute should fail, but started run {:?}",
                h.run_id()
            ),
        }

        OperatorService::add_search_attributes(
            &mut op,
            Request::new(AddSearchAttributesRequest {
                search_attributes: HashMap::from([
                    (REGION.name().to_string(), IndexedValueType::Keyword as i32),
                    (PRIORITY.name().to_string(), IndexedValueType::Int as i32),
                ]),
                namespace: NAMESPACE.to_string(),
            }),
        )
        .await
        .expect("add search attributes");
        let listed = OperatorService::list_search_attributes(
            &mut op,
            Request::new(ListSearchAttributesRequest {
                namespace: NAMESPACE.to_string(),
            }),
        )
        .await
        .expect("list search attributes")
        .into_inner();
        assert_eq!(
            listed.custom_attributes.get(REGION.name()).copied(),
            Some(IndexedValueType::Keyword as i32)
        );
        assert_eq!(
            listed.custom_attributes.get(PRIORITY.name()).copied(),
            Some(IndexedValueType::Int as i32)
        );

        let id = unique("regional");
        let mut opts = start_opts(&tq, &id);
        opts.search_attributes = Some(SearchAttributes::new([
            REGION.value_set("eu-west".to_string())
        ]));
        let handle = client
            .start_workflow(
                TaggedWorkflow::run,
                TagPlan {
                    priority: Some(4),
                    ..Default::default()
                },
                opts,
            )
            .await
            .expect("start with the newly registered attribute");
        within(15, "result", handle.get_result(result_opts()))
            .await
            .expect("workflow upserting the new attribute completes");
        let sa = describe(&client, &id, None).await.search_attributes();
        assert_eq!(sa.get(&REGION).as_deref(), Some("eu-west"));
        assert_eq!(sa.get(&PRIORITY), Some(4));
        assert_list(
            &client,
            "DurinTestRegion = 'eu-west' AND DurinTestPriority > 3",
            &[&id],
        )
        .await;
        assert_list(&client, "DurinTestPriority > 4", &[]).await;
    })
    .await;
}
