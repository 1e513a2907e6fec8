//! The runs a log compaction snapshots, as they were when it began, without holding the engine
//! for the whole table (`engine/compaction.rs` drives it).
//!
//! Beginning a capture touches no run: it only starts a new epoch. Every slot remembers the
//! epoch it was last taken (or created) in, so the runs there were at the start are those of an
//! older epoch: they are owed. A cursor walks the table's slots in index order a few at a time
//! between operations and takes each owed run it meets (a frozen run's record is shared, a live
//! run is encoded), and a run still owed when something is about to change it or drop it is
//! taken first (copy-on-write), so every run is taken as it was at the start. With a million
//! frozen runs, the walk that used to happen under the lock at the start (hundreds of
//! milliseconds, every timer due meanwhile late) is spread over thousands of operations.

use std::sync::Arc;

use bytes::Bytes;

use super::{RunTable, Slot, compaction_record};
use crate::engine::{RunKey, clock};
use crate::store::ShardedRecord;

/// A closed run as a compaction took it: whether it is still its workflow id's current run
/// is for the compaction to ask.
pub struct ClosedRun {
    pub key: RunKey,
    pub start_ms: i64,
    pub record: ShardedRecord,
}

/// The runs a compaction took, as the store will get them.
#[derive(Default)]
pub struct TakenRuns {
    /// Open workflow runs (frozen ones included): each its workflow id's current run.
    pub open: Vec<ShardedRecord>,
    pub closed: Vec<ClosedRun>,
}

/// The runs of the compaction under way: where the walk is, and those taken.
pub(super) struct Capture {
    /// The slots before this index have been looked at (or came since, or were taken).
    cursor: usize,
    shard_count: u32,
    taken: TakenRuns,
}

impl Capture {
    /// Takes the run as it is, if it is owed (its slot is of an older epoch than `epoch`).
    pub(super) fn take(&mut self, epoch: u32, key: &RunKey, slot: &mut Slot) {
        if std::mem::replace(&mut slot.epoch, epoch) == epoch {
            return;
        }
        // The freezer may have frozen it since: the same state, already encoded.
        let shard = crate::store::shard_of(self.shard_count, &key.namespace, &key.workflow_id);
        match (&slot.frozen, slot.live.get()) {
            // Only open workflow runs freeze.
            (Some(frozen), _) => (self.taken.open).push((Some(shard), shared(&frozen.record))),
            // A run faulted in from the archive is durable there.
            (None, Some(run)) if run.archived => {}
            (None, Some(run)) => {
                let record = (Some(shard), Bytes::from(compaction_record(run)));
                if run.is_open() && !run.is_standalone() {
                    self.taken.open.push(record);
                } else {
                    self.taken.closed.push(ClosedRun {
                        key: key.clone(),
                        start_ms: clock::opt_ts_millis(&run.ms.start_time),
                        record,
                    });
                }
            }
            (None, None) => {}
        }
    }
}

/// The frozen record as the store takes it, without a copy.
fn shared(record: &Arc<[u8]>) -> Bytes {
    Bytes::from_owner(Arc::clone(record))
}

impl RunTable {
    /// Begins a compaction's capture of every run there is now (one under way starts over).
    /// Runs faulted in from the archive are left out: they are durable there.
    pub fn begin_capture(&mut self, shard_count: u32) {
        self.epoch = self.epoch.wrapping_add(1);
        self.capture = Some(Capture {
            cursor: 0,
            shard_count,
            taken: TakenRuns::default(),
        });
    }

    /// Looks at up to `budget` more slots, taking those owed; returns whether the walk is done.
    pub fn capture_owed(&mut self, budget: usize) -> bool {
        let Some(capture) = &mut self.capture else {
            return true;
        };
        let end = capture.cursor.saturating_add(budget).min(self.slots.len());
        for index in capture.cursor..end {
            if let Some((key, slot)) = self.slots.get_index_mut(index) {
                capture.take(self.epoch, key, slot);
            }
        }
        capture.cursor = end;
        end == self.slots.len()
    }

    /// Ends the capture and hands over every run taken (those still owed are taken now).
    pub fn end_capture(&mut self) -> TakenRuns {
        self.capture_owed(usize::MAX);
        self.capture.take().map(|c| c.taken).unwrap_or_default()
    }

    /// Drops a capture under way, if any (the next one begins a newer epoch).
    pub fn abandon_capture(&mut self) {
        self.capture = None;
    }

    /// Takes the run before it changes or goes, if a compaction still owes it.
    pub(super) fn take_owed(&mut self, key: &RunKey) {
        let Some(capture) = &mut self.capture else {
            return;
        };
        if let Some((_, key, slot)) = self.slots.get_full_mut(key) {
            capture.take(self.epoch, key, slot);
        }
    }

    /// Before the slot at `index` is removed by moving the last one into its place: takes the
    /// last one if it would land behind the cursor still owed.
    pub(super) fn take_moved_behind_cursor(&mut self, index: usize) {
        let Some(capture) = &mut self.capture else {
            return;
        };
        let last = self.slots.len().saturating_sub(1);
        if index < capture.cursor
            && index != last
            && let Some((key, slot)) = self.slots.get_index_mut(last)
        {
            capture.take(self.epoch, key, slot);
        }
    }

    /// After slots moved in ways the cursor cannot follow (a `retain`): walks again from the
    /// start, passing quickly over those already taken.
    pub(super) fn rewind_capture(&mut self) {
        if let Some(capture) = &mut self.capture {
            capture.cursor = 0;
        }
    }

    /// Whether the compaction under way still owes the run (for tests).
    #[cfg(test)]
    pub(super) fn owes(&self, key: &RunKey) -> bool {
        self.capture.is_some() && self.slots.get(key).is_some_and(|s| s.epoch != self.epoch)
    }
}
