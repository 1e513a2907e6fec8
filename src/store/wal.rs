//! The embedded store: one append-only file of length- and checksum-framed records.
//!
//! A single writer thread drains every record queued since its last sync, writes them with one
//! `write` as one compressed block (`log_block.rs`) and makes them durable with one
//! `fdatasync` (group commit, paced by `group_commit.rs`), then publishes the new durable
//! position. A torn tail left by a crash is cut off at start-up; damage anywhere else stops
//! the start (see [`super::frame`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use parking_lot::Mutex;
use prost::Message;
use tokio::sync::watch;

use super::durability::{Durable, WriterMsg, wait_compacted, wait_durable};
use super::frame::{self, End, Format, LOG_MAGIC, LOG_MAGIC_V2, frame};
use super::group_commit::Pacing;
use super::log_block;
use super::{DurableFuture, LogRecord, Lsn, ShardedRecord, Store, StoreError, encode_batch};

pub const LOG_FILE: &str = "durin.log";
/// The secret task tokens are signed with, made at the first start.
pub const TOKEN_SECRET_FILE: &str = "task-token.key";

type WriterQueue = mpsc::Sender<WriterMsg>;

pub struct Wal {
    path: PathBuf,
    /// Task tokens are signed with it (kept in [`TOKEN_SECRET_FILE`]).
    token_secret: Vec<u8>,
    /// The last position handed out, and the writer thread's queue (locked together so that
    /// positions enter the queue in order).
    sender: Mutex<(Lsn, WriterQueue)>,
    durable: watch::Receiver<Durable>,
}

impl Wal {
    /// Opens (creating if needed) the log in `dir`. A torn tail is cut off; damage anywhere
    /// else is refused with the way out. A log written in an older format (v1, v2) is
    /// rewritten in the current one once.
    pub fn open(dir: &Path) -> Result<Arc<Self>, StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        // A new log, or one whose creation a crash cut short.
        if data.len() < LOG_MAGIC.len() && LOG_MAGIC.starts_with(&data) {
            file.set_len(0)?;
            file.write_all(LOG_MAGIC)?;
            file.sync_all()?;
        } else if format_of(&path, &data)? != Layout::V3 {
            let records = intact_records(&path, &data)?;
            tracing::info!(path = %path.display(), records = records.len(), "rewriting the log in the v3 format (compressed blocks)");
            let records: Vec<ShardedRecord> =
                records.into_iter().map(|r| (None, r.into())).collect();
            file = rewrite(&path, &records)?;
        } else {
            let valid_len = checked_end(&path, Layout::V3, &data)?;
            if valid_len < data.len() as u64 {
                tracing::warn!(path = %path.display(), valid_len, "cutting a torn tail off the log");
                file.set_len(valid_len)?;
                file.sync_all()?;
            }
        }
        file.seek(SeekFrom::End(0))?;
        sync_dir(&path)?;
        let (tx, rx) = mpsc::channel::<WriterMsg>();
        let (durable_tx, durable_rx) = watch::channel(Durable::default());
        std::thread::Builder::new()
            .name("durin-wal".into())
            .spawn({
                let path = path.clone();
                move || writer_loop(file, &path, rx, durable_tx)
            })?;
        Ok(Arc::new(Self {
            token_secret: token_secret(dir)?,
            path,
            sender: Mutex::new((0, tx)),
            durable: durable_rx,
        }))
    }
}

/// The data directory's task-token secret, made (32 random bytes, readable by the owner
/// only) and synced at the first start.
fn token_secret(dir: &Path) -> Result<Vec<u8>, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(TOKEN_SECRET_FILE);
    match std::fs::read(&path) {
        Ok(secret) if secret.len() == 32 => return Ok(secret),
        Ok(_) => {
            return Err(StoreError::Damaged(format!(
                "{} is not a 32-byte secret; remove it to make a new one (tasks in progress \
                 then get new tokens when they are retried)",
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut secret = vec![0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
        .map_err(|_| StoreError::Failed("no randomness for the task-token secret".into()))?;
    let tmp = dir.join(format!("{TOKEN_SECRET_FILE}.new"));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&secret)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    sync_dir(&path)?;
    Ok(secret)
}

/// How long the writer waits before trying a failed write again.
const RETRY_AFTER_FAILURE: std::time::Duration = std::time::Duration::from_secs(1);

/// The writer thread's file: the open log, or — after a compaction renamed a new log into
/// place but could not open or sync it — nothing. Nothing is acknowledged until it is open
/// again: appending to the old, unlinked file would acknowledge writes a restart never sees.
struct LogFile {
    file: Option<File>,
    /// Length up to the last successful sync: a failed write is cut back to it, so a
    /// half-written batch never sits before later records.
    good_len: u64,
    /// A failed write could not be cut back (the disk refused that too): the cut is made
    /// before anything else is written, or nothing is.
    cut_pending: bool,
}

impl LogFile {
    /// Appends `buf` and syncs; on failure cuts the file back to the last good length.
    fn write_batch(&mut self, path: &Path, buf: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            let file = OpenOptions::new().append(true).open(path)?;
            sync_dir(path)?;
            self.good_len = file.metadata()?.len();
            self.cut_pending = false;
            self.file = Some(file);
            tracing::info!(path = %path.display(), "the compacted log is open again");
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        if buf.is_empty() {
            return Ok(());
        }
        // The file is opened for appending, so a torn batch left in place would put the next
        // one after it, out of reach of the log's reader.
        if self.cut_pending {
            file.set_len(self.good_len)?;
            self.cut_pending = false;
        }
        let started = std::time::Instant::now();
        let result = file.write_all(buf).and_then(|_| file.sync_data());
        crate::metrics::record_persistence("AppendLog", result.is_ok(), started.elapsed());
        match result {
            Ok(()) => {
                self.good_len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.cut_pending = file.set_len(self.good_len).is_err();
                Err(e)
            }
        }
    }

    /// Puts a compacted log in place of this one. Before the rename a failure leaves the old
    /// log, which still holds everything, in use; after it, the file is closed until it can
    /// be reopened (see [`LogFile`]). Says whether the compaction is complete.
    fn compact(&mut self, path: &Path, records: &[ShardedRecord]) -> Result<(), String> {
        let tmp = path.with_extension("log.compacting");
        if let Err(e) = write_compacted(&tmp, records).and_then(|_| std::fs::rename(&tmp, path)) {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!(error = %e, "log compaction failed; keeping the uncompacted log");
            return Err(e.to_string());
        }
        // The old file is unlinked now: never write to it again.
        self.file = None;
        match self.write_batch(path, &[]) {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(
                    error = %e,
                    path = %path.display(),
                    "the compacted log cannot be opened or synced; writes answer UNAVAILABLE \
                     until it can"
                );
                Err(e.to_string())
            }
        }
    }
}

fn writer_loop(
    file: File,
    path: &Path,
    rx: mpsc::Receiver<WriterMsg>,
    durable: watch::Sender<Durable>,
) {
    // The records of the batch in progress, as v2 frames; written as one block.
    let mut buf = Vec::with_capacity(1 << 20);
    let mut block = Vec::with_capacity(1 << 20);
    let good_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut log = LogFile {
        file: Some(file),
        good_len,
        cut_pending: false,
    };
    let mut blocks = log_block::BlockWriter::new();
    let mut last = 0;
    let mut failing = false;
    let mut pacing = Pacing::default();
    loop {
        // While a write is failing, keep the unwritten batch and take whatever else arrives
        // without blocking; otherwise wait for work.
        let first = if failing {
            match rx.recv_timeout(RETRY_AFTER_FAILURE) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        };
        let mut next = first;
        let started = Instant::now();
        let (mut appends, mut held) = (0, false);
        // Drain everything queued, writing appends in batches and rewrites as they come.
        while let Some(msg) = next.take() {
            match msg {
                WriterMsg::Append(lsn, records) => {
                    // One operation is one frame, so a crash keeps all of it or none.
                    if let [(_, bytes)] = records.as_slice() {
                        frame(Format::V2, &mut buf, bytes);
                    } else {
                        let parts: Vec<&[u8]> = records.iter().map(|r| &r.1[..]).collect();
                        frame(Format::V2, &mut buf, &encode_batch(&parts));
                    }
                    last = lsn;
                    appends += 1;
                }
                WriterMsg::Rewrite(lsn, _, records) => {
                    // Everything before the rewrite must be durable in the old file first.
                    let done = match log.write_batch(path, blocked(&buf, &mut block, &mut blocks)) {
                        Ok(()) => {
                            buf.clear();
                            log.compact(path, &records)
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    // The compacted file (or, if that failed, the old one after a block
                    // that may not have been written) goes on with a new run of blocks.
                    blocks.restart();
                    if let Err(e) = done {
                        durable.send_modify(|d| d.compaction_failed(lsn, &e));
                    }
                    last = last.max(lsn);
                }
            }
            // A batch is one block, read back whole: keep it bounded.
            if buf.len() >= log_block::BLOCK_TARGET {
                break;
            }
            next = rx.try_recv().ok();
            // Others are writing too: give them a moment to join this batch (`group_commit`).
            if next.is_none() && !held {
                held = true;
                if let Some(left) = pacing.hold_left(started, Instant::now()) {
                    std::thread::sleep(left);
                    next = rx.try_recv().ok();
                }
            }
        }
        let writing = Instant::now();
        match log.write_batch(path, blocked(&buf, &mut block, &mut blocks)) {
            Ok(()) => {
                pacing.synced(appends, writing.elapsed());
                buf.clear();
                if failing {
                    tracing::info!("log writes succeed again; the store accepts writes");
                    failing = false;
                }
                durable.send_modify(|d| {
                    d.lsn = d.lsn.max(last);
                    d.failure = None;
                });
            }
            Err(e) => {
                // The block is written again with what arrives meanwhile; the failed one was
                // cut from the file, so the stream goes on from a new run.
                blocks.restart();
                if !failing {
                    tracing::error!(
                        error = %e,
                        path = %path.display(),
                        "log write failed (disk full or I/O error?); writes answer UNAVAILABLE \
                         and are retried every second; replies that would report queued state wait"
                    );
                    failing = true;
                }
                durable.send_modify(|d| d.failure = Some(e.to_string()));
            }
        }
    }
}

/// The block frame of the records in `buf` (empty when there are none), built in `block`.
fn blocked<'a>(
    buf: &[u8],
    block: &'a mut Vec<u8>,
    blocks: &mut log_block::BlockWriter,
) -> &'a [u8] {
    block.clear();
    if !buf.is_empty() {
        blocks.put(block, buf);
    }
    block
}

/// Writes `records` to a new log file at `tmp` and syncs it.
fn write_compacted(tmp: &Path, records: &[ShardedRecord]) -> std::io::Result<()> {
    let mut out = File::create(tmp)?;
    out.write_all(LOG_MAGIC)?;
    let (mut buf, mut block) = (Vec::new(), Vec::new());
    let mut blocks = log_block::BlockWriter::new();
    for (_, r) in records {
        // Compaction hands frozen runs' records over packed (see `Store::compact`).
        let r = log_block::unpack_record(r).map_err(std::io::Error::other)?;
        frame(Format::V2, &mut buf, &r);
        if buf.len() >= log_block::BLOCK_TARGET {
            out.write_all(blocked(&buf, &mut block, &mut blocks))?;
            buf.clear();
        }
    }
    out.write_all(blocked(&buf, &mut block, &mut blocks))?;
    out.sync_all()
}

/// Writes `records` to a new file and atomically puts it in place of the log.
fn rewrite(path: &Path, records: &[ShardedRecord]) -> std::io::Result<File> {
    let tmp = path.with_extension("log.compacting");
    write_compacted(&tmp, records)?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path)?;
    OpenOptions::new().append(true).open(path)
}

/// Makes a rename or creation in the log's directory durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// How a log's bytes are laid out: v1 and v2 hold one frame per record (v1 without a file
/// header); v3 (written now) v2 frames each holding a block of records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    V1,
    V2,
    V3,
}

impl Layout {
    fn framing(self) -> Format {
        match self {
            Layout::V1 => Format::V1,
            Layout::V2 | Layout::V3 => Format::V2,
        }
    }

    /// Where the first frame starts.
    fn start(self, data: &[u8]) -> usize {
        match self {
            Layout::V1 => 0,
            Layout::V2 | Layout::V3 => LOG_MAGIC.len().min(data.len()),
        }
    }
}

/// The layout of a log's bytes. A file that starts almost like a header is a damaged one,
/// never read as v1 (whose first frame would then seem to run past the end).
fn format_of(path: &Path, data: &[u8]) -> Result<Layout, StoreError> {
    if data.starts_with(LOG_MAGIC) {
        return Ok(Layout::V3);
    }
    if data.starts_with(LOG_MAGIC_V2) {
        return Ok(Layout::V2);
    }
    let differing_bits = |magic: &[u8]| -> u32 {
        data.iter()
            .zip(magic.iter())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    };
    if data.len() >= LOG_MAGIC.len()
        && (differing_bits(LOG_MAGIC) <= 8 || differing_bits(LOG_MAGIC_V2) <= 8)
    {
        return Err(damaged(path, 0, "the file header is damaged"));
    }
    Ok(Layout::V1)
}

/// The length of the log's valid prefix: the whole file, or up to a torn tail. Damage is an
/// error that names the file, the offset and the way out.
fn checked_end(path: &Path, layout: Layout, data: &[u8]) -> Result<u64, StoreError> {
    match frame::scan(layout.framing(), data, layout.start(data)).1 {
        End::Clean => Ok(data.len() as u64),
        End::TornTail { at } => Ok(at),
        End::Damaged { at, why } => Err(damaged(path, at, &why)),
    }
}

/// The records in the frames of a log's valid prefix, in order.
fn records_in(
    path: &Path,
    layout: Layout,
    frames: Vec<frame::Frame<'_>>,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut records = Vec::new();
    each_record_in(path, layout, frames, &mut |record| {
        records.push(record.to_vec());
        Ok(())
    })?;
    Ok(records)
}

/// Hands `each` the records of `frames` in order, a block's worth at a time in memory.
fn each_record_in(
    path: &Path,
    layout: Layout,
    frames: Vec<frame::Frame<'_>>,
    each: &mut dyn FnMut(&[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    if layout != Layout::V3 {
        return frames.into_iter().try_for_each(|f| each(f.payload));
    }
    let mut records = Vec::new();
    let mut blocks = log_block::BlockReader::default();
    for f in frames {
        records.clear();
        blocks
            .records_of(f.payload, &mut records)
            .map_err(|why| damaged(path, f.offset, &why))?;
        records.iter().try_for_each(|record| each(record))?;
    }
    Ok(())
}

fn damaged(path: &Path, at: u64, why: &str) -> StoreError {
    StoreError::Damaged(format!(
        "the log {} is damaged at byte {at}: {why}. Durin will not start on it, because \
         cutting the log there would lose acknowledged data. Restore the data directory \
         from a backup (`durin backup`), or run `durin salvage --data-dir {}` to keep every \
         valid record before and after the damage (the damaged file is kept beside it)",
        path.display(),
        path.parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    ))
}

/// Every record of the log's valid prefix, in order (damage is an error).
fn intact_records(path: &Path, data: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
    let layout = format_of(path, data)?;
    checked_end(path, layout, data)?;
    let frames = frame::scan(layout.framing(), data, layout.start(data)).0;
    records_in(path, layout, frames)
}

/// The intact prefix of the log in `dir` and how many records it holds. Safe while a server
/// is writing: the log is only appended to, and a compaction replaces it with an atomic
/// rename, so any moment's file holds a consistent prefix; a record being written at that
/// moment is a torn tail and left out. Damage is an error.
pub fn intact_log(dir: &Path) -> Result<(Vec<u8>, usize), StoreError> {
    let path = dir.join(LOG_FILE);
    let data = std::fs::read(&path)?;
    let layout = format_of(&path, &data)?;
    let len = checked_end(&path, layout, &data)?;
    let mut intact = data;
    intact.truncate(len as usize);
    let frames = frame::scan(layout.framing(), &intact, layout.start(&intact)).0;
    let records = records_in(&path, layout, frames)?.len();
    Ok((intact, records))
}

/// What `durin salvage` did to a damaged log.
#[derive(Debug)]
pub struct Salvaged {
    pub records: usize,
    /// Records read whole but left out: they do not decode, or their run's earlier records
    /// were lost, so a replay could not apply them.
    pub records_dropped: usize,
    /// Whole blocks that did not read: damaged, or after a lost one in their run.
    pub blocks_skipped: usize,
    pub bytes_skipped: u64,
    /// Where the damaged file was kept.
    pub damaged_copy: PathBuf,
}

/// Rewrites the log in `dir` with every valid record it holds, before and after any damage,
/// keeping the damaged file beside it. For a server that refuses to start on a damaged log
/// and has no backup to restore; the records lost in the damage stay lost.
pub fn salvage(dir: &Path) -> Result<Salvaged, StoreError> {
    let path = dir.join(LOG_FILE);
    let data = std::fs::read(&path)?;
    // A damaged header: read the frames as the newest layout.
    let layout = format_of(&path, &data).unwrap_or(Layout::V3);
    let (frames, bytes_skipped) = frame::salvage(layout.framing(), &data, layout.start(&data));
    let mut payloads = Vec::new();
    let mut blocks = log_block::BlockReader::default();
    let mut blocks_skipped = 0;
    for f in frames {
        if layout != Layout::V3 {
            payloads.push(f.payload.to_vec());
        } else if let Err(why) = blocks.records_of(f.payload, &mut payloads) {
            blocks_skipped += 1;
            tracing::warn!(offset = f.offset, %why, "salvage skips a block that does not read");
        }
    }
    let (payloads, records_dropped) = super::records::replayable(payloads);
    let records: Vec<ShardedRecord> = payloads.into_iter().map(|p| (None, p.into())).collect();
    let damaged_copy = path.with_extension(format!(
        "log.damaged-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    ));
    std::fs::copy(&path, &damaged_copy)?;
    rewrite(&path, &records)?;
    Ok(Salvaged {
        records: records.len(),
        records_dropped,
        blocks_skipped,
        bytes_skipped,
        damaged_copy,
    })
}

impl Store for Wal {
    fn load_each(
        &self,
        each: &mut dyn FnMut(LogRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let data = std::fs::read(&self.path)?;
        let layout = format_of(&self.path, &data)?;
        checked_end(&self.path, layout, &data)?;
        let frames = frame::scan(layout.framing(), &data, layout.start(&data)).0;
        each_record_in(&self.path, layout, frames, &mut |bytes| {
            let record = LogRecord::decode(bytes)
                .map_err(|e| StoreError::Corrupt(format!("log record: {e}")))?;
            each(record)
        })
    }

    fn append(&self, records: Vec<ShardedRecord>) -> Lsn {
        let mut guard = self.sender.lock();
        guard.0 += 1;
        let lsn = guard.0;
        // A send error means the writer stopped after an I/O failure; `wait_durable` reports it.
        let _ = guard.1.send(WriterMsg::Append(lsn, records));
        lsn
    }

    fn compact(&self, shards: Vec<u32>, records: Vec<ShardedRecord>) -> Lsn {
        let mut guard = self.sender.lock();
        guard.0 += 1;
        let lsn = guard.0;
        let _ = guard.1.send(WriterMsg::Rewrite(lsn, shards, records));
        lsn
    }

    fn wait_durable(&self, lsn: Lsn) -> DurableFuture {
        wait_durable(&self.durable, lsn)
    }

    fn token_secret(&self) -> Vec<u8> {
        self.token_secret.clone()
    }

    fn wait_compacted(&self, lsn: Lsn) -> DurableFuture {
        wait_compacted(&self.durable, lsn)
    }

    fn last_lsn(&self) -> Lsn {
        self.sender.lock().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NamespaceRecord, log_record};

    fn record(name: &str) -> LogRecord {
        let ns = temporalio_protos::temporal::api::workflowservice::v1::DescribeNamespaceResponse {
            namespace_info: Some(
                temporalio_protos::temporal::api::namespace::v1::NamespaceInfo {
                    name: name.into(),
                    ..Default::default()
                },
            ),
            ..Default::default()
        };
        LogRecord {
            kind: Some(log_record::Kind::Namespace(NamespaceRecord {
                namespace: Some(ns),
                ..Default::default()
            })),
        }
    }

    #[tokio::test]
    async fn records_survive_reopen_and_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let wal = Wal::open(dir.path()).unwrap();
            let mut last = 0;
            for i in 0..100 {
                last = wal.append(vec![(
                    None,
                    record(&format!("ns{i}")).encode_to_vec().into(),
                )]);
            }
            wal.wait_durable(last).await.unwrap();
        }
        // Simulate a crash in the middle of a write.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(LOG_FILE))
            .unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);
        let wal = Wal::open(dir.path()).unwrap();
        let loaded = wal.load().unwrap();
        assert_eq!(loaded.len(), 100);
        assert_eq!(loaded[99], record("ns99"));
        let lsn = wal.append(vec![(None, record("after").encode_to_vec().into())]);
        wal.wait_durable(lsn).await.unwrap();
        assert_eq!(Wal::open(dir.path()).unwrap().load().unwrap().len(), 101);
        let lsn = wal.compact(
            vec![0],
            vec![
                (None, record("a").encode_to_vec().into()),
                (None, record("b").encode_to_vec().into()),
            ],
        );
        let after = wal.append(vec![(None, record("c").encode_to_vec().into())]);
        assert!(after > lsn);
        wal.wait_durable(after).await.unwrap();
        let loaded = Wal::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded, vec![record("a"), record("b"), record("c")]);
    }

    /// A log of `n` records, each written (and so compressed) on its own.
    async fn log_with(dir: &Path, n: usize) {
        let wal = Wal::open(dir).unwrap();
        for i in 0..n {
            let lsn = wal.append(vec![(
                None,
                record(&format!("namespace-{i}")).encode_to_vec().into(),
            )]);
            wal.wait_durable(lsn).await.unwrap();
        }
    }

    /// The namespace names in the log in `dir`, in order.
    fn names_in(dir: &Path) -> Vec<String> {
        Wal::open(dir)
            .unwrap()
            .load()
            .unwrap()
            .into_iter()
            .filter_map(|r| match r.kind {
                Some(log_record::Kind::Namespace(ns)) => Some(ns.namespace?.namespace_info?.name),
                _ => None,
            })
            .collect()
    }

    /// Each record is written on its own, so each is one block; blocks go in runs of 32 (see
    /// `log_block.rs`): damage loses the damaged block and the rest of its run.
    #[tokio::test]
    async fn a_flipped_byte_anywhere_refuses_the_start_and_salvage_keeps_the_rest() {
        for percent in [10u64, 35, 60, 85] {
            let dir = tempfile::tempdir().unwrap();
            log_with(dir.path(), 300).await;
            let path = dir.path().join(LOG_FILE);
            let mut data = std::fs::read(&path).unwrap();
            let at = data.len() as u64 * percent / 100;
            data[at as usize] ^= 0x04;
            std::fs::write(&path, &data).unwrap();

            let refused = Wal::open(dir.path())
                .err()
                .expect("a damaged log must not open");
            let message = refused.to_string();
            assert!(matches!(refused, StoreError::Damaged(_)), "{message}");
            assert!(message.contains("durin salvage"), "{message}");
            assert!(
                intact_log(dir.path()).is_err(),
                "a backup of a damaged log fails"
            );
            // Nothing was cut.
            assert_eq!(std::fs::read(&path).unwrap(), data);

            let salvaged = salvage(dir.path()).unwrap();
            assert_eq!(std::fs::read(&salvaged.damaged_copy).unwrap(), data);
            // What goes: from the damaged block to the end of its run, and nothing else.
            let kept = names_in(dir.path());
            assert_eq!(kept.len(), salvaged.records);
            let first_lost = (0..300)
                .position(|i| kept.get(i) != Some(&format!("namespace-{i}")))
                .unwrap();
            let run_end = (first_lost / 32 + 1) * 32;
            let want: Vec<String> = (0..first_lost)
                .chain(run_end.min(300)..300)
                .map(|i| format!("namespace-{i}"))
                .collect();
            assert_eq!(kept, want, "flip at {percent}%: lost from {first_lost}");
        }
    }

    #[tokio::test]
    async fn a_damaged_file_header_is_not_read_as_an_old_log() {
        let dir = tempfile::tempdir().unwrap();
        log_with(dir.path(), 20).await;
        let path = dir.path().join(LOG_FILE);
        let mut data = std::fs::read(&path).unwrap();
        data[2] ^= 0x01;
        std::fs::write(&path, &data).unwrap();
        assert!(matches!(Wal::open(dir.path()), Err(StoreError::Damaged(_))));
    }

    #[tokio::test]
    async fn a_v1_log_is_rewritten_in_v3_with_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = Vec::new();
        for i in 0..50 {
            frame(
                Format::V1,
                &mut data,
                &record(&format!("old-{i}")).encode_to_vec(),
            );
        }
        data.extend_from_slice(&[9, 0, 0, 0, 1]); // and a torn tail
        std::fs::write(dir.path().join(LOG_FILE), &data).unwrap();
        let wal = Wal::open(dir.path()).unwrap();
        let lsn = wal.append(vec![(None, record("new").encode_to_vec().into())]);
        wal.wait_durable(lsn).await.unwrap();
        drop(wal);
        assert!(
            std::fs::read(dir.path().join(LOG_FILE))
                .unwrap()
                .starts_with(LOG_MAGIC)
        );
        let loaded = Wal::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded.len(), 51);
        assert_eq!(loaded[0], record("old-0"));
        assert_eq!(loaded[50], record("new"));
    }

    #[tokio::test]
    async fn a_failed_compaction_is_reported_and_the_old_log_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path()).unwrap();
        let first = wal.append(vec![(None, record("a").encode_to_vec().into())]);
        wal.wait_durable(first).await.unwrap();
        // The compaction's new file cannot be created.
        std::fs::create_dir(dir.path().join("durin.log.compacting")).unwrap();
        let compaction = wal.compact(vec![0], vec![(None, record("only").encode_to_vec().into())]);
        let after = wal.append(vec![(None, record("b").encode_to_vec().into())]);
        wal.wait_durable(after).await.unwrap();
        assert!(wal.wait_compacted(compaction).await.is_err());
        drop(wal);
        let loaded = Wal::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded, vec![record("a"), record("b")]);
    }

    #[test]
    fn nothing_is_acknowledged_while_the_compacted_log_cannot_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOG_FILE);
        let mut log = LogFile {
            file: None,
            good_len: 0,
            cut_pending: false,
        };
        let mut buf = Vec::new();
        frame(Format::V2, &mut buf, b"payload");
        assert!(log.write_batch(&path, &buf).is_err(), "no file to write to");
        std::fs::write(&path, LOG_MAGIC).unwrap();
        log.write_batch(&path, &buf).unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(frame::scan(Format::V2, &data, LOG_MAGIC.len()).0.len(), 1);
    }

    #[tokio::test]
    async fn a_v2_log_is_rewritten_in_compressed_blocks_with_every_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = LOG_MAGIC_V2.to_vec();
        for i in 0..500 {
            frame(
                Format::V2,
                &mut data,
                &record(&format!("a-namespace-of-the-v2-log-{i}")).encode_to_vec(),
            );
        }
        std::fs::write(dir.path().join(LOG_FILE), &data).unwrap();
        let wal = Wal::open(dir.path()).unwrap();
        let lsn = wal.append(vec![(None, record("new").encode_to_vec().into())]);
        wal.wait_durable(lsn).await.unwrap();
        drop(wal);
        let v3 = std::fs::read(dir.path().join(LOG_FILE)).unwrap();
        assert!(v3.starts_with(LOG_MAGIC));
        assert!(
            v3.len() < data.len() / 3,
            "{} bytes as v3, {} as v2",
            v3.len(),
            data.len()
        );
        let loaded = Wal::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded.len(), 501);
        assert_eq!(loaded[499], record("a-namespace-of-the-v2-log-499"));
        assert_eq!(loaded[500], record("new"));
        let (intact, records) = intact_log(dir.path()).unwrap();
        assert_eq!((intact, records), (v3, 501));
    }
}
