//! Blocks of the v3 log: each write of the log's writer (one group commit, or a slice of a
//! compaction) is one frame whose payload is a block holding the written records' own frames,
//! compressed with zstd.
//!
//! A group commit at a modest rate holds a handful of records, too few to compress well on
//! their own: the records of one run share little, and those of the runs beside them much. So
//! blocks are compressed as *runs of blocks*: one zstd stream, flushed at the end of each block
//! so that a block is readable once it and the blocks before it in its run are, begun anew
//! every [`RUN_BLOCKS`] blocks or [`RUN_BYTES`] of records. Damage to a block loses the records
//! of the rest of its run (at most that many), never more; a block names its run and its place
//! in it, so a block whose predecessor is missing is known, not misread. Measured on the log of
//! 500 ten-activity chains (about 6 records per block): 2.4 MB as independent blocks, 1.24 MB
//! in runs of 16, 0.97 MB in runs of 64.
//!
//! Block layout: one kind byte, then for [`STORED`] the record frames as they are, for
//! [`ZSTD`] (blocks compressed on their own, as an earlier version wrote them) their length
//! (u32 LE) and one zstd frame of them, for [`STREAM`] the run's id, the block's place in the
//! run (0: the first) and the records' length (varints), then the block's part of the run's
//! zstd stream.

use std::borrow::Cow;
use std::cell::RefCell;

use zstd::stream::raw::{Decoder, Encoder, InBuffer, Operation, OutBuffer};

use super::frame::{self, End, Format};
use super::record_dictionary;

const STORED: u8 = 0;
const ZSTD: u8 = 1;
const STREAM: u8 = 2;
/// A run of blocks compressed as one stream ends after this many blocks...
const RUN_BLOCKS: u32 = 32;
/// ...or once this many bytes of records went into it.
const RUN_BYTES: usize = 4 << 20;
/// zstd's level: the fastest keeps the writer's latency; higher levels gain little on records.
const LEVEL: i32 = 1;
/// Below this, compression is not tried (a lone small record).
const COMPRESS_FROM: usize = 128;
/// The writer starts a new block once this much is gathered; compaction cuts its blocks here.
pub const BLOCK_TARGET: usize = 8 << 20;
/// A block claiming to hold more than this is damage (no write makes one: a single record is
/// far smaller).
pub(super) const MAX_RAW: usize = 1 << 30;

thread_local! {
    // zstd contexts kept per thread: making one for each small record took more CPU than
    // compressing it (a third of a restart's, when each frozen run made its own).
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// `raw` as one zstd frame at the fastest level, with this thread's context.
fn compress_frame(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|kept| match kept {
        Some(compressor) => compressor.compress(raw),
        None => kept
            .insert(zstd::bulk::Compressor::new(LEVEL)?)
            .compress(raw),
    })
}

/// The bytes of one zstd frame, at most `capacity` of them, with this thread's context.
fn decompress_frame(frame: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with_borrow_mut(|kept| match kept {
        Some(decompressor) => decompressor.decompress(frame, capacity),
        None => kept
            .insert(zstd::bulk::Decompressor::new()?)
            .decompress(frame, capacity),
    })
}

/// `marker`, then `raw`'s length (u32 LE) and its zstd frame — when that is smaller than
/// `raw` (the archive's records use this too, behind a marker of their own).
pub(super) fn pack(marker: u8, raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() < COMPRESS_FROM || raw.len() > MAX_RAW {
        return None;
    }
    let packed = compress_frame(raw).ok()?;
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
    let raw = decompress_frame(zstd_frame, raw_len)
        .map_err(|e| format!("a compressed record does not decompress: {e}"))?;
    if raw.len() != raw_len {
        return Err("a compressed record holds another length than it says".into());
    }
    Ok(raw)
}

/// Marks a record stored compressed on its own (as records were before
/// [`PACKED_RECORD_DICT`]): a protobuf field key, which any encoded record starts with, is
/// never below 8. The archive and PostgreSQL store records this way; frozen runs hold theirs so.
pub(crate) const PACKED_RECORD: u8 = 0;
/// Marks a record compressed against [`record_dictionary`]'s first version.
pub(crate) const PACKED_RECORD_DICT: u8 = 1;

/// Whether stored bytes starting with `first` are a packed record (not an encoded one).
pub(crate) fn is_packed(first: u8) -> bool {
    matches!(first, PACKED_RECORD | PACKED_RECORD_DICT)
}

/// A record as stored one by one: compressed against the record dictionary behind
/// [`PACKED_RECORD_DICT`] when that is smaller (or alone, behind [`PACKED_RECORD`], when that
/// is smaller still). A record packed already (a frozen run's, handed to compaction) stays as
/// it is.
pub(crate) fn pack_record(record: &[u8]) -> Cow<'_, [u8]> {
    if record.first().is_some_and(|&b| is_packed(b)) {
        return Cow::Borrowed(record);
    }
    let with_dictionary = record_dictionary::pack(PACKED_RECORD_DICT, record);
    // A long record has context enough of its own, and one unlike those the dictionary
    // was trained on (a history of many near-identical events) compresses worse against it.
    let alone = (record.len() >= ALONE_FROM)
        .then(|| pack(PACKED_RECORD, record))
        .flatten();
    match (with_dictionary, alone) {
        (Some(a), Some(b)) => Cow::Owned(if a.len() <= b.len() { a } else { b }),
        (Some(packed), None) | (None, Some(packed)) => Cow::Owned(packed),
        (None, None) => Cow::Borrowed(record),
    }
}

/// From this length a record is also compressed without the dictionary, and stored the
/// smaller way.
const ALONE_FROM: usize = 1024;

/// The record [`pack_record`] stored (records stored before compression read as they are).
pub(crate) fn unpack_record(stored: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    match stored.split_first() {
        Some((&PACKED_RECORD, packed)) => unpack(packed).map(Cow::Owned),
        Some((&PACKED_RECORD_DICT, packed)) => record_dictionary::unpack(packed).map(Cow::Owned),
        _ => Ok(Cow::Borrowed(stored)),
    }
}

/// Writes the blocks of one log file, continuing the run of blocks in progress.
pub struct BlockWriter {
    encoder: Option<Encoder<'static>>,
    /// The id of the run in progress, and how many blocks and bytes of records it holds.
    run: u32,
    blocks: u32,
    bytes: usize,
}

impl BlockWriter {
    pub fn new() -> Self {
        // Runs of an earlier writer of the same file have other ids (the clock moved on), so
        // a lost first block of a run is never mistaken for one of the run before it.
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u32);
        Self {
            encoder: None,
            run,
            blocks: 0,
            bytes: 0,
        }
    }

    /// The next block begins a new run: after a write that failed (its block may not be in
    /// the file), and in a new file.
    pub fn restart(&mut self) {
        self.run = self.run.wrapping_add(1);
        self.blocks = 0;
        self.bytes = 0;
    }

    /// Appends to `out` one frame holding the block of `records` (record frames, v2 format).
    pub fn put(&mut self, out: &mut Vec<u8>, records: &[u8]) {
        match self.compress(records) {
            Ok(block) => {
                frame::frame(Format::V2, out, &block);
                self.blocks += 1;
                self.bytes += records.len();
                if self.blocks >= RUN_BLOCKS || self.bytes >= RUN_BYTES {
                    self.restart();
                }
            }
            Err(e) => {
                // zstd failing (out of memory) must not stop the log: store the records as
                // they are, and begin a new run, as the stream's state is not known.
                tracing::warn!(error = %e, "compressing a log block failed; storing it as is");
                self.encoder = None;
                self.restart();
                let mut block = Vec::with_capacity(records.len() + 1);
                block.push(STORED);
                block.extend_from_slice(records);
                frame::frame(Format::V2, out, &block);
            }
        }
    }

    /// The block of `records`: its header and its part of the run's stream.
    fn compress(&mut self, records: &[u8]) -> std::io::Result<Vec<u8>> {
        let encoder = match &mut self.encoder {
            Some(encoder) => encoder,
            None => self.encoder.insert(Encoder::new(LEVEL)?),
        };
        if self.blocks == 0 {
            encoder.reinit()?;
        }
        let mut block = Vec::with_capacity(16 + zstd::zstd_safe::compress_bound(records.len()));
        block.push(STREAM);
        for n in [self.run as u64, self.blocks as u64, records.len() as u64] {
            prost::encoding::encode_varint(n, &mut block);
        }
        let mut input = InBuffer::around(records);
        loop {
            if block.capacity() - block.len() < 1024 {
                block.reserve(records.len().max(1024));
            }
            let written = block.len();
            let mut output = OutBuffer::around_pos(&mut block, written);
            if input.pos() < records.len() {
                encoder.run(&mut input, &mut output)?;
            } else if encoder.flush(&mut output)? == 0 {
                break;
            }
        }
        Ok(block)
    }
}

impl Default for BlockWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads the blocks of one log file in order, following its runs of blocks.
#[derive(Default)]
pub struct BlockReader {
    decoder: Option<Decoder<'static>>,
    /// The run and place the next block continuing a run must have (None: no run can be
    /// continued, as none began or the last block of one did not read).
    next: Option<(u32, u32)>,
}

impl BlockReader {
    /// Appends the records of one block (its frame's payload) to `out`.
    pub fn records_of(&mut self, block: &[u8], out: &mut Vec<Vec<u8>>) -> Result<(), String> {
        let records = match block.split_first() {
            Some((&STORED, records)) => Cow::Borrowed(records),
            Some((&ZSTD, packed)) => Cow::Owned(unpack(packed)?),
            Some((&STREAM, rest)) => {
                let expected = self.next.take();
                Cow::Owned(self.inflate(rest, expected)?)
            }
            _ => return Err("a block of an unknown kind".into()),
        };
        let (frames, end) = frame::scan(Format::V2, &records, 0);
        if end != End::Clean {
            self.next = None;
            return Err(format!("a block's records are damaged: {end:?}"));
        }
        out.extend(frames.into_iter().map(|f| f.payload.to_vec()));
        Ok(())
    }

    /// The records of a block of a run; `expected`: the run and place the block must have
    /// unless it begins a run.
    fn inflate(&mut self, rest: &[u8], expected: Option<(u32, u32)>) -> Result<Vec<u8>, String> {
        let mut at = rest;
        let mut header = [0u64; 3];
        for n in &mut header {
            *n = prost::encoding::decode_varint(&mut at)
                .map_err(|_| "a compressed block's header is damaged".to_string())?;
        }
        let [run, place, raw_len] = header;
        let (run, place, raw_len) = (run as u32, place as u32, raw_len as usize);
        if raw_len > MAX_RAW {
            return Err(format!("a compressed block claims {raw_len} bytes"));
        }
        let decoder = match &mut self.decoder {
            Some(decoder) => decoder,
            None => self
                .decoder
                .insert(Decoder::new().map_err(|e| e.to_string())?),
        };
        if place == 0 {
            decoder.reinit().map_err(|e| e.to_string())?;
        } else if expected != Some((run, place)) {
            return Err(format!(
                "a compressed block follows a block of its run that is lost or damaged (block \
                 {place} of run {run})"
            ));
        }
        let mut raw = Vec::with_capacity(raw_len);
        let mut input = InBuffer::around(at);
        let mut output = OutBuffer::around(&mut raw);
        loop {
            let before = (input.pos(), output.pos());
            decoder
                .run(&mut input, &mut output)
                .map_err(|e| format!("a compressed block does not decompress: {e}"))?;
            if before == (input.pos(), output.pos()) {
                break;
            }
        }
        if input.pos() != at.len() || output.pos() != raw_len {
            return Err("a compressed block holds another length than it says".into());
        }
        self.next = Some((run, place + 1));
        Ok(raw)
    }
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
        let mut reader = BlockReader::default();
        for b in blocks {
            reader.records_of(b.payload, &mut got).unwrap();
        }
        got
    }

    /// Blocks of a few records each, alike as the records of runs doing the same work are.
    fn group_commits(n: usize) -> Vec<Vec<Vec<u8>>> {
        (0..n)
            .map(|b| {
                (0..4)
                    .map(|r| {
                        format!(
                            "{{namespace: default, workflow: order-{b}-{r}, task queue: \
                             orders, activity: charge-card, attempt: 1}}"
                        )
                        .into_bytes()
                    })
                    .collect()
            })
            .collect()
    }

    /// Each group commit as one block frame, as the writer writes them.
    fn write_blocks(commits: &[Vec<Vec<u8>>]) -> (Vec<u8>, Vec<usize>) {
        let mut writer = BlockWriter::new();
        let (mut out, mut starts) = (Vec::new(), Vec::new());
        for commit in commits {
            starts.push(out.len());
            let slices: Vec<&[u8]> = commit.iter().map(Vec::as_slice).collect();
            writer.put(&mut out, &records(&slices));
        }
        (out, starts)
    }

    #[test]
    fn a_run_of_blocks_compresses_together_and_reads_back() {
        let commits = group_commits(100);
        let (out, starts) = write_blocks(&commits);
        assert_eq!(read(&out), commits.concat());
        // Each block alone, as blocks were compressed before runs.
        let alone: usize = commits
            .iter()
            .map(|c| {
                let slices: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
                let raw = records(&slices);
                pack(ZSTD, &raw).map_or(raw.len(), |p| p.len()) + 12
            })
            .sum();
        assert!(
            out.len() * 2 < alone,
            "in runs: {} bytes, alone: {alone}",
            out.len()
        );
        // The 33rd block begins a new run.
        let place = |b: usize| {
            let mut at = &out[starts[b] + 13..];
            let _run = prost::encoding::decode_varint(&mut at).unwrap();
            prost::encoding::decode_varint(&mut at).unwrap()
        };
        assert_eq!((place(0), place(31), place(32), place(33)), (0, 31, 0, 1));
    }

    #[test]
    fn a_lost_block_loses_the_rest_of_its_run_and_no_more() {
        let commits = group_commits(100);
        let (out, _) = write_blocks(&commits);
        let (blocks, _) = frame::scan(Format::V2, &out, 0);
        let mut reader = BlockReader::default();
        let (mut got, mut refused) = (Vec::new(), Vec::new());
        // Block 10 is lost (salvage skips a frame that fails its checksum).
        for (i, b) in blocks.iter().enumerate().filter(|(i, _)| *i != 10) {
            if let Err(why) = reader.records_of(b.payload, &mut got) {
                assert!(why.contains("lost or damaged"), "{why}");
                refused.push(i);
            }
        }
        assert_eq!(refused, (11..32).collect::<Vec<_>>());
        let mut want = commits[..10].concat();
        want.extend(commits[32..].concat());
        assert_eq!(got, want);
    }

    #[test]
    fn blocks_compressed_alone_or_stored_as_before_read_back() {
        let small = records(&[b"one"]);
        let repetitive: Vec<Vec<u8>> = (0..100)
            .map(|i| format!("workflow-{i} of a namespace, on a task queue").into_bytes())
            .collect();
        let large = records(&repetitive.iter().map(Vec::as_slice).collect::<Vec<_>>());
        let mut out = Vec::new();
        let mut stored = vec![STORED];
        stored.extend_from_slice(&small);
        frame::frame(Format::V2, &mut out, &stored);
        frame::frame(Format::V2, &mut out, &pack(ZSTD, &large).unwrap());
        let mut want = vec![b"one".to_vec()];
        want.extend(repetitive);
        assert_eq!(read(&out), want);
    }

    #[test]
    fn a_block_that_does_not_unpack_is_refused() {
        let mut bad_len = vec![ZSTD];
        bad_len.extend_from_slice(&(MAX_RAW as u32 + 1).to_le_bytes());
        let (whole, _) = write_blocks(&group_commits(1));
        let mut stream = frame::scan(Format::V2, &whole, 0).0[0].payload.to_vec();
        let last = stream.len() - 1;
        stream[last] ^= 0x55;
        let mut out = Vec::new();
        for block in [
            vec![7u8, 1, 2],
            bad_len,
            vec![ZSTD, 9, 0, 0, 0, 1, 2, 3],
            vec![STREAM, 0xff],
            stream,
        ] {
            let err = BlockReader::default()
                .records_of(&block, &mut out)
                .unwrap_err();
            assert!(!err.is_empty());
        }
        // A stored block whose records are cut short.
        let mut cut = vec![STORED];
        cut.extend_from_slice(&records(&[b"whole"])[..10]);
        assert!(BlockReader::default().records_of(&cut, &mut out).is_err());
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
        assert_eq!(stored[0], PACKED_RECORD_DICT);
        assert!(stored.len() < record.len() / 2);
        assert_eq!(unpack_record(&stored).unwrap(), record.as_slice());
        assert_eq!(pack_record(&stored), stored);
        // Records packed without the dictionary, as before it, still read.
        let before = pack(PACKED_RECORD, &record).unwrap();
        assert_eq!(unpack_record(&before).unwrap(), record.as_slice());
        assert_eq!(pack_record(&before), before.as_slice());
        // Small records, and records stored before compression, are as they are.
        let small = crate::store::LogRecord::default().encode_to_vec();
        assert_eq!(pack_record(&small), small.as_slice());
        assert_eq!(unpack_record(&record).unwrap(), record.as_slice());
    }
}
