//! Durable timers: user timers, task timeouts, retry backoffs. Each entry refers to state in a
//! run; when it fires the engine checks that state and ignores entries that went stale, so
//! entries are never removed early. The queue is rebuilt from mutable state at start-up.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::RunKey;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerTask {
    UserTimer {
        key: RunKey,
        timer_id: String,
        started_event_id: i64,
    },
    WorkflowTaskTimeout {
        key: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    },
    RetentionExpired {
        key: RunKey,
    },
    StickyScheduleToStart {
        key: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    },
    WorkflowBackoff {
        key: RunKey,
    },
    WorkflowRunTimeout {
        key: RunKey,
    },
    ActivityRetry {
        key: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    },
    ActivityStartToClose {
        key: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    },
    ActivityHeartbeat {
        key: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    },
    ActivityScheduleToStart {
        key: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    },
    ActivityScheduleToClose {
        key: RunKey,
        scheduled_event_id: i64,
    },
    ScheduleWake {
        namespace: String,
        schedule_id: String,
    },
    /// A Nexus operation's attempt in flight reaches its deadline.
    NexusAttemptTimeout {
        key: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// A Nexus operation's backoff ends.
    NexusRetry {
        key: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// One of a Nexus operation's timeouts may have passed.
    NexusTimeout {
        key: RunKey,
        scheduled_event_id: i64,
    },
    /// An attempt to cancel a Nexus operation reaches its deadline.
    NexusCancelAttemptTimeout {
        key: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// The backoff before the next attempt to cancel a Nexus operation ends.
    NexusCancelRetry {
        key: RunKey,
        scheduled_event_id: i64,
        attempt: i32,
    },
}

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    due_ms: i64,
    seq: u64,
    task: TimerTask,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due_ms, self.seq).cmp(&(other.due_ms, other.seq))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Default)]
pub struct TimerQueue {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

impl TimerQueue {
    /// Adds a timer; returns true when it became the earliest one (the timer loop must wake).
    pub fn push(&mut self, due_ms: i64, task: TimerTask) -> bool {
        self.seq += 1;
        let earliest = self.next_due().is_none_or(|d| due_ms < d);
        self.heap.push(Reverse(Entry {
            due_ms,
            seq: self.seq,
            task,
        }));
        earliest
    }

    pub fn next_due(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse(e)| e.due_ms)
    }

    pub fn pop_due(&mut self, now_ms: i64) -> Option<TimerTask> {
        if self.next_due()? <= now_ms {
            self.heap.pop().map(|Reverse(e)| e.task)
        } else {
            None
        }
    }
}
