//! Visibility across replicas: each replica lists and counts the runs of its own shards; the
//! replica a client asked merges the answers.

use std::cmp::Reverse;

use temporalio_protos::temporal::api::workflow::v1::WorkflowExecutionInfo;
use temporalio_protos::temporal::api::workflowservice::v1::{
    CountSchedulesRequest, CountSchedulesResponse, CountWorkflowExecutionsRequest,
    CountWorkflowExecutionsResponse, ListBatchOperationsRequest, ListBatchOperationsResponse,
    ListSchedulesRequest, ListSchedulesResponse, ListWorkflowExecutionsRequest,
    ListWorkflowExecutionsResponse,
};
use tonic::{Request, Status};

use super::Cluster;
use crate::engine::clock::opt_ts_millis;

/// The order every replica lists in: open runs first, then by close time, then start time,
/// newest first.
fn order(e: &WorkflowExecutionInfo) -> (Reverse<i64>, Reverse<i64>, String) {
    let close = if e.close_time.is_some() {
        opt_ts_millis(&e.close_time)
    } else {
        i64::MAX
    };
    (
        Reverse(close),
        Reverse(opt_ts_millis(&e.start_time)),
        e.execution
            .as_ref()
            .map(|x| x.run_id.clone())
            .unwrap_or_default(),
    )
}

impl Cluster {
    /// One page of a list over every replica. The page token is the offset into the merged
    /// order, so each replica is asked for the first `offset + page_size` of its own runs.
    pub async fn list_everywhere(
        &self,
        local: ListWorkflowExecutionsResponse,
        req: &Request<ListWorkflowExecutionsRequest>,
        offset: usize,
        page_size: usize,
    ) -> Result<ListWorkflowExecutionsResponse, Status> {
        let mut more = !local.next_page_token.is_empty();
        let mut all = local.executions;
        for peer in self.peer_addresses() {
            let mut one = Request::new(first_n(req.get_ref(), offset + page_size));
            *one.metadata_mut() = req.metadata().clone();
            let part: ListWorkflowExecutionsResponse = self
                .forward(&peer, "ListWorkflowExecutions", one)
                .await?
                .into_inner();
            more |= !part.next_page_token.is_empty();
            all.extend(part.executions);
        }
        all.sort_by_cached_key(order);
        let seen = all.len();
        let executions: Vec<WorkflowExecutionInfo> =
            all.into_iter().skip(offset).take(page_size).collect();
        let next = offset + executions.len();
        Ok(ListWorkflowExecutionsResponse {
            executions,
            next_page_token: if more || seen > next {
                next.to_string().into_bytes()
            } else {
                Vec::new()
            },
        })
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
    pub async fn count_everywhere(
        &self,
        mut total: CountWorkflowExecutionsResponse,
        req: &Request<CountWorkflowExecutionsRequest>,
    ) -> Result<CountWorkflowExecutionsResponse, Status> {
        for peer in self.peer_addresses() {
            let mut one = Request::new(req.get_ref().clone());
            *one.metadata_mut() = req.metadata().clone();
            let part: CountWorkflowExecutionsResponse = self
                .forward(&peer, "CountWorkflowExecutions", one)
                .await?
                .into_inner();
            total.count += part.count;
            for group in part.groups {
                match total
                    .groups
                    .iter_mut()
                    .find(|g| g.group_values == group.group_values)
                {
                    Some(g) => g.count += group.count,
                    None => total.groups.push(group),
                }
            }
        }
        Ok(total)
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
