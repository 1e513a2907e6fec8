//! The engine's clock, and time conversions. Durin stores absolute times so timers survive
//! restarts.
//!
//! The engine reads the time only through the [`Clock`] it was opened with: the system clock
//! in a server, a [`ManualClock`] in tests of timers, timeouts, retries and schedules, which
//! then run without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

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

/// A new run id at `now_ms` on the engine's clock: a version-7 (time-ordered) UUID, as
/// Temporal makes them (the SDKs' tests check the version).
pub fn run_id_at(now_ms: i64) -> String {
    let now = now_ms.max(0);
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        (now / 1000) as u64,
        ((now % 1000) * 1_000_000) as u32,
    );
    uuid::Uuid::new_v7(ts).to_string()
}

/// The wall clock, for code outside the engine (the engine asks its [`Clock`]).
pub fn system_now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub use crate::time::{
    dur_from_millis, dur_millis, is_negative, opt_ts_millis, ts_from_millis, ts_millis,
};
