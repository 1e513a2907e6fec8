//! Records stored one by one (PostgreSQL's rows, the archive's runs, frozen runs in memory)
//! compressed against a zstd dictionary built into Durin.
//!
//! On its own a record of a few hundred bytes compresses poorly: most of it is protobuf
//! structure, field names of payload metadata and the like, which zstd only learns from the
//! record itself. The dictionary holds what records have in common, so a record costs little
//! more than what is its own (ids, times, payloads). Measured on the rows of 3,000
//! one-activity workflows on PostgreSQL (seven per workflow): 262 bytes per row compressed
//! alone, 188 with this dictionary; the database grew 2.49 KB per workflow before, 1.93 after.
//!
//! The dictionary was trained on records Durin wrote while the official Python SDK's test
//! suite ran against it, none of the benchmark's: `durin server start-dev --postgres URL` with
//! the suite's dynamic config, the suite run against it, the `durin_log` rows read four times
//! during the run (9,728 distinct records: starts, workflow tasks, activities, timers, signals,
//! updates, children, failures), each unpacked, then
//! `zstd --train -r DIR --maxdict=32768`. A stored record needs the very dictionary it was
//! packed with, so a released dictionary never changes; a better one comes with a marker of
//! its own, beside this.
//!
//! Layout after the marker: the record's length (varint), then one zstd frame without its
//! dictionary id, content size or checksum (as records packed without a dictionary: the log's
//! and the archive's frames carry checksums of their own).

use std::cell::RefCell;
use std::sync::LazyLock;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};
use zstd::zstd_safe::CParameter;

use super::log_block::MAX_RAW;

/// The first dictionary: never edit it (see the module's comment).
static DICTIONARY_V1: &[u8] = include_bytes!("record_dictionary_v1.zdict");

/// zstd's level: the fastest, as for the log's blocks.
const LEVEL: i32 = 1;
/// Below this a record is stored as it is: a frame's own header costs more than it saves.
const COMPRESS_FROM: usize = 24;

static ENCODER: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(DICTIONARY_V1, LEVEL));
static DECODER: LazyLock<DecoderDictionary<'static>> =
    LazyLock::new(|| DecoderDictionary::copy(DICTIONARY_V1));

thread_local! {
    // One context per thread, the dictionary prepared once for all of them.
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

fn compressor() -> std::io::Result<Compressor<'static>> {
    let mut compressor = Compressor::with_prepared_dictionary(&ENCODER)?;
    compressor.set_parameter(CParameter::DictIdFlag(false))?;
    compressor.set_parameter(CParameter::ContentSizeFlag(false))?;
    compressor.set_parameter(CParameter::ChecksumFlag(false))?;
    Ok(compressor)
}

fn compress(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with_borrow_mut(|kept| match kept {
        Some(compressor) => compressor.compress(raw),
        None => kept.insert(compressor()?).compress(raw),
    })
}

fn decompress(frame: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with_borrow_mut(|kept| match kept {
        Some(decompressor) => decompressor.decompress(frame, capacity),
        None => kept
            .insert(Decompressor::with_prepared_dictionary(&DECODER)?)
            .decompress(frame, capacity),
    })
}

/// `marker`, `raw`'s length and its frame — when that is smaller than `raw`.
pub(super) fn pack(marker: u8, raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() < COMPRESS_FROM || raw.len() > MAX_RAW {
        return None;
    }
    let frame = compress(raw).ok()?;
    let mut out = Vec::with_capacity(frame.len() + 6);
    out.push(marker);
    prost::encoding::encode_varint(raw.len() as u64, &mut out);
    out.extend_from_slice(&frame);
    (out.len() < raw.len()).then_some(out)
}

/// The bytes [`pack`] packed, given what follows its marker.
pub(super) fn unpack(mut packed: &[u8]) -> Result<Vec<u8>, String> {
    let raw_len = prost::encoding::decode_varint(&mut packed)
        .map_err(|_| "a compressed record's length is cut short".to_string())?;
    let raw_len = usize::try_from(raw_len)
        .ok()
        .filter(|&n| n <= MAX_RAW)
        .ok_or_else(|| format!("a compressed record claims {raw_len} bytes"))?;
    let raw = decompress(packed, raw_len)
        .map_err(|e| format!("a compressed record does not decompress: {e}"))?;
    if raw.len() != raw_len {
        return Err("a compressed record holds another length than it says".into());
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A released dictionary is part of the storage format: records packed with it are
    /// unreadable without these very bytes.
    #[test]
    fn the_first_dictionary_is_as_released() {
        assert_eq!(
            (DICTIONARY_V1.len(), crc32fast::hash(DICTIONARY_V1)),
            (32_768, 0x581d_9d55),
            "record_dictionary_v1.zdict changed; add a new dictionary with a marker of its own instead"
        );
    }

    #[test]
    fn a_record_packs_smaller_and_unpacks_as_it_was() {
        use prost::Message;
        let record = crate::store::encode_execution(
            &crate::store::state::MutableState {
                workflow_id: "order-4711".into(),
                run_id: "01a251df-5f67-7f83-ba28-aa262f64f7c1".into(),
                ..Default::default()
            },
            std::iter::empty::<&[u8]>(),
        );
        let packed = pack(9, &record).expect("smaller");
        assert_eq!(packed[0], 9);
        // What the dictionary is for: smaller than the record compressed alone.
        let alone = zstd::bulk::compress(&record, LEVEL).unwrap();
        assert!(
            packed.len() < alone.len(),
            "{} bytes with the dictionary, {} alone",
            packed.len(),
            alone.len()
        );
        assert_eq!(unpack(&packed[1..]).unwrap(), record);
        // Damage is refused, not misread.
        let mut cut = packed.clone();
        cut.truncate(cut.len() - 3);
        assert!(unpack(&cut[1..]).is_err());
        assert!(unpack(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).is_err());
        let small = crate::store::LogRecord::default().encode_to_vec();
        assert_eq!(pack(9, &small), None);
    }
}
