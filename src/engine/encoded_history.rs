//! A run's history kept in memory as encoded protobuf rather than as decoded messages.
//!
//! A decoded `HistoryEvent` is a 2 KiB struct before any of its strings or payloads; encoded,
//! a typical event is under 200 bytes. History is read far less often than it is appended
//! (a worker without the run cached, `GetWorkflowExecutionHistory`), so events are decoded
//! only when read.

use prost::Message;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;

/// Histories up to this many bytes are kept without spare capacity (see `reserve`).
const EXACT_UP_TO: usize = 4096;

#[derive(Default)]
pub struct EncodedHistory {
    bytes: Vec<u8>,
    /// Where each event ends in `bytes`.
    ends: Vec<u32>,
}

impl EncodedHistory {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn push(&mut self, event: &HistoryEvent) {
        // Encoding into a Vec cannot fail.
        let _ = event.encode(&mut self.bytes);
        self.ends.push(self.bytes.len() as u32);
    }

    /// Appends events, reserving room for all of them first (see `reserve`; a history past
    /// the exact size grows as usual without measuring the events first).
    pub fn push_all(&mut self, events: &[HistoryEvent]) {
        if self.bytes.len() <= EXACT_UP_TO {
            self.reserve(events.iter().map(|e| e.encoded_len()).sum(), events.len());
        }
        for event in events {
            self.push(event);
        }
    }

    /// Appends encoded events, reserving room for all of them first (see `reserve`).
    pub fn push_all_encoded(&mut self, events: &[Vec<u8>]) {
        self.reserve(events.iter().map(Vec::len).sum(), events.len());
        for event in events {
            self.push_encoded(event);
        }
    }

    /// Room for `bytes` more bytes in `events` more events. A small history — most runs in
    /// memory, a sleeping one among them — takes exactly what it holds, since doubling would
    /// leave up to half of it empty for the life of the run; a larger one grows geometrically,
    /// so appending to it stays cheap.
    fn reserve(&mut self, bytes: usize, events: usize) {
        if self.bytes.len() + bytes <= EXACT_UP_TO {
            self.bytes.reserve_exact(bytes);
            self.ends.reserve_exact(events);
        } else {
            self.bytes.reserve(bytes);
            self.ends.reserve(events);
        }
    }

    /// Appends an event that is already encoded.
    pub fn push_encoded(&mut self, encoded: &[u8]) {
        self.bytes.extend_from_slice(encoded);
        self.ends.push(self.bytes.len() as u32);
    }

    /// The encoded bytes of the event at `index` (0-based).
    pub fn encoded(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)? as usize;
        let start = match index {
            0 => 0,
            i => self.ends[i - 1] as usize,
        };
        self.bytes.get(start..end)
    }

    /// The event at `index` (0-based), decoded.
    pub fn get(&self, index: usize) -> Option<HistoryEvent> {
        // The bytes were produced by `encode` above, so decoding only fails on a bug; such an
        // event is skipped rather than taking the server down.
        HistoryEvent::decode(self.encoded(index)?).ok()
    }

    pub fn last(&self) -> Option<HistoryEvent> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// Events from `index` (0-based) on, decoded.
    pub fn iter_from(&self, index: usize) -> impl Iterator<Item = HistoryEvent> + '_ {
        (index..self.len()).filter_map(|i| self.get(i))
    }

    /// Encoded events from `index` (0-based) on.
    pub fn encoded_from(&self, index: usize) -> impl Iterator<Item = &[u8]> + Clone + '_ {
        (index..self.len()).filter_map(|i| self.encoded(i))
    }

    /// Gives back spare capacity (for runs that will not grow again).
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_by_index() {
        let mut h = EncodedHistory::default();
        for id in 1..=5 {
            h.push(&HistoryEvent {
                event_id: id,
                ..Default::default()
            });
        }
        assert_eq!(h.len(), 5);
        assert_eq!(h.get(0).map(|e| e.event_id), Some(1));
        assert_eq!(h.last().map(|e| e.event_id), Some(5));
        let ids: Vec<i64> = h.iter_from(2).map(|e| e.event_id).collect();
        assert_eq!(ids, vec![3, 4, 5]);
        assert!(h.get(5).is_none());
        let copy = {
            let mut c = EncodedHistory::default();
            for e in h.encoded_from(0) {
                c.push_encoded(e);
            }
            c
        };
        assert_eq!(copy.last().map(|e| e.event_id), Some(5));
    }
}
