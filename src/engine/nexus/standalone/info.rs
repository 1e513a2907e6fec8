//! What DescribeNexusOperationExecution, PollNexusOperationExecution and
//! ListNexusOperationExecutions report of a standalone operation, read from its run.

use std::collections::BTreeMap;

use temporalio_protos::temporal::api::enums::v1::{
    IndexedValueType, NexusOperationExecutionStatus, PendingNexusOperationState,
    WorkflowExecutionStatus,
};
use temporalio_protos::temporal::api::nexus::v1::{
    NexusOperationExecutionCancellationInfo, NexusOperationExecutionInfo,
    NexusOperationExecutionListInfo,
};

use super::standalone;
use crate::engine::Run;
use crate::engine::clock::{dur_from_millis, dur_millis, opt_ts_millis, ts_from_millis};
use crate::engine::state::{NexusOperationInfo, STANDALONE_SCHEDULED_ID};
use crate::visibility::query::{Record, Value};
use crate::visibility::search_attributes::RunRecord;

/// The operation of a standalone execution: pending while it runs, as it closed afterwards.
pub fn operation_of(run: &Run) -> Option<&NexusOperationInfo> {
    run.ms
        .nexus_operations
        .get(&STANDALONE_SCHEDULED_ID)
        .or_else(|| standalone(run)?.closed.as_ref())
}

/// The run's status as an operation status (runs keep workflow status codes).
pub fn status_of(run: &Run) -> NexusOperationExecutionStatus {
    use NexusOperationExecutionStatus as N;
    use WorkflowExecutionStatus as W;
    match W::try_from(run.ms.status).unwrap_or(W::Unspecified) {
        W::Running => N::Running,
        W::Completed => N::Completed,
        W::Failed => N::Failed,
        W::Canceled => N::Canceled,
        W::Terminated => N::Terminated,
        W::TimedOut => N::TimedOut,
        W::ContinuedAsNew | W::Paused | W::Unspecified => N::Unspecified,
    }
}

/// The attempts made so far, counting the one in flight (Temporal counts from 1).
fn attempts(run: &Run, info: &NexusOperationInfo) -> i32 {
    let in_flight = run.is_open() && info.state == PendingNexusOperationState::Scheduled as i32;
    (info.attempt + i32::from(in_flight)).max(1)
}

/// Whether the operation has started (or ended): what a wait for STARTED waits for.
pub fn started_or_closed(run: &Run) -> bool {
    !run.is_open()
        || operation_of(run).is_some_and(|i| i.state == PendingNexusOperationState::Started as i32)
}

/// The execution as DescribeNexusOperationExecution reports it.
pub fn describe(run: &Run, now: i64) -> NexusOperationExecutionInfo {
    let ms = &run.ms;
    let record = standalone(run).cloned().unwrap_or_default();
    let info = operation_of(run).cloned().unwrap_or_default();
    let open = run.is_open();
    let s2c = dur_millis(&info.schedule_to_close_timeout);
    let scheduled = opt_ts_millis(&info.scheduled_time);
    let end = if open {
        now
    } else {
        opt_ts_millis(&ms.close_time)
    };
    NexusOperationExecutionInfo {
        operation_id: record.operation_id,
        run_id: ms.run_id.clone(),
        endpoint: info.endpoint.clone(),
        service: info.service.clone(),
        operation: info.operation.clone(),
        status: status_of(run) as i32,
        state: if open {
            info.state
        } else {
            PendingNexusOperationState::Unspecified as i32
        },
        schedule_to_close_timeout: info.schedule_to_close_timeout,
        schedule_to_start_timeout: info.schedule_to_start_timeout,
        start_to_close_timeout: info.start_to_close_timeout,
        attempt: attempts(run, &info),
        schedule_time: info.scheduled_time,
        expiration_time: (s2c > 0).then(|| ts_from_millis(scheduled + s2c)),
        close_time: ms.close_time,
        last_attempt_complete_time: info.last_attempt_complete_time,
        last_attempt_failure: info.last_attempt_failure.clone(),
        next_attempt_schedule_time: info.next_attempt_schedule_time.filter(|_| open),
        execution_duration: Some(dur_from_millis((end - scheduled).max(0))),
        cancellation_info: info.cancellation.as_ref().map(|c| {
            NexusOperationExecutionCancellationInfo {
                requested_time: c.requested_time,
                state: c.state,
                attempt: c.attempt,
                last_attempt_complete_time: c.last_attempt_complete_time,
                last_attempt_failure: c.last_attempt_failure.clone(),
                next_attempt_schedule_time: c.next_attempt_schedule_time,
                blocked_reason: String::new(),
                reason: record.cancel_reason.clone(),
            }
        }),
        blocked_reason: String::new(),
        request_id: info.request_id.clone(),
        operation_token: info.operation_token.clone(),
        state_transition_count: ms.state_transition_count,
        search_attributes: ms.search_attributes.clone(),
        nexus_header: info.header.clone().into_iter().collect(),
        user_metadata: record.user_metadata,
        links: record.links,
        identity: record.identity,
        state_size_bytes: 0,
    }
}

/// The execution as ListNexusOperationExecutions reports it.
pub fn list_info(run: &Run) -> NexusOperationExecutionListInfo {
    let ms = &run.ms;
    let info = operation_of(run).cloned().unwrap_or_default();
    NexusOperationExecutionListInfo {
        operation_id: standalone(run)
            .map(|s| s.operation_id.clone())
            .unwrap_or_default(),
        run_id: ms.run_id.clone(),
        endpoint: info.endpoint,
        service: info.service,
        operation: info.operation,
        schedule_time: ms.start_time,
        close_time: ms.close_time,
        status: status_of(run) as i32,
        search_attributes: ms.search_attributes.clone(),
        state_transition_count: ms.state_transition_count,
        execution_duration: ms.close_time.as_ref().map(|_| {
            dur_from_millis(opt_ts_millis(&ms.close_time) - opt_ts_millis(&ms.start_time))
        }),
        state_size_bytes: 0,
    }
}

/// The type of an attribute only operation lists have (None: as for workflows).
pub fn attribute_type(name: &str) -> Option<IndexedValueType> {
    matches!(
        name,
        "OperationId" | "Endpoint" | "Service" | "Operation" | "RequestId"
    )
    .then_some(IndexedValueType::Keyword)
}

/// A standalone operation as visibility queries see it: `OperationId`, `Endpoint`,
/// `Service`, `Operation` and `RequestId` in place of the workflow's attributes, its status
/// and times, and its search attributes.
pub struct NexusRecord<'a> {
    pub run: &'a Run,
    pub custom: &'a BTreeMap<String, i32>,
}

impl Record for NexusRecord<'_> {
    fn get(&self, name: &str) -> Option<Value> {
        let run = self.run;
        let keyword = |s: &str| (!s.is_empty()).then(|| Value::Str(s.to_string()));
        match name {
            "OperationId" => keyword(&standalone(run)?.operation_id),
            "Endpoint" => keyword(&operation_of(run)?.endpoint),
            "Service" => keyword(&operation_of(run)?.service),
            "Operation" => keyword(&operation_of(run)?.operation),
            "RequestId" => keyword(&run.ms.start_request_id),
            // What only a workflow has.
            "WorkflowId" | "WorkflowType" | "TaskQueue" | "HistoryLength" | "HistorySizeBytes"
            | "ParentWorkflowId" | "ParentRunId" | "RootWorkflowId" | "RootRunId" => None,
            _ => RunRecord {
                ms: &run.ms,
                custom: self.custom,
            }
            .get(name),
        }
    }
}
