//! Visibility across replicas: each replica lists and counts the runs of its own shards; the
//! replica a client asked merges the answers.

use std::cmp::Reverse;

use prost::Message;
use temporalio_protos::temporal::api::activity::v1::ActivityExecutionListInfo;
use temporalio_protos::temporal::api::nexus::v1::NexusOperationExecutionListInfo;
use temporalio_protos::temporal::api::workflow::v1::WorkflowExecutionInfo;
use temporalio_protos::temporal::api::workflowservice::v1::{
    CountSchedulesRequest, CountSchedulesResponse, ListActivityExecutionsRequest,
    ListActivityExecutionsResponse, ListBatchOperationsRequest, ListBatchOperationsResponse,
    ListNexusOperationExecutionsRequest, ListNexusOperationExecutionsResponse,
    ListSchedulesRequest, ListSchedulesResponse, ListWorkflowExecutionsRequest,
    ListWorkflowExecutionsResponse,
};
use tonic::{Request, Status};

use super::Cluster;
use crate::engine::Engine;
use crate::engine::clock::opt_ts_millis;
use crate::engine::visibility::ExecutionCount;

/// The order every replica lists executions in: open ones first, then by close time, then
/// start time, newest first.
fn order(
    close_time: &Option<prost_wkt_types::Timestamp>,
    start_time: &Option<prost_wkt_types::Timestamp>,
    run_id: &str,
) -> (Reverse<i64>, Reverse<i64>, String) {
    let close = if close_time.is_some() {
        opt_ts_millis(close_time)
    } else {
        i64::MAX
    };
    (
        Reverse(close),
        Reverse(opt_ts_millis(start_time)),
        run_id.to_string(),
    )
}

/// A list of executions whose pages merge across replicas: workflows or standalone
/// activities.
pub trait ExecutionList {
    type Req: Message + Clone + Default + 'static;
    type Resp: Message + Default + 'static;
    type Item;
    /// The RPC that lists them (asked of each replica).
    const RPC: &'static str;
    /// This replica's page.
    fn list(
        engine: &Engine,
        req: Self::Req,
    ) -> impl Future<Output = crate::engine::Result<Self::Resp>> + Send;
    /// The request's namespace, query, page size and token, as a workflow list's.
    fn paging(req: &Self::Req) -> ListWorkflowExecutionsRequest;
    fn page_size(req: &mut Self::Req) -> &mut i32;
    fn first_n(req: &Self::Req, n: usize) -> Self::Req;
    fn split(resp: Self::Resp) -> (Vec<Self::Item>, Vec<u8>);
    fn join(items: Vec<Self::Item>, next_page_token: Vec<u8>) -> Self::Resp;
    fn order(item: &Self::Item) -> (Reverse<i64>, Reverse<i64>, String);
}

pub struct WorkflowList;

impl ExecutionList for WorkflowList {
    type Req = ListWorkflowExecutionsRequest;
    type Resp = ListWorkflowExecutionsResponse;
    type Item = WorkflowExecutionInfo;
    const RPC: &'static str = "ListWorkflowExecutions";
    async fn list(engine: &Engine, req: Self::Req) -> crate::engine::Result<Self::Resp> {
        engine.list_workflows(req).await
    }
    fn paging(req: &Self::Req) -> ListWorkflowExecutionsRequest {
        req.clone()
    }
    fn page_size(req: &mut Self::Req) -> &mut i32 {
        &mut req.page_size
    }
    fn first_n(req: &Self::Req, n: usize) -> Self::Req {
        first_n(req, n)
    }
    fn split(resp: Self::Resp) -> (Vec<Self::Item>, Vec<u8>) {
        (resp.executions, resp.next_page_token)
    }
    fn join(executions: Vec<Self::Item>, next_page_token: Vec<u8>) -> Self::Resp {
        ListWorkflowExecutionsResponse {
            executions,
            next_page_token,
        }
    }
    fn order(e: &Self::Item) -> (Reverse<i64>, Reverse<i64>, String) {
        let run_id = e.execution.as_ref().map_or("", |x| x.run_id.as_str());
        order(&e.close_time, &e.start_time, run_id)
    }
}

pub struct ActivityList;

impl ExecutionList for ActivityList {
    type Req = ListActivityExecutionsRequest;
    type Resp = ListActivityExecutionsResponse;
    type Item = ActivityExecutionListInfo;
    const RPC: &'static str = "ListActivityExecutions";
    async fn list(engine: &Engine, req: Self::Req) -> crate::engine::Result<Self::Resp> {
        engine.list_activities(req).await
    }
    fn paging(req: &Self::Req) -> ListWorkflowExecutionsRequest {
        crate::engine::visibility::as_workflow_list(req)
    }
    fn page_size(req: &mut Self::Req) -> &mut i32 {
        &mut req.page_size
    }
    fn first_n(req: &Self::Req, n: usize) -> Self::Req {
        ListActivityExecutionsRequest {
            page_size: i32::try_from(n).unwrap_or(i32::MAX),
            next_page_token: Vec::new(),
            ..req.clone()
        }
    }
    fn split(resp: Self::Resp) -> (Vec<Self::Item>, Vec<u8>) {
        (resp.executions, resp.next_page_token)
    }
    fn join(executions: Vec<Self::Item>, next_page_token: Vec<u8>) -> Self::Resp {
        ListActivityExecutionsResponse {
            executions,
            next_page_token,
        }
    }
    fn order(e: &Self::Item) -> (Reverse<i64>, Reverse<i64>, String) {
        order(&e.close_time, &e.schedule_time, &e.run_id)
    }
}

pub struct NexusOperationList;

impl ExecutionList for NexusOperationList {
    type Req = ListNexusOperationExecutionsRequest;
    type Resp = ListNexusOperationExecutionsResponse;
    type Item = NexusOperationExecutionListInfo;
    const RPC: &'static str = "ListNexusOperationExecutions";
    async fn list(engine: &Engine, req: Self::Req) -> crate::engine::Result<Self::Resp> {
        engine.list_nexus_operations(req).await
    }
    fn paging(req: &Self::Req) -> ListWorkflowExecutionsRequest {
        ListWorkflowExecutionsRequest {
            namespace: req.namespace.clone(),
            page_size: req.page_size,
            next_page_token: req.next_page_token.clone(),
            query: req.query.clone(),
        }
    }
    fn page_size(req: &mut Self::Req) -> &mut i32 {
        &mut req.page_size
    }
    fn first_n(req: &Self::Req, n: usize) -> Self::Req {
        ListNexusOperationExecutionsRequest {
            page_size: i32::try_from(n).unwrap_or(i32::MAX),
            next_page_token: Vec::new(),
            ..req.clone()
        }
    }
    fn split(resp: Self::Resp) -> (Vec<Self::Item>, Vec<u8>) {
        (resp.operations, resp.next_page_token)
    }
    fn join(operations: Vec<Self::Item>, next_page_token: Vec<u8>) -> Self::Resp {
        ListNexusOperationExecutionsResponse {
            operations,
            next_page_token,
        }
    }
    fn order(e: &Self::Item) -> (Reverse<i64>, Reverse<i64>, String) {
        order(&e.close_time, &e.schedule_time, &e.run_id)
    }
}

impl Cluster {
    /// One page of a list over every replica. The page token is the offset into the merged
    /// order, so each replica is asked for the first `offset + page_size` of its own runs.
    pub async fn list_everywhere<L: ExecutionList>(
        &self,
        local: L::Resp,
        req: &Request<L::Req>,
        offset: usize,
        page_size: usize,
    ) -> Result<L::Resp, Status> {
        let (mut all, token) = L::split(local);
        let mut more = !token.is_empty();
        for peer in self.peer_addresses() {
            let mut one = Request::new(L::first_n(req.get_ref(), offset + page_size));
            *one.metadata_mut() = req.metadata().clone();
            let part: L::Resp = self.forward(&peer, L::RPC, one).await?.into_inner();
            let (items, token) = L::split(part);
            more |= !token.is_empty();
            all.extend(items);
        }
        all.sort_by_cached_key(L::order);
        let seen = all.len();
        let page: Vec<L::Item> = all.into_iter().skip(offset).take(page_size).collect();
        let next = offset + page.len();
        let token = if more || seen > next {
            next.to_string().into_bytes()
        } else {
            Vec::new()
        };
        Ok(L::join(page, token))
    }
}

impl Cluster {
    /// One page of schedules over every replica. Pages are by schedule id (the token is the
    /// last id of the previous page), so every replica is asked for the same page.
    pub async fn list_schedules_everywhere(
        &self,
        local: ListSchedulesResponse,
        req: &Request<ListSchedulesRequest>,
        page_size: usize,
    ) -> Result<ListSchedulesResponse, Status> {
        let mut more = !local.next_page_token.is_empty();
        let mut all = local.schedules;
        for peer in self.peer_addresses() {
            let mut one = Request::new(req.get_ref().clone());
            *one.metadata_mut() = req.metadata().clone();
            let part: ListSchedulesResponse = self
                .forward(&peer, "ListSchedules", one)
                .await?
                .into_inner();
            more |= !part.next_page_token.is_empty();
            all.extend(part.schedules);
        }
        all.sort_by(|a, b| a.schedule_id.cmp(&b.schedule_id));
        more |= all.len() > page_size;
        all.truncate(page_size);
        let next_page_token = match all.last() {
            Some(last) if more => last.schedule_id.clone().into_bytes(),
            _ => Vec::new(),
        };
        Ok(ListSchedulesResponse {
            schedules: all,
            next_page_token,
        })
    }
}

impl Cluster {
    /// A count over every replica (groups merged by their values).
    pub async fn count_everywhere<C: ExecutionCount>(
        &self,
        local: C,
        req: &Request<C::Req>,
    ) -> Result<C, Status> {
        let (mut count, mut groups) = local.into_parts();
        for peer in self.peer_addresses() {
            let mut one = Request::new(req.get_ref().clone());
            *one.metadata_mut() = req.metadata().clone();
            let part: C = self.forward(&peer, C::RPC, one).await?.into_inner();
            let (part_count, part_groups) = part.into_parts();
            count += part_count;
            for (values, n) in part_groups {
                match groups.iter_mut().find(|(v, _)| *v == values) {
                    Some((_, c)) => *c += n,
                    None => groups.push((values, n)),
                }
            }
        }
        Ok(C::from_parts(count, groups))
    }
}

/// The same query asking for the first `n` runs.
pub fn first_n(req: &ListWorkflowExecutionsRequest, n: usize) -> ListWorkflowExecutionsRequest {
    ListWorkflowExecutionsRequest {
        page_size: i32::try_from(n).unwrap_or(i32::MAX),
        next_page_token: Vec::new(),
        ..req.clone()
    }
}

impl Cluster {
    /// A page of batch operations over every replica: each is asked for everything up to the
    /// end of the page, and the answers are merged in the list order.
    pub async fn list_batches_everywhere(
        &self,
        engine: &crate::engine::Engine,
        req: &Request<ListBatchOperationsRequest>,
    ) -> Result<ListBatchOperationsResponse, Status> {
        let (offset, page) =
            crate::engine::batch::page_of(req.get_ref()).map_err(crate::rpc::errors::to_status)?;
        let first = ListBatchOperationsRequest {
            namespace: req.get_ref().namespace.clone(),
            page_size: (offset + page) as i32,
            next_page_token: Vec::new(),
        };
        let mut all = engine
            .list_batches(first.clone())
            .await
            .map_err(crate::rpc::errors::to_status)?
            .operation_info;
        for peer in self.peer_addresses() {
            let mut one = Request::new(first.clone());
            *one.metadata_mut() = req.metadata().clone();
            let part: ListBatchOperationsResponse = self
                .forward(&peer, "ListBatchOperations", one)
                .await?
                .into_inner();
            all.extend(part.operation_info);
        }
        all.sort_by_key(crate::engine::batch::info_order);
        let more = all.len() > offset + page;
        Ok(ListBatchOperationsResponse {
            operation_info: all.into_iter().skip(offset).take(page).collect(),
            next_page_token: if more {
                (offset + page).to_string().into_bytes()
            } else {
                Vec::new()
            },
        })
    }
}

impl Cluster {
    /// A schedule count over every replica.
    pub async fn count_schedules_everywhere(
        &self,
        mut total: CountSchedulesResponse,
        req: &Request<CountSchedulesRequest>,
    ) -> Result<CountSchedulesResponse, Status> {
        for peer in self.peer_addresses() {
            let mut one = Request::new(req.get_ref().clone());
            *one.metadata_mut() = req.metadata().clone();
            let part: CountSchedulesResponse = self
                .forward(&peer, "CountSchedules", one)
                .await?
                .into_inner();
            total.count += part.count;
        }
        Ok(total)
    }
}
