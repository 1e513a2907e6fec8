//! Log records that leave out what did not change. Every change of a run logs its mutable
//! state, but many of its fields rarely change after the start: the start event's attributes,
//! the auto-reset points, the memo, the search attributes, and a group of smaller ones
//! ([`Rare`]: the start and expiration times, the sticky queue, the start request id...). A
//! run's record leaves each of them out while it is as the run's previous record in the log
//! wrote it, and says so in `MutableState::kept_fields`; replaying the record takes it from
//! the previous one. Keyed collections (pending activities, timers...) are logged as deltas
//! the same way (`entry_deltas.rs`).
//!
//! What was written is known by a fingerprint per field (SHA-256, 128 bits) kept on the run,
//! not by tracking who changes the fields, so no code path can change one unseen. A run that
//! did not come from its own records in this log (new, faulted in from the archive, loaded
//! after a restart or a shard move) has no fingerprints: its next record is whole. Compaction
//! writes whole records, so the fingerprints stay true after it.

use prost::Message;
use prost_wkt_types::{Duration, Timestamp};

use super::entry_deltas::{self, LoggedEntries};
use crate::store::RemovedEntries;
use crate::store::state::{
    CallbackRecord, MutableState, RunVersioning, StandaloneActivity, StandaloneNexusOperation,
};

const STARTED: u32 = 1;
const RESET_POINTS: u32 = 2;
const MEMO: u32 = 4;
const SEARCH_ATTRIBUTES: u32 = 8;
const RARE: u32 = 16;

/// Fingerprints of the fields as the log last wrote them for a run (0: not known).
#[derive(Default, Debug, Clone)]
pub(crate) struct LoggedFields {
    /// The run's handle in the log (0: none yet): its first record there names the run and
    /// gives the handle, later ones name it by the handle alone.
    handle: u64,
    fields: [u128; 5],
    /// Only for runs with a large collection (boxed: most runs have none, and every byte of
    /// a run counts a million times).
    entries: Option<Box<LoggedEntries>>,
}

/// The small fields that rarely change after a run starts, fingerprinted and left out
/// together (their own message only to fingerprint them; records keep them in the state).
#[derive(Clone, PartialEq, prost::Message)]
struct Rare {
    #[prost(message, optional, tag = "1")]
    start_time: Option<Timestamp>,
    #[prost(message, optional, tag = "2")]
    execution_time: Option<Timestamp>,
    #[prost(string, tag = "3")]
    start_request_id: String,
    #[prost(string, tag = "4")]
    cancel_request_id: String,
    #[prost(message, optional, tag = "5")]
    run_expiration_time: Option<Timestamp>,
    #[prost(string, tag = "6")]
    sticky_task_queue: String,
    #[prost(message, optional, tag = "7")]
    sticky_schedule_to_start_timeout: Option<Duration>,
    #[prost(string, tag = "8")]
    reset_run_id: String,
    #[prost(message, optional, tag = "9")]
    last_reset_time: Option<Timestamp>,
    #[prost(message, optional, boxed, tag = "10")]
    versioning: Option<Box<RunVersioning>>,
    #[prost(message, optional, boxed, tag = "11")]
    standalone_activity: Option<Box<StandaloneActivity>>,
    #[prost(message, optional, boxed, tag = "12")]
    standalone_nexus: Option<Box<StandaloneNexusOperation>>,
    #[prost(message, repeated, tag = "13")]
    callbacks: Vec<CallbackRecord>,
    #[prost(string, repeated, tag = "14")]
    attached_request_ids: Vec<String>,
}

impl Rare {
    /// Moves the group's fields out of `ms`.
    fn take(ms: &mut MutableState) -> Self {
        use std::mem::take;
        Self {
            start_time: ms.start_time.take(),
            execution_time: ms.execution_time.take(),
            start_request_id: take(&mut ms.start_request_id),
            cancel_request_id: take(&mut ms.cancel_request_id),
            run_expiration_time: ms.run_expiration_time.take(),
            sticky_task_queue: take(&mut ms.sticky_task_queue),
            sticky_schedule_to_start_timeout: ms.sticky_schedule_to_start_timeout.take(),
            reset_run_id: take(&mut ms.reset_run_id),
            last_reset_time: ms.last_reset_time.take(),
            versioning: ms.versioning.take(),
            standalone_activity: ms.standalone_activity.take(),
            standalone_nexus: ms.standalone_nexus.take(),
            callbacks: take(&mut ms.callbacks),
            attached_request_ids: take(&mut ms.attached_request_ids),
        }
    }

    /// Moves the group's fields back into `ms`.
    fn put(self, ms: &mut MutableState) {
        ms.start_time = self.start_time;
        ms.execution_time = self.execution_time;
        ms.start_request_id = self.start_request_id;
        ms.cancel_request_id = self.cancel_request_id;
        ms.run_expiration_time = self.run_expiration_time;
        ms.sticky_task_queue = self.sticky_task_queue;
        ms.sticky_schedule_to_start_timeout = self.sticky_schedule_to_start_timeout;
        ms.reset_run_id = self.reset_run_id;
        ms.last_reset_time = self.last_reset_time;
        ms.versioning = self.versioning;
        ms.standalone_activity = self.standalone_activity;
        ms.standalone_nexus = self.standalone_nexus;
        ms.callbacks = self.callbacks;
        ms.attached_request_ids = self.attached_request_ids;
    }
}

/// The fields taken out of a state while its record is encoded.
#[derive(Default)]
pub(crate) struct Elided {
    /// The run's namespace, workflow id and run id, when the record names it by its handle.
    ids: Option<[String; 3]>,
    handle: u64,
    started: Option<
        Box<temporalio_protos::temporal::api::history::v1::WorkflowExecutionStartedEventAttributes>,
    >,
    reset_points: Option<temporalio_protos::temporal::api::workflow::v1::ResetPoints>,
    memo: Option<temporalio_protos::temporal::api::common::v1::Memo>,
    search_attributes: Option<temporalio_protos::temporal::api::common::v1::SearchAttributes>,
    rare: Option<Rare>,
    entries: entry_deltas::Swapped,
}

impl Elided {
    /// The entries the record removes from the run's collections (see `entry_deltas.rs`).
    pub(crate) fn removed(&self) -> &RemovedEntries {
        &self.entries.removed
    }

    /// The run's handle the record carries.
    pub(crate) fn handle(&self) -> u64 {
        self.handle
    }
}

pub(super) fn fingerprint(field: &impl Message) -> u128 {
    let digest = ring::digest::digest(&ring::digest::SHA256, &field.encode_to_vec());
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest.as_ref()[..16]);
    // Never 0, which means "not known".
    u128::from_le_bytes(first) | 1
}

/// Takes `field` out when the log holds it as it is (setting `bit` in `kept`); otherwise
/// notes its fingerprint as what this record writes.
fn take_if_logged<T: Message>(
    field: &mut Option<T>,
    logged: &mut u128,
    bit: u32,
    kept: &mut u32,
) -> Option<T> {
    let Some(value) = field.as_ref() else {
        *logged = 0;
        return None;
    };
    let now = fingerprint(value);
    if now == *logged {
        *kept |= bit;
        return field.take();
    }
    *logged = now;
    None
}

impl LoggedFields {
    /// The run's handle in the log (0: none yet).
    pub(crate) fn handle(&self) -> u64 {
        self.handle
    }

    /// Takes out of `ms` the fields the log already holds as they are, for one record; the
    /// caller puts them back with [`put_back`] once the record is encoded. A run without a
    /// handle in the log is given the next after `last_handle`.
    pub(crate) fn elide(&mut self, ms: &mut MutableState, last_handle: &mut u64) -> Elided {
        let mut kept = 0;
        let ids = if self.handle == 0 {
            *last_handle += 1;
            self.handle = *last_handle;
            None
        } else {
            use std::mem::take;
            Some([
                take(&mut ms.namespace),
                take(&mut ms.workflow_id),
                take(&mut ms.run_id),
            ])
        };
        let [started, resets, memo, attrs, rare] = &mut self.fields;
        let mut elided = Elided {
            ids,
            handle: self.handle,
            started: take_if_logged(&mut ms.started, started, STARTED, &mut kept),
            reset_points: take_if_logged(
                &mut ms.auto_reset_points,
                resets,
                RESET_POINTS,
                &mut kept,
            ),
            memo: take_if_logged(&mut ms.memo, memo, MEMO, &mut kept),
            search_attributes: take_if_logged(
                &mut ms.search_attributes,
                attrs,
                SEARCH_ATTRIBUTES,
                &mut kept,
            ),
            ..Default::default()
        };
        let group = Rare::take(ms);
        let now = fingerprint(&group);
        if now == *rare {
            kept |= RARE;
            elided.rare = Some(group);
        } else {
            *rare = now;
            group.put(ms);
        }
        if self.entries.is_some() || entry_deltas::any_tracked(ms) {
            let entries = self.entries.get_or_insert_with(Default::default);
            elided.entries = entries.elide(ms, &mut kept);
            if entries.is_empty() {
                self.entries = None;
            }
        }
        ms.kept_fields = kept;
        elided
    }
}

/// Restores the fields [`LoggedFields::elide`] took out.
pub(crate) fn put_back(ms: &mut MutableState, elided: Elided) {
    ms.kept_fields = 0;
    if let Some([namespace, workflow_id, run_id]) = elided.ids {
        (ms.namespace, ms.workflow_id, ms.run_id) = (namespace, workflow_id, run_id);
    }
    if elided.started.is_some() {
        ms.started = elided.started;
    }
    if elided.reset_points.is_some() {
        ms.auto_reset_points = elided.reset_points;
    }
    if elided.memo.is_some() {
        ms.memo = elided.memo;
    }
    if elided.search_attributes.is_some() {
        ms.search_attributes = elided.search_attributes;
    }
    if let Some(rare) = elided.rare {
        rare.put(ms);
    }
    entry_deltas::put_back(ms, elided.entries);
}

/// Replaying a record: fills the fields it left out from the run's previous record (`None`:
/// the log holds no earlier record of the run, which is damage), which it takes them from
/// (the previous state is replaced by this one). `removed`: the record's removed entries.
pub(crate) fn restore(
    ms: &mut MutableState,
    previous: Option<&mut MutableState>,
    removed: Option<&RemovedEntries>,
) -> Result<(), String> {
    let kept = std::mem::take(&mut ms.kept_fields);
    if kept == 0 {
        return Ok(());
    }
    let known = STARTED
        | RESET_POINTS
        | MEMO
        | SEARCH_ATTRIBUTES
        | RARE
        | entry_deltas::ACTIVITIES
        | entry_deltas::TIMERS
        | entry_deltas::CHILDREN
        | entry_deltas::UPDATES
        | entry_deltas::NEXUS_OPERATIONS;
    if kept & !known != 0 {
        return Err(format!(
            "the log's record of run {}/{}/{} leaves out fields this version of Durin does not \
             know (kept_fields {kept:#x}): it was written by a newer version",
            ms.namespace, ms.workflow_id, ms.run_id
        ));
    }
    let Some(previous) = previous else {
        return Err(format!(
            "the log's record of run {}/{}/{} refers to an earlier record of it that the log \
             does not hold",
            ms.namespace, ms.workflow_id, ms.run_id
        ));
    };
    if kept & STARTED != 0 {
        ms.started = previous.started.take();
    }
    if kept & RESET_POINTS != 0 {
        ms.auto_reset_points = previous.auto_reset_points.take();
    }
    if kept & MEMO != 0 {
        ms.memo = previous.memo.take();
    }
    if kept & SEARCH_ATTRIBUTES != 0 {
        ms.search_attributes = previous.search_attributes.take();
    }
    if kept & RARE != 0 {
        Rare::take(previous).put(ms);
    }
    entry_deltas::restore(
        ms,
        previous,
        kept,
        removed.unwrap_or(&RemovedEntries::default()),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_protos::temporal::api::history::v1::WorkflowExecutionStartedEventAttributes;

    fn state(attempt: i32) -> MutableState {
        MutableState {
            workflow_id: "wf".into(),
            started: Some(Box::new(WorkflowExecutionStartedEventAttributes {
                attempt,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    /// One record of `ms`: its state as encoded, with the ids its handle stands for filled
    /// in as replay does.
    fn record(logged: &mut LoggedFields, ms: &mut MutableState) -> MutableState {
        let elided = logged.elide(ms, &mut 0);
        let mut record = ms.clone();
        put_back(ms, elided);
        if record.workflow_id.is_empty() {
            record.workflow_id = ms.workflow_id.clone();
        }
        record
    }

    #[test]
    fn an_unchanged_field_is_left_out_and_restored_from_the_previous_record() {
        let mut logged = LoggedFields::default();
        let mut ms = state(1);
        // First record: whole.
        let first = record(&mut logged, &mut ms);
        assert_eq!(first.kept_fields, 0);
        assert!(first.started.is_some());
        // Second, unchanged: left out, and replay restores it.
        let mut second = record(&mut logged, &mut ms);
        assert_eq!(
            (second.kept_fields & STARTED, second.started.is_none()),
            (STARTED, true)
        );
        assert_eq!(ms, state(1));
        restore(&mut second, Some(&mut first.clone()), None).unwrap();
        assert_eq!(second, state(1));
        // Changed: written again.
        ms.started.as_mut().unwrap().attempt = 2;
        let third = record(&mut logged, &mut ms);
        assert_eq!(
            (
                third.kept_fields & STARTED,
                third.started.as_ref().map(|s| s.attempt)
            ),
            (0, Some(2))
        );
    }

    #[test]
    fn a_run_is_named_by_its_ids_once_and_then_by_its_handle() {
        let mut last_handle = 0;
        let (mut a, mut b) = (LoggedFields::default(), LoggedFields::default());
        let named = |ms: &MutableState| {
            (
                ms.namespace.clone(),
                ms.workflow_id.clone(),
                ms.run_id.clone(),
            )
        };
        let mut ms = MutableState {
            namespace: "ns".into(),
            workflow_id: "wf".into(),
            run_id: "run".into(),
            ..Default::default()
        };
        let whole = ms.clone();
        let elided = a.elide(&mut ms, &mut last_handle);
        assert_eq!((elided.handle(), named(&ms)), (1, named(&whole)));
        put_back(&mut ms, elided);
        let elided = a.elide(&mut ms, &mut last_handle);
        assert_eq!(
            (elided.handle(), named(&ms)),
            (1, Default::default()),
            "later records name the run by its handle alone"
        );
        put_back(&mut ms, elided);
        assert_eq!(ms, whole, "the ids are put back after encoding");
        let elided = b.elide(&mut ms.clone(), &mut last_handle);
        assert_eq!(elided.handle(), 2, "another run gets the next handle");
    }

    #[test]
    fn a_record_whose_previous_record_is_missing_is_damage() {
        let mut logged = LoggedFields::default();
        let mut ms = state(1);
        let _ = record(&mut logged, &mut ms);
        let mut second = record(&mut logged, &mut ms);
        assert!(
            restore(&mut second, None, None)
                .unwrap_err()
                .contains("does not hold")
        );
    }

    #[test]
    fn the_rare_group_is_left_out_while_unchanged_and_written_whole_when_one_changes() {
        let mut logged = LoggedFields::default();
        let mut ms = MutableState {
            workflow_id: "wf".into(),
            start_request_id: "request".into(),
            start_time: Some(Timestamp {
                seconds: 7,
                nanos: 0,
            }),
            ..Default::default()
        };
        let first = record(&mut logged, &mut ms);
        assert_eq!(first.kept_fields & RARE, 0);

        let mut second = record(&mut logged, &mut ms);
        assert_ne!(second.kept_fields & RARE, 0);
        assert!(second.start_time.is_none() && second.start_request_id.is_empty());
        restore(&mut second, Some(&mut first.clone()), None).unwrap();
        assert_eq!(second, ms);

        // One field of the group changes: the group is written whole.
        ms.sticky_task_queue = "sticky".into();
        let third = record(&mut logged, &mut ms);
        assert_eq!(third.kept_fields & RARE, 0);
        assert_eq!(
            (
                third.sticky_task_queue.as_str(),
                third.start_request_id.as_str()
            ),
            ("sticky", "request")
        );
    }

    #[test]
    fn a_record_from_a_newer_version_is_refused() {
        let mut record = MutableState {
            kept_fields: 1 << 20,
            ..Default::default()
        };
        let err = restore(&mut record, Some(&mut MutableState::default()), None).unwrap_err();
        assert!(err.contains("newer version"), "{err}");
    }
}
