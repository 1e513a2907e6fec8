//! The archive: closed runs kept on disk instead of in memory.
//!
//! A run that has been closed for a while is written here, whole (its final mutable state and
//! every history event, as one encoded [`LogRecord`]), and then dropped from memory; the engine
//! keeps only a small index entry per archived run and reads the record back when asked.
//!
//! The archive is a directory of append-only segment files framed like the log (length,
//! CRC32, payload). A payload is the encoded record, compressed when that is smaller
//! (`log_block::pack_record`, behind a marker no encoded record starts with, so segments
//! written before records were compressed read as they are). Segments are never rewritten: a
//! record is added once, a deletion is recorded as a tombstone frame, and a whole segment is
//! removed once every run in it is past its namespace's retention. Because nothing ever
//! moves, a location (segment, offset) stays valid for as long as the segment exists, unlike
//! offsets into the log, which compaction rewrites.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use prost::Message;

use super::frame;
use super::log_block::{pack_record as stored, unpack_record as unstored};
use super::records::{ExecutionHead, LogRecordHead, log_record_head};
use super::state::MutableState;
use super::{DeletedRun, LogRecord, StoreError, log_record};

pub const ARCHIVE_DIR: &str = "archive";
const SEGMENT_SUFFIX: &str = "seg";
const FRAME_HEADER: u64 = 8;
/// A segment is closed and a new one begun once it holds this much.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// Where one archived record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Loc {
    pub segment: u32,
    /// Offset of the frame header in the segment (segments stay below 4 GiB).
    pub offset: u32,
    /// Payload length.
    pub len: u32,
}

/// One frame met while scanning a segment.
pub enum Scanned {
    Run { loc: Loc, state: Box<MutableState> },
    Tombstone(DeletedRun),
}

struct Active {
    id: u32,
    file: File,
    /// Length of the segment's durable frames; locations are given from it.
    len: u64,
    /// A failed append could not be cut back (the disk refused that too): the cut is made
    /// before anything else is written, or nothing is.
    cut_pending: bool,
}

pub struct ArchiveFiles {
    dir: PathBuf,
    active: Mutex<Active>,
}

fn segment_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("{id:08}.{SEGMENT_SUFFIX}"))
}

/// The ids of the segments in `dir`, oldest first.
pub fn segment_ids(dir: &Path) -> std::io::Result<Vec<u32>> {
    let mut ids = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for entry in entries {
                let name = entry?.file_name();
                let name = name.to_string_lossy();
                if let Some(stem) = name.strip_suffix(&format!(".{SEGMENT_SUFFIX}"))
                    && let Ok(id) = stem.parse::<u32>()
                {
                    ids.push(id);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    ids.sort_unstable();
    Ok(ids)
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl ArchiveFiles {
    /// Opens the archive under `data_dir`, reporting every frame of every segment, oldest
    /// first, to `visit`. A torn tail of the newest segment (a crash while archiving; those
    /// runs are still in the log) is cut off; damage anywhere else is refused.
    pub fn open(
        data_dir: &Path,
        mut visit: impl FnMut(Scanned),
    ) -> Result<(ArchiveFiles, Vec<u32>), StoreError> {
        let dir = data_dir.join(ARCHIVE_DIR);
        std::fs::create_dir_all(&dir)?;
        let ids = segment_ids(&dir)?;
        let mut active = None;
        for (i, &id) in ids.iter().enumerate() {
            let path = segment_path(&dir, id);
            let valid = scan(&path, id, true, &mut visit)?;
            let len = std::fs::metadata(&path)?.len();
            let newest = i + 1 == ids.len();
            if valid < len {
                // Only the newest segment is appended to, so only it can have a torn tail.
                let torn = newest && is_torn_tail(&path)?;
                if !torn {
                    return Err(StoreError::Damaged(format!(
                        "archive segment {} is damaged at byte {valid} of {len}; restore it \
                         from a backup (or move it away to give up the runs it holds)",
                        path.display()
                    )));
                }
                tracing::warn!(path = %path.display(), valid, "cutting a torn tail off the archive");
                let f = OpenOptions::new().write(true).open(&path)?;
                f.set_len(valid)?;
                f.sync_all()?;
            }
            if newest {
                let file = OpenOptions::new().append(true).open(&path)?;
                active = Some(Active {
                    id,
                    file,
                    len: valid,
                    cut_pending: false,
                });
            }
        }
        let active = match active {
            Some(a) => a,
            None => new_segment(&dir, 1)?,
        };
        let mut ids = ids;
        if ids.last() != Some(&active.id) {
            ids.push(active.id);
        }
        Ok((
            ArchiveFiles {
                dir,
                active: Mutex::new(active),
            },
            ids,
        ))
    }

    /// Appends encoded records and makes them durable; returns where each went, and the id of
    /// any segment begun on the way (segments are begun before a record that would not fit).
    pub fn append(&self, payloads: &[Vec<u8>]) -> std::io::Result<(Vec<Loc>, Vec<u32>)> {
        let mut active = self.active.lock();
        let mut locs = Vec::with_capacity(payloads.len());
        let mut begun = Vec::new();
        let mut buf = Vec::new();
        let mut buf_start = active.len;
        for record in payloads {
            let payload = stored(record);
            let frame_len = FRAME_HEADER + payload.len() as u64;
            if active.len > 0 && active.len + frame_len > SEGMENT_BYTES {
                write_sync(&mut active, &buf, buf_start)?;
                buf.clear();
                let next = new_segment(&self.dir, active.id + 1)?;
                *active = next;
                begun.push(active.id);
                buf_start = 0;
            }
            let len = u32::try_from(payload.len()).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "record over 4 GiB")
            })?;
            let offset = u32::try_from(active.len).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "segment over 4 GiB")
            })?;
            locs.push(Loc {
                segment: active.id,
                offset,
                len,
            });
            frame::frame(frame::Format::V1, &mut buf, &payload);
            active.len += frame_len;
        }
        write_sync(&mut active, &buf, buf_start)?;
        Ok((locs, begun))
    }

    /// Begins a new segment (so the current one can expire as a whole); returns its id.
    pub fn roll(&self) -> std::io::Result<u32> {
        let mut active = self.active.lock();
        let next = new_segment(&self.dir, active.id + 1)?;
        *active = next;
        Ok(active.id)
    }

    pub fn active_segment(&self) -> u32 {
        self.active.lock().id
    }

    pub fn active_len(&self) -> u64 {
        self.active.lock().len
    }

    /// Reads back one record, checking its checksum.
    pub fn read(&self, loc: Loc) -> Result<LogRecord, StoreError> {
        let path = segment_path(&self.dir, loc.segment);
        let file = File::open(&path)?;
        let mut frame = vec![0u8; FRAME_HEADER as usize + loc.len as usize];
        file.read_exact_at(&mut frame, loc.offset as u64)?;
        let (header, payload) = frame.split_at(FRAME_HEADER as usize);
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len != loc.len || crc32fast::hash(payload) != crc {
            return Err(StoreError::Corrupt(format!(
                "archive record at {}:{} fails its checksum",
                path.display(),
                loc.offset
            )));
        }
        let corrupt = |e: String| {
            StoreError::Corrupt(format!(
                "archive record at {}:{}: {e}",
                path.display(),
                loc.offset
            ))
        };
        let record = unstored(payload).map_err(corrupt)?;
        LogRecord::decode(record.as_ref()).map_err(|e| corrupt(e.to_string()))
    }

    /// Reports every frame of a segment (run states without their history) to `visit`.
    pub fn scan_segment(&self, id: u32, visit: &mut dyn FnMut(Scanned)) -> Result<(), StoreError> {
        match scan(&segment_path(&self.dir, id), id, false, visit) {
            Ok(_) => Ok(()),
            // Removed by retention since the caller listed it.
            Err(StoreError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes a segment whose runs have all expired.
    pub fn remove_segment(&self, id: u32) -> std::io::Result<()> {
        if self.active.lock().id == id {
            return Ok(());
        }
        std::fs::remove_file(segment_path(&self.dir, id))?;
        sync_dir(&self.dir);
        Ok(())
    }
}

fn new_segment(dir: &Path, id: u32) -> std::io::Result<Active> {
    let path = segment_path(dir, id);
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    file.sync_all()?;
    sync_dir(dir);
    let len = file.metadata()?.len();
    Ok(Active {
        id,
        file,
        len,
        cut_pending: false,
    })
}

/// Writes `buf` at the end of the active segment and syncs; on failure cuts the segment back
/// to `start` so no half-written frame precedes later ones. The segment is opened for
/// appending, so a frame left behind by a failed cut would shift every later record away
/// from the location it was given.
fn write_sync(active: &mut Active, buf: &[u8], start: u64) -> std::io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    if active.cut_pending {
        active.file.set_len(start)?;
        active.cut_pending = false;
    }
    let result = active
        .file
        .write_all(buf)
        .and_then(|_| active.file.sync_data());
    if let Err(e) = result {
        active.cut_pending = active.file.set_len(start).is_err();
        active.len = start;
        return Err(e);
    }
    Ok(())
}

/// Whether the first bad frame of a segment is a torn tail (see [`crate::store::frame`]),
/// not damage with valid frames after it.
fn is_torn_tail(path: &Path) -> Result<bool, StoreError> {
    let data = std::fs::read(path)?;
    Ok(!matches!(
        frame::scan(frame::Format::V1, &data, 0).1,
        frame::End::Damaged { .. }
    ))
}

/// Reads the frames of one segment; returns the length of its intact prefix. With `verify`,
/// every payload is read and checked; without, only the run state at the front of each
/// record is read and the history behind it skipped.
fn scan(
    path: &Path,
    id: u32,
    verify: bool,
    visit: &mut dyn FnMut(Scanned),
) -> Result<u64, StoreError> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 18, file);
    let mut pos = 0u64;
    let mut payload = Vec::new();
    while file_len - pos >= FRAME_HEADER {
        let mut header = [0u8; FRAME_HEADER as usize];
        reader.read_exact(&mut header)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len == 0 || file_len - pos - FRAME_HEADER < len as u64 {
            break;
        }
        let loc = Loc {
            segment: id,
            offset: pos as u32,
            len,
        };
        let head = if verify {
            payload.resize(len as usize, 0);
            reader.read_exact(&mut payload)?;
            if crc32fast::hash(&payload) != crc {
                break;
            }
            match unstored(&payload) {
                Ok(record) => LogRecordHead::decode(record.as_ref()),
                Err(why) => {
                    return Err(StoreError::Corrupt(format!(
                        "archive record at {}:{}: {why}",
                        path.display(),
                        loc.offset
                    )));
                }
            }
        } else {
            let head = read_head(&mut reader, len)?;
            LogRecordHead::decode(head.as_slice())
        };
        pos += FRAME_HEADER + len as u64;
        match head.map(|h| h.kind) {
            Ok(Some(log_record_head::Kind::Execution(ExecutionHead { state: Some(state) }))) => {
                visit(Scanned::Run {
                    loc,
                    state: Box::new(state),
                })
            }
            Ok(Some(log_record_head::Kind::Deleted(d))) => visit(Scanned::Tombstone(d)),
            Ok(_) => {}
            Err(e) if verify => {
                return Err(StoreError::Corrupt(format!(
                    "archive record at {}:{} does not decode: {e}",
                    path.display(),
                    loc.offset
                )));
            }
            Err(_) => {}
        }
    }
    Ok(pos)
}

/// Reads one record's front, up to the end of the run state it starts with, and returns it
/// as an encoded [`LogRecordHead`]; the history behind the state is skipped. Records that are
/// not executions (tombstones, which are small) are read whole.
fn read_head(reader: &mut BufReader<File>, len: u32) -> std::io::Result<Vec<u8>> {
    let mut remaining = len as u64;
    let mut front = Vec::with_capacity(16);
    let outer_key = read_varint(reader, &mut remaining, &mut front)?;
    let outer_len = read_varint(reader, &mut remaining, &mut front)?;
    if front
        .first()
        .is_some_and(|&b| super::log_block::is_packed(b))
    {
        // A compressed record: read and unpack it whole (its state is inside).
        let mut packed = vec![0u8; remaining as usize];
        reader.read_exact(&mut packed)?;
        front.extend_from_slice(&packed);
        return Ok(unstored(&front).map(|r| r.into_owned()).unwrap_or_default());
    }
    let (Some(outer_key), Some(_)) = (outer_key, outer_len) else {
        reader.seek_relative(remaining as i64)?;
        return Ok(Vec::new());
    };
    if outer_key >> 3 != 2 {
        let mut rest = vec![0u8; remaining as usize];
        reader.read_exact(&mut rest)?;
        front.extend_from_slice(&rest);
        return Ok(front);
    }
    let mut inner = Vec::with_capacity(16);
    let state_key = read_varint(reader, &mut remaining, &mut inner)?;
    let state_len = read_varint(reader, &mut remaining, &mut inner)?;
    let (Some(state_key), Some(state_len)) = (state_key, state_len) else {
        reader.seek_relative(remaining as i64)?;
        return Ok(Vec::new());
    };
    if state_key >> 3 != 1 || state_len > remaining {
        reader.seek_relative(remaining as i64)?;
        return Ok(Vec::new());
    }
    let mut state = vec![0u8; state_len as usize];
    reader.read_exact(&mut state)?;
    reader.seek_relative((remaining - state_len) as i64)?;
    // LogRecordHead { execution: ExecutionHead { state } }
    let state_field = inner.len() + state.len();
    let mut out = Vec::with_capacity(state_field + 12);
    prost::encoding::encode_key(2, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(state_field as u64, &mut out);
    out.extend_from_slice(&inner);
    out.extend_from_slice(&state);
    Ok(out)
}

/// Reads one varint, copying its bytes to `out`; None if the record ends first.
fn read_varint(
    reader: &mut impl Read,
    remaining: &mut u64,
    out: &mut Vec<u8>,
) -> std::io::Result<Option<u64>> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        if *remaining == 0 {
            return Ok(None);
        }
        let mut b = [0u8; 1];
        reader.read_exact(&mut b)?;
        *remaining -= 1;
        out.push(b[0]);
        value |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

/// Encodes a tombstone for an archived run that was deleted.
pub fn tombstone(key: DeletedRun) -> Vec<u8> {
    LogRecord {
        kind: Some(log_record::Kind::Deleted(key)),
    }
    .encode_to_vec()
}

/// Copies the intact prefix of every segment of `data_dir`'s archive into `visit` as
/// (file name, bytes). Used by backup.
pub fn for_each_segment(
    data_dir: &Path,
    mut visit: impl FnMut(&str, &[u8]) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let dir = data_dir.join(ARCHIVE_DIR);
    for id in segment_ids(&dir)? {
        let path = segment_path(&dir, id);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            // Expired and removed while the backup ran.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        let valid = scan(&path, id, true, &mut |_| {})?;
        file.seek(SeekFrom::Start(0))?;
        let mut bytes = vec![0u8; valid as usize];
        file.read_exact(&mut bytes)?;
        let name = format!("{ARCHIVE_DIR}/{id:08}.{SEGMENT_SUFFIX}");
        visit(&name, &bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::encode_execution;

    fn run_record(run_id: &str, events: usize) -> Vec<u8> {
        let state = MutableState {
            namespace: "ns".into(),
            workflow_id: "wf".into(),
            run_id: run_id.into(),
            next_event_id: events as i64 + 1,
            ..Default::default()
        };
        let history: Vec<Vec<u8>> = (0..events).map(|i| vec![8, i as u8, 16, 1]).collect();
        encode_execution(&state, history.iter().map(Vec::as_slice))
    }

    fn run_ids(dir: &Path) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        ArchiveFiles::open(dir, |s| match s {
            Scanned::Run { state, .. } => ids.push(state.run_id.clone()),
            Scanned::Tombstone(d) => ids.push(format!("-{}", d.run_id)),
        })?;
        Ok(ids)
    }

    #[test]
    fn records_read_back_scan_without_history_and_survive_torn_tails() {
        let dir = tempfile::tempdir().unwrap();
        let (files, _) = ArchiveFiles::open(dir.path(), |_| {}).unwrap();
        let (locs, _) = files
            .append(&[run_record("a", 3), run_record("b", 300)])
            .unwrap();
        files
            .append(&[tombstone(DeletedRun {
                namespace: "ns".into(),
                workflow_id: "wf".into(),
                run_id: "a".into(),
            })])
            .unwrap();
        let Some(log_record::Kind::Execution(b)) = files.read(locs[1]).unwrap().kind else {
            panic!("not an execution");
        };
        assert_eq!(b.new_events.len(), 300);
        let stored = std::fs::metadata(segment_path(&dir.path().join(ARCHIVE_DIR), 1))
            .unwrap()
            .len();
        assert!(
            stored < run_record("b", 300).len() as u64 / 2,
            "the long record is stored compressed ({stored} bytes)"
        );
        let mut scanned = Vec::new();
        files
            .scan_segment(files.active_segment(), &mut |s| {
                if let Scanned::Run { loc, state } = s {
                    scanned.push((loc, state.run_id.clone(), state.next_event_id));
                }
            })
            .unwrap();
        assert_eq!(
            scanned,
            vec![(locs[0], "a".into(), 4), (locs[1], "b".into(), 301)]
        );
        drop(files);
        assert_eq!(run_ids(dir.path()).unwrap(), ["a", "b", "-a"]);

        // A crash mid-append leaves a torn frame at the end of the newest segment: cut off.
        let seg = segment_path(&dir.path().join(ARCHIVE_DIR), 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[100, 0, 0, 0, 9, 9]).unwrap();
        drop(f);
        assert_eq!(run_ids(dir.path()).unwrap(), ["a", "b", "-a"]);

        // Damage in an older segment is refused, not skipped.
        let (files, _) = ArchiveFiles::open(dir.path(), |_| {}).unwrap();
        files.roll().unwrap();
        files.append(&[run_record("c", 1)]).unwrap();
        drop(files);
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[20] ^= 0xff;
        std::fs::write(&seg, bytes).unwrap();
        let err = run_ids(dir.path()).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    #[test]
    fn damage_in_the_newest_segment_is_refused_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (files, _) = ArchiveFiles::open(dir.path(), |_| {}).unwrap();
        files
            .append(&[run_record("a", 3), run_record("b", 3), run_record("c", 3)])
            .unwrap();
        drop(files);
        let seg = segment_path(&dir.path().join(ARCHIVE_DIR), 1);
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[12] ^= 0x01;
        std::fs::write(&seg, &bytes).unwrap();
        let err = run_ids(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Damaged(_)), "{err}");
        assert_eq!(std::fs::read(&seg).unwrap(), bytes, "nothing was cut");
    }
}
