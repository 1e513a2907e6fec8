//! Conversions between protobuf times and milliseconds since the epoch. Durations and
//! timestamps from requests are clamped to protobuf's range, so arithmetic on them never
//! overflows.

use prost_wkt_types::{Duration, Timestamp};

pub fn ts_from_millis(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// The largest duration protobuf allows (about 10,000 years). Durations and timestamps from
/// requests are clamped to it, so adding one to the current time never overflows.
const MAX_PROTO_SECONDS: i64 = 315_576_000_000;

/// Milliseconds of `seconds` and `nanos`, with `seconds` clamped to protobuf's range.
fn clamped_millis(seconds: i64, nanos: i32) -> i64 {
    seconds.clamp(-MAX_PROTO_SECONDS, MAX_PROTO_SECONDS) * 1000 + (nanos as i64) / 1_000_000
}

pub fn ts_millis(ts: &Timestamp) -> i64 {
    clamped_millis(ts.seconds, ts.nanos)
}

pub fn opt_ts_millis(ts: &Option<Timestamp>) -> i64 {
    ts.as_ref().map(ts_millis).unwrap_or(0)
}

/// Milliseconds in a protobuf duration; absent or negative durations count as zero.
pub fn dur_millis(d: &Option<Duration>) -> i64 {
    match d {
        Some(d) => clamped_millis(d.seconds, d.nanos).max(0),
        None => 0,
    }
}

pub fn dur_from_millis(ms: i64) -> Duration {
    Duration {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

pub fn is_negative(d: &Option<Duration>) -> bool {
    matches!(d, Some(d) if d.seconds < 0 || d.nanos < 0)
}
