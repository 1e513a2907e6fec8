//! ListWorkflowExecutions, CountWorkflowExecutions and the search-attribute registry
//! (OperatorService), evaluated over the runs the engine holds in memory.

use std::collections::BTreeMap;

use temporalio_protos::temporal::api::enums::v1::IndexedValueType;
use temporalio_protos::temporal::api::operatorservice::v1::{
    AddSearchAttributesRequest, ListSearchAttributesRequest, ListSearchAttributesResponse,
    RemoveSearchAttributesRequest,
};
use temporalio_protos::temporal::api::workflowservice::v1::count_workflow_executions_response::AggregationGroup;
use temporalio_protos::temporal::api::workflowservice::v1::{
    CountWorkflowExecutionsRequest, CountWorkflowExecutionsResponse, ListWorkflowExecutionsRequest,
    ListWorkflowExecutionsResponse,
};

use super::query::{Query, Record, Value};
use super::search_attributes::{self as sa, RunRecord};
use crate::engine::clock::opt_ts_millis;
use crate::engine::{Core, Engine, Error, Result, Run, history};
use crate::store::NamespaceRecord;

const DEFAULT_PAGE_SIZE: usize = 1000;

impl Core {
    pub(crate) fn custom_search_attributes(&self, namespace: &str) -> BTreeMap<String, i32> {
        self.namespaces
            .get(namespace)
            .map(|n| n.custom_search_attributes.clone())
            .unwrap_or_default()
    }

    fn parse_query(&self, namespace: &str, text: &str) -> Result<Query> {
        self.check_namespace(namespace)?;
        let custom = self.custom_search_attributes(namespace);
        Query::parse(text, &|name| sa::lookup(&custom, name))
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// Runs of the namespace that match, in Temporal's order: open runs first, then by close
    /// time, newest first; ties by start time, newest first.
    fn matching_runs(&self, namespace: &str, query: &Query) -> Vec<&Run> {
        let custom = self.custom_search_attributes(namespace);
        let mut runs: Vec<&Run> = self
            .runs
            .iter()
            .filter(|(k, _)| k.namespace == namespace)
            .map(|(_, r)| &**r)
            .filter(|r| {
                query.matches(&RunRecord {
                    run: r,
                    custom: &custom,
                })
            })
            .collect();
        runs.sort_by_key(|r| {
            let close =
                r.ms.close_time
                    .as_ref()
                    .map(|_| opt_ts_millis(&r.ms.close_time))
                    .unwrap_or(i64::MAX);
            (
                std::cmp::Reverse(close),
                std::cmp::Reverse(opt_ts_millis(&r.ms.start_time)),
                r.ms.run_id.clone(),
            )
        });
        runs
    }
}

impl Engine {
    pub async fn list_workflows(
        &self,
        req: ListWorkflowExecutionsRequest,
    ) -> Result<ListWorkflowExecutionsResponse> {
        self.transact(|core| {
            let query = core.parse_query(&req.namespace, &req.query)?;
            let offset = if req.next_page_token.is_empty() {
                0
            } else {
                std::str::from_utf8(&req.next_page_token)
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                    .ok_or_else(|| Error::InvalidArgument("Invalid NextPageToken.".into()))?
            };
            let page_size = if req.page_size > 0 {
                req.page_size as usize
            } else {
                DEFAULT_PAGE_SIZE
            };
            let custom = core.custom_search_attributes(&req.namespace);
            let runs = core.matching_runs(&req.namespace, &query);
            let executions = runs
                .iter()
                .skip(offset)
                .take(page_size)
                .filter_map(|r| history::describe_run(r, &custom).workflow_execution_info)
                .collect::<Vec<_>>();
            let next = offset + executions.len();
            Ok(ListWorkflowExecutionsResponse {
                executions,
                next_page_token: if next < runs.len() {
                    next.to_string().into_bytes()
                } else {
                    Vec::new()
                },
            })
        })
        .await
    }

    pub async fn count_workflows(
        &self,
        req: CountWorkflowExecutionsRequest,
    ) -> Result<CountWorkflowExecutionsResponse> {
        self.transact(|core| {
            let query = core.parse_query(&req.namespace, &req.query)?;
            let custom = core.custom_search_attributes(&req.namespace);
            let runs = core.matching_runs(&req.namespace, &query);
            let count = runs.len() as i64;
            let Some(group) = query.group_by() else {
                return Ok(CountWorkflowExecutionsResponse {
                    count,
                    groups: Vec::new(),
                });
            };
            let mut groups: BTreeMap<String, i64> = BTreeMap::new();
            for r in &runs {
                let value = match (RunRecord {
                    run: r,
                    custom: &custom,
                })
                .get(group)
                {
                    Some(Value::Str(s)) => s,
                    Some(other) => format!("{other:?}"),
                    None => String::new(),
                };
                *groups.entry(value).or_default() += 1;
            }
            Ok(CountWorkflowExecutionsResponse {
                count,
                groups: groups
                    .into_iter()
                    .map(|(value, count)| AggregationGroup {
                        group_values: vec![sa::keyword_payload(&value)],
                        count,
                    })
                    .collect(),
            })
        })
        .await
    }

    pub async fn add_search_attributes(&self, req: AddSearchAttributesRequest) -> Result<()> {
        self.transact(|core| {
            let mut record = core.namespace_record(&req.namespace)?;
            for (name, t) in &req.search_attributes {
                if name.is_empty() || name.len() > 255 {
                    return Err(Error::InvalidArgument(format!(
                        "invalid search attribute name {name:?}"
                    )));
                }
                if sa::system_type(name).is_some() {
                    return Err(Error::InvalidArgument(format!(
                        "search attribute {name} is a system attribute"
                    )));
                }
                if IndexedValueType::try_from(*t).unwrap_or(IndexedValueType::Unspecified)
                    == IndexedValueType::Unspecified
                {
                    return Err(Error::InvalidArgument(format!(
                        "search attribute {name} needs a type"
                    )));
                }
                match record.custom_search_attributes.get(name) {
                    Some(existing) if existing != t => {
                        return Err(Error::InvalidArgument(format!(
                            "search attribute {name} already exists with another type"
                        )));
                    }
                    _ => {
                        record.custom_search_attributes.insert(name.clone(), *t);
                    }
                }
            }
            core.commit_namespace(record);
            Ok(())
        })
        .await
    }

    pub async fn remove_search_attributes(&self, req: RemoveSearchAttributesRequest) -> Result<()> {
        self.transact(|core| {
            let mut record = core.namespace_record(&req.namespace)?;
            for name in &req.search_attributes {
                if record.custom_search_attributes.remove(name).is_none() {
                    return Err(Error::NotFound(format!(
                        "search attribute {name} does not exist"
                    )));
                }
            }
            core.commit_namespace(record);
            Ok(())
        })
        .await
    }

    pub async fn list_search_attributes(
        &self,
        req: ListSearchAttributesRequest,
    ) -> Result<ListSearchAttributesResponse> {
        self.transact(|core| {
            let record = core.namespace_record(&req.namespace)?;
            Ok(ListSearchAttributesResponse {
                custom_attributes: record.custom_search_attributes.into_iter().collect(),
                system_attributes: sa::SYSTEM
                    .iter()
                    .map(|(n, t)| (n.to_string(), *t as i32))
                    .collect(),
                storage_schema: Default::default(),
            })
        })
        .await
    }
}

impl Core {
    fn namespace_record(&self, namespace: &str) -> Result<NamespaceRecord> {
        self.check_namespace(namespace)?;
        self.namespaces
            .get(namespace)
            .cloned()
            .ok_or_else(|| Error::NamespaceNotFound(namespace.to_string()))
    }
}
