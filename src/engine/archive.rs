//! Closed runs leave memory. A run that has been closed for `archive_after` is written whole to
//! the on-disk archive ([`crate::store::archive`]) and dropped from the run table; what stays in
//! memory is a 16-byte hash of its key and where it lies (plus, per workflow id, where its
//! latest archived run lies). Anything that names an archived run reads it back into the run
//! table for a while ("faulting it in"); visibility queries scan the archive. So memory holds
//! the open runs and the last few seconds of closed ones, not the whole retention period.
//!
//! Archived runs expire a segment at a time: a segment is deleted once every namespace with
//! runs in it is past its retention for the newest run there. Segments are begun at least
//! hourly, so a run outlives its retention by at most about an hour.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::state::MutableState;
use super::{Core, Engine, Result, Run, RunKey, clock};
use crate::store::archive::{ArchiveFiles, Loc, Scanned, tombstone};
use crate::store::{DeletedRun, StoreError, log_record};

/// How long a segment takes records before a new one is begun (so it can expire as a whole).
const SEGMENT_MAX_AGE_MS: i64 = 3_600_000;
/// At most this many runs are written per archiving round.
const RUNS_PER_ROUND: usize = 2048;
/// An archiving round that failed is retried after this long.
const RETRY_AFTER_MS: i64 = 5_000;

type Hash = u128;

#[derive(Default)]
struct SegmentInfo {
    /// Namespace -> the latest close time of its runs in the segment.
    max_close: HashMap<String, i64>,
}

/// Where each archived run is, kept in memory.
struct Index {
    hashers: (RandomState, RandomState),
    /// Run key hash -> where the run is.
    runs: HashMap<Hash, Loc>,
    /// (namespace, workflow id) hash -> the latest archived run of that id and its start time.
    latest: HashMap<Hash, (Loc, i64)>,
    segments: BTreeMap<u32, SegmentInfo>,
}

impl Index {
    fn run_hash(&self, namespace: &str, workflow_id: &str, run_id: &str) -> Hash {
        hash_run(&self.hashers, namespace, workflow_id, run_id)
    }

    fn wf_hash(&self, namespace: &str, workflow_id: &str) -> Hash {
        hash_wf(&self.hashers, namespace, workflow_id)
    }

    /// Records that the run with this final state was written at `loc`.
    fn add(&mut self, state: &MutableState, loc: Loc) {
        let h = self.run_hash(&state.namespace, &state.workflow_id, &state.run_id);
        self.runs.insert(h, loc);
        let start = clock::opt_ts_millis(&state.start_time);
        let w = self.wf_hash(&state.namespace, &state.workflow_id);
        if self.latest.get(&w).is_none_or(|(_, s)| *s <= start) {
            self.latest.insert(w, (loc, start));
        }
        let close = clock::opt_ts_millis(&state.close_time);
        let info = self.segments.entry(loc.segment).or_default();
        let max = info.max_close.entry(state.namespace.clone()).or_default();
        *max = (*max).max(close);
    }

    /// Forgets a deleted run; returns where it was.
    fn remove(&mut self, namespace: &str, workflow_id: &str, run_id: &str) -> Option<Loc> {
        let loc = self
            .runs
            .remove(&self.run_hash(namespace, workflow_id, run_id))?;
        let w = self.wf_hash(namespace, workflow_id);
        if self.latest.get(&w).is_some_and(|(l, _)| *l == loc) {
            self.latest.remove(&w);
        }
        Some(loc)
    }
}

pub(crate) struct Archive {
    files: Arc<ArchiveFiles>,
    index: Index,
    /// Closed runs in memory, in the order they may leave it, with when.
    resident: VecDeque<(i64, RunKey)>,
    after_ms: i64,
    active_since_ms: i64,
    /// Rounds that could not be written (for metrics: a disk filling up shows here first).
    failed_rounds: u64,
}

impl Archive {
    /// Opens the archive under `data_dir` and indexes every run in it.
    pub(crate) fn open(data_dir: &Path, after: Duration, now: i64) -> Result<Self> {
        let mut index = Index {
            hashers: (RandomState::new(), RandomState::new()),
            runs: HashMap::new(),
            latest: HashMap::new(),
            segments: BTreeMap::new(),
        };
        let (files, ids) = ArchiveFiles::open(data_dir, |scanned| match scanned {
            Scanned::Run { loc, state } => index.add(&state, loc),
            Scanned::Tombstone(d) => {
                index.remove(&d.namespace, &d.workflow_id, &d.run_id);
            }
        })?;
        for id in ids {
            index.segments.entry(id).or_default();
        }
        Ok(Self {
            files: Arc::new(files),
            index,
            resident: VecDeque::new(),
            after_ms: after.as_millis() as i64,
            active_since_ms: now,
            failed_rounds: 0,
        })
    }

    fn run_hash(&self, key: &RunKey) -> Hash {
        self.index
            .run_hash(&key.namespace, &key.workflow_id, &key.run_id)
    }

    fn loc(&self, key: &RunKey) -> Option<Loc> {
        self.index.runs.get(&self.run_hash(key)).copied()
    }

    pub(crate) fn contains(&self, key: &RunKey) -> bool {
        self.loc(key).is_some()
    }

    /// How many runs the archive holds.
    pub(crate) fn len(&self) -> usize {
        self.index.runs.len()
    }

    /// A segment was begun.
    fn begin_segment(&mut self, id: u32, now: i64) {
        self.index.segments.entry(id).or_default();
        self.active_since_ms = now;
    }

    /// Reads an archived run.
    fn read(&self, loc: Loc) -> Result<Option<Run>> {
        let record = self.files.read(loc)?;
        let Some(log_record::Kind::Execution(exec)) = record.kind else {
            return Ok(None);
        };
        let Some(mut ms) = exec.state else {
            return Ok(None);
        };
        ms.upgrade_timers();
        let mut run = Run::new(ms);
        run.history.push_all_encoded(&exec.new_events);
        run.history.shrink_to_fit();
        run.archived = true;
        Ok(Some(run))
    }
}

/// The archive's index sent a read for one run to a record of another: damage, which must
/// not be answered as "not found".
fn misplaced(loc: Loc, wanted: &str, found: &Run) -> StoreError {
    StoreError::Corrupt(format!(
        "archive segment {} offset {} holds workflow {:?}, not {wanted:?} as its index says",
        loc.segment, loc.offset, found.ms.workflow_id
    ))
}

fn hash_run(h: &(RandomState, RandomState), ns: &str, wf: &str, run: &str) -> Hash {
    let key = (ns, wf, run);
    (u128::from(h.0.hash_one(key)) << 64) | u128::from(h.1.hash_one(key))
}

fn hash_wf(h: &(RandomState, RandomState), ns: &str, wf: &str) -> Hash {
    let key = (ns, wf);
    (u128::from(h.0.hash_one(key)) << 64) | u128::from(h.1.hash_one(key))
}

/// Runs picked for archiving in one round.
pub(crate) struct ArchiveRound {
    keys: Vec<RunKey>,
    payloads: Vec<Vec<u8>>,
}

impl Core {
    /// Notes that a run in memory is closed, so it leaves memory after a while.
    pub(crate) fn note_closed(&mut self, key: &RunKey) {
        let now = self.now();
        if let Some(archive) = self.archive.as_mut() {
            let due = now + archive.after_ms;
            archive.resident.push_back((due, key.clone()));
        }
    }

    /// Whether closed runs leave memory (and so expire with their archive segment).
    pub(crate) fn archives(&self) -> bool {
        self.archive.is_some()
    }

    /// The archive's delay before a closed run leaves memory, if there is an archive.
    pub(crate) fn archive_after_ms(&self) -> Option<i64> {
        self.archive.as_ref().map(|a| a.after_ms)
    }

    /// Brings an archived run back into the run table; returns whether the run is there now.
    pub(crate) fn fault_in(&mut self, key: &RunKey) -> Result<bool> {
        if self.runs.contains_key(key) {
            return Ok(true);
        }
        let Some(archive) = self.archive.as_mut() else {
            return Ok(false);
        };
        let Some(loc) = archive.loc(key) else {
            return Ok(false);
        };
        let Some(run) = archive.read(loc)? else {
            return Ok(false);
        };
        if run.ms.namespace != key.namespace
            || run.ms.workflow_id != key.workflow_id
            || run.ms.run_id != key.run_id
        {
            return Err(misplaced(loc, &key.workflow_id, &run).into());
        }
        self.admit_archived(key.clone(), run);
        Ok(true)
    }

    /// Puts a run read back from the archive into the run table, until it leaves again.
    fn admit_archived(&mut self, key: RunKey, run: Run) {
        let now = self.now();
        if let Some(archive) = self.archive.as_mut() {
            archive
                .resident
                .push_back((now + archive.after_ms, key.clone()));
        }
        self.runs.insert(key, Box::new(run));
    }

    /// When the latest archived run of a workflow id started, without reading it.
    pub(crate) fn latest_archived_start(&self, namespace: &str, workflow_id: &str) -> Option<i64> {
        let archive = self.archive.as_ref()?;
        let index = &archive.index;
        index
            .latest
            .get(&index.wf_hash(namespace, workflow_id))
            .map(|(_, start)| *start)
    }

    /// The latest archived run of a workflow id (brought into memory), if any.
    pub(crate) fn latest_archived(
        &mut self,
        namespace: &str,
        workflow_id: &str,
    ) -> Result<Option<(RunKey, i64)>> {
        let Some(archive) = self.archive.as_ref() else {
            return Ok(None);
        };
        let index = &archive.index;
        let Some(&(loc, start)) = index.latest.get(&index.wf_hash(namespace, workflow_id)) else {
            return Ok(None);
        };
        let Some(run) = archive.read(loc)? else {
            return Ok(None);
        };
        if run.ms.namespace != namespace || run.ms.workflow_id != workflow_id {
            return Err(misplaced(loc, workflow_id, &run).into());
        }
        let key = RunKey {
            namespace: namespace.to_string(),
            workflow_id: workflow_id.to_string(),
            run_id: run.ms.run_id.clone(),
        };
        if !self.runs.contains_key(&key) {
            self.admit_archived(key.clone(), run);
        }
        Ok(Some((key, start)))
    }

    /// Takes the closed runs due to leave memory. Runs already archived (faulted in) leave at
    /// once; the others are encoded for writing and marked so nothing deletes them meanwhile.
    pub(crate) fn take_archive_round(&mut self) -> Option<ArchiveRound> {
        let now = self.now();
        let archive = self.archive.as_mut()?;
        let mut round = ArchiveRound {
            keys: Vec::new(),
            payloads: Vec::new(),
        };
        let mut leave = Vec::new();
        let mut later = Vec::new();
        while round.keys.len() < RUNS_PER_ROUND
            && archive.resident.front().is_some_and(|(due, _)| *due <= now)
        {
            let Some((_, key)) = archive.resident.pop_front() else {
                break;
            };
            let Some(run) = self.runs.get_mut(&key) else {
                continue;
            };
            if run.is_open() || run.archiving {
                continue;
            }
            // A query waiting for a worker's answer keeps its run in memory, and so do
            // operations owed to other shards (a child's close, a completion callback) until
            // their owner answered: the outbox is only read from memory.
            if !run.queries.is_empty()
                || !run.ms.outbox.is_empty()
                || crate::engine::nexus::callback_delivery::delivering(run)
            {
                later.push((now + archive.after_ms.max(1000), key));
                continue;
            }
            if run.archived {
                leave.push(key);
                continue;
            }
            run.archiving = true;
            round.payloads.push(crate::store::encode_execution(
                &run.ms,
                run.history.encoded_from(0),
            ));
            round.keys.push(key);
        }
        archive.resident.extend(later);
        for key in leave {
            self.evict(&key);
        }
        (!round.keys.is_empty()).then_some(round)
    }

    /// Records where a round's runs were written and drops them from memory.
    fn finish_archive_round(&mut self, keys: Vec<RunKey>, locs: Vec<Loc>, begun: Vec<u32>) {
        let now = self.now();
        let Some(archive) = self.archive.as_mut() else {
            return;
        };
        for id in begun {
            archive.begin_segment(id, now);
        }
        let mut deleted_meanwhile = Vec::new();
        let mut archived = Vec::new();
        for (key, loc) in keys.into_iter().zip(locs) {
            match self.runs.get(&key) {
                Some(run) => {
                    archive.index.add(&run.ms, loc);
                    archived.push(key);
                }
                None => deleted_meanwhile.push(key),
            }
        }
        for key in archived {
            self.evict(&key);
        }
        for key in deleted_meanwhile {
            if let Err(e) = self.write_tombstone(&key) {
                tracing::error!(error = %e, workflow_id = %key.workflow_id, "could not record the deletion of an archived run");
            }
        }
    }

    fn abandon_archive_round(&mut self, keys: Vec<RunKey>) {
        let now = self.now();
        let Some(archive) = self.archive.as_mut() else {
            return;
        };
        let due = now + RETRY_AFTER_MS;
        for key in keys {
            if let Some(run) = self.runs.get_mut(&key) {
                run.archiving = false;
                archive.resident.push_back((due, key));
            }
        }
    }

    /// Drops an archived run from memory (it stays reachable through the archive).
    fn evict(&mut self, key: &RunKey) {
        self.runs.remove(key);
        let id_key = (key.namespace.clone(), key.workflow_id.clone());
        if self.current.get(&id_key) == Some(&key.run_id) {
            self.current.remove(&id_key);
        }
    }

    /// Removes a deleted run from the archive: a tombstone is made durable first, so the run
    /// stays deleted after a restart.
    pub(crate) fn forget_archived(&mut self, key: &RunKey) -> Result<()> {
        let Some(archive) = self.archive.as_mut() else {
            return Ok(());
        };
        if !archive.contains(key) {
            return Ok(());
        }
        self.write_tombstone(key)?;
        if let Some(archive) = self.archive.as_mut() {
            archive
                .index
                .remove(&key.namespace, &key.workflow_id, &key.run_id);
        }
        Ok(())
    }

    /// Makes a run's deletion durable in the archive.
    fn write_tombstone(&self, key: &RunKey) -> Result<()> {
        let Some(archive) = self.archive.as_ref() else {
            return Ok(());
        };
        archive
            .files
            .append(&[tombstone(DeletedRun {
                namespace: key.namespace.clone(),
                workflow_id: key.workflow_id.clone(),
                run_id: key.run_id.clone(),
            })])
            .map_err(StoreError::from)?;
        Ok(())
    }

    /// A run that was archived has changed after all: its archived copy no longer stands for
    /// it (the log holds the change; it is archived again when it leaves memory).
    pub(crate) fn unarchive(&mut self, key: &RunKey) {
        tracing::warn!(workflow_id = %key.workflow_id, run_id = %key.run_id, "an archived run changed; archiving it again");
        if let Err(e) = self.forget_archived(key) {
            tracing::error!(error = %e, "could not retire the archived copy of a changed run");
        }
        if let Some(run) = self.runs.get_mut(key) {
            run.archived = false;
            // A compaction may have dropped the log's records of it while it was archived:
            // its next record must be whole.
            run.logged = Default::default();
        }
        if self.runs.get(key).is_some_and(|r| !r.is_open()) {
            self.note_closed(key);
        }
    }

    /// Segments every run of which is past its namespace's retention, and whether the active
    /// segment is old enough to be closed.
    fn expired_segments(&self) -> (Vec<u32>, bool) {
        let Some(archive) = self.archive.as_ref() else {
            return (Vec::new(), false);
        };
        let now = self.now();
        let active = archive.files.active_segment();
        // Oldest first, stopping at the first that must stay: a tombstone in a newer segment
        // must outlive the record it deletes.
        let expired = archive
            .index
            .segments
            .iter()
            .take_while(|(id, info)| {
                **id != active
                    && info.max_close.iter().all(|(ns, close)| {
                        self.retention_ms(ns)
                            .is_some_and(|retention| close + retention <= now)
                    })
            })
            .map(|(id, _)| *id)
            .collect();
        let roll =
            now - archive.active_since_ms >= SEGMENT_MAX_AGE_MS && archive.files.active_len() > 0;
        (expired, roll)
    }

    fn drop_segments(&mut self, removed: &[u32]) {
        let Some(archive) = self.archive.as_mut() else {
            return;
        };
        let index = &mut archive.index;
        for id in removed {
            index.segments.remove(id);
        }
        index.runs.retain(|_, loc| !removed.contains(&loc.segment));
        index
            .latest
            .retain(|_, (loc, _)| !removed.contains(&loc.segment));
        index.runs.shrink_to_fit();
        index.latest.shrink_to_fit();
        // Copies read back from those segments go too.
        let gone: Vec<RunKey> = self
            .runs
            .live_iter()
            .filter(|(k, r)| r.archived && !archive.contains(k))
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            self.evict(&key);
        }
    }

    /// The archive's files and the segments to scan for a visibility query, oldest first.
    pub(crate) fn archive_scan_plan(&self) -> Option<(Arc<ArchiveFiles>, Vec<u32>)> {
        let archive = self.archive.as_ref()?;
        Some((
            archive.files.clone(),
            archive.index.segments.keys().copied().collect(),
        ))
    }

    /// Whether `loc` is where the archive currently holds `key` (a scan also meets records
    /// of runs deleted since).
    pub(crate) fn archived_at(&self, key: &RunKey, loc: Loc) -> bool {
        self.archive
            .as_ref()
            .is_some_and(|a| a.loc(key) == Some(loc))
    }

    /// Reads one archived run for a visibility page.
    pub(crate) fn read_archived(&self, loc: Loc) -> Result<Option<Run>> {
        match self.archive.as_ref() {
            Some(a) => a.read(loc),
            None => Ok(None),
        }
    }
}

impl Engine {
    /// Moves closed runs from memory to the archive until the engine is dropped.
    pub fn spawn_archiver(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if !self.core.lock().archives() {
            return None;
        }
        let weak = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            let mut last_expiry = 0;
            loop {
                let Some(engine) = weak.upgrade() else { return };
                let more = engine.archive_once().await;
                let now = engine.now();
                if now - last_expiry >= 10_000 {
                    last_expiry = now;
                    engine.expire_archive().await;
                    // The runs that left memory were freed piecemeal; return whole free
                    // pages to the system so the resident size follows the live data.
                    crate::allocator::release_free_memory();
                }
                drop(engine);
                if !more {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }))
    }

    /// Archives one round of due closed runs; returns whether more may be due.
    pub(crate) async fn archive_once(&self) -> bool {
        let (round, lsn) = self.with_core(|core| (core.take_archive_round(), core.archive_files()));
        let (Some(round), Some(files)) = round else {
            return false;
        };
        // A run is archived only once its close is durable in the log: otherwise a crash could
        // keep the archived close while losing what was committed with it (a parent's record
        // of its child's completion, say).
        if let Err(e) = self.store.wait_durable(lsn).await {
            tracing::warn!(error = %e, "not archiving while the log cannot be written");
            self.with_core(|core| core.abandon_archive_round(round.keys));
            return false;
        }
        let full = round.keys.len() == RUNS_PER_ROUND;
        let payloads = round.payloads;
        let written = tokio::task::spawn_blocking(move || files.append(&payloads)).await;
        match written {
            Ok(Ok((locs, begun))) => {
                self.with_core(|core| core.finish_archive_round(round.keys, locs, begun));
                full
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "archiving closed runs failed (disk full?); they stay in memory and are retried");
                self.with_core(|core| {
                    if let Some(a) = core.archive.as_mut() {
                        a.failed_rounds += 1;
                    }
                    core.abandon_archive_round(round.keys)
                });
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "archiving task failed");
                self.with_core(|core| core.abandon_archive_round(round.keys));
                false
            }
        }
    }

    /// Begins a new archive segment, so the current one can expire as a whole.
    pub(crate) fn roll_archive_segment(&self) {
        let Some(files) = self.core.lock().archive_files() else {
            return;
        };
        match files.roll() {
            Ok(id) => {
                self.with_core(|core| {
                    let now = core.now();
                    if let Some(a) = core.archive.as_mut() {
                        a.begin_segment(id, now);
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "could not begin a new archive segment"),
        }
    }

    /// Deletes expired archive segments and begins a new segment when the active one is old.
    pub(crate) async fn expire_archive(&self) {
        let ((expired, roll), _) = self.with_core(|core| core.expired_segments());
        let Some(files) = self.core.lock().archive_files() else {
            return;
        };
        if roll {
            self.roll_archive_segment();
        }
        if expired.is_empty() {
            return;
        }
        // Forget the runs first: a removed file must never be looked up. Then rewrite the log
        // without their superseded records, so a restart cannot bring them back from it.
        let (compaction, _) = self.with_core(|core| {
            core.drop_segments(&expired);
            core.compact_now()
        });
        if let Err(e) = self.store.wait_compacted(compaction).await {
            tracing::warn!(error = %e, "log compaction before deleting expired archive segments failed; keeping them");
            return;
        }
        for id in &expired {
            if let Err(e) = files.remove_segment(*id) {
                tracing::warn!(segment = id, error = %e, "could not delete an expired archive segment");
            }
        }
        tracing::info!(segments = ?expired, "deleted expired archive segments");
    }
}

impl Engine {
    /// Runs in the archive, and archive rounds that failed to be written (for metrics).
    pub fn archive_snapshot(&self) -> (usize, u64) {
        let core = self.core.lock();
        core.archive
            .as_ref()
            .map_or((0, 0), |a| (a.len(), a.failed_rounds))
    }
}

impl Core {
    fn archive_files(&self) -> Option<Arc<ArchiveFiles>> {
        self.archive.as_ref().map(|a| a.files.clone())
    }
}
