//! Reading runs: history pages (with long polls for new or closing events) and descriptions.

use temporalio_protos::temporal::api::enums::v1::{
    EventType, HistoryEventFilterType, PendingActivityState,
};
use temporalio_protos::temporal::api::history::v1::History;
use temporalio_protos::temporal::api::workflow::v1::{
    PendingActivityInfo, PendingChildExecutionInfo, PendingWorkflowTaskInfo, RequestIdInfo,
    WorkflowExecutionConfig, WorkflowExecutionExtendedInfo, WorkflowExecutionInfo,
};
use temporalio_protos::temporal::api::workflowservice::v1::{
    DescribeWorkflowExecutionRequest, DescribeWorkflowExecutionResponse,
    GetWorkflowExecutionHistoryRequest, GetWorkflowExecutionHistoryResponse,
    GetWorkflowExecutionHistoryReverseRequest, GetWorkflowExecutionHistoryReverseResponse,
};

use super::clock::ts_from_millis;
use super::run::RunProgress;
use super::workflow_task::normal_queue;
use super::{Engine, Error, Result, Run, events};

const DEFAULT_PAGE_SIZE: usize = 256;

fn encode_page_token(next_event_id: i64) -> Vec<u8> {
    next_event_id.to_le_bytes().to_vec()
}

fn decode_page_token(token: &[u8]) -> Result<Option<i64>> {
    if token.is_empty() {
        return Ok(None);
    }
    let bytes: [u8; 8] = token
        .try_into()
        .map_err(|_| Error::InvalidArgument("Invalid NextPageToken.".into()))?;
    let id = i64::from_le_bytes(bytes);
    if id < 1 {
        return Err(Error::InvalidArgument("Invalid NextPageToken.".into()));
    }
    Ok(Some(id))
}

impl Engine {
    pub async fn get_history(
        &self,
        req: GetWorkflowExecutionHistoryRequest,
    ) -> Result<GetWorkflowExecutionHistoryResponse> {
        let close_only = req.history_event_filter_type == HistoryEventFilterType::CloseEvent as i32;
        let from = decode_page_token(&req.next_page_token)?.unwrap_or(1);
        let page_size = if req.maximum_page_size > 0 {
            req.maximum_page_size as usize
        } else {
            DEFAULT_PAGE_SIZE
        };
        let deadline = tokio::time::Instant::now() + self.config.history_poll_timeout;
        loop {
            let (resp, mut progress) = self
                .transact(|core| {
                    let exec = req.execution.clone().unwrap_or_default();
                    let key = core.resolve_run(&req.namespace, &exec.workflow_id, &exec.run_id)?;
                    let run = core.run(&key)?;
                    let progress = run.subscribe_progress();
                    let open = run.is_open();
                    if close_only {
                        if !open {
                            let last = run.last_event().filter(events::is_close_event);
                            return Ok((Some(page(last.into_iter().collect(), None)), progress));
                        }
                        if !req.wait_new_event {
                            return Ok((
                                Some(page(Vec::new(), Some(run.ms.next_event_id))),
                                progress,
                            ));
                        }
                        return Ok((None, progress));
                    }
                    let next = run.ms.next_event_id;
                    if from >= next && open && req.wait_new_event {
                        return Ok((None, progress));
                    }
                    let events: Vec<_> = run.events_from(from).take(page_size).collect();
                    let after = from + events.len() as i64;
                    let token = (after < next || (open && req.wait_new_event)).then_some(after);
                    Ok((Some(page(events, token)), progress))
                })
                .await?;
            if let Some(resp) = resp {
                return Ok(resp);
            }
            let changed = tokio::select! {
                r = progress.wait_for(|p: &RunProgress| p.closed || (!close_only && p.next_event_id > from)) => r.is_ok(),
                _ = self.poll_expiry(deadline) => false,
            };
            if !changed {
                let token = if close_only { Some(1) } else { Some(from) };
                return Ok(page(Vec::new(), token));
            }
        }
    }

    /// The history newest first, a page at a time (the Web UI's default view); the token
    /// names the newest event of the next page.
    pub async fn get_history_reverse(
        &self,
        req: GetWorkflowExecutionHistoryReverseRequest,
    ) -> Result<GetWorkflowExecutionHistoryReverseResponse> {
        let page_size = if req.maximum_page_size > 0 {
            req.maximum_page_size as i64
        } else {
            DEFAULT_PAGE_SIZE as i64
        };
        self.transact(|core| {
            let exec = req.execution.clone().unwrap_or_default();
            let key = core.resolve_run(&req.namespace, &exec.workflow_id, &exec.run_id)?;
            let run = core.run(&key)?;
            let newest = run.ms.next_event_id - 1;
            let last = decode_page_token(&req.next_page_token)?
                .unwrap_or(newest)
                .min(newest);
            let first = (last - page_size + 1).max(1);
            let mut events: Vec<_> = if last >= first {
                run.events_from(first)
                    .take((last - first + 1) as usize)
                    .collect()
            } else {
                Vec::new()
            };
            events.reverse();
            Ok(GetWorkflowExecutionHistoryReverseResponse {
                history: Some(History { events }),
                next_page_token: if first > 1 {
                    encode_page_token(first - 1)
                } else {
                    Vec::new()
                },
            })
        })
        .await
    }

    pub async fn describe(
        &self,
        req: DescribeWorkflowExecutionRequest,
    ) -> Result<DescribeWorkflowExecutionResponse> {
        self.transact(|core| {
            let exec = req.execution.clone().unwrap_or_default();
            let key = core.resolve_run(&req.namespace, &exec.workflow_id, &exec.run_id)?;
            let custom = core.custom_search_attributes(&key.namespace);
            Ok(describe_run(core.run(&key)?, &custom))
        })
        .await
    }
}

fn page(
    events: Vec<temporalio_protos::temporal::api::history::v1::HistoryEvent>,
    next: Option<i64>,
) -> GetWorkflowExecutionHistoryResponse {
    GetWorkflowExecutionHistoryResponse {
        history: Some(History { events }),
        next_page_token: next.map(encode_page_token).unwrap_or_default(),
        ..Default::default()
    }
}

pub(crate) fn describe_run(
    run: &Run,
    custom_search_attributes: &std::collections::BTreeMap<String, i32>,
) -> DescribeWorkflowExecutionResponse {
    let ms = &run.ms;
    let started = ms.started.clone().unwrap_or_default();
    let tq = run.task_queue();
    let info = WorkflowExecutionInfo {
        execution: Some(run.execution()),
        r#type: started.workflow_type.clone(),
        start_time: ms.start_time,
        close_time: ms.close_time,
        status: ms.status,
        history_length: ms.next_event_id - 1,
        execution_time: ms.execution_time,
        // Always present, if empty, as Temporal sends them (the Go SDK reads them unchecked).
        memo: Some(ms.memo.clone().unwrap_or_default()),
        search_attributes: Some(crate::visibility::search_attributes::with_type_metadata(
            custom_search_attributes,
            &ms.search_attributes.clone().unwrap_or_default(),
        )),
        execution_duration: ms.close_time.map(|close| {
            let from = super::clock::opt_ts_millis(&ms.execution_time);
            super::clock::dur_from_millis(super::clock::ts_millis(&close) - from)
        }),
        priority: started.priority.clone(),
        task_queue: tq.clone(),
        state_transition_count: ms.state_transition_count,
        history_size_bytes: ms.history_size_bytes,
        first_run_id: started.first_execution_run_id.clone(),
        parent_execution: started.parent_workflow_execution.clone(),
        parent_namespace_id: started.parent_workflow_namespace.clone(),
        root_execution: started
            .root_workflow_execution
            .clone()
            .or(Some(run.execution())),
        auto_reset_points: ms.auto_reset_points.clone(),
        versioning_info: ms
            .versioning
            .as_deref()
            .map(super::deployments::versioning_info),
        ..Default::default()
    };
    let pending_activities = ms
        .activities
        .values()
        .map(|a| PendingActivityInfo {
            activity_id: a.activity_id.clone(),
            activity_type: a.activity_type.clone(),
            state: if a.cancel_requested {
                PendingActivityState::CancelRequested
            } else if a.started_time.is_some() {
                if a.paused {
                    PendingActivityState::PauseRequested
                } else {
                    PendingActivityState::Started
                }
            } else if a.paused {
                PendingActivityState::Paused
            } else {
                PendingActivityState::Scheduled
            } as i32,
            paused: a.paused,
            pause_info: a.pause_info.clone(),
            activity_options: Some(super::activity_ops::options_of(a)),
            last_attempt_complete_time: a.last_attempt_complete_time,
            // A retry waiting out its backoff: when it is due and how long the wait is.
            next_attempt_schedule_time: a
                .last_attempt_complete_time
                .filter(|_| a.started_time.is_none() && !a.paused)
                .and(a.scheduled_time),
            current_retry_interval: a
                .last_attempt_complete_time
                .filter(|_| a.started_time.is_none() && !a.paused)
                .map(|done| {
                    super::clock::dur_from_millis(
                        super::clock::opt_ts_millis(&a.scheduled_time)
                            - super::clock::ts_millis(&done),
                    )
                }),
            heartbeat_details: a.heartbeat_details.clone(),
            last_heartbeat_time: a.last_heartbeat_time,
            last_started_time: a.started_time,
            attempt: a.attempt,
            maximum_attempts: a
                .retry_policy
                .as_ref()
                .map(|p| p.maximum_attempts)
                .unwrap_or(0),
            scheduled_time: a.scheduled_time,
            expiration_time: a.schedule_to_close_timeout.map(|d| {
                let first = super::clock::opt_ts_millis(&a.first_scheduled_time);
                ts_from_millis(first + super::clock::dur_millis(&Some(d)))
            }),
            last_failure: a.last_failure.clone(),
            last_worker_identity: a.last_worker_identity.clone(),
            ..Default::default()
        })
        .collect();
    let pending_workflow_task = ms.workflow_task.as_ref().map(|w| PendingWorkflowTaskInfo {
        state: if w.started_event_id != 0 { 2 } else { 1 },
        scheduled_time: w.scheduled_time,
        original_scheduled_time: w.scheduled_time,
        started_time: w.started_time,
        attempt: w.attempt,
    });
    let pending_children = ms
        .children
        .values()
        .map(|c| PendingChildExecutionInfo {
            workflow_id: c.workflow_id.clone(),
            run_id: c.run_id.clone(),
            workflow_type_name: c
                .workflow_type
                .as_ref()
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            initiated_id: c.initiated_event_id,
            parent_close_policy: c.parent_close_policy,
        })
        .collect();
    // The summary and details given at start live on the started event.
    let started_event = run.events_from(1).next();
    let extended = WorkflowExecutionExtendedInfo {
        execution_expiration_time: started.workflow_execution_expiration_time,
        run_expiration_time: ms.run_expiration_time,
        cancel_requested: ms.cancel_requested,
        reset_run_id: ms.reset_run_id.clone(),
        last_reset_time: ms.last_reset_time,
        original_start_time: started_event
            .as_ref()
            .and_then(|e| e.event_time)
            .or(ms.start_time),
        request_id_infos: [(
            ms.start_request_id.clone(),
            RequestIdInfo {
                event_type: EventType::WorkflowExecutionStarted as i32,
                event_id: 1,
                buffered: false,
            },
        )]
        .into(),
        ..Default::default()
    };
    DescribeWorkflowExecutionResponse {
        pending_children,
        execution_config: Some(WorkflowExecutionConfig {
            task_queue: Some(normal_queue(&tq)),
            workflow_execution_timeout: started.workflow_execution_timeout,
            workflow_run_timeout: started.workflow_run_timeout,
            default_workflow_task_timeout: started.workflow_task_timeout,
            user_metadata: started_event.and_then(|e| e.user_metadata),
        }),
        workflow_extended_info: Some(extended),
        workflow_execution_info: Some(info),
        pending_activities,
        pending_workflow_task,
        pending_nexus_operations: ms
            .nexus_operations
            .values()
            .map(super::nexus::pending_info)
            .collect(),
        callbacks: ms.callbacks.iter().filter_map(|r| r.info.clone()).collect(),
    }
}
