//! Batch operations (StartBatchOperation and its describe, list and stop): the durable job
//! records. A job is kept like a schedule — one record per change, in the shard of its job
//! id — and worked through by the batch runner (`crate::batch`), which calls the ordinary
//! RPCs for each workflow and reports its progress here.

// `executions` is deprecated in Temporal's API for `target_executions`, yet clients send it.
#![allow(deprecated)]

use temporalio_protos::temporal::api::batch::v1::BatchOperationInfo;
use temporalio_protos::temporal::api::enums::v1::{BatchOperationState, BatchOperationType};
use temporalio_protos::temporal::api::workflowservice::v1::{
    DescribeBatchOperationResponse, ListBatchOperationsRequest, ListBatchOperationsResponse,
    StartBatchOperationRequest, start_batch_operation_request::Operation,
};

use super::clock::{opt_ts_millis, ts_from_millis};
use super::{Core, Engine, Error, Result};
use crate::store::log_record;
use crate::store::records::BatchJobRecord;

/// Batch jobs by (namespace, job id).
pub(crate) type BatchKey = (String, String);

/// Temporal's default for `frontend.MaxConcurrentBatchOperationPerNamespace`.
pub const MAX_RUNNING_BATCHES_PER_NAMESPACE: usize = 1;
/// Temporal's limit on a job id (it is a workflow id there).
const MAX_JOB_ID_LENGTH: usize = 1000;
/// The page size of ListBatchOperations when none (or too large a one) is asked for.
const LIST_PAGE: usize = 1000;

/// Progress the runner made on a job.
#[derive(Clone, Debug, Default)]
pub struct BatchProgress {
    pub total: Option<i64>,
    pub completed: i64,
    pub failed: i64,
    /// The last target done, in (workflow id, run id) order.
    pub done_through: Option<(String, String)>,
    /// The target about to be acted on.
    pub in_flight: Option<(String, String)>,
    /// No targets are left.
    pub finished: bool,
}

impl Engine {
    pub async fn start_batch(&self, req: StartBatchOperationRequest) -> Result<()> {
        validate(&req)?;
        self.transact(|core| core.start_batch(req)).await
    }

    pub async fn describe_batch(
        &self,
        namespace: &str,
        job_id: &str,
    ) -> Result<DescribeBatchOperationResponse> {
        let (response, lsn) = self.with_core(|core| {
            core.check_namespace(namespace)?;
            let key = (namespace.to_string(), job_id.to_string());
            core.batches
                .get(&key)
                .map(describe)
                .ok_or_else(|| not_found(job_id))
        });
        self.store.wait_durable(lsn).await?;
        response
    }

    pub async fn list_batches(
        &self,
        req: ListBatchOperationsRequest,
    ) -> Result<ListBatchOperationsResponse> {
        let (offset, page) = page_of(&req)?;
        let (infos, lsn) = self.with_core(|core| {
            core.check_namespace(&req.namespace)?;
            let jobs: Vec<&BatchJobRecord> = core
                .batches
                .values()
                .filter(|j| j.namespace == req.namespace)
                .collect();
            let mut infos: Vec<BatchOperationInfo> = jobs.into_iter().map(info).collect();
            infos.sort_by_key(info_order);
            Ok::<_, Error>(infos)
        });
        self.store.wait_durable(lsn).await?;
        let infos = infos?;
        let next = (offset + page < infos.len()).then(|| (offset + page).to_string());
        Ok(ListBatchOperationsResponse {
            operation_info: infos.into_iter().skip(offset).take(page).collect(),
            next_page_token: next.map(String::into_bytes).unwrap_or_default(),
        })
    }

    /// Stops a running job where it is; it then reads as failed, as in Temporal.
    pub async fn stop_batch(&self, namespace: &str, job_id: &str, reason: &str) -> Result<()> {
        if job_id.is_empty() {
            return Err(Error::InvalidArgument(
                "JobId is not set on request.".into(),
            ));
        }
        if reason.is_empty() {
            return Err(Error::InvalidArgument(
                "Reason is not set on request.".into(),
            ));
        }
        self.transact(|core| {
            core.check_namespace(namespace)?;
            let key = (namespace.to_string(), job_id.to_string());
            let now = core.now();
            let job = core
                .batches
                .get_mut(&key)
                .ok_or_else(|| not_found(job_id))?;
            if job.state != BatchOperationState::Running as i32 {
                return Err(Error::NotFound(
                    "workflow execution already completed".into(),
                ));
            }
            job.state = BatchOperationState::Failed as i32;
            job.close_time = Some(ts_from_millis(now));
            job.stop_reason = reason.to_string();
            core.log_batch(&key);
            Ok(())
        })
        .await
    }

    /// The running jobs of the shards this replica serves, for the runner.
    pub fn running_batches(&self) -> Vec<BatchJobRecord> {
        let core = self.core.lock();
        core.batches
            .values()
            .filter(|j| {
                j.state == BatchOperationState::Running as i32 && core.owns(&j.namespace, &j.job_id)
            })
            .cloned()
            .collect()
    }

    /// Records the runner's progress on a job; false when the job is no longer running
    /// (stopped meanwhile, or its shard moved), so the runner leaves it.
    pub async fn record_batch_progress(
        &self,
        namespace: &str,
        job_id: &str,
        progress: BatchProgress,
    ) -> Result<bool> {
        self.transact(|core| {
            let key = (namespace.to_string(), job_id.to_string());
            let now = core.now();
            let Some(job) = core.batches.get_mut(&key) else {
                return Ok(false);
            };
            if job.state != BatchOperationState::Running as i32 {
                return Ok(false);
            }
            if let Some(total) = progress.total {
                job.total = total;
                job.counted = true;
            }
            job.completed += progress.completed;
            job.failed += progress.failed;
            if let Some((workflow_id, run_id)) = progress.done_through {
                job.done_through_workflow_id = workflow_id;
                job.done_through_run_id = run_id;
            }
            let (workflow_id, run_id) = progress.in_flight.unwrap_or_default();
            job.in_flight_workflow_id = workflow_id;
            job.in_flight_run_id = run_id;
            if progress.finished {
                job.state = BatchOperationState::Completed as i32;
                job.close_time = Some(ts_from_millis(now));
                // What was counted at the start is an estimate; the work done is the truth.
                job.total = job.completed + job.failed;
            }
            core.log_batch(&key);
            Ok(true)
        })
        .await
    }

    /// Wakes the runner (a job was started).
    pub fn batch_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.core.lock().batch_wake.clone()
    }
}

impl Core {
    fn start_batch(&mut self, req: StartBatchOperationRequest) -> Result<()> {
        self.check_namespace(&req.namespace)?;
        self.check_owned(&req.namespace, &req.job_id)?;
        let key = (req.namespace.clone(), req.job_id.clone());
        if self.batches.contains_key(&key) {
            return Err(Error::AlreadyStarted {
                message: format!(
                    "a batch operation with job id {} already exists",
                    req.job_id
                ),
                workflow_id: req.job_id.clone(),
                run_id: String::new(),
                start_request_id: String::new(),
                first_execution_run_id: String::new(),
            });
        }
        let running = self
            .batches
            .values()
            .filter(|j| {
                j.namespace == req.namespace && j.state == BatchOperationState::Running as i32
            })
            .count();
        if running >= MAX_RUNNING_BATCHES_PER_NAMESPACE {
            return Err(Error::ResourceExhausted(
                "Max concurrent batch operations is reached".into(),
            ));
        }
        let now = self.now();
        let job = BatchJobRecord {
            namespace: req.namespace.clone(),
            job_id: req.job_id.clone(),
            total: req.executions.len() as i64,
            counted: !req.executions.is_empty(),
            request: Some(req),
            state: BatchOperationState::Running as i32,
            start_time: Some(ts_from_millis(now)),
            ..Default::default()
        };
        self.batches.insert(key.clone(), job);
        self.log_batch(&key);
        self.batch_wake.notify_one();
        Ok(())
    }

    fn log_batch(&mut self, key: &BatchKey) {
        if let Some(job) = self.batches.get(key) {
            let record = crate::store::LogRecord {
                kind: Some(log_record::Kind::BatchJob(job.clone())),
            };
            self.log(record);
        }
    }

    pub(crate) fn replay_batch(&mut self, job: BatchJobRecord) {
        let key = (job.namespace.clone(), job.job_id.clone());
        if job.deleted {
            self.batches.remove(&key);
        } else {
            self.batches.insert(key, job);
        }
    }

    pub(crate) fn batch_snapshot(&self) -> Vec<crate::store::LogRecord> {
        let mut keys: Vec<&BatchKey> = self.batches.keys().collect();
        keys.sort();
        keys.into_iter()
            .map(|k| crate::store::LogRecord {
                kind: Some(log_record::Kind::BatchJob(self.batches[k].clone())),
            })
            .collect()
    }
}

/// The request checks Temporal makes before anything is looked up, with its words.
fn validate(req: &StartBatchOperationRequest) -> Result<()> {
    let bad = |m: &str| Err(Error::InvalidArgument(m.into()));
    let targets = [
        !req.visibility_query.is_empty(),
        !req.executions.is_empty(),
        !req.target_executions.is_empty(),
    ];
    if req.operation.is_none() || req.reason.is_empty() || !targets.contains(&true) {
        return bad(
            "must provide required parameters: BatchType,Reason,Namespace, AND one of (Query OR \
             Executions OR TargetExecutions)",
        );
    }
    if req.job_id.is_empty() {
        return bad("JobId is not set on request.");
    }
    if targets.iter().filter(|t| **t).count() > 1 {
        return bad("visibility query, executions, and target executions are mutually exclusive");
    }
    if !req.target_executions.is_empty() {
        return bad(
            "target executions (standalone activities) are not supported yet; give executions or a query",
        );
    }
    if req.job_id.len() > MAX_JOB_ID_LENGTH {
        return bad("WorkflowId exceeds length limit.");
    }
    match &req.operation {
        Some(Operation::SignalOperation(s)) if s.signal.is_empty() => {
            bad("must provide signal name")
        }
        Some(Operation::UpdateActivityOptionsOperation(u))
            if u.update_mask.is_none() && !u.restore_original =>
        {
            bad("must provide UpdateMask")
        }
        Some(Operation::UpdateWorkflowOptionsOperation(u)) if u.update_mask.is_none() => {
            bad("must provide UpdateMask")
        }
        Some(Operation::ResetOperation(r))
            if r.options.as_ref().and_then(|o| o.target.as_ref()).is_none() =>
        {
            bad("batch reset missing target")
        }
        Some(
            Operation::CancelActivitiesOperation(_)
            | Operation::TerminateActivitiesOperation(_)
            | Operation::DeleteActivitiesOperation(_),
        ) => bad("this batch operation is not supported by Durin yet"),
        _ => Ok(()),
    }
}

fn not_found(job_id: &str) -> Error {
    Error::NotFound(format!("batch operation not found for job id: {job_id}"))
}

/// The operation's type as Temporal reports it (the newer per-workflow values).
pub fn operation_type(op: Option<&Operation>) -> BatchOperationType {
    match op {
        Some(Operation::TerminationOperation(_)) => BatchOperationType::TerminateWorkflow,
        Some(Operation::SignalOperation(_)) => BatchOperationType::SignalWorkflow,
        Some(Operation::CancellationOperation(_)) => BatchOperationType::CancelWorkflow,
        Some(Operation::DeletionOperation(_)) => BatchOperationType::DeleteWorkflow,
        Some(Operation::ResetOperation(_)) => BatchOperationType::ResetWorkflow,
        Some(Operation::UpdateWorkflowOptionsOperation(_)) => {
            BatchOperationType::UpdateWorkflowExecutionOptions
        }
        Some(Operation::UnpauseActivitiesOperation(_)) => BatchOperationType::UnpauseActivity,
        Some(Operation::ResetActivitiesOperation(_)) => BatchOperationType::ResetActivity,
        Some(Operation::UpdateActivityOptionsOperation(_)) => {
            BatchOperationType::UpdateActivityOptions
        }
        Some(Operation::CancelActivitiesOperation(_)) => BatchOperationType::CancelActivity,
        Some(Operation::TerminateActivitiesOperation(_)) => BatchOperationType::TerminateActivity,
        Some(Operation::DeleteActivitiesOperation(_)) => BatchOperationType::DeleteActivity,
        None => BatchOperationType::Unspecified,
    }
}

/// The identity the operation carries (who started the batch).
fn identity(op: Option<&Operation>) -> String {
    match op {
        Some(Operation::TerminationOperation(o)) => o.identity.clone(),
        Some(Operation::SignalOperation(o)) => o.identity.clone(),
        Some(Operation::CancellationOperation(o)) => o.identity.clone(),
        Some(Operation::DeletionOperation(o)) => o.identity.clone(),
        Some(Operation::ResetOperation(o)) => o.identity.clone(),
        Some(Operation::UnpauseActivitiesOperation(o)) => o.identity.clone(),
        Some(Operation::ResetActivitiesOperation(o)) => o.identity.clone(),
        Some(Operation::UpdateActivityOptionsOperation(o)) => o.identity.clone(),
        _ => String::new(),
    }
}

fn describe(job: &BatchJobRecord) -> DescribeBatchOperationResponse {
    let req = job.request.clone().unwrap_or_default();
    DescribeBatchOperationResponse {
        operation_type: operation_type(req.operation.as_ref()) as i32,
        job_id: job.job_id.clone(),
        state: job.state,
        start_time: job.start_time,
        close_time: job.close_time,
        total_operation_count: job.total.max(job.completed + job.failed),
        complete_operation_count: job.completed,
        failure_operation_count: job.failed,
        identity: identity(req.operation.as_ref()),
        reason: req.reason,
        query: req.visibility_query,
        executions: Vec::new(),
    }
}

fn info(job: &BatchJobRecord) -> BatchOperationInfo {
    let req = job.request.as_ref();
    BatchOperationInfo {
        job_id: job.job_id.clone(),
        state: job.state,
        start_time: job.start_time,
        close_time: job.close_time,
        operation_type: operation_type(req.and_then(|r| r.operation.as_ref())) as i32,
    }
}

/// Running jobs first, then by close and start time, newest first (Temporal's list order).
pub fn info_order(
    job: &BatchOperationInfo,
) -> (std::cmp::Reverse<i64>, std::cmp::Reverse<i64>, String) {
    let close = if job.close_time.is_some() {
        opt_ts_millis(&job.close_time)
    } else {
        i64::MAX
    };
    (
        std::cmp::Reverse(close),
        std::cmp::Reverse(opt_ts_millis(&job.start_time)),
        job.job_id.clone(),
    )
}

/// The offset and size of the page a list request asks for (the token is the offset).
pub fn page_of(req: &ListBatchOperationsRequest) -> Result<(usize, usize)> {
    let page = match req.page_size {
        n if n > 0 => (n as usize).min(LIST_PAGE),
        _ => LIST_PAGE,
    };
    if req.next_page_token.is_empty() {
        return Ok((0, page));
    }
    let offset = std::str::from_utf8(&req.next_page_token)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| Error::InvalidArgument("invalid next page token".into()))?;
    Ok((offset, page))
}
