//! The records Durin persists, as protobuf messages (hand-written with `prost` derives so that
//! Temporal's own message types can be embedded without copying any `.proto` file).

use prost::Message;

use super::state::MutableState;
use temporalio_protos::temporal::api::workflowservice::v1::DescribeNamespaceResponse;

#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRecord {
    #[prost(oneof = "log_record::Kind", tags = "1, 2, 3, 4, 5, 6, 7, 8")]
    pub kind: Option<log_record::Kind>,
}

pub mod log_record {
    #[derive(Clone, PartialEq, prost::Oneof)]
    #[allow(clippy::large_enum_variant)] // records are encoded right away, never kept
    pub enum Kind {
        #[prost(message, tag = "1")]
        Namespace(super::NamespaceRecord),
        #[prost(message, tag = "2")]
        Execution(super::ExecutionRecord),
        /// Several changes that must survive a crash together (one engine operation that
        /// touched several runs, e.g. a parent and the child it started).
        #[prost(message, tag = "3")]
        Batch(super::RecordBatch),
        /// A closed run removed after its namespace's retention period.
        #[prost(message, tag = "4")]
        Deleted(super::DeletedRun),
        /// A schedule's full state after a change.
        #[prost(message, tag = "5")]
        Schedule(super::ScheduleRecord),
        #[prost(message, tag = "6")]
        ScheduleDeleted(super::ScheduleKeyRecord),
        /// A batch operation's full state after a change.
        #[prost(message, tag = "7")]
        BatchJob(super::BatchJobRecord),
        /// A Nexus endpoint's full state after a change (kept, like namespaces, by every
        /// replica rather than in a shard).
        #[prost(message, tag = "8")]
        NexusEndpoint(super::NexusEndpointRecord),
    }
}

/// The full description of a namespace after a change.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NamespaceRecord {
    #[prost(message, optional, tag = "1")]
    pub namespace: Option<DescribeNamespaceResponse>,
    /// Custom search attributes: name -> `temporal.api.enums.v1.IndexedValueType`.
    #[prost(btree_map = "string, int32", tag = "2")]
    pub custom_search_attributes: std::collections::BTreeMap<String, i32>,
    /// Bumped by every change, so a replica refreshing from the store keeps the newer copy.
    #[prost(uint64, tag = "3")]
    pub version: u64,
    /// The namespace's worker deployments (kept with the namespace, so every replica routes
    /// by the same versions).
    #[prost(message, repeated, tag = "4")]
    pub worker_deployments: Vec<WorkerDeploymentRecord>,
}

/// A Nexus endpoint of the cluster's registry. A deleted endpoint stays as a tombstone with
/// a higher version, so a replica that reads an older copy from the store keeps the deletion.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NexusEndpointRecord {
    #[prost(string, tag = "1")]
    pub id: String,
    /// Starts at 1 and is bumped by every change: the conflict token of updates and deletes.
    #[prost(int64, tag = "2")]
    pub version: i64,
    #[prost(message, optional, tag = "3")]
    pub spec: Option<temporalio_protos::temporal::api::nexus::v1::EndpointSpec>,
    #[prost(message, optional, tag = "4")]
    pub created_time: Option<prost_wkt_types::Timestamp>,
    #[prost(message, optional, tag = "5")]
    pub last_modified_time: Option<prost_wkt_types::Timestamp>,
    #[prost(bool, tag = "6")]
    pub deleted: bool,
}

/// A worker deployment: its versions (one per build id, created when a versioned worker first
/// polls) and where new and auto-upgrade workflows go.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WorkerDeploymentRecord {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub create_time: Option<prost_wkt_types::Timestamp>,
    /// The current version's build id ("": unversioned workers are current).
    #[prost(string, tag = "3")]
    pub current_build_id: String,
    /// Whether a version is ramping, and which ("": unversioned workers).
    #[prost(bool, tag = "4")]
    pub ramping: bool,
    #[prost(string, tag = "5")]
    pub ramping_build_id: String,
    #[prost(float, tag = "6")]
    pub ramping_percentage: f32,
    #[prost(message, optional, tag = "7")]
    pub current_changed_time: Option<prost_wkt_types::Timestamp>,
    #[prost(message, optional, tag = "8")]
    pub ramping_changed_time: Option<prost_wkt_types::Timestamp>,
    #[prost(message, optional, tag = "9")]
    pub ramping_percentage_changed_time: Option<prost_wkt_types::Timestamp>,
    /// Bumped by every change of the routing or the manager: the conflict token.
    #[prost(int64, tag = "10")]
    pub revision: i64,
    #[prost(string, tag = "11")]
    pub manager_identity: String,
    #[prost(string, tag = "12")]
    pub last_modifier_identity: String,
    #[prost(message, repeated, tag = "13")]
    pub versions: Vec<DeploymentVersionRecord>,
}

/// One version of a worker deployment.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeploymentVersionRecord {
    #[prost(string, tag = "1")]
    pub build_id: String,
    #[prost(message, optional, tag = "2")]
    pub create_time: Option<prost_wkt_types::Timestamp>,
    #[prost(message, optional, tag = "3")]
    pub routing_changed_time: Option<prost_wkt_types::Timestamp>,
    #[prost(message, optional, tag = "4")]
    pub current_since_time: Option<prost_wkt_types::Timestamp>,
    #[prost(message, optional, tag = "5")]
    pub ramping_since_time: Option<prost_wkt_types::Timestamp>,
    #[prost(message, optional, tag = "6")]
    pub first_activation_time: Option<prost_wkt_types::Timestamp>,
    #[prost(message, optional, tag = "7")]
    pub last_current_time: Option<prost_wkt_types::Timestamp>,
    #[prost(message, optional, tag = "8")]
    pub last_deactivation_time: Option<prost_wkt_types::Timestamp>,
    /// The task queues its workers poll: (name, `temporal.api.enums.v1.TaskQueueType`).
    #[prost(message, repeated, tag = "9")]
    pub task_queues: Vec<VersionTaskQueueRecord>,
    #[prost(btree_map = "string, message", tag = "10")]
    pub metadata:
        std::collections::BTreeMap<String, temporalio_protos::temporal::api::common::v1::Payload>,
    #[prost(string, tag = "11")]
    pub last_modifier_identity: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionTaskQueueRecord {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "2")]
    pub kind: i32,
}

/// One transaction on one workflow run: the run's mutable state after the change, plus the
/// history events the change appended (history is only ever appended, never rewritten).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutionRecord {
    #[prost(message, optional, tag = "1")]
    pub state: Option<MutableState>,
    /// Each an encoded `temporal.api.history.v1.HistoryEvent` (the same bytes on the wire as
    /// an embedded message; kept encoded because that is how the engine holds history).
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub new_events: Vec<Vec<u8>>,
    /// The entries of the run's keyed collections gone since its previous record, when the
    /// state's `kept_fields` says a collection holds only what changed (see
    /// `engine/entry_deltas.rs`).
    #[prost(message, optional, tag = "3")]
    pub removed: Option<RemovedEntries>,
    /// The run's handle in this log (0: none). A record whose state names its run (namespace,
    /// workflow id, run id) gives the run this handle; a later record of the run in the same
    /// log names it by the handle alone, its state's ids left empty (see
    /// `engine/kept_fields.rs`).
    #[prost(uint64, tag = "4")]
    pub handle: u64,
}

/// Keys of the entries a run's record removes from the collections its previous record
/// held. Timers are named by their started event id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemovedEntries {
    #[prost(int64, repeated, tag = "1")]
    pub activities: Vec<i64>,
    #[prost(int64, repeated, tag = "2")]
    pub timers: Vec<i64>,
    #[prost(int64, repeated, tag = "3")]
    pub children: Vec<i64>,
    #[prost(string, repeated, tag = "4")]
    pub updates: Vec<String>,
    #[prost(int64, repeated, tag = "5")]
    pub nexus_operations: Vec<i64>,
}

impl RemovedEntries {
    pub fn is_empty(&self) -> bool {
        self.activities.is_empty()
            && self.timers.is_empty()
            && self.children.is_empty()
            && self.updates.is_empty()
            && self.nexus_operations.is_empty()
    }
}

/// The front of a [`LogRecord`] as the archive's scans read it: an execution's state without
/// its history, or a deletion (same tags, so either decodes the other's bytes).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRecordHead {
    #[prost(oneof = "log_record_head::Kind", tags = "2, 4")]
    pub kind: Option<log_record_head::Kind>,
}

pub mod log_record_head {
    #[derive(Clone, PartialEq, prost::Oneof)]
    #[allow(clippy::large_enum_variant)]
    pub enum Kind {
        #[prost(message, tag = "2")]
        Execution(super::ExecutionHead),
        #[prost(message, tag = "4")]
        Deleted(super::DeletedRun),
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ExecutionHead {
    #[prost(message, optional, tag = "1")]
    pub state: Option<MutableState>,
}

/// Encodes `LogRecord { execution: ExecutionRecord { state, new_events } }` straight from
/// the run's state, without first copying it into a record.
pub fn encode_execution<'a>(
    state: &MutableState,
    new_events: impl Iterator<Item = &'a [u8]> + Clone,
) -> Vec<u8> {
    encode_execution_delta(state, new_events, None, 0)
}

/// [`encode_execution`] with the keys of entries the record removes (`None` or empty: none)
/// and the run's handle in the log (0: none; see [`ExecutionRecord::handle`]).
pub fn encode_execution_delta<'a>(
    state: &MutableState,
    new_events: impl Iterator<Item = &'a [u8]> + Clone,
    removed: Option<&RemovedEntries>,
    handle: u64,
) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
    let removed = removed.filter(|r| !r.is_empty());
    let state_len = state.encoded_len();
    let removed_len = removed.map_or(0, |r| field_len(r.encoded_len()));
    let handle_len = match handle {
        0 => 0,
        h => 1 + encoded_len_varint(h),
    };
    let inner_len = field_len(state_len)
        + new_events
            .clone()
            .map(|e| field_len(e.len()))
            .sum::<usize>()
        + removed_len
        + handle_len;
    let mut out = Vec::with_capacity(field_len(inner_len));
    put_header(2, inner_len, &mut out);
    put_header(1, state_len, &mut out);
    state.encode_raw(&mut out);
    for event in new_events {
        put_header(2, event.len(), &mut out);
        out.extend_from_slice(event);
    }
    if let Some(removed) = removed {
        put_header(3, removed.encoded_len(), &mut out);
        removed.encode_raw(&mut out);
    }
    if handle != 0 {
        encode_key(4, WireType::Varint, &mut out);
        encode_varint(handle, &mut out);
    }
    out
}

/// Which run each handle given by a log's records stands for, as the records are read in
/// order (see [`ExecutionRecord::handle`]).
#[derive(Default)]
pub struct RunHandles(std::collections::HashMap<u64, [String; 3]>);

impl RunHandles {
    /// Names the run of a record's state: notes the handle a record that names its run gives
    /// it, or fills in the ids of one that names it by the handle alone (Err: no earlier
    /// record gave that handle, which is damage).
    pub fn name(&mut self, ms: &mut MutableState, handle: u64) -> Result<(), String> {
        if handle == 0 {
            return Ok(());
        }
        if !ms.run_id.is_empty() {
            let ids = [&ms.namespace, &ms.workflow_id, &ms.run_id].map(String::clone);
            self.0.insert(handle, ids);
            return Ok(());
        }
        let Some([namespace, workflow_id, run_id]) = self.0.get(&handle) else {
            return Err(format!(
                "a run's record names it by handle {handle}, which no earlier record in the \
                 log gives"
            ));
        };
        ms.namespace.clone_from(namespace);
        ms.workflow_id.clone_from(workflow_id);
        ms.run_id.clone_from(run_id);
        Ok(())
    }
}

/// The records of a damaged log a replay can still apply, in order, and how many it cannot:
/// one that does not decode, or whose run's earlier records were lost with the damage (it
/// names the run by a handle no kept record gives, or leaves out fields no kept record of
/// the run holds; see `engine/kept_fields.rs`).
pub fn replayable(payloads: Vec<Vec<u8>>) -> (Vec<Vec<u8>>, usize) {
    type Key = (String, String, String);
    fn applies(
        record: LogRecord,
        handles: &mut RunHandles,
        seen: &mut std::collections::HashSet<Key>,
    ) -> bool {
        match record.kind {
            Some(log_record::Kind::Execution(exec)) => {
                let Some(mut ms) = exec.state else {
                    return true;
                };
                if handles.name(&mut ms, exec.handle).is_err() {
                    return false;
                }
                let follows = ms.kept_fields == 0;
                let key = (ms.namespace, ms.workflow_id, ms.run_id);
                let follows = follows || seen.contains(&key);
                seen.insert(key);
                follows
            }
            Some(log_record::Kind::Batch(batch)) => {
                batch.records.into_iter().all(|r| applies(r, handles, seen))
            }
            _ => true,
        }
    }
    let (mut handles, mut seen) = (RunHandles::default(), Default::default());
    let total = payloads.len();
    let kept: Vec<Vec<u8>> = payloads
        .into_iter()
        .filter(|p| {
            LogRecord::decode(p.as_slice()).is_ok_and(|r| applies(r, &mut handles, &mut seen))
        })
        .collect();
    let dropped = total - kept.len();
    (kept, dropped)
}

/// Encodes `LogRecord { batch: RecordBatch { records } }` from already encoded records.
pub fn encode_batch<R: AsRef<[u8]>>(records: &[R]) -> Vec<u8> {
    let inner_len: usize = records.iter().map(|r| field_len(r.as_ref().len())).sum();
    let mut out = Vec::with_capacity(field_len(inner_len));
    put_header(3, inner_len, &mut out);
    for record in records {
        let record = record.as_ref();
        put_header(1, record.len(), &mut out);
        out.extend_from_slice(record);
    }
    out
}

/// Encoded size of a length-delimited field of `len` bytes with a one-byte key (tag < 16).
fn field_len(len: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(len as u64) + len
}

/// Writes the key and length of a length-delimited field.
fn put_header(tag: u32, len: usize, out: &mut Vec<u8>) {
    use prost::encoding::{WireType, encode_key, encode_varint};
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RecordBatch {
    #[prost(message, repeated, tag = "1")]
    pub records: Vec<LogRecord>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DeletedRun {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub workflow_id: String,
    #[prost(string, tag = "3")]
    pub run_id: String,
}

/// Everything a schedule needs to go on after a restart.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScheduleRecord {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub schedule_id: String,
    /// Canonical spec, action, policies and state.
    #[prost(message, optional, tag = "3")]
    pub schedule: Option<temporalio_protos::temporal::api::schedule::v1::Schedule>,
    /// Counters, running workflows, recent actions, create/update time (future action
    /// times are computed when described).
    #[prost(message, optional, tag = "4")]
    pub info: Option<temporalio_protos::temporal::api::schedule::v1::ScheduleInfo>,
    #[prost(message, optional, tag = "5")]
    pub memo: Option<temporalio_protos::temporal::api::common::v1::Memo>,
    #[prost(message, optional, tag = "6")]
    pub search_attributes: Option<temporalio_protos::temporal::api::common::v1::SearchAttributes>,
    #[prost(int64, tag = "7")]
    pub conflict_token: i64,
    /// Scheduled times up to here (Unix ms) have been handled.
    #[prost(int64, tag = "8")]
    pub processed_until_ms: i64,
    #[prost(message, repeated, tag = "9")]
    pub buffered: Vec<BufferedStart>,
    #[prost(message, optional, tag = "10")]
    pub last_completion_result: Option<temporalio_protos::temporal::api::common::v1::Payloads>,
    #[prost(message, optional, tag = "11")]
    pub continued_failure: Option<temporalio_protos::temporal::api::failure::v1::Failure>,
    /// Workflow ids whose cancellation this schedule already requested (CANCEL_OTHER).
    #[prost(string, repeated, tag = "12")]
    pub cancel_requested: Vec<String>,
    /// Operations on workflows in shards another replica serves, not yet acknowledged.
    #[prost(message, repeated, tag = "13")]
    pub outbox: Vec<super::state::Transfer>,
    #[prost(uint64, tag = "14")]
    pub next_transfer_id: u64,
}

/// An action waiting for its turn under the overlap policy.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BufferedStart {
    #[prost(int64, tag = "1")]
    pub nominal_ms: i64,
    #[prost(int64, tag = "2")]
    pub actual_ms: i64,
    /// `temporal.api.enums.v1.ScheduleOverlapPolicy`.
    #[prost(int32, tag = "3")]
    pub overlap_policy: i32,
    /// Triggered or backfilled by a user rather than by the spec.
    #[prost(bool, tag = "4")]
    pub manual: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ScheduleKeyRecord {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub schedule_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn salvage_keeps_the_records_a_replay_can_apply() {
        let named = |run: &str, kept_fields: u32| MutableState {
            namespace: "ns".into(),
            workflow_id: "wf".into(),
            run_id: run.into(),
            kept_fields,
            ..Default::default()
        };
        let by_handle = MutableState {
            kept_fields: 1,
            ..Default::default()
        };
        let no_events = std::iter::empty::<&[u8]>;
        let payloads = vec![
            encode_execution_delta(&named("r1", 0), no_events(), None, 1),
            encode_execution_delta(&by_handle, no_events(), None, 1),
            // Its first record was lost: nothing gave handle 2.
            encode_execution_delta(&by_handle, no_events(), None, 2),
            // It leaves out fields of an earlier record of r2 that was lost.
            encode_execution_delta(&named("r2", 1), no_events(), None, 3),
            vec![0xff, 0xff, 0xff],
        ];
        let (kept, dropped) = replayable(payloads.clone());
        assert_eq!((kept, dropped), (payloads[..2].to_vec(), 3));
    }

    #[test]
    fn hand_encoded_records_match_prost() {
        let state = MutableState {
            namespace: "ns".into(),
            workflow_id: "wf".into(),
            next_event_id: 7,
            ..Default::default()
        };
        let events = vec![vec![8, 1], vec![], vec![8, 2, 16, 3]];
        let record = LogRecord {
            kind: Some(log_record::Kind::Execution(ExecutionRecord {
                state: Some(state.clone()),
                new_events: events.clone(),
                removed: None,
                handle: 0,
            })),
        };
        let encoded = encode_execution(&state, events.iter().map(Vec::as_slice));
        assert_eq!(encoded, record.encode_to_vec());
        let removed = RemovedEntries {
            activities: vec![5, 9],
            updates: vec!["u".into()],
            ..Default::default()
        };
        let with_removed = LogRecord {
            kind: Some(log_record::Kind::Execution(ExecutionRecord {
                state: Some(state.clone()),
                new_events: events.clone(),
                removed: Some(removed.clone()),
                handle: 7,
            })),
        };
        let delta =
            encode_execution_delta(&state, events.iter().map(Vec::as_slice), Some(&removed), 7);
        assert_eq!(delta, with_removed.encode_to_vec());
        let batch = LogRecord {
            kind: Some(log_record::Kind::Batch(RecordBatch {
                records: vec![record.clone(), record],
            })),
        };
        assert_eq!(
            encode_batch(&[encoded.clone(), encoded]),
            batch.encode_to_vec()
        );
    }
}

/// A batch operation (StartBatchOperation): what it does to which workflows, and how far it
/// got. Targets are worked through in (workflow id, run id) order, so the last one done is
/// where a restart resumes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BatchJobRecord {
    #[prost(string, tag = "1")]
    pub namespace: String,
    #[prost(string, tag = "2")]
    pub job_id: String,
    /// The request as accepted (operation, query or executions, reason, rate).
    #[prost(message, optional, tag = "3")]
    pub request:
        Option<temporalio_protos::temporal::api::workflowservice::v1::StartBatchOperationRequest>,
    /// `temporal.api.enums.v1.BatchOperationState`.
    #[prost(int32, tag = "4")]
    pub state: i32,
    #[prost(message, optional, tag = "5")]
    pub start_time: Option<prost_wkt_types::Timestamp>,
    #[prost(message, optional, tag = "6")]
    pub close_time: Option<prost_wkt_types::Timestamp>,
    /// How many workflows matched when the job began (an estimate for a query).
    #[prost(int64, tag = "7")]
    pub total: i64,
    #[prost(int64, tag = "8")]
    pub completed: i64,
    #[prost(int64, tag = "9")]
    pub failed: i64,
    /// The last target done, in (workflow id, run id) order (empty: none yet).
    #[prost(string, tag = "10")]
    pub done_through_workflow_id: String,
    #[prost(string, tag = "11")]
    pub done_through_run_id: String,
    /// Whether `total` was counted yet.
    #[prost(bool, tag = "12")]
    pub counted: bool,
    /// Why it was stopped (StopBatchOperation), if it was.
    #[prost(string, tag = "13")]
    pub stop_reason: String,
    /// The target being acted on, recorded before the action: a restart acts on it again
    /// (harmlessly) and counts it once.
    #[prost(string, tag = "14")]
    pub in_flight_workflow_id: String,
    #[prost(string, tag = "15")]
    pub in_flight_run_id: String,
    /// The job went with its namespace (a record of only the key and this).
    #[prost(bool, tag = "16")]
    pub deleted: bool,
}
