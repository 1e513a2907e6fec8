//! Log records that carry only the changed entries of a run's keyed collections (pending
//! activities, timers, children, Nexus operations, updates). A run with a thousand pending
//! activities would otherwise write all of them at each change, so the bytes it logs would grow
//! with the square of its history.
//!
//! As with the fields of `kept_fields.rs`, what the log holds is known by a fingerprint per
//! entry (the same 128-bit SHA-256 prefix), taken from the encoded entry at each record, so no
//! code path can change an entry unseen. Small collections are written whole and not tracked:
//! below [`TRACK_FROM`] entries a delta saves little and the fingerprints would cost memory on
//! every run. A record that carries a delta sets the collection's bit in
//! `MutableState::kept_fields` and lists the entries gone since the run's previous record in
//! `ExecutionRecord::removed`; replay applies both to the previous record's collection.

use std::collections::BTreeMap;

use prost::Message;

use super::kept_fields::fingerprint;
use crate::store::RemovedEntries;
use crate::store::state::{MutableState, TimerInfo};

pub(crate) const ACTIVITIES: u32 = 32;
pub(crate) const TIMERS: u32 = 64;
pub(crate) const CHILDREN: u32 = 128;
pub(crate) const UPDATES: u32 = 256;
pub(crate) const NEXUS_OPERATIONS: u32 = 512;

/// A collection with at least this many entries has its entries' fingerprints kept and its
/// changes logged as deltas.
const TRACK_FROM: usize = 8;

/// The entries as the log last wrote them, sorted by key (`None`: not tracked, so the next
/// record writes the collection whole).
type Logged<K> = Option<Vec<(K, u128)>>;

/// Per collection, what the log holds of a run's entries.
#[derive(Default, Debug, Clone)]
pub(crate) struct LoggedEntries {
    activities: Logged<i64>,
    timers: Logged<i64>,
    children: Logged<i64>,
    updates: Logged<String>,
    nexus_operations: Logged<i64>,
}

/// The whole collections taken out of a state while a delta record of it is encoded.
#[derive(Default)]
pub(crate) struct Swapped {
    activities: Option<BTreeMap<i64, crate::store::state::ActivityInfo>>,
    timers: Option<Vec<TimerInfo>>,
    children: Option<BTreeMap<i64, crate::store::state::ChildInfo>>,
    updates: Option<BTreeMap<String, crate::store::state::UpdateInfo>>,
    nexus_operations: Option<BTreeMap<i64, crate::store::state::NexusOperationInfo>>,
    pub(crate) removed: RemovedEntries,
}

/// Which entries changed since the log last wrote them: the keys of new or changed entries
/// and of entries gone, or None when the collection is to be written whole. Updates `logged`
/// to `current` (sorted by key).
fn diff<K: Ord + Clone>(
    logged: &mut Logged<K>,
    current: Vec<(K, u128)>,
) -> Option<(Vec<K>, Vec<K>)> {
    let tracked = current.len() >= TRACK_FROM;
    let previous = std::mem::replace(logged, tracked.then_some(current));
    let previous = previous?;
    let current = logged.as_deref().unwrap_or_default();
    let (mut changed, mut removed) = (Vec::new(), Vec::new());
    let (mut old, mut new) = (previous.iter().peekable(), current.iter().peekable());
    loop {
        match (old.peek(), new.peek()) {
            (Some((ok, ofp)), Some((nk, nfp))) => match ok.cmp(nk) {
                std::cmp::Ordering::Less => {
                    removed.push(ok.clone());
                    old.next();
                }
                std::cmp::Ordering::Greater => {
                    changed.push(nk.clone());
                    new.next();
                }
                std::cmp::Ordering::Equal => {
                    if ofp != nfp {
                        changed.push(nk.clone());
                    }
                    old.next();
                    new.next();
                }
            },
            (Some((ok, _)), None) => {
                removed.push(ok.clone());
                old.next();
            }
            (None, Some((nk, _))) => {
                changed.push(nk.clone());
                new.next();
            }
            (None, None) => break,
        }
    }
    // Untracked now (too few entries): whole, and so the next record too.
    if !tracked {
        return None;
    }
    Some((changed, removed))
}

/// For a map: replaces it in `map` by its changed entries when a delta is smaller, returning
/// the whole map and noting the removed keys.
fn map_delta<K: Ord + Clone, V: Message + Clone>(
    logged: &mut Logged<K>,
    map: &mut BTreeMap<K, V>,
    removed: &mut Vec<K>,
) -> Option<BTreeMap<K, V>> {
    if logged.is_none() && map.len() < TRACK_FROM {
        return None;
    }
    let current = map
        .iter()
        .map(|(k, v)| (k.clone(), fingerprint(v)))
        .collect();
    let (changed, gone) = diff(logged, current)?;
    let partial = changed
        .into_iter()
        .filter_map(|k| map.get(&k).map(|v| (k, v.clone())))
        .collect();
    *removed = gone;
    Some(std::mem::replace(map, partial))
}

/// Whether any of the run's collections is large enough to be tracked.
pub(crate) fn any_tracked(ms: &MutableState) -> bool {
    [
        ms.activities.len(),
        ms.timers.len(),
        ms.children.len(),
        ms.updates.len(),
        ms.nexus_operations.len(),
    ]
    .into_iter()
    .any(|n| n >= TRACK_FROM)
}

impl LoggedEntries {
    /// Nothing is tracked (every collection is small).
    pub(crate) fn is_empty(&self) -> bool {
        self.activities.is_none()
            && self.timers.is_none()
            && self.children.is_none()
            && self.updates.is_none()
            && self.nexus_operations.is_none()
    }

    /// Replaces in `ms` each tracked collection by its changed entries, setting its bit in
    /// `kept`; [`put_back`] restores them once the record is encoded.
    pub(crate) fn elide(&mut self, ms: &mut MutableState, kept: &mut u32) -> Swapped {
        let mut out = Swapped::default();
        out.activities = map_delta(
            &mut self.activities,
            &mut ms.activities,
            &mut out.removed.activities,
        );
        out.children = map_delta(
            &mut self.children,
            &mut ms.children,
            &mut out.removed.children,
        );
        out.updates = map_delta(&mut self.updates, &mut ms.updates, &mut out.removed.updates);
        out.nexus_operations = map_delta(
            &mut self.nexus_operations,
            &mut ms.nexus_operations,
            &mut out.removed.nexus_operations,
        );
        out.timers = self.timers_delta(ms, &mut out.removed.timers);
        for (swapped, bit) in [
            (out.activities.is_some(), ACTIVITIES),
            (out.timers.is_some(), TIMERS),
            (out.children.is_some(), CHILDREN),
            (out.updates.is_some(), UPDATES),
            (out.nexus_operations.is_some(), NEXUS_OPERATIONS),
        ] {
            if swapped {
                *kept |= bit;
            }
        }
        out
    }

    /// Timers are a list, keyed by their started event id.
    fn timers_delta(
        &mut self,
        ms: &mut MutableState,
        removed: &mut Vec<i64>,
    ) -> Option<Vec<TimerInfo>> {
        if self.timers.is_none() && ms.timers.len() < TRACK_FROM {
            return None;
        }
        let mut current: Vec<(i64, u128)> = ms
            .timers
            .iter()
            .map(|t| (t.started_event_id, fingerprint(t)))
            .collect();
        current.sort_unstable_by_key(|(k, _)| *k);
        let (changed, gone) = diff(&mut self.timers, current)?;
        let partial = ms
            .timers
            .iter()
            .filter(|t| changed.binary_search(&t.started_event_id).is_ok())
            .cloned()
            .collect();
        *removed = gone;
        Some(std::mem::replace(&mut ms.timers, partial))
    }
}

/// Restores the whole collections [`LoggedEntries::elide`] swapped out.
pub(crate) fn put_back(ms: &mut MutableState, swapped: Swapped) {
    if let Some(v) = swapped.activities {
        ms.activities = v;
    }
    if let Some(v) = swapped.timers {
        ms.timers = v;
    }
    if let Some(v) = swapped.children {
        ms.children = v;
    }
    if let Some(v) = swapped.updates {
        ms.updates = v;
    }
    if let Some(v) = swapped.nexus_operations {
        ms.nexus_operations = v;
    }
}

/// Replaying a delta record: its collections become the previous record's with the removed
/// entries gone and the changed ones in place. `kept` holds the record's bits.
pub(crate) fn restore(
    ms: &mut MutableState,
    previous: &mut MutableState,
    kept: u32,
    removed: &RemovedEntries,
) {
    fn merge<K: Ord, V>(record: &mut BTreeMap<K, V>, previous: &mut BTreeMap<K, V>, gone: &[K]) {
        let changed = std::mem::replace(record, std::mem::take(previous));
        for k in gone {
            record.remove(k);
        }
        record.extend(changed);
    }
    if kept & ACTIVITIES != 0 {
        merge(
            &mut ms.activities,
            &mut previous.activities,
            &removed.activities,
        );
    }
    if kept & CHILDREN != 0 {
        merge(&mut ms.children, &mut previous.children, &removed.children);
    }
    if kept & UPDATES != 0 {
        merge(&mut ms.updates, &mut previous.updates, &removed.updates);
    }
    if kept & NEXUS_OPERATIONS != 0 {
        merge(
            &mut ms.nexus_operations,
            &mut previous.nexus_operations,
            &removed.nexus_operations,
        );
    }
    if kept & TIMERS != 0 {
        let changed = std::mem::take(&mut ms.timers);
        ms.timers = std::mem::take(&mut previous.timers);
        // Written sorted (`diff`).
        ms.timers.retain(|t| {
            removed.timers.binary_search(&t.started_event_id).is_err()
                && !changed
                    .iter()
                    .any(|c| c.started_event_id == t.started_event_id)
        });
        ms.timers.extend(changed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::state::UpdateInfo;

    fn timer(n: i64) -> TimerInfo {
        TimerInfo {
            timer_id: format!("t{n}"),
            started_event_id: n,
            ..Default::default()
        }
    }

    fn state(updates: usize, timers: i64) -> MutableState {
        MutableState {
            workflow_id: "wf".into(),
            updates: (0..updates)
                .map(|n| {
                    let info = UpdateInfo {
                        delivered_in: n as i64,
                        ..Default::default()
                    };
                    (format!("u{n}"), info)
                })
                .collect(),
            timers: (1..=timers).map(timer).collect(),
            ..Default::default()
        }
    }

    /// One record of `ms` as the log would hold it, and its removed entries.
    fn record(logged: &mut LoggedEntries, ms: &mut MutableState) -> (MutableState, RemovedEntries) {
        let mut kept = 0;
        let swapped = logged.elide(ms, &mut kept);
        let mut record = ms.clone();
        record.kept_fields = kept;
        let removed = swapped.removed.clone();
        put_back(ms, swapped);
        (record, removed)
    }

    fn replay(
        record: &MutableState,
        removed: &RemovedEntries,
        previous: &MutableState,
    ) -> MutableState {
        let mut ms = record.clone();
        let kept = std::mem::take(&mut ms.kept_fields);
        restore(&mut ms, &mut previous.clone(), kept, removed);
        ms.timers.sort_by_key(|t| t.started_event_id);
        ms
    }

    #[test]
    fn changed_entries_and_removed_keys_are_logged_and_replayed_whole() {
        let mut logged = LoggedEntries::default();
        let mut ms = state(10, 10);
        let (first, _) = record(&mut logged, &mut ms);
        assert_eq!((first.kept_fields, first.updates.len()), (0, 10), "whole");

        ms.updates.get_mut("u3").unwrap().stage = 2;
        ms.remove_timer("t4");
        ms.insert_timer(timer(11));
        let (second, removed) = record(&mut logged, &mut ms);
        assert_eq!(second.kept_fields, UPDATES | TIMERS);
        assert_eq!(second.updates.keys().collect::<Vec<_>>(), ["u3"]);
        assert_eq!(second.timers, [timer(11)]);
        assert_eq!(removed.timers, [4]);
        assert!(second.activities.is_empty() && removed.updates.is_empty());
        let replayed = replay(&second, &removed, &first);
        assert!(replayed == ms, "{replayed:?}");

        // Unchanged: nothing of them is written; replay still whole.
        let (third, removed) = record(&mut logged, &mut ms);
        assert!(third.updates.is_empty() && third.timers.is_empty() && removed.is_empty());
        assert!(replay(&third, &removed, &replayed) == ms);
    }

    #[test]
    fn a_collection_below_the_threshold_is_written_whole() {
        let mut logged = LoggedEntries::default();
        let mut ms = state(TRACK_FROM, 0);
        let (_, _) = record(&mut logged, &mut ms);
        ms.updates.remove("u0");
        // Now below the threshold: whole (the removed one simply is not there), and untracked.
        let (second, removed) = record(&mut logged, &mut ms);
        assert_eq!(
            (second.kept_fields, second.updates.len()),
            (0, TRACK_FROM - 1)
        );
        assert!(removed.is_empty() && logged.updates.is_none());
    }
}
