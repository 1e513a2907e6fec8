//! The runs a log compaction snapshots, as they were when it began, without holding the engine
//! for the whole table (`engine/compaction.rs` drives it).
//!
//! When a compaction begins, the frozen runs' records are taken at once: they are shared, not
//! copied. The live runs are only marked owed; they are encoded a few at a time between
//! operations, and a run still owed when something is about to change it or drop it is taken
//! first (copy-on-write), so every run is taken as it was at the start.

use std::sync::Arc;

use bytes::Bytes;

use super::{RunTable, Slot, compaction_record};
use crate::engine::{RunKey, clock};
use crate::store::{Shard, ShardedRecord};

/// A live run as a compaction took it.
pub struct TakenRun {
    pub key: RunKey,
    pub start_ms: i64,
    pub record: Bytes,
}

/// The live runs of the compaction under way: those still owed and those taken.
#[derive(Default)]
pub(super) struct Capture {
    /// Keys of the slots marked owed when it began, in the order they are taken (a key may
    /// have been taken, or its run dropped, since).
    owed: Vec<RunKey>,
    taken: Vec<TakenRun>,
}

impl Capture {
    /// Takes the run if it is still owed.
    pub(super) fn take(&mut self, key: &RunKey, slot: &mut Slot) {
        if !std::mem::take(&mut slot.owed) {
            return;
        }
        // The freezer may have frozen it since: the same state, already encoded.
        let (record, start_ms) = match (&slot.frozen, slot.live.get()) {
            (Some(frozen), _) => (shared(&frozen.record), frozen.start_ms),
            (None, Some(run)) => (
                Bytes::from(compaction_record(run)),
                clock::opt_ts_millis(&run.ms.start_time),
            ),
            (None, None) => return,
        };
        self.taken.push(TakenRun {
            key: key.clone(),
            start_ms,
            record,
        });
    }
}

/// The frozen record as the store takes it, without a copy.
fn shared(record: &Arc<[u8]>) -> Bytes {
    Bytes::from_owner(Arc::clone(record))
}

impl RunTable {
    /// Begins a compaction's snapshot: returns the frozen runs' records, each with the shard
    /// `frozen` names for its key, and marks the other runs owed. Runs faulted in from the
    /// archive are left out: they are durable there.
    pub fn begin_capture(
        &mut self,
        mut frozen: impl FnMut(&RunKey) -> Shard,
    ) -> Vec<ShardedRecord> {
        self.abandon_capture();
        let mut records = Vec::new();
        let mut owed = Vec::new();
        for (key, slot) in &mut self.slots {
            match (&slot.frozen, slot.live.get()) {
                (Some(f), _) => records.push((frozen(key), shared(&f.record))),
                (None, Some(run)) if run.archived => {}
                (None, Some(_)) => {
                    slot.owed = true;
                    owed.push(key.clone());
                }
                (None, None) => {}
            }
        }
        self.capture = Some(Capture {
            owed,
            taken: Vec::new(),
        });
        records
    }

    /// Takes up to `budget` owed runs; returns whether none is owed any more.
    pub fn capture_owed(&mut self, budget: usize) -> bool {
        let Some(capture) = &mut self.capture else {
            return true;
        };
        for _ in 0..budget {
            let Some(key) = capture.owed.pop() else {
                return true;
            };
            if let Some(slot) = self.slots.get_mut(&key) {
                capture.take(&key, slot);
            }
        }
        capture.owed.is_empty()
    }

    /// Ends the capture and hands over every run taken (the owed ones are taken now).
    pub fn end_capture(&mut self) -> Vec<TakenRun> {
        self.capture_owed(usize::MAX);
        self.capture.take().map(|c| c.taken).unwrap_or_default()
    }

    /// Drops a capture under way, if any, and the marks it left.
    pub fn abandon_capture(&mut self) {
        let Some(capture) = self.capture.take() else {
            return;
        };
        for key in capture.owed {
            if let Some(slot) = self.slots.get_mut(&key) {
                slot.owed = false;
            }
        }
    }

    /// Takes the run before it changes or goes, if a compaction still owes it.
    pub(super) fn take_owed(&mut self, key: &RunKey) {
        let Some(capture) = &mut self.capture else {
            return;
        };
        if let Some(slot) = self.slots.get_mut(key) {
            capture.take(key, slot);
        }
    }
}
