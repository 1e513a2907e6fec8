//! The embedded store: one append-only file of length- and checksum-framed records.
//!
//! A single writer thread drains every record queued since its last sync, writes them with one
//! `write` and makes them durable with one `fdatasync` (group commit), then publishes the new
//! durable position. A torn or corrupt tail left by a crash is cut off at start-up.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use parking_lot::Mutex;
use prost::Message;
use tokio::sync::watch;

use super::durability::{Durable, WriterMsg, wait_durable};
use super::{DurableFuture, LogRecord, Lsn, ShardedRecord, Store, StoreError, encode_batch};

const FRAME_HEADER: usize = 8;
pub const LOG_FILE: &str = "durin.log";

type WriterQueue = mpsc::Sender<WriterMsg>;

pub struct Wal {
    path: PathBuf,
    /// The last position handed out, and the writer thread's queue (locked together so that
    /// positions enter the queue in order).
    sender: Mutex<(Lsn, WriterQueue)>,
    durable: watch::Receiver<Durable>,
}

impl Wal {
    /// Opens (creating if needed) the log in `dir`, truncating any torn tail.
    pub fn open(dir: &Path) -> Result<Arc<Self>, StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let valid_len = scan(&mut file)?.1;
        if valid_len < file.metadata()?.len() {
            tracing::warn!(path = %path.display(), valid_len, "cutting a torn tail off the log");
            file.set_len(valid_len)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::End(0))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        let (tx, rx) = mpsc::channel::<WriterMsg>();
        let (durable_tx, durable_rx) = watch::channel(Durable::default());
        std::thread::Builder::new()
            .name("durin-wal".into())
            .spawn({
                let path = path.clone();
                move || writer_loop(file, &path, rx, durable_tx)
            })?;
        Ok(Arc::new(Self {
            path,
            sender: Mutex::new((0, tx)),
            durable: durable_rx,
        }))
    }
}

/// How long the writer waits before trying a failed write again.
const RETRY_AFTER_FAILURE: std::time::Duration = std::time::Duration::from_secs(1);

fn writer_loop(
    mut file: File,
    path: &Path,
    rx: mpsc::Receiver<WriterMsg>,
    durable: watch::Sender<Durable>,
) {
    let mut buf = Vec::with_capacity(1 << 20);
    // Length of the log up to the last successful sync: a failed write is cut back to it,
    // so a half-written batch never sits before later records.
    let mut good_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut last = 0;
    let mut failing = false;
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
        // Drain everything queued, writing appends in batches and rewrites as they come.
        while let Some(msg) = next.take() {
            match msg {
                WriterMsg::Append(lsn, records) => {
                    // One operation is one frame, so a crash keeps all of it or none.
                    if let [(_, bytes)] = records.as_slice() {
                        frame(&mut buf, bytes);
                    } else {
                        let parts: Vec<Vec<u8>> = records.into_iter().map(|r| r.1).collect();
                        frame(&mut buf, &encode_batch(&parts));
                    }
                    last = lsn;
                }
                WriterMsg::Rewrite(lsn, _, records) => {
                    // Everything before the rewrite must be durable in the old file first.
                    if write_batch(&mut file, &buf, &mut good_len).is_ok() {
                        buf.clear();
                        match rewrite(path, &records) {
                            Ok(f) => {
                                file = f;
                                good_len = file.metadata().map(|m| m.len()).unwrap_or(good_len);
                            }
                            // The old log still holds everything: go on appending to it.
                            Err(e) => {
                                tracing::warn!(error = %e, "log compaction failed; keeping the uncompacted log");
                                let _ = std::fs::remove_file(path.with_extension("log.compacting"));
                            }
                        }
                    }
                    last = last.max(lsn);
                }
            }
            next = rx.try_recv().ok();
        }
        match write_batch(&mut file, &buf, &mut good_len) {
            Ok(()) => {
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
                if !failing {
                    tracing::error!(
                        error = %e,
                        path = %path.display(),
                        "log write failed (disk full or I/O error?); writes answer UNAVAILABLE \
                         and are retried every second, reads go on"
                    );
                    failing = true;
                }
                durable.send_modify(|d| d.failure = Some(e.to_string()));
            }
        }
    }
}

/// Appends `buf` and syncs; on failure cuts the file back to `good_len`.
fn write_batch(file: &mut File, buf: &[u8], good_len: &mut u64) -> std::io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let result = file.write_all(buf).and_then(|_| file.sync_data());
    match result {
        Ok(()) => {
            *good_len += buf.len() as u64;
            Ok(())
        }
        Err(e) => {
            let _ = file.set_len(*good_len);
            Err(e)
        }
    }
}

/// Writes `records` to a new file and atomically puts it in place of the log.
fn rewrite(path: &Path, records: &[ShardedRecord]) -> std::io::Result<File> {
    let tmp = path.with_extension("log.compacting");
    let mut out = File::create(&tmp)?;
    let mut buf = Vec::new();
    for (_, r) in records {
        frame(&mut buf, r);
        if buf.len() > (8 << 20) {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    OpenOptions::new().append(true).open(path)
}

fn frame(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// The intact prefix of the log in `dir` and how many records it holds. Safe while a server
/// is writing: the log is only appended to, and a compaction replaces it with an atomic
/// rename, so any moment's file holds a consistent prefix; a record being written at that
/// moment fails its checksum and is left out.
pub fn intact_log(dir: &Path) -> Result<(Vec<u8>, usize), StoreError> {
    let mut file = File::open(dir.join(LOG_FILE))?;
    let (records, len) = scan(&mut file)?;
    file.seek(SeekFrom::Start(0))?;
    let mut intact = vec![0u8; len as usize];
    file.read_exact(&mut intact)?;
    Ok((intact, records.len()))
}

/// Reads every intact record from the start of `file`; returns them and the length of the
/// intact prefix.
fn scan(file: &mut File) -> Result<(Vec<Vec<u8>>, u64), StoreError> {
    file.seek(SeekFrom::Start(0))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    let mut records = Vec::new();
    let mut pos = 0usize;
    while data.len() - pos >= FRAME_HEADER {
        let len = u32::from_le_bytes(data[pos..pos + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap_or_default());
        let start = pos + FRAME_HEADER;
        if data.len() - start < len {
            break;
        }
        let payload = &data[start..start + len];
        if crc32fast::hash(payload) != crc {
            break;
        }
        records.push(payload.to_vec());
        pos = start + len;
    }
    Ok((records, pos as u64))
}

impl Store for Wal {
    fn load(&self) -> Result<Vec<LogRecord>, StoreError> {
        let mut file = File::open(&self.path)?;
        let (raw, _) = scan(&mut file)?;
        raw.into_iter()
            .map(|bytes| {
                LogRecord::decode(bytes.as_slice()).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
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
                last = wal.append(vec![(None, record(&format!("ns{i}")).encode_to_vec())]);
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
        let lsn = wal.append(vec![(None, record("after").encode_to_vec())]);
        wal.wait_durable(lsn).await.unwrap();
        assert_eq!(Wal::open(dir.path()).unwrap().load().unwrap().len(), 101);
        let lsn = wal.compact(
            vec![0],
            vec![
                (None, record("a").encode_to_vec()),
                (None, record("b").encode_to_vec()),
            ],
        );
        let after = wal.append(vec![(None, record("c").encode_to_vec())]);
        assert!(after > lsn);
        wal.wait_durable(after).await.unwrap();
        let loaded = Wal::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded, vec![record("a"), record("b"), record("c")]);
    }
}
