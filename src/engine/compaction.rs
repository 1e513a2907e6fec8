//! Log compaction: once the log is mostly superseded state, it is rewritten as one record per
//! live object, so the disk stays small and start-up stays fast.
//!
//! A snapshot of a million runs must not stop the engine for seconds, so a compaction is
//! spread out. When it begins (under the engine lock, as one step) it encodes the namespaces,
//! endpoints, schedules and batch jobs, and marks every run owed without touching one. Each
//! operation after that takes a few owed runs (a frozen run's record is shared, not copied),
//! and the run table takes an owed run before it changes (`run_table_capture.rs`), so every
//! run is snapshotted as it was at the start. The operations logged meanwhile are kept, and
//! when nothing is owed any more the store gets the snapshot followed by them: the log the
//! engine would have had compacting at the start and appending since. The writer swaps the
//! files in order with other appends.

use std::time::Instant;

use prost::Message;

use super::run_table::capture::TakenRuns;
use super::{Core, Engine, RunKey};
use crate::store::{LogRecord, Lsn, ShardedRecord, log_record};

/// Runs each operation looks at while a compaction is under way: with encoding a live run
/// at a few microseconds (sharing a frozen one's record well under one), an operation waits
/// well under a millisecond for it, and a million runs are taken within some 16,000
/// operations.
const OWED_PER_OPERATION: usize = 64;

/// Runs the freezer's tick looks at a time when operations are few (a few milliseconds).
const OWED_PER_SLICE: usize = 1024;

/// A compaction under way.
pub(super) struct Compaction {
    /// The shards it rewrites: if this replica's shards change meanwhile, it is dropped.
    shards: Vec<u32>,
    /// Namespaces, endpoints, schedules and batch jobs, as at the start.
    objects: Vec<ShardedRecord>,
    /// Every record logged since the start, in order, and how many operations logged them.
    since: Vec<ShardedRecord>,
    operations_since: u64,
    began: Instant,
    /// How long the start held the engine.
    begin_ms: u64,
}

impl Engine {
    /// On a clean stop: rewrites the log as one record per live object when more than a
    /// quarter of its records are superseded, so that the next start replays each run about
    /// once and seldom thaws a run it froze (as a database's shutdown checkpoint spares its
    /// next start the redo). A crash skips this; the next start replays what the log holds.
    pub async fn checkpoint(&self) {
        let began = Instant::now();
        let compaction = {
            let mut core = self.core.lock();
            let live = core.live_objects();
            (core.records_in_log > live + live / 4).then(|| core.compact_now())
        };
        let Some(lsn) = compaction else { return };
        match self.store.wait_compacted(lsn).await {
            Ok(()) => tracing::info!(
                took_ms = began.elapsed().as_millis() as u64,
                "log compacted for the next start"
            ),
            Err(e) => tracing::warn!(error = %e, "compacting the log at shutdown failed"),
        }
    }
}

impl Core {
    /// After each operation: begins a compaction once the log holds more than twice the
    /// records of a compacted one, or moves the one under way on.
    pub(super) fn compact_if_superseded(&mut self) {
        if self.compaction.is_none() && self.superseded() {
            self.begin_compaction();
        }
        self.continue_compaction(OWED_PER_OPERATION);
    }

    /// Whether the log is long enough, and mostly superseded, to be worth compacting.
    pub(super) fn superseded(&self) -> bool {
        self.records_in_log >= self.compact_min_records
            && self.records_in_log > 2 * self.live_objects()
    }

    /// Objects a compacted log holds one record for.
    fn live_objects(&self) -> u64 {
        (self.runs.len()
            + self.namespaces.len()
            + self.nexus_endpoints.len()
            + self.schedules.len()
            + self.batches.len()) as u64
    }

    /// Rewrites the log as one record per live object at once (a compaction under way starts
    /// over); returns the position to wait for.
    pub(crate) fn compact_now(&mut self) -> Lsn {
        self.begin_compaction();
        self.finish_compaction()
            .expect("a compaction begun under this lock finishes")
    }

    /// Takes a compaction's snapshot of everything but the runs, and marks those owed.
    pub(super) fn begin_compaction(&mut self) {
        let began = Instant::now();
        let namespaces = self.namespaces.values().map(|ns| LogRecord {
            kind: Some(log_record::Kind::Namespace(ns.clone())),
        });
        let objects = namespaces
            .chain(self.endpoint_snapshot())
            .chain(self.schedule_snapshot())
            .chain(self.batch_snapshot())
            .map(|r| (self.record_shard(&r), r.encode_to_vec().into()))
            .collect();
        self.runs.begin_capture(self.shard_count);
        self.compaction = Some(Compaction {
            shards: self.owned_shards.iter().copied().collect(),
            objects,
            since: Vec::new(),
            operations_since: 0,
            began,
            begin_ms: began.elapsed().as_millis() as u64,
        });
    }

    /// Takes up to `budget` owed runs, and finishes the compaction once none is owed.
    fn continue_compaction(&mut self, budget: usize) -> Option<Lsn> {
        if self.compaction.is_none() || !self.runs.capture_owed(budget) {
            return None;
        }
        self.finish_compaction()
    }

    /// Takes a slice of owed runs; returns whether the compaction is still under way.
    pub(super) fn compaction_slice(&mut self) -> bool {
        self.continue_compaction(OWED_PER_SLICE);
        self.compaction.is_some()
    }

    /// Keeps an operation's records for the compaction under way (they go after its snapshot).
    pub(super) fn note_logged(&mut self, records: &[ShardedRecord]) {
        if let Some(c) = &mut self.compaction {
            c.since.extend(records.iter().cloned());
            c.operations_since += 1;
        }
    }

    /// Hands the snapshot and the records logged since it began to the store. None if this
    /// replica's shards changed meanwhile: the snapshot is dropped, and the next operation
    /// begins another.
    fn finish_compaction(&mut self) -> Option<Lsn> {
        let began = Instant::now();
        let c = self.compaction.take()?;
        if !self
            .owned_shards
            .iter()
            .copied()
            .eq(c.shards.iter().copied())
        {
            // Not worth encoding the runs still owed.
            self.runs.abandon_capture();
            tracing::info!("this replica's shards changed while compacting; compacting again");
            return None;
        }
        let taken = self.runs.end_capture();
        let mut records = c.objects;
        records.reserve(taken.open.len() + taken.closed.len() + c.since.len());
        self.order_taken(taken, &mut records);
        let snapshot = records.len() as u64;
        let since = c.since.len();
        records.extend(c.since);
        let lsn = self.store.compact(c.shards, records);
        tracing::info!(
            before = self.records_in_log,
            after = snapshot,
            since,
            lsn,
            snapshot_ms = c.begin_ms.max(began.elapsed().as_millis() as u64),
            took_ms = c.began.elapsed().as_millis() as u64,
            "compacting the log"
        );
        self.records_in_log = snapshot + c.operations_since;
        Some(lsn)
    }

    /// Appends the runs taken in the order replay needs: a workflow id's runs in start order
    /// with its current run last (runs can start within one millisecond), so that it becomes
    /// current again. The superseded runs first, by start, then the current ones (one per
    /// workflow id, so in any order). Only closed runs are looked up: an open workflow run is
    /// its workflow id's current run.
    fn order_taken(&self, taken: TakenRuns, records: &mut Vec<ShardedRecord>) {
        let (mut superseded, current): (Vec<_>, Vec<_>) =
            (taken.closed.into_iter()).partition(|run| !is_current(&self.current, &run.key));
        superseded.sort_by_key(|run| run.start_ms);
        records.extend(superseded.into_iter().map(|run| run.record));
        records.extend(current.into_iter().map(|run| run.record));
        records.extend(taken.open);
    }
}

fn is_current(current: &std::collections::HashMap<(String, String), String>, key: &RunKey) -> bool {
    current
        .get(&(key.namespace.clone(), key.workflow_id.clone()))
        .is_some_and(|c| *c == key.run_id)
}
