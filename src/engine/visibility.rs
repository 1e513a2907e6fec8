//! ListWorkflowExecutions, CountWorkflowExecutions and the search-attribute registry
//! (OperatorService), evaluated over the runs in memory and the archived runs on disk.

use std::collections::{BTreeMap, HashSet};

use temporalio_protos::temporal::api::common::v1::Payload;
use temporalio_protos::temporal::api::enums::v1::IndexedValueType;
use temporalio_protos::temporal::api::operatorservice::v1::{
    AddSearchAttributesRequest, ListSearchAttributesRequest, ListSearchAttributesResponse,
    RemoveSearchAttributesRequest,
};
use temporalio_protos::temporal::api::workflow::v1::WorkflowExecutionInfo;
use temporalio_protos::temporal::api::workflowservice::v1::{
    CountActivityExecutionsRequest, CountActivityExecutionsResponse,
    CountNexusOperationExecutionsRequest, CountNexusOperationExecutionsResponse,
    CountWorkflowExecutionsRequest, CountWorkflowExecutionsResponse, ListActivityExecutionsRequest,
    ListActivityExecutionsResponse, ListClosedWorkflowExecutionsRequest,
    ListNexusOperationExecutionsRequest, ListNexusOperationExecutionsResponse,
    ListOpenWorkflowExecutionsRequest, ListWorkflowExecutionsRequest,
    ListWorkflowExecutionsResponse, count_activity_executions_response,
    count_nexus_operation_executions_response, count_workflow_executions_response,
    list_closed_workflow_executions_request, list_open_workflow_executions_request,
};

use super::{Core, Engine, Error, Result, Run, RunKey, history};
use crate::engine::clock::opt_ts_millis;
use crate::engine::nexus::standalone::info as nexus_info;
use crate::store::NamespaceRecord;
use crate::store::archive::{Loc, Scanned};
use crate::visibility::query::{Query, Record, Value};
use crate::visibility::search_attributes::{self as sa, RunRecord};

/// Page size when the request gives none, and the largest one a client is served (Temporal's
/// default visibility page limit): a larger request gets pages of this size.
pub const DEFAULT_PAGE_SIZE: usize = 1000;

/// A client's page size, capped at [`DEFAULT_PAGE_SIZE`] (replicas merging a list ask each
/// other for more, uncapped).
pub fn capped_page_size(page_size: i32) -> i32 {
    page_size.min(DEFAULT_PAGE_SIZE as i32)
}

impl Core {
    pub(crate) fn custom_search_attributes(&self, namespace: &str) -> BTreeMap<String, i32> {
        self.namespaces
            .get(namespace)
            .map(|n| n.custom_search_attributes.clone())
            .unwrap_or_default()
    }

    fn parse_query(&self, namespace: &str, text: &str, kind: Executions) -> Result<Query> {
        self.check_namespace(namespace)?;
        let custom = self.custom_search_attributes(namespace);
        let types = |name: &str| match kind {
            Executions::Activities => crate::engine::standalone::info::attribute_type(name)
                .or_else(|| sa::lookup(&custom, name)),
            Executions::NexusOperations => {
                nexus_info::attribute_type(name).or_else(|| sa::lookup(&custom, name))
            }
            Executions::Workflows => sa::lookup(&custom, name),
        };
        Query::parse(text, &types).map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// Describes a run of a page: from memory, or read back from the archive.
    fn describe_hit(
        &mut self,
        hit: &Hit,
        custom: &BTreeMap<String, i32>,
    ) -> Result<Option<WorkflowExecutionInfo>> {
        Ok(self
            .read_hit(hit, |run| {
                history::describe_run(run, custom).workflow_execution_info
            })?
            .flatten())
    }

    /// Reads what `describe` says of a run of a page: from memory, or from the archive.
    fn read_hit<T>(&mut self, hit: &Hit, describe: impl Fn(&Run) -> T) -> Result<Option<T>> {
        let key = hit.key();
        let archived_at = match &hit.source {
            Source::Archived(_, loc) => Some(*loc),
            Source::Resident(_) => None,
        };
        // A run seen in memory may have been archived since the scan began.
        if !self.runs.contains_key(key) && archived_at.is_none() {
            self.fault_in(key)?;
        }
        if let Some(run) = self.runs.get(key) {
            return Ok(Some(describe(run)));
        }
        Ok(match archived_at {
            Some(loc) => self.read_archived(loc)?.map(|run| describe(&run)),
            None => None,
        })
    }
}

/// What a visibility query lists: workflow runs, standalone activity executions or
/// standalone Nexus operations (separate lists, as in Temporal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Executions {
    Workflows,
    Activities,
    NexusOperations,
}

impl Executions {
    fn of(run: &Run) -> Executions {
        if run.is_standalone_activity() {
            Executions::Activities
        } else if run.is_standalone_nexus() {
            Executions::NexusOperations
        } else {
            Executions::Workflows
        }
    }
}

/// Where a matching run is.
enum Source {
    Resident(RunKey),
    Archived(RunKey, Loc),
}

/// One run that matched a visibility query, with what it sorts and groups by.
struct Hit {
    close: i64,
    start: i64,
    group: Option<String>,
    source: Source,
}

impl Hit {
    fn of(
        run: &Run,
        custom: &BTreeMap<String, i32>,
        query: &Query,
        source: Source,
        kind: Executions,
    ) -> Option<Hit> {
        if Executions::of(run) != kind {
            return None;
        }
        let workflow;
        let activity;
        let operation;
        let record: &dyn Record = match kind {
            Executions::Workflows => {
                workflow = RunRecord {
                    ms: &run.ms,
                    custom,
                };
                &workflow
            }
            Executions::Activities => {
                activity = crate::engine::standalone::info::ActivityRecord { run, custom };
                &activity
            }
            Executions::NexusOperations => {
                operation = nexus_info::NexusRecord { run, custom };
                &operation
            }
        };
        if !query.matches(record) {
            return None;
        }
        let group = query.group_by().map(|g| match record.get(g) {
            Some(Value::Str(s)) => s,
            Some(other) => format!("{other:?}"),
            None => String::new(),
        });
        let ms = &run.ms;
        Some(Hit {
            close: ms
                .close_time
                .as_ref()
                .map(|_| opt_ts_millis(&ms.close_time))
                .unwrap_or(i64::MAX),
            start: opt_ts_millis(&ms.start_time),
            group,
            source,
        })
    }

    fn key(&self) -> &RunKey {
        match &self.source {
            Source::Resident(k) | Source::Archived(k, _) => k,
        }
    }
}

/// Runs in memory matched under one hold of the engine lock: a query over many runs lets
/// other operations in between, so its time is not theirs.
const MATCH_CHUNK: usize = 1024;

impl Engine {
    /// The runs of `keys` still in memory that match, a chunk at a time.
    async fn resident_hits(
        &self,
        keys: &[RunKey],
        query: &Query,
        custom: &BTreeMap<String, i32>,
        kind: Executions,
    ) -> Vec<Hit> {
        let mut hits = Vec::new();
        for chunk in keys.chunks(MATCH_CHUNK) {
            {
                let core = self.core.lock();
                hits.extend(chunk.iter().filter_map(|k| {
                    let run = core.runs.get(k)?;
                    Hit::of(run, custom, query, Source::Resident(k.clone()), kind)
                }));
            }
            tokio::task::yield_now().await;
        }
        hits
    }

    /// Runs of the namespace that match, in Temporal's order: open runs first, then by close
    /// time, newest first; ties by start time, newest first. Runs in memory are matched under
    /// the engine lock, [`MATCH_CHUNK`] at a time; archived runs are scanned from disk
    /// outside it.
    async fn matching_runs(
        &self,
        namespace: &str,
        text: &str,
        kind: Executions,
    ) -> Result<(Query, Vec<Hit>)> {
        let (query, custom, keys) = {
            let core = self.core.lock();
            let query = core.parse_query(namespace, text, kind)?;
            let custom = core.custom_search_attributes(namespace);
            let keys: Vec<RunKey> = core
                .runs
                .keys()
                .filter(|k| k.namespace == namespace)
                .cloned()
                .collect();
            (query, custom, keys)
        };
        let mut hits = self.resident_hits(&keys, &query, &custom, kind).await;
        // Taken after the runs in memory were matched: a run archived meanwhile is in it.
        let plan = self.core.lock().archive_scan_plan();
        let Some((files, segments)) = plan else {
            sort_hits(&mut hits);
            self.reported_state_durable().await?;
            return Ok((query, hits));
        };
        let namespace_owned = namespace.to_string();
        let (query, scanned) = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for id in segments {
                files.scan_segment(id, &mut |scanned| {
                    if let Scanned::Run { loc, state } = scanned
                        && state.namespace == namespace_owned
                    {
                        let key = RunKey {
                            namespace: state.namespace.clone(),
                            workflow_id: state.workflow_id.clone(),
                            run_id: state.run_id.clone(),
                        };
                        let run = Run::new(*state);
                        if let Some(hit) =
                            Hit::of(&run, &custom, &query, Source::Archived(key, loc), kind)
                        {
                            found.push(hit);
                        }
                    }
                })?;
            }
            Ok::<_, Error>((query, found))
        })
        .await
        .map_err(|e| Error::Store(crate::store::StoreError::Failed(e.to_string())))??;
        {
            let core = self.core.lock();
            let in_memory: HashSet<RunKey> = hits.iter().map(|h| h.key().clone()).collect();
            hits.extend(scanned.into_iter().filter(|h| {
                let Source::Archived(key, loc) = &h.source else {
                    return false;
                };
                // Runs matched in memory were counted there (a run read back into memory since
                // is still counted once, from here); records of deleted runs are skipped.
                !in_memory.contains(key) && core.archived_at(key, *loc)
            }));
        }
        sort_hits(&mut hits);
        self.reported_state_durable().await?;
        Ok((query, hits))
    }

    pub async fn list_workflows(
        &self,
        req: ListWorkflowExecutionsRequest,
    ) -> Result<ListWorkflowExecutionsResponse> {
        let (executions, next_page_token) = self
            .page_of_matches(&req, Executions::Workflows, |core, page| {
                let custom = core.custom_search_attributes(&req.namespace);
                let mut out = Vec::with_capacity(page.len());
                for hit in page {
                    out.extend(core.describe_hit(hit, &custom)?);
                }
                Ok(out)
            })
            .await?;
        Ok(ListWorkflowExecutionsResponse {
            executions,
            next_page_token,
        })
    }

    /// One page of the executions of `kind` that match (`paging` names the namespace, query,
    /// page size and token), described by `describe` under the engine's lock; and the next
    /// page's token.
    async fn page_of_matches<T>(
        &self,
        paging: &ListWorkflowExecutionsRequest,
        kind: Executions,
        describe: impl FnOnce(&mut Core, &[Hit]) -> Result<Vec<T>>,
    ) -> Result<(Vec<T>, Vec<u8>)> {
        let (offset, page_size) = page_of(paging)?;
        let (_, hits) = self
            .matching_runs(&paging.namespace, &paging.query, kind)
            .await?;
        let total = hits.len();
        let page: Vec<Hit> = hits.into_iter().skip(offset).take(page_size).collect();
        let taken = page.len();
        let items = self.transact(|core| describe(core, &page)).await?;
        Ok((items, next_page_token(offset + taken, total)))
    }

    pub async fn count_workflows(
        &self,
        req: CountWorkflowExecutionsRequest,
    ) -> Result<CountWorkflowExecutionsResponse> {
        self.count_answer(&req.namespace, &req.query, Executions::Workflows)
            .await
    }

    /// A count of the executions of `kind` that match, in its answer's shape.
    async fn count_answer<C: ExecutionCount>(
        &self,
        namespace: &str,
        query: &str,
        kind: Executions,
    ) -> Result<C> {
        let (count, groups) = self.count_runs(namespace, query, kind).await?;
        let groups = groups.into_iter();
        Ok(C::from_parts(
            count,
            groups
                .map(|(value, n)| (vec![sa::keyword_payload(&value)], n))
                .collect(),
        ))
    }

    /// How many executions match, and per group with `GROUP BY`.
    async fn count_runs(
        &self,
        namespace: &str,
        text: &str,
        kind: Executions,
    ) -> Result<(i64, BTreeMap<String, i64>)> {
        let (query, hits) = self.matching_runs(namespace, text, kind).await?;
        let count = hits.len() as i64;
        let mut groups: BTreeMap<String, i64> = BTreeMap::new();
        if query.group_by().is_some() {
            for hit in hits {
                *groups.entry(hit.group.unwrap_or_default()).or_default() += 1;
            }
        }
        Ok((count, groups))
    }

    pub async fn list_activities(
        &self,
        req: ListActivityExecutionsRequest,
    ) -> Result<ListActivityExecutionsResponse> {
        let paging = as_workflow_list(&req);
        let (executions, next_page_token) = self
            .page_of_matches(&paging, Executions::Activities, |core, page| {
                let mut out = Vec::with_capacity(page.len());
                for hit in page {
                    out.extend(core.read_hit(hit, crate::engine::standalone::info::list_info)?);
                }
                Ok(out)
            })
            .await?;
        Ok(ListActivityExecutionsResponse {
            executions,
            next_page_token,
        })
    }

    pub async fn count_activities(
        &self,
        req: CountActivityExecutionsRequest,
    ) -> Result<CountActivityExecutionsResponse> {
        self.count_answer(&req.namespace, &req.query, Executions::Activities)
            .await
    }

    pub async fn list_nexus_operations(
        &self,
        req: ListNexusOperationExecutionsRequest,
    ) -> Result<ListNexusOperationExecutionsResponse> {
        let paging = ListWorkflowExecutionsRequest {
            namespace: req.namespace.clone(),
            page_size: req.page_size,
            next_page_token: req.next_page_token.clone(),
            query: req.query.clone(),
        };
        let (operations, next_page_token) = self
            .page_of_matches(&paging, Executions::NexusOperations, |core, page| {
                let mut out = Vec::with_capacity(page.len());
                for hit in page {
                    out.extend(core.read_hit(hit, nexus_info::list_info)?);
                }
                Ok(out)
            })
            .await?;
        Ok(ListNexusOperationExecutionsResponse {
            operations,
            next_page_token,
        })
    }

    pub async fn count_nexus_operations(
        &self,
        req: CountNexusOperationExecutionsRequest,
    ) -> Result<CountNexusOperationExecutionsResponse> {
        self.count_answer(&req.namespace, &req.query, Executions::NexusOperations)
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
            core.write_namespace(record);
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
            core.write_namespace(record);
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
    pub(crate) fn namespace_record(&self, namespace: &str) -> Result<NamespaceRecord> {
        self.check_namespace(namespace)?;
        self.namespaces
            .get(namespace)
            .cloned()
            .ok_or_else(|| Error::NamespaceNotFound(namespace.to_string()))
    }
}

/// A count of executions whose answers add up across replicas, group by group.
pub trait ExecutionCount: prost::Message + Default + Sized + 'static {
    type Req: prost::Message + Clone + Default + 'static;
    /// The RPC that counts them (asked of each replica).
    const RPC: &'static str;
    /// The count, and each group's values and count.
    fn into_parts(self) -> (i64, Vec<(Vec<Payload>, i64)>);
    fn from_parts(count: i64, groups: Vec<(Vec<Payload>, i64)>) -> Self;
}

/// Counts of workflows and of activities have the same shape in different types.
macro_rules! execution_count {
    ($resp:ty, $req:ty, $groups:ident, $rpc:literal) => {
        impl ExecutionCount for $resp {
            type Req = $req;
            const RPC: &'static str = $rpc;
            fn into_parts(self) -> (i64, Vec<(Vec<Payload>, i64)>) {
                let groups = self.groups.into_iter();
                (
                    self.count,
                    groups.map(|g| (g.group_values, g.count)).collect(),
                )
            }
            fn from_parts(count: i64, groups: Vec<(Vec<Payload>, i64)>) -> Self {
                let groups = groups.into_iter();
                Self {
                    count,
                    groups: groups
                        .map(|(group_values, count)| $groups::AggregationGroup {
                            group_values,
                            count,
                        })
                        .collect(),
                }
            }
        }
    };
}

execution_count!(
    CountWorkflowExecutionsResponse,
    CountWorkflowExecutionsRequest,
    count_workflow_executions_response,
    "CountWorkflowExecutions"
);
execution_count!(
    CountNexusOperationExecutionsResponse,
    CountNexusOperationExecutionsRequest,
    count_nexus_operation_executions_response,
    "CountNexusOperationExecutions"
);
execution_count!(
    CountActivityExecutionsResponse,
    CountActivityExecutionsRequest,
    count_activity_executions_response,
    "CountActivityExecutions"
);

/// Where a list page starts (its token is an offset into the sorted matches) and how long
/// it is.
pub fn page_of(req: &ListWorkflowExecutionsRequest) -> Result<(usize, usize)> {
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
    Ok((offset, page_size))
}

/// The token of the page starting at `next` of `total` matches (none after the last).
fn next_page_token(next: usize, total: usize) -> Vec<u8> {
    if next < total {
        next.to_string().into_bytes()
    } else {
        Vec::new()
    }
}

/// An activity list's paging, read as a workflow list's (the same offsets).
pub fn as_workflow_list(req: &ListActivityExecutionsRequest) -> ListWorkflowExecutionsRequest {
    ListWorkflowExecutionsRequest {
        namespace: req.namespace.clone(),
        page_size: req.page_size,
        next_page_token: req.next_page_token.clone(),
        query: req.query.clone(),
    }
}

fn sort_hits(hits: &mut [Hit]) {
    hits.sort_by(|a, b| {
        (
            std::cmp::Reverse(a.close),
            std::cmp::Reverse(a.start),
            &a.key().run_id,
        )
            .cmp(&(
                std::cmp::Reverse(b.close),
                std::cmp::Reverse(b.start),
                &b.key().run_id,
            ))
    });
}

/// ListOpenWorkflowExecutions as the visibility query it stands for.
pub fn legacy_open(req: &ListOpenWorkflowExecutionsRequest) -> ListWorkflowExecutionsRequest {
    use list_open_workflow_executions_request::Filters;
    let mut terms = vec!["ExecutionStatus = 'Running'".to_string()];
    terms.extend(time_terms("StartTime", req.start_time_filter.as_ref()));
    match &req.filters {
        Some(Filters::ExecutionFilter(f)) => terms.extend(execution_terms(f)),
        Some(Filters::TypeFilter(f)) => terms.push(format!("WorkflowType = {}", quoted(&f.name))),
        None => {}
    }
    legacy_list(
        &req.namespace,
        req.maximum_page_size,
        &req.next_page_token,
        terms,
    )
}

/// ListClosedWorkflowExecutions as the visibility query it stands for (its time filter is on
/// the close time, as Temporal applies it).
pub fn legacy_closed(req: &ListClosedWorkflowExecutionsRequest) -> ListWorkflowExecutionsRequest {
    use list_closed_workflow_executions_request::Filters;
    let mut terms = vec!["ExecutionStatus != 'Running'".to_string()];
    terms.extend(time_terms("CloseTime", req.start_time_filter.as_ref()));
    match &req.filters {
        Some(Filters::ExecutionFilter(f)) => terms.extend(execution_terms(f)),
        Some(Filters::TypeFilter(f)) => terms.push(format!("WorkflowType = {}", quoted(&f.name))),
        Some(Filters::StatusFilter(f)) => terms.push(format!(
            "ExecutionStatus = {}",
            quoted(crate::visibility::search_attributes::status_name(f.status))
        )),
        None => {}
    }
    legacy_list(
        &req.namespace,
        req.maximum_page_size,
        &req.next_page_token,
        terms,
    )
}

fn legacy_list(
    namespace: &str,
    page_size: i32,
    token: &[u8],
    terms: Vec<String>,
) -> ListWorkflowExecutionsRequest {
    ListWorkflowExecutionsRequest {
        namespace: namespace.to_string(),
        page_size,
        next_page_token: token.to_vec(),
        query: terms.join(" AND "),
    }
}

fn time_terms(
    attribute: &str,
    filter: Option<&temporalio_protos::temporal::api::filter::v1::StartTimeFilter>,
) -> Vec<String> {
    let Some(f) = filter else {
        return Vec::new();
    };
    let rfc3339 = |t: &prost_wkt_types::Timestamp| {
        chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
            .unwrap_or_default()
    };
    let mut terms = Vec::new();
    if let Some(t) = f
        .earliest_time
        .as_ref()
        .filter(|t| t.seconds > 0 || t.nanos > 0)
    {
        terms.push(format!("{attribute} >= {}", quoted(&rfc3339(t))));
    }
    if let Some(t) = f
        .latest_time
        .as_ref()
        .filter(|t| t.seconds > 0 || t.nanos > 0)
    {
        terms.push(format!("{attribute} <= {}", quoted(&rfc3339(t))));
    }
    terms
}

fn execution_terms(
    f: &temporalio_protos::temporal::api::filter::v1::WorkflowExecutionFilter,
) -> Vec<String> {
    let mut terms = vec![format!("WorkflowId = {}", quoted(&f.workflow_id))];
    if !f.run_id.is_empty() {
        terms.push(format!("RunId = {}", quoted(&f.run_id)));
    }
    terms
}

/// A string literal of the query language.
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}
