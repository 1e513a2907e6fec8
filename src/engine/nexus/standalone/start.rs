//! StartNexusOperationExecution: validates the request as Temporal does, applies the id
//! reuse and conflict policies against the operation id's latest run, and creates the
//! execution with its first attempt on the endpoint's handler queue.

use std::collections::BTreeMap;

use temporalio_protos::temporal::api::enums::v1::{
    NexusOperationIdConflictPolicy as Conflict, NexusOperationIdReusePolicy as Reuse,
    PendingNexusOperationState, WorkflowExecutionStatus,
};
use temporalio_protos::temporal::api::workflowservice::v1::{
    StartNexusOperationExecutionRequest, StartNexusOperationExecutionResponse,
};

use super::storage_id;
use crate::engine::clock::{self, dur_from_millis, dur_millis, ts_from_millis};
use crate::engine::commands::nexus::{DISALLOWED_HEADERS, HEADER_MAX_BYTES};
use crate::engine::start::is_closed_unsuccessfully;
use crate::engine::state::{
    MutableState, NexusOperationInfo, STANDALONE_SCHEDULED_ID, StandaloneNexusOperation,
};
use crate::engine::{Core, Error, Result, RunKey};

/// Longest id, name or reason accepted.
const MAX_LENGTH: usize = 1000;
/// Largest input accepted (Temporal's blob size limit for Nexus operations).
const MAX_INPUT_BYTES: usize = 2 * 1024 * 1024;

/// The checked timeouts of a start: schedule-to-close, schedule-to-start, start-to-close.
type Timeouts = (i64, i64, i64);

impl Core {
    pub(crate) fn start_nexus_execution(
        &mut self,
        mut req: StartNexusOperationExecutionRequest,
    ) -> Result<StartNexusOperationExecutionResponse> {
        self.check_namespace(&req.namespace)?;
        let (timeouts, header) = validate(&req)?;
        if let Some(attrs) = &req.search_attributes {
            crate::visibility::search_attributes::validate(
                &self.custom_search_attributes(&req.namespace),
                attrs,
            )
            .map_err(Error::InvalidArgument)?;
        }
        let endpoint_id = self
            .endpoint_by_name(&req.endpoint)
            .map(|e| e.id.clone())
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "could not find Nexus endpoint by name: {}",
                    req.endpoint
                ))
            })?;
        let id = storage_id(&req.operation_id);
        self.check_owned(&req.namespace, &id)?;
        if req.request_id.is_empty() {
            req.request_id = uuid::Uuid::new_v4().to_string();
        }
        if let Some(existing) = self.existing_for_start(&req, &id)? {
            return Ok(StartNexusOperationExecutionResponse {
                run_id: existing,
                started: false,
            });
        }
        let key = self.create_nexus_execution(req, id, endpoint_id, timeouts, header);
        Ok(StartNexusOperationExecutionResponse {
            run_id: key.run_id,
            started: true,
        })
    }

    /// The run a start is answered with instead of a new one (a retried start, or a running
    /// one under USE_EXISTING); Err when the policies refuse the id.
    fn existing_for_start(
        &mut self,
        req: &StartNexusOperationExecutionRequest,
        id: &str,
    ) -> Result<Option<String>> {
        let Some(run_id) = self.current_run_id(&req.namespace, id)? else {
            return Ok(None);
        };
        let key = RunKey {
            namespace: req.namespace.clone(),
            workflow_id: id.to_string(),
            run_id: run_id.clone(),
        };
        let existing = self.run(&key)?;
        let first_request = existing.ms.start_request_id.clone();
        if first_request == req.request_id {
            return Ok(Some(run_id));
        }
        let already = || Error::NexusOperationAlreadyStarted {
            message: format!(
                "nexus operation execution already started: request_id={first_request}, \
                 run_id={run_id}"
            ),
            start_request_id: first_request.clone(),
            run_id: run_id.clone(),
        };
        if existing.is_open() {
            if req.id_conflict_policy == Conflict::UseExisting as i32 {
                return Ok(Some(run_id));
            }
            return Err(already());
        }
        let reuse = req.id_reuse_policy;
        if reuse == Reuse::RejectDuplicate as i32
            || (reuse == Reuse::AllowDuplicateFailedOnly as i32
                && !is_closed_unsuccessfully(existing.ms.status))
        {
            return Err(already());
        }
        Ok(None)
    }

    fn create_nexus_execution(
        &mut self,
        req: StartNexusOperationExecutionRequest,
        id: String,
        endpoint_id: String,
        (s2c, s2s, stc): Timeouts,
        header: BTreeMap<String, String>,
    ) -> RunKey {
        let now = self.now();
        let key = RunKey {
            namespace: req.namespace.clone(),
            workflow_id: id,
            run_id: clock::run_id_at(now),
        };
        let opt = |v: i64| (v > 0).then(|| dur_from_millis(v));
        let info = NexusOperationInfo {
            scheduled_event_id: STANDALONE_SCHEDULED_ID,
            endpoint: req.endpoint.clone(),
            endpoint_id,
            service: req.service.clone(),
            operation: req.operation.clone(),
            // The handler deduplicates attempts on it; the client's request id is the start's.
            request_id: uuid::Uuid::new_v4().to_string(),
            input: req.input.clone(),
            header,
            scheduled_time: Some(ts_from_millis(now)),
            schedule_to_close_timeout: opt(s2c),
            schedule_to_start_timeout: opt(s2s),
            start_to_close_timeout: opt(stc),
            state: PendingNexusOperationState::Scheduled as i32,
            ..Default::default()
        };
        let ms = MutableState {
            namespace: key.namespace.clone(),
            workflow_id: key.workflow_id.clone(),
            run_id: key.run_id.clone(),
            status: WorkflowExecutionStatus::Running as i32,
            next_event_id: 1,
            start_time: Some(ts_from_millis(now)),
            execution_time: Some(ts_from_millis(now)),
            start_request_id: req.request_id,
            search_attributes: req.search_attributes,
            nexus_operations: [(STANDALONE_SCHEDULED_ID, info)].into(),
            standalone_nexus: Some(Box::new(StandaloneNexusOperation {
                operation_id: req.operation_id,
                user_metadata: req.user_metadata,
                identity: req.identity,
                ..Default::default()
            })),
            ..Default::default()
        };
        self.insert_standalone_run(&key, ms);
        self.changed(&key);
        self.dispatch_nexus_attempt(&key, STANDALONE_SCHEDULED_ID);
        key
    }
}

/// Checks the request in Temporal's order; answers its timeouts (the others capped by
/// schedule-to-close) and its headers, keys lowercased.
fn validate(
    req: &StartNexusOperationExecutionRequest,
) -> Result<(Timeouts, BTreeMap<String, String>)> {
    let invalid = |m: String| Err(Error::InvalidArgument(m));
    let too_long = |what: &str, len: usize| {
        invalid(format!(
            "{what} exceeds length limit. Length={len} Limit={MAX_LENGTH}"
        ))
    };
    if req.request_id.len() > MAX_LENGTH {
        return too_long("request_id", req.request_id.len());
    }
    if req.operation_id.is_empty() {
        return invalid("operation_id is required".into());
    }
    for (what, value) in [
        ("operation_id", &req.operation_id),
        ("identity", &req.identity),
        ("service", &req.service),
        ("operation", &req.operation),
    ] {
        if value.len() > MAX_LENGTH {
            return too_long(what, value.len());
        }
    }
    for (what, value) in [
        ("endpoint", &req.endpoint),
        ("service", &req.service),
        ("operation", &req.operation),
    ] {
        if value.is_empty() {
            return invalid(format!("{what} is required"));
        }
    }
    for (what, d) in [
        ("schedule_to_close_timeout", &req.schedule_to_close_timeout),
        ("schedule_to_start_timeout", &req.schedule_to_start_timeout),
        ("start_to_close_timeout", &req.start_to_close_timeout),
    ] {
        if clock::is_negative(d) {
            return invalid(format!("{what} is invalid: negative duration"));
        }
    }
    let s2c = dur_millis(&req.schedule_to_close_timeout);
    let cap = |v: i64| if s2c > 0 && v > s2c { s2c } else { v };
    let timeouts = (
        s2c,
        cap(dur_millis(&req.schedule_to_start_timeout)),
        cap(dur_millis(&req.start_to_close_timeout)),
    );
    let input = req.input.as_ref().map_or(0, prost::Message::encoded_len);
    if input > MAX_INPUT_BYTES {
        return invalid(format!(
            "input exceeds size limit. Length={input} Limit={MAX_INPUT_BYTES}"
        ));
    }
    let mut header = BTreeMap::new();
    let mut header_bytes = 0;
    for (k, v) in &req.nexus_header {
        let k = k.to_ascii_lowercase();
        if DISALLOWED_HEADERS.contains(&k.as_str()) {
            return invalid(format!("nexus_header contains a disallowed key: {k:?}"));
        }
        header_bytes += k.len() + v.len();
        header.insert(k, v.clone());
    }
    if header_bytes > HEADER_MAX_BYTES {
        return invalid("nexus_header exceeds size limit".into());
    }
    Ok((timeouts, header))
}
