//! Framing of the embedded store's files, and the one rule that tells a torn tail (a crash
//! while appending: safe to cut, nothing acknowledged is in it) from damage (refused loudly).
//!
//! Two frame formats exist:
//! - **v1** (archive segments, and logs written before the log got a file header):
//!   `len u32 LE | crc32(payload) u32 LE | payload`.
//! - **v2** (the log since then; the file starts with [`LOG_MAGIC`]):
//!   `len u32 LE | crc32(len) u32 LE | crc32(payload) u32 LE | payload`. The length has its
//!   own checksum, so a flipped bit in it is damage, not a frame that seems to run past the
//!   end of the file.
//!
//! Only the end of a file can be torn: what lies after the last synced write. So a bad frame
//! is a torn tail when nothing after it could hold an acknowledged record: its header is cut
//! short, it runs past the end of the file, it is the last frame, or everything from it on
//! is zeros (a file system that extended the file before writing its data). Anything else is
//! damage.

/// The first bytes of a log as Durin writes it now (v3: v2 frames holding blocks of records,
/// see `log_block.rs`).
pub const LOG_MAGIC: &[u8; 8] = b"DURINL03";
/// The first bytes of a v2 log (v2 frames, one per record), rewritten as v3 when opened.
pub const LOG_MAGIC_V2: &[u8; 8] = b"DURINL02";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    V1,
    V2,
}

impl Format {
    pub fn header_len(self) -> usize {
        match self {
            Format::V1 => 8,
            Format::V2 => 12,
        }
    }
}

/// Appends one frame holding `payload` to `buf`.
pub fn frame(format: Format, buf: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    buf.extend_from_slice(&len);
    if format == Format::V2 {
        buf.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    }
    buf.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// How a scan of a file's frames ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// Every byte belongs to a valid frame.
    Clean,
    /// A crash cut the last write short at this offset; everything from it on may be cut.
    TornTail { at: u64 },
    /// The frame at this offset is damaged and valid data may follow it.
    Damaged { at: u64, why: String },
}

/// One frame read back: its offset in the file and its payload.
pub struct Frame<'a> {
    pub offset: u64,
    pub payload: &'a [u8],
}

/// What is wrong with the frame that starts `data[pos..]`, or `None` when it is valid (then
/// the second value is the payload's range).
fn check(format: Format, data: &[u8], pos: usize) -> Result<(usize, usize), Bad> {
    let header = format.header_len();
    let rest = &data[pos..];
    if rest.len() < header {
        return Err(Bad::Torn);
    }
    let len_bytes: [u8; 4] = rest[0..4].try_into().unwrap_or_default();
    let len = u32::from_le_bytes(len_bytes) as usize;
    let crc_at = match format {
        Format::V1 => 4,
        Format::V2 => {
            let len_crc = u32::from_le_bytes(rest[4..8].try_into().unwrap_or_default());
            if crc32fast::hash(&len_bytes) != len_crc {
                return Err(Bad::Damaged("the frame's length fails its checksum".into()));
            }
            8
        }
    };
    if len == 0 {
        return Err(Bad::Damaged("a frame of length zero".into()));
    }
    if rest.len() - header < len {
        return Err(Bad::Torn);
    }
    let crc = u32::from_le_bytes(rest[crc_at..crc_at + 4].try_into().unwrap_or_default());
    let payload = &rest[header..header + len];
    if crc32fast::hash(payload) != crc {
        return Err(if rest.len() == header + len {
            Bad::Torn
        } else {
            Bad::Damaged("the record fails its checksum".into())
        });
    }
    Ok((pos + header, pos + header + len))
}

enum Bad {
    Torn,
    Damaged(String),
}

/// Walks the frames of `data` from `start`. At a bad frame, `on_bad` either ends the walk
/// with what it says (`Err`) or names the offset to go on from (`Ok`).
fn walk<'a, E>(
    format: Format,
    data: &'a [u8],
    start: usize,
    mut on_bad: impl FnMut(usize, Bad) -> Result<usize, E>,
) -> (Vec<Frame<'a>>, Option<E>) {
    let mut frames = Vec::new();
    let mut pos = start;
    while pos < data.len() {
        match check(format, data, pos) {
            Ok((from, to)) => {
                frames.push(Frame {
                    offset: pos as u64,
                    payload: &data[from..to],
                });
                pos = to;
            }
            Err(bad) => match on_bad(pos, bad) {
                Ok(next) => pos = next,
                Err(end) => return (frames, Some(end)),
            },
        }
    }
    (frames, None)
}

/// Reads the frames of `data` from `start`, stopping at the first bad one; says whether that
/// one is a torn tail or damage.
pub fn scan(format: Format, data: &[u8], start: usize) -> (Vec<Frame<'_>>, End) {
    let (frames, end) = walk(format, data, start, |pos, bad| {
        Err(classify(data, pos, bad))
    });
    (frames, end.unwrap_or(End::Clean))
}

/// A bad frame at `pos` is a torn tail if it was cut short, or if nothing but zeros follows.
fn classify(data: &[u8], pos: usize, bad: Bad) -> End {
    let at = pos as u64;
    match bad {
        Bad::Torn => End::TornTail { at },
        Bad::Damaged(_) if data[pos..].iter().all(|&b| b == 0) => End::TornTail { at },
        Bad::Damaged(why) => End::Damaged { at, why },
    }
}

/// Every valid frame of `data` from `start`, skipping damaged stretches: after a bad frame,
/// the next offset where a valid frame starts (for salvage only; slow on large damage).
/// Also returns how many bytes were skipped.
pub fn salvage(format: Format, data: &[u8], start: usize) -> (Vec<Frame<'_>>, u64) {
    let mut skipped = 0u64;
    let (frames, _) = walk::<()>(format, data, start, |pos, _| {
        skipped += 1;
        Ok(pos + 1)
    });
    (frames, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(format: Format, payloads: &[&[u8]]) -> Vec<u8> {
        let mut buf = Vec::new();
        for p in payloads {
            frame(format, &mut buf, p);
        }
        buf
    }

    #[test]
    fn a_clean_file_reads_back_whole() {
        for format in [Format::V1, Format::V2] {
            let data = file(format, &[b"one", b"two", b"three"]);
            let (frames, end) = scan(format, &data, 0);
            assert_eq!(end, End::Clean);
            let payloads: Vec<&[u8]> = frames.iter().map(|f| f.payload).collect();
            assert_eq!(payloads, vec![&b"one"[..], b"two", b"three"]);
        }
    }

    #[test]
    fn a_cut_or_zero_filled_end_is_a_torn_tail() {
        for format in [Format::V1, Format::V2] {
            let data = file(format, &[b"one", b"two", b"three"]);
            let last = (data.len() - format.header_len() - 5) as u64;
            // Cut inside the header, inside the payload, and a garbled last payload.
            for cut in [last as usize + 3, data.len() - 2] {
                let (frames, end) = scan(format, &data[..cut], 0);
                assert_eq!((frames.len(), end), (2, End::TornTail { at: last }));
            }
            let mut garbled = data.clone();
            *garbled.last_mut().unwrap() ^= 1;
            assert_eq!(scan(format, &garbled, 0).1, End::TornTail { at: last });
            let mut zeros = data.clone();
            zeros.extend_from_slice(&[0u8; 4096]);
            let end = scan(format, &zeros, 0).1;
            assert_eq!(
                end,
                End::TornTail {
                    at: data.len() as u64
                }
            );
        }
    }

    #[test]
    fn damage_before_valid_frames_is_refused() {
        for format in [Format::V1, Format::V2] {
            let data = file(format, &[b"first record", b"second record", b"third"]);
            let header = format.header_len();
            // A flipped payload byte of the first frame.
            let mut flipped = data.clone();
            flipped[header + 2] ^= 0x10;
            assert!(matches!(
                scan(format, &flipped, 0).1,
                End::Damaged { at: 0, .. }
            ));
            // A length of zero.
            let mut zero = data.clone();
            zero[0..4].copy_from_slice(&[0, 0, 0, 0]);
            if format == Format::V2 {
                zero[4..8].copy_from_slice(&crc32fast::hash(&[0, 0, 0, 0]).to_le_bytes());
            }
            assert!(matches!(
                scan(format, &zero, 0).1,
                End::Damaged { at: 0, .. }
            ));
        }
        // In v2 a length grown by a flipped bit is damage, not a frame running past the end.
        let data = file(Format::V2, &[b"first record", b"second record"]);
        let mut grown = data.clone();
        grown[3] ^= 0x01;
        assert!(matches!(
            scan(Format::V2, &grown, 0).1,
            End::Damaged { at: 0, .. }
        ));
    }

    #[test]
    fn salvage_keeps_every_valid_frame_around_the_damage() {
        let data = file(Format::V2, &[b"first record", b"second record", b"third"]);
        let mut damaged = data.clone();
        damaged[14] ^= 0xff;
        let (frames, skipped) = salvage(Format::V2, &damaged, 0);
        let payloads: Vec<&[u8]> = frames.iter().map(|f| f.payload).collect();
        assert_eq!(payloads, vec![&b"second record"[..], b"third"]);
        assert_eq!(skipped, 12 + 12);
    }
}
