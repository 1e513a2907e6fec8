//! How long a store's writer holds a batch open for more records before it syncs.
//!
//! A writer syncs whatever queued while the last sync ran, so on a fast disk under load its
//! batches stay small: a sync of a few hundred microseconds gathers a few operations, and
//! every sync costs kernel time, a disk flush and the wake-ups of everyone waiting on it. When
//! the last batch showed that others write concurrently, the writer waits up to as long as
//! the last sync took before writing: the batch about doubles, the syncs per operation about
//! halve, and no operation waits longer for durability than it did before by more than one
//! sync's time (at most [`MAX_HOLD`]). Alone (one operation at a time) nothing waits. The writer sleeps rather than blocking on its queue, so records
//! queued meanwhile wake nobody.

use std::time::{Duration, Instant};

/// The longest a batch is held open, whatever a sync took (a slow disk makes batches large
/// by itself).
pub(crate) const MAX_HOLD: Duration = Duration::from_millis(1);

/// What the writer learnt from its last batch.
#[derive(Debug, Default)]
pub(crate) struct Pacing {
    last_appends: usize,
    last_sync: Duration,
}

impl Pacing {
    /// How much longer a batch begun at `started` should wait for more appends, if at all.
    pub fn hold_left(&self, started: Instant, now: Instant) -> Option<Duration> {
        if self.last_appends < 2 {
            return None;
        }
        let hold = self.last_sync.min(MAX_HOLD);
        hold.checked_sub(now.saturating_duration_since(started))
            .filter(|left| !left.is_zero())
    }

    /// Records a batch of `appends` operations whose write and sync took `took`.
    pub fn synced(&mut self, appends: usize, took: Duration) {
        self.last_appends = appends;
        self.last_sync = took;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_writer_never_waits() {
        let mut pacing = Pacing::default();
        let now = Instant::now();
        assert_eq!(pacing.hold_left(now, now), None);
        pacing.synced(1, Duration::from_micros(500));
        assert_eq!(pacing.hold_left(now, now), None);
    }

    #[test]
    fn concurrent_writers_wait_as_long_as_a_sync_took_at_most() {
        let mut pacing = Pacing::default();
        pacing.synced(4, Duration::from_micros(400));
        let started = Instant::now();
        assert_eq!(
            pacing.hold_left(started, started),
            Some(Duration::from_micros(400))
        );
        let later = started + Duration::from_micros(150);
        assert_eq!(
            pacing.hold_left(started, later),
            Some(Duration::from_micros(250))
        );
        assert_eq!(
            pacing.hold_left(started, started + Duration::from_micros(400)),
            None
        );
        pacing.synced(4, Duration::from_millis(30));
        assert_eq!(pacing.hold_left(started, started), Some(MAX_HOLD));
    }
}
