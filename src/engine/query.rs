//! Queries. A query rides on the next workflow task when one is pending (answered in the
//! task's completion), and otherwise goes to a poller as a query-only task.

use std::collections::HashMap;
use std::sync::Arc;

use temporalio_protos::temporal::api::common::v1::Payloads;
use temporalio_protos::temporal::api::enums::v1::{
    QueryRejectCondition, QueryResultType, WorkflowExecutionStatus,
};
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::history::v1::History;
use temporalio_protos::temporal::api::query::v1::{
    QueryRejected, WorkflowQuery, WorkflowQueryResult,
};
use temporalio_protos::temporal::api::workflowservice::v1::{
    PollWorkflowTaskQueueResponse, QueryWorkflowRequest, QueryWorkflowResponse,
    RespondQueryTaskCompletedRequest,
};
use tokio::sync::oneshot;

use super::matching::{QueueKind, TaskRef};
use super::workflow_task::normal_queue;
use super::{Core, Engine, Error, Result, Run, RunKey};

#[derive(Debug)]
pub enum QueryOutcome {
    Answered(Option<Payloads>),
    Failed {
        message: String,
        failure: Option<Box<Failure>>,
    },
}

impl QueryOutcome {
    /// What the worker answered; an answer over the payload size limit fails the query with
    /// Temporal's message.
    fn of(
        result_type: i32,
        answer: Option<Payloads>,
        error_message: String,
        failure: Option<Failure>,
    ) -> Self {
        if result_type != QueryResultType::Answered as i32 {
            return QueryOutcome::Failed {
                message: error_message,
                failure: failure.map(Box::new),
            };
        }
        if super::limits::check_payloads("query result", &answer).is_err() {
            return QueryOutcome::Failed {
                message: "Blob data size exceeds limit.".into(),
                failure: None,
            };
        }
        QueryOutcome::Answered(answer)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum QueryState {
    /// Waiting for the next workflow task.
    Waiting,
    /// Delivered with the workflow task scheduled as this event id.
    InWorkflowTask(i64),
    /// Sent to a poller as a query-only task.
    Direct,
}

pub(crate) struct PendingQuery {
    pub id: String,
    pub query: WorkflowQuery,
    pub state: QueryState,
    pub reply: Option<oneshot::Sender<QueryOutcome>>,
}

impl Engine {
    pub async fn query(
        self: &Arc<Self>,
        req: QueryWorkflowRequest,
        deadline: tokio::time::Instant,
    ) -> Result<QueryWorkflowResponse> {
        let query = req
            .query
            .clone()
            .filter(|q| !q.query_type.is_empty())
            .ok_or_else(|| Error::InvalidArgument("QueryType is not set on request.".into()))?;
        let (key, rx) = self
            .transact(|core| {
                let exec = req.execution.clone().unwrap_or_default();
                let key = core.resolve_run(&req.namespace, &exec.workflow_id, &exec.run_id)?;
                let run = core.run(&key)?;
                let status = run.ms.status;
                let reject = req.query_reject_condition;
                let rejected = (reject == QueryRejectCondition::NotOpen as i32 && !run.is_open())
                    || (reject == QueryRejectCondition::NotCompletedCleanly as i32
                        && !run.is_open()
                        && status != WorkflowExecutionStatus::Completed as i32);
                if rejected {
                    return Ok((key, Err(status)));
                }
                if !run.is_open() && run.ms.last_completed_wft_started_id == 0 {
                    return Err(Error::FailedPrecondition(
                        "Workflow execution closed before its first workflow task completed; it cannot be queried.".into(),
                    ));
                }
                if run.ms.workflow_task.as_ref().is_some_and(|w| w.attempt >= 3) {
                    return Err(Error::FailedPrecondition(
                        "Cannot query workflow: its workflow task keeps failing.".into(),
                    ));
                }
                let rx = core.enqueue_query(&key, query);
                Ok((key, Ok(rx)))
            })
            .await?;
        let (id, rx) = match rx {
            Ok(v) => v,
            Err(status) => {
                return Ok(QueryWorkflowResponse {
                    query_rejected: Some(QueryRejected { status }),
                    ..Default::default()
                });
            }
        };
        let outcome = tokio::time::timeout_at(deadline, rx).await;
        match outcome {
            Ok(Ok(QueryOutcome::Answered(result))) => Ok(QueryWorkflowResponse {
                query_result: result,
                ..Default::default()
            }),
            Ok(Ok(QueryOutcome::Failed { message, failure })) => {
                Err(Error::QueryFailed { message, failure })
            }
            Ok(Err(_)) => Err(Error::FailedPrecondition(
                "query was dropped before it was answered".into(),
            )),
            Err(_) => {
                if let Some(run) = self.core.lock().runs.get_mut(&key) {
                    run.queries.retain(|q| q.id != id);
                }
                Err(Error::DeadlineExceeded(
                    "query timed out before a worker answered it".into(),
                ))
            }
        }
    }

    pub async fn respond_query_task(&self, req: RespondQueryTaskCompletedRequest) -> Result<()> {
        self.transact(|core| {
            let (key, token) = core.tokens.check(&req.namespace, &req.task_token)?;
            if token.query_id.is_empty() {
                return Err(Error::InvalidArgument(
                    "Task token is not a query task token.".into(),
                ));
            }
            let run = core.run_mut(&key)?;
            let pos = run
                .queries
                .iter()
                .position(|q| q.id == token.query_id)
                .ok_or_else(|| Error::NotFound("query not found; it may have timed out".into()))?;
            let mut query = run.queries.remove(pos);
            let outcome = QueryOutcome::of(
                req.completed_type,
                req.query_result,
                req.error_message,
                req.failure,
            );
            if let Some(tx) = query.reply.take() {
                let _ = tx.send(outcome);
            }
            Ok(())
        })
        .await
    }
}

impl Core {
    fn enqueue_query(
        &mut self,
        key: &RunKey,
        query: WorkflowQuery,
    ) -> (String, oneshot::Receiver<QueryOutcome>) {
        let id = self.next_query_id();
        let (tx, rx) = oneshot::channel();
        if let Some(run) = self.runs.get_mut(key) {
            run.queries.push(PendingQuery {
                id: id.clone(),
                query,
                state: QueryState::Waiting,
                reply: Some(tx),
            });
        }
        self.dispatch_waiting_queries(key);
        (id, rx)
    }

    /// Sends waiting queries as query-only tasks when no workflow task will carry them.
    pub(crate) fn dispatch_waiting_queries(&mut self, key: &RunKey) {
        let Some(run) = self.runs.get_mut(key) else {
            return;
        };
        if run.ms.workflow_task.is_some() && run.is_open() {
            return;
        }
        let tq = run.task_queue();
        let mut direct = Vec::new();
        for q in run
            .queries
            .iter_mut()
            .filter(|q| q.state == QueryState::Waiting)
        {
            q.state = QueryState::Direct;
            direct.push(q.id.clone());
        }
        for query_id in direct {
            self.push_task(
                self.run_queue(key, &tq, QueueKind::Workflow),
                TaskRef::Query {
                    key: key.clone(),
                    query_id,
                },
            );
        }
    }

    pub(crate) fn redirect_queries_after_close(&mut self, key: &RunKey) {
        if let Some(run) = self.runs.get_mut(key) {
            for q in run.queries.iter_mut() {
                if matches!(q.state, QueryState::InWorkflowTask(_)) {
                    q.state = QueryState::Waiting;
                }
            }
        }
        self.dispatch_waiting_queries(key);
    }

    pub(crate) fn start_query_task(
        &mut self,
        key: &RunKey,
        query_id: &str,
    ) -> Option<PollWorkflowTaskQueueResponse> {
        let run = self.runs.get(key)?;
        let q = run
            .queries
            .iter()
            .find(|q| q.id == query_id && q.state == QueryState::Direct)?;
        Some(PollWorkflowTaskQueueResponse {
            task_token: self.tokens.issue(key, 0, 1, 0, query_id),
            workflow_execution: Some(run.execution()),
            workflow_type: run
                .ms
                .started
                .as_ref()
                .and_then(|s| s.workflow_type.clone()),
            previous_started_event_id: run.ms.last_completed_wft_started_id,
            started_event_id: 0,
            attempt: 1,
            history: Some(History {
                events: run.history.iter_from(0).collect(),
            }),
            workflow_execution_task_queue: Some(normal_queue(&run.task_queue())),
            query: Some(q.query.clone()),
            ..Default::default()
        })
    }
}

impl Run {
    /// Hands waiting queries to the workflow task being started.
    pub(crate) fn attach_waiting_queries(
        &mut self,
        scheduled_event_id: i64,
    ) -> HashMap<String, WorkflowQuery> {
        let mut out = HashMap::new();
        for q in self
            .queries
            .iter_mut()
            .filter(|q| q.state == QueryState::Waiting)
        {
            q.state = QueryState::InWorkflowTask(scheduled_event_id);
            out.insert(q.id.clone(), q.query.clone());
        }
        out
    }

    pub(crate) fn requeue_attached_queries(&mut self) {
        for q in self.queries.iter_mut() {
            if matches!(q.state, QueryState::InWorkflowTask(_)) {
                q.state = QueryState::Waiting;
            }
        }
    }

    pub(crate) fn resolve_query_results(&mut self, results: HashMap<String, WorkflowQueryResult>) {
        for (id, result) in results {
            let Some(pos) = self.queries.iter().position(|q| q.id == id) else {
                continue;
            };
            let mut q = self.queries.remove(pos);
            let outcome = QueryOutcome::of(
                result.result_type,
                result.answer,
                result.error_message,
                result.failure,
            );
            if let Some(tx) = q.reply.take() {
                let _ = tx.send(outcome);
            }
        }
        self.requeue_attached_queries();
    }
}
