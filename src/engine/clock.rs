//! The engine's clock, and time conversions. Durin stores absolute times so timers survive
//! restarts.
//!
//! The engine reads the time only through the [`Clock`] it was opened with: the system clock
//! in a server, a [`ManualClock`] in tests of timers, timeouts, retries and schedules, which
//! then run without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prost_wkt_types::{Duration, Timestamp};

/// Where the engine gets the current time from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;
}

/// The machine's wall clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        system_now_millis()
    }
}

/// A clock that moves only when told to (for tests).
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        Self(AtomicI64::new(now_ms))
    }

    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The wall clock, for code outside the engine (the engine asks its [`Clock`]).
pub fn system_now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

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
