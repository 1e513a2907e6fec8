//! The runs in memory, by key. A run nobody used for a while (`EngineConfig::freeze_idle_after`)
//! is frozen: kept as the record log compaction would write for it (its state, its whole
//! history and its handle in the log), zstd-compressed, instead of as decoded messages. With
//! mimalloc handing the freed memory back, a million sleeping workflows take 1.9 KB each
//! instead of 5.8 KB (`bench/results/2026-12-07-sleepers-1m.md`). The next read or change
//! thaws a run.
//!
//! Only quiet open workflow runs freeze (`Run::is_quiet`): nothing is in progress on them and
//! nobody waits on them, so the state and history are all there is to keep. A run thawed to
//! be read keeps its frozen form next to the decoded one, and the next sweep that finds it
//! unused again just drops the decoded one; a run thawed to be changed loses its frozen form
//! and is encoded anew once idle.
//!
//! The freezer (`Engine::spawn_freezer`) ticks the table once a second and sweeps the runs
//! that became live, oldest first, a few milliseconds at a time under the engine lock.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use prost::Message;

use super::kept_fields::LoggedFields;
use super::state::MutableState;
use super::{Run, RunKey};
use crate::store::log_block;
use crate::store::records::{LogRecordHead, log_record_head};
use crate::store::{ExecutionRecord, LogRecord, encode_execution_delta, log_record};

/// How long the freezer holds the engine lock at a time.
const FREEZE_SLICE: Duration = Duration::from_millis(5);

/// A run as compaction would log it, compressed, with what the log holds of it.
struct Frozen {
    /// As the store keeps a record by itself (`log_block::pack_record`): compressed behind
    /// a marker, or as it is when that is not smaller. Compaction hands it over as it is.
    /// Shared, so that a compaction takes it without a copy.
    record: Arc<[u8]>,
    logged: LoggedFields,
}

impl Frozen {
    fn of(run: &Run) -> Option<Self> {
        let record = compaction_record(run);
        Some(Self {
            record: Arc::from(log_block::pack_record(&record)),
            logged: run.logged.clone(),
        })
    }

    /// The record the run was frozen as.
    fn record(&self) -> Cow<'_, [u8]> {
        // These bytes were packed by `of` in this process: failing to read them back would be
        // a bug or corrupted memory, not input to refuse.
        log_block::unpack_record(&self.record).expect("a frozen run unpacks")
    }

    fn execution(&self) -> ExecutionRecord {
        let record = LogRecord::decode(&*self.record()).expect("a frozen run decodes");
        let Some(log_record::Kind::Execution(exec)) = record.kind else {
            unreachable!("a run is frozen as an execution record")
        };
        exec
    }

    /// The run's state alone (its history is skipped, not copied).
    fn state(&self) -> MutableState {
        let head = LogRecordHead::decode(&*self.record()).expect("a frozen run decodes");
        match head.kind {
            Some(log_record_head::Kind::Execution(exec)) => exec.state.unwrap_or_default(),
            _ => unreachable!("a run is frozen as an execution record"),
        }
    }

    fn thaw(&self) -> Box<Run> {
        let exec = self.execution();
        Box::new(Run::thawed(
            exec.state.unwrap_or_default(),
            &exec.new_events,
            self.logged.clone(),
        ))
    }
}

/// The record compaction writes for a run: its whole state and history, and its handle, as
/// the run's later records name it by that alone.
fn compaction_record(run: &Run) -> Vec<u8> {
    encode_execution_delta(
        &run.ms,
        run.history.encoded_from(0),
        None,
        run.logged.handle(),
    )
}

/// One run: decoded (`live`), frozen, or both while it is only being read.
struct Slot {
    live: OnceCell<Box<Run>>,
    frozen: Option<Box<Frozen>>,
    /// The tick of the run's last use.
    touched: Cell<u32>,
    /// Whether the key waits in `RunTable::live_keys`.
    queued: Cell<bool>,
    /// The compaction epoch the run was created or last taken in: older than the table's
    /// while a compaction under way still has to take it as it was at its start.
    epoch: u32,
}

impl Slot {
    /// Whether its run is open, without thawing it (frozen runs are all open).
    fn is_open(&self) -> bool {
        self.live.get().is_none_or(|r| r.is_open())
    }

    fn thaw(&self) -> Box<Run> {
        match &self.frozen {
            Some(frozen) => frozen.thaw(),
            // Every slot is built live, and loses its live run only once frozen.
            None => unreachable!("a slot without its live run is frozen"),
        }
    }
}

/// A run read while iterating: decoded only if read, and only for as long as it is held.
pub struct RunRef<'a> {
    slot: &'a Slot,
    thawed: OnceCell<Box<Run>>,
}

impl Deref for RunRef<'_> {
    type Target = Run;

    fn deref(&self) -> &Run {
        match self.slot.live.get() {
            Some(run) => run,
            None => self.thawed.get_or_init(|| self.slot.thaw()),
        }
    }
}

#[derive(Default)]
pub struct RunTable {
    /// Indexed, so that a compaction can walk them a few at a time while they change
    /// (removal moves the last slot into the hole: `take_moved_behind_cursor`).
    slots: IndexMap<RunKey, Slot>,
    /// Runs that became live, each once, roughly oldest first: the freezer's candidates.
    live_keys: RefCell<VecDeque<(u32, RunKey)>>,
    /// Advanced once a second by the freezer.
    tick: u32,
    /// The runs a compaction under way takes (see `capture.rs`), and the epoch it began.
    capture: Option<capture::Capture>,
    epoch: u32,
}

impl RunTable {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn contains_key(&self, key: &RunKey) -> bool {
        self.slots.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &RunKey> {
        self.slots.keys()
    }

    /// Every run, thawed only where the caller reads it.
    pub fn iter(&self) -> impl Iterator<Item = (&RunKey, RunRef<'_>)> {
        self.slots.iter().map(|(key, slot)| {
            let run = RunRef {
                slot,
                thawed: OnceCell::new(),
            };
            (key, run)
        })
    }

    /// The run, thawed if it was frozen (its frozen form is kept: reading changes nothing).
    pub fn get(&self, key: &RunKey) -> Option<&Run> {
        let slot = self.slots.get(key)?;
        slot.touched.set(self.tick);
        let run = slot.live.get_or_init(|| {
            self.enqueue(key, slot);
            slot.thaw()
        });
        Some(run)
    }

    /// The run, decoded for as long as it is held if it was frozen (nothing is kept): for a
    /// glance that mostly finds nothing to do, as a stale timer does.
    pub fn peek(&self, key: &RunKey) -> Option<RunRef<'_>> {
        let slot = self.slots.get(key)?;
        Some(RunRef {
            slot,
            thawed: OnceCell::new(),
        })
    }

    /// The run to change, thawed if it was frozen (its frozen form is dropped).
    pub fn get_mut(&mut self, key: &RunKey) -> Option<&mut Run> {
        self.take_owed(key);
        let tick = self.tick;
        let slot = self.slots.get_mut(key)?;
        let unqueued = (!slot.queued.get()).then(|| key.clone());
        Some(live_mut(slot, unqueued, tick, self.live_keys.get_mut()))
    }

    /// The run, created by `make` if there is none.
    pub fn get_or_insert_with(&mut self, key: RunKey, make: impl FnOnce() -> Box<Run>) -> &mut Run {
        self.take_owed(&key);
        let tick = self.tick;
        let queue = self.live_keys.get_mut();
        let epoch = self.epoch;
        match self.slots.entry(key) {
            indexmap::map::Entry::Occupied(entry) => {
                let key = (!entry.get().queued.get()).then(|| entry.key().clone());
                live_mut(entry.into_mut(), key, tick, queue)
            }
            indexmap::map::Entry::Vacant(entry) => {
                queue.push_back((tick, entry.key().clone()));
                let slot = entry.insert(Slot {
                    live: OnceCell::from(make()),
                    frozen: None,
                    touched: Cell::new(tick),
                    queued: Cell::new(true),
                    epoch,
                });
                live_mut(slot, None, tick, queue)
            }
        }
    }

    pub fn insert(&mut self, key: RunKey, run: Box<Run>) {
        let tick = self.tick;
        self.live_keys.get_mut().push_back((tick, key.clone()));
        let slot = Slot {
            live: OnceCell::from(run),
            frozen: None,
            touched: Cell::new(tick),
            queued: Cell::new(true),
            epoch: self.epoch,
        };
        self.take_owed(&key);
        self.slots.insert(key, slot);
    }

    /// Removes the run (without thawing it); returns whether there was one.
    pub fn remove(&mut self, key: &RunKey) -> bool {
        self.take_owed(key);
        let Some(index) = self.slots.get_index_of(key) else {
            return false;
        };
        self.take_moved_behind_cursor(index);
        self.slots.swap_remove_index(index);
        true
    }

    pub fn retain_keys(&mut self, mut keep: impl FnMut(&RunKey) -> bool) {
        let mut capture = self.capture.take();
        let epoch = self.epoch;
        self.slots.retain(|key, slot| {
            let kept = keep(key);
            if !kept && let Some(capture) = &mut capture {
                capture.take(epoch, key, slot);
            }
            kept
        });
        self.capture = capture;
        self.rewind_capture();
    }

    /// The run if it is held decoded, without thawing it: for questions a frozen run answers
    /// "no" to (see `live_iter`).
    pub fn get_live(&self, key: &RunKey) -> Option<&Run> {
        Some(&**self.slots.get(key)?.live.get()?)
    }

    /// A copy of the run's state, decoded for the moment if it is frozen (the run stays
    /// frozen): for reading a state once, as re-arming its timers after a restart does.
    pub fn state_copy(&self, key: &RunKey) -> Option<MutableState> {
        let slot = self.slots.get(key)?;
        match (slot.live.get(), &slot.frozen) {
            (Some(run), _) => Some(run.ms.clone()),
            (None, Some(frozen)) => Some(frozen.state()),
            (None, None) => None,
        }
    }

    /// Whether the run is there and open, without thawing it (frozen runs are all open): for
    /// checks over many runs, as a backlog sweep makes, that must not thaw them all.
    pub fn is_open(&self, key: &RunKey) -> bool {
        self.slots.get(key).is_some_and(Slot::is_open)
    }

    /// Every run with whether it is open, without thawing any (frozen runs are all open).
    pub fn open_flags(&self) -> impl Iterator<Item = (&RunKey, bool)> {
        (self.slots.iter()).map(|(key, slot)| (key, slot.is_open()))
    }

    /// The runs held decoded, without thawing any: for questions a frozen run answers "no"
    /// to (archived? owes a transfer? see `freezable`).
    pub fn live_iter(&self) -> impl Iterator<Item = (&RunKey, &Run)> {
        (self.slots.iter()).filter_map(|(key, slot)| Some((key, &**slot.live.get()?)))
    }

    /// Open workflow runs (not standalone executions; frozen runs are all such) and, of them,
    /// those held only in their frozen form: one pass, for the metrics scrape.
    pub fn open_and_frozen(&self) -> (usize, usize) {
        self.open_and_frozen_in(0, usize::MAX)
    }

    /// [`Self::open_and_frozen`] over the slots `from..from + count` only, so that a scrape
    /// of a million runs can let go of the engine between parts.
    pub fn open_and_frozen_in(&self, from: usize, count: usize) -> (usize, usize) {
        let (mut open, mut frozen) = (0, 0);
        let to = from.saturating_add(count).min(self.slots.len());
        let slots = self.slots.get_range(from.min(to)..to).into_iter().flatten();
        for (_, slot) in slots {
            match slot.live.get() {
                None => (open, frozen) = (open + 1, frozen + 1),
                Some(run) if run.is_open() && !run.is_standalone() => open += 1,
                Some(_) => {}
            }
        }
        (open, frozen)
    }

    /// Advances the table's clock by one tick (the freezer's second).
    pub fn tick(&mut self) {
        self.tick = self.tick.wrapping_add(1);
    }

    /// Freezes the runs not used for `idle_ticks` ticks, oldest first, until `deadline` (if
    /// any). Returns whether runs due to be looked at remain.
    pub fn freeze_idle(&mut self, idle_ticks: u32, deadline: Option<Instant>) -> bool {
        let now = self.tick;
        let queue = self.live_keys.get_mut();
        // Each key at most once: those put back for later go behind the rest.
        for looked in 0..queue.len() {
            let Some(&(since, _)) = queue.front() else {
                return false;
            };
            if now.wrapping_sub(since) < idle_ticks {
                return false;
            }
            if looked % 64 == 63 && deadline.is_some_and(|d| Instant::now() >= d) {
                return true;
            }
            let Some((_, key)) = queue.pop_front() else {
                return false;
            };
            let Some(slot) = self.slots.get_mut(&key) else {
                continue;
            };
            let Some(run) = slot.live.get() else {
                slot.queued.set(false);
                continue;
            };
            let touched = slot.touched.get();
            if now.wrapping_sub(touched) < idle_ticks {
                queue.push_back((touched, key));
                continue;
            }
            if !freezable(run) {
                queue.push_back((now, key));
                continue;
            }
            if slot.frozen.is_none() {
                match Frozen::of(run) {
                    Some(frozen) => slot.frozen = Some(Box::new(frozen)),
                    None => continue,
                }
            }
            slot.live = OnceCell::new();
            slot.queued.set(false);
        }
        false
    }

    /// Marks the run live for the freezer to look at later.
    fn enqueue(&self, key: &RunKey, slot: &Slot) {
        if !slot.queued.replace(true) {
            self.live_keys
                .borrow_mut()
                .push_back((self.tick, key.clone()));
        }
    }
}

/// Only quiet open workflow runs freeze, and only without operations owed to other shards (the
/// outbox is read in memory by whoever delivers them): so a frozen run is never archived, never
/// standalone and owes nothing, which is what `live_iter` lets callers skip.
fn freezable(run: &Run) -> bool {
    run.is_open() && !run.is_standalone() && run.is_quiet() && run.ms.outbox.is_empty()
}

/// The slot's run to change: thawed if needed, its frozen form dropped, and queued for the
/// freezer (`unqueued`: the run's key when it is not queued yet).
fn live_mut<'a>(
    slot: &'a mut Slot,
    unqueued: Option<RunKey>,
    tick: u32,
    queue: &mut VecDeque<(u32, RunKey)>,
) -> &'a mut Run {
    slot.touched.set(tick);
    if slot.live.get().is_none() {
        slot.live = OnceCell::from(slot.thaw());
    }
    slot.frozen = None;
    if let Some(key) = unqueued {
        slot.queued.set(true);
        queue.push_back((tick, key));
    }
    match slot.live.get_mut() {
        Some(run) => run,
        None => unreachable!("the slot was just made live"),
    }
}

impl super::Engine {
    /// Freezes idle runs until the engine is dropped (None: the configuration never does).
    pub fn spawn_freezer(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let idle_ticks =
            u32::try_from(self.config.freeze_idle_after?.as_secs()).unwrap_or(u32::MAX);
        let weak = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(engine) = weak.upgrade() else { return };
                engine.core.lock().runs.tick();
                // Operations move a compaction under way on; when they are few, so does this.
                while engine.core.lock().compaction_slice() {
                    tokio::task::yield_now().await;
                }
                // A slice at a time, so that requests wait at most a few milliseconds for
                // the lock while a burst of runs freezes.
                while engine
                    .core
                    .lock()
                    .runs
                    .freeze_idle(idle_ticks, Some(Instant::now() + FREEZE_SLICE))
                {
                    tokio::task::yield_now().await;
                }
            }
        }))
    }
}

#[path = "run_table_capture.rs"]
pub mod capture;

#[cfg(test)]
#[path = "run_table_tests.rs"]
mod tests;
