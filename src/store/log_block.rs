//! Blocks of the v3 log: each write of the log's writer (one group commit, or a slice of a
//! compaction) is one frame whose payload is a block holding the written records' own frames,
//! compressed with zstd when that makes it smaller. Blocks are compressed independently, so a
//! damaged block loses only the records written with it, as a damaged frame did before.
//!
//! Block layout: one kind byte, then for [`STORED`] the record frames as they are, for
//! [`ZSTD`] their length (u32 LE) and one zstd frame of them.

use std::borrow::Cow;

use super::frame::{self, End, Format};

const STORED: u8 = 0;
const ZSTD: u8 = 1;
/// zstd's level: the fastest keeps the writer's latency; higher levels gain little on records.
const LEVEL: i32 = 1;
/// Below this, compression is not tried (a lone small record).
const COMPRESS_FROM: usize = 128;
/// The writer starts a new block once this much is gathered; compaction cuts its blocks here.
pub const BLOCK_TARGET: usize = 8 << 20;
/// A block claiming to hold more than this is damage (no write makes one: a single record is
/// far smaller).
const MAX_RAW: usize = 1 << 30;

/// `marker`, then `raw`'s length (u32 LE) and its zstd frame — when that is smaller than
/// `raw` (the archive's records use this too, behind a marker of their own).
pub(super) fn pack(marker: u8, raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() < COMPRESS_FROM || raw.len() > MAX_RAW {
        return None;
    }
    let packed = zstd::bulk::compress(raw, LEVEL).ok()?;
    if packed.len() + 5 >= raw.len() {
        return None;
    }
    let mut out = Vec::with_capacity(packed.len() + 5);
    out.push(marker);
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    out.extend_from_slice(&packed);
    Some(out)
}

/// The bytes [`pack`] packed, given what follows its marker.
pub(super) fn unpack(packed: &[u8]) -> Result<Vec<u8>, String> {
    let Some((len, zstd_frame)) = packed.split_first_chunk::<4>() else {
        return Err("a compressed record is cut short".into());
    };
    let raw_len = u32::from_le_bytes(*len) as usize;
    if raw_len > MAX_RAW {
        return Err(format!("a compressed record claims {raw_len} bytes"));
    }
    let raw = zstd::bulk::decompress(zstd_frame, raw_len)
        .map_err(|e| format!("a compressed record does not decompress: {e}"))?;
    if raw.len() != raw_len {
        return Err("a compressed record holds another length than it says".into());
    }
    Ok(raw)
}

/// Marks a record stored compressed: a protobuf field key, which any encoded record starts
/// with, is never 0. The archive and PostgreSQL store records this way.
pub(crate) const PACKED_RECORD: u8 = 0;

/// A record as stored one by one: compressed behind [`PACKED_RECORD`] when that is smaller.
pub(crate) fn pack_record(record: &[u8]) -> Cow<'_, [u8]> {
    match pack(PACKED_RECORD, record) {
        Some(packed) => Cow::Owned(packed),
        None => Cow::Borrowed(record),
    }
}

/// The record [`pack_record`] stored (records stored before compression read as they are).
pub(crate) fn unpack_record(stored: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    match stored.split_first() {
        Some((&PACKED_RECORD, packed)) => unpack(packed).map(Cow::Owned),
        _ => Ok(Cow::Borrowed(stored)),
    }
}

/// Appends to `out` one frame holding the block of `records` (record frames, v2 format).
pub fn put(out: &mut Vec<u8>, records: &[u8]) {
    if let Some(block) = pack(ZSTD, records) {
        frame::frame(Format::V2, out, &block);
        return;
    }
    let mut block = Vec::with_capacity(records.len() + 1);
    block.push(STORED);
    block.extend_from_slice(records);
    frame::frame(Format::V2, out, &block);
}

/// The record frames a block holds.
fn unpack_block(block: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    match block.split_first() {
        Some((&STORED, records)) => Ok(Cow::Borrowed(records)),
        Some((&ZSTD, packed)) => unpack(packed).map(Cow::Owned),
        _ => Err("a block of an unknown kind".into()),
    }
}

/// Appends the records of one block (its frame's payload) to `out`.
pub fn records_of(block: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), String> {
    let records = unpack_block(block)?;
    let (frames, end) = frame::scan(Format::V2, &records, 0);
    if end != End::Clean {
        return Err(format!("a block's records are damaged: {end:?}"));
    }
    out.extend(frames.into_iter().map(|f| f.payload.to_vec()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(payloads: &[&[u8]]) -> Vec<u8> {
        let mut buf = Vec::new();
        for p in payloads {
            frame::frame(Format::V2, &mut buf, p);
        }
        buf
    }

    fn read(out: &[u8]) -> Vec<Vec<u8>> {
        let (blocks, end) = frame::scan(Format::V2, out, 0);
        assert_eq!(end, End::Clean);
        let mut got = Vec::new();
        for b in blocks {
            records_of(b.payload, &mut got).unwrap();
        }
        got
    }

    #[test]
    fn blocks_read_back_their_records_compressed_or_not() {
        let small = records(&[b"one"]);
        let repetitive: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("workflow-{i} of a namespace, on a task queue").into_bytes())
            .collect();
        let large = records(&repetitive.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let mut out = Vec::new();
        put(&mut out, &small);
        let stored_len = out.len();
        put(&mut out, &large);
        assert_eq!(out[12], STORED, "too small to compress");
        assert_eq!(out[stored_len + 12], ZSTD);
        assert!(out.len() - stored_len < large.len() / 3, "compressed");
        let mut want = vec![b"one".to_vec()];
        want.extend(repetitive);
        assert_eq!(read(&out), want);
    }

    #[test]
    fn a_block_that_does_not_unpack_is_refused() {
        let mut bad_len = vec![ZSTD];
        bad_len.extend_from_slice(&(MAX_RAW as u32 + 1).to_le_bytes());
        let mut out = Vec::new();
        for block in [vec![7u8, 1, 2], bad_len, vec![ZSTD, 9, 0, 0, 0, 1, 2, 3]] {
            let err = records_of(&block, &mut out).unwrap_err();
            assert!(!err.is_empty());
        }
        // A stored block whose records are cut short.
        let mut cut = vec![STORED];
        cut.extend_from_slice(&records(&[b"whole"])[..10]);
        assert!(records_of(&cut, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn records_stored_one_by_one_read_back_compressed_or_as_written_before() {
        use prost::Message;
        let record = crate::store::encode_execution(
            &crate::store::state::MutableState {
                workflow_id: "a-workflow-id-that-repeats-a-workflow-id-that-repeats".into(),
                ..Default::default()
            },
            [b"an event that repeats an event that repeats".as_slice(); 8].into_iter(),
        );
        let stored = pack_record(&record);
        assert_eq!(stored[0], PACKED_RECORD);
        assert!(stored.len() < record.len() / 2);
        assert_eq!(unpack_record(&stored).unwrap(), record.as_slice());
        // Small records, and records stored before compression, are as they are.
        let small = crate::store::LogRecord::default().encode_to_vec();
        assert_eq!(pack_record(&small), small.as_slice());
        assert_eq!(unpack_record(&record).unwrap(), record.as_slice());
    }
}
