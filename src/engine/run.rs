//! One workflow run in memory: its persisted mutable state, its history, and what is staged
//! for the next commit.

use std::sync::OnceLock;

use prost::Message;
use temporalio_protos::temporal::api::common::v1::WorkflowExecution;
use temporalio_protos::temporal::api::history::v1::HistoryEvent;
use temporalio_protos::temporal::api::history::v1::history_event::Attributes;
use tokio::sync::watch;

use super::encoded_history::EncodedHistory;
use super::query::PendingQuery;
use super::state::MutableState;
use super::{ChangeKind, events, is_running};

/// What history long-polls wait on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunProgress {
    pub next_event_id: i64,
    pub closed: bool,
    /// The run's state transition count (standalone activities, which have no history, are
    /// long-polled by it).
    pub transitions: i64,
}

pub struct Run {
    pub ms: MutableState,
    /// Durable (or committed and about to be) history, in event-id order.
    pub history: EncodedHistory,
    /// Events appended by the change in progress; moved to `history` at commit.
    pub(crate) staged: Vec<HistoryEvent>,
    pub(crate) changes: Vec<ChangeKind>,
    /// Created when the first long poll waits on the run (most runs never have one: a sleeping
    /// run should not carry a channel; see `subscribe_progress`).
    progress: OnceLock<watch::Sender<RunProgress>>,
    /// Queries waiting for an answer (kept in memory only; callers retry after a restart).
    pub(crate) queries: Vec<PendingQuery>,
    /// Bumped at commit whenever an update changed stage; update callers wait on it. Created
    /// by the first caller (`subscribe_updates`).
    updates_changed: OnceLock<watch::Sender<u64>>,
    pub(crate) updates_dirty: bool,
    /// Read back from the archive (its archived copy is current).
    pub(crate) archived: bool,
    /// Being written to the archive.
    pub(crate) archiving: bool,
    /// What the log holds of the fields its records leave out when unchanged (see
    /// `kept_fields.rs`).
    pub(crate) logged: super::kept_fields::LoggedFields,
}

impl Run {
    pub fn new(ms: MutableState) -> Self {
        Self {
            ms,
            history: EncodedHistory::default(),
            staged: Vec::new(),
            changes: Vec::new(),
            progress: OnceLock::new(),
            queries: Vec::new(),
            updates_changed: OnceLock::new(),
            updates_dirty: false,
            archived: false,
            archiving: false,
            logged: Default::default(),
        }
    }

    /// A run rebuilt from its frozen form (see `run_table.rs`): state, history and what the
    /// log holds of it; nothing else was kept, as only a quiet run is frozen.
    pub(crate) fn thawed(
        ms: MutableState,
        events: &[Vec<u8>],
        logged: super::kept_fields::LoggedFields,
    ) -> Self {
        let mut run = Self::new(ms);
        run.history.push_all_encoded(events);
        run.logged = logged;
        run
    }

    /// Whether the run holds nothing in memory besides its state and history: no change in
    /// progress, nobody waiting on it, no query pending, not being archived. Only such a run
    /// may be frozen (see `run_table.rs`).
    pub(crate) fn is_quiet(&self) -> bool {
        self.staged.is_empty()
            && self.changes.is_empty()
            && self.queries.is_empty()
            && !self.updates_dirty
            && !self.archived
            && !self.archiving
            && self.progress.get().is_none_or(|p| p.receiver_count() == 0)
            && (self.updates_changed.get()).is_none_or(|u| u.receiver_count() == 0)
    }

    pub fn is_open(&self) -> bool {
        is_running(&self.ms)
    }

    /// Whether this is a standalone activity execution rather than a workflow run.
    pub fn is_standalone_activity(&self) -> bool {
        self.ms.standalone_activity.is_some()
    }

    /// Whether this is a standalone Nexus operation rather than a workflow run.
    pub fn is_standalone_nexus(&self) -> bool {
        self.ms.standalone_nexus.is_some()
    }

    /// Whether this is a standalone execution (activity or Nexus operation): no history, no
    /// workflow tasks.
    pub fn is_standalone(&self) -> bool {
        self.is_standalone_activity() || self.is_standalone_nexus()
    }

    pub fn execution(&self) -> WorkflowExecution {
        WorkflowExecution {
            workflow_id: self.ms.workflow_id.clone(),
            run_id: self.ms.run_id.clone(),
        }
    }

    pub fn task_queue(&self) -> String {
        task_queue_of(&self.ms)
    }

    pub fn wft_started(&self) -> bool {
        self.ms
            .workflow_task
            .as_ref()
            .is_some_and(|w| w.started_event_id != 0)
    }

    /// Appends an event that happened at `now` (the operation's time) to history and
    /// returns its id.
    pub fn append(&mut self, now: i64, attrs: Attributes) -> i64 {
        self.append_with_metadata(now, attrs, None)
    }

    /// Appends an event carrying the summary and details its command or request gave.
    pub fn append_with_metadata(
        &mut self,
        now: i64,
        attrs: Attributes,
        user_metadata: Option<temporalio_protos::temporal::api::sdk::v1::UserMetadata>,
    ) -> i64 {
        let mut event = events::new_event(attrs, now);
        event.user_metadata = user_metadata;
        let id = self.ms.next_event_id;
        event.event_id = id;
        self.ms.next_event_id += 1;
        self.ms.history_size_bytes += event.encoded_len() as i64;
        self.staged.push(event);
        id
    }

    /// Moves buffered events into history: activity outcomes after everything else, with
    /// `started_event_id` wired to the matching `ActivityTaskStarted`. Returns how many moved.
    pub fn flush_buffer(&mut self) -> usize {
        if self.ms.buffered.is_empty() {
            return 0;
        }
        let buffered = std::mem::take(&mut self.ms.buffered);
        let count = buffered.len();
        let (outcomes, others): (Vec<_>, Vec<_>) =
            buffered.into_iter().partition(events::is_outcome);
        let mut started_ids = std::collections::HashMap::new();
        let mut child_started_ids = std::collections::HashMap::new();
        for event in others {
            let activity = match &event.attributes {
                Some(Attributes::ActivityTaskStartedEventAttributes(a)) => {
                    Some(a.scheduled_event_id)
                }
                _ => None,
            };
            let child = match &event.attributes {
                Some(Attributes::ChildWorkflowExecutionStartedEventAttributes(c)) => {
                    Some(c.initiated_event_id)
                }
                _ => None,
            };
            let id = self.append_event(event);
            if let Some(sched) = activity {
                started_ids.insert(sched, id);
            }
            if let Some(initiated) = child {
                child_started_ids.insert(initiated, id);
                if let Some(info) = self.ms.children.get_mut(&initiated) {
                    info.started_event_id = id;
                }
            }
        }
        for mut event in outcomes {
            if let Some(sched) = events::activity_scheduled_id(&event)
                && let Some(started) = started_ids.get(&sched)
            {
                events::set_activity_started_id(&mut event, *started);
            }
            events::wire_child_started_id(&mut event, &child_started_ids);
            self.append_event(event);
        }
        count
    }

    fn append_event(&mut self, mut event: HistoryEvent) -> i64 {
        let id = self.ms.next_event_id;
        event.event_id = id;
        self.ms.next_event_id += 1;
        self.ms.history_size_bytes += event.encoded_len() as i64;
        self.staged.push(event);
        id
    }

    fn current_progress(&self) -> RunProgress {
        RunProgress {
            next_event_id: self.ms.next_event_id,
            closed: !self.is_open(),
            transitions: self.ms.state_transition_count,
        }
    }

    /// Tells long polls waiting on the run where it is now.
    pub(crate) fn publish_progress(&self) {
        if let Some(progress) = self.progress.get() {
            progress.send_replace(self.current_progress());
        }
    }

    /// A receiver that sees the run's progress from now on (its current value first).
    pub(crate) fn subscribe_progress(&self) -> watch::Receiver<RunProgress> {
        self.progress
            .get_or_init(|| watch::channel(self.current_progress()).0)
            .subscribe()
    }

    /// Tells update callers that an update changed stage (or the run closed).
    pub(crate) fn publish_updates_changed(&self) {
        if let Some(changed) = self.updates_changed.get() {
            changed.send_modify(|n| *n += 1);
        }
    }

    /// A receiver that changes whenever an update of the run changes stage.
    pub(crate) fn subscribe_updates(&self) -> watch::Receiver<u64> {
        self.updates_changed
            .get_or_init(|| watch::channel(0).0)
            .subscribe()
    }

    /// All events with id >= `from`, including ones staged but not yet committed.
    pub fn events_from(&self, from: i64) -> impl Iterator<Item = HistoryEvent> + '_ {
        let start = (from.max(1) - 1) as usize;
        let committed = self.history.len();
        let staged_from = start.saturating_sub(committed);
        self.history
            .iter_from(start)
            .chain(self.staged.iter().skip(staged_from).cloned())
    }

    pub fn last_event(&self) -> Option<HistoryEvent> {
        self.staged.last().cloned().or_else(|| self.history.last())
    }
}

/// The task queue a run's workflow tasks go to.
pub(crate) fn task_queue_of(ms: &MutableState) -> String {
    (ms.started.as_ref())
        .and_then(|s| s.task_queue.as_ref())
        .map(|t| t.name.clone())
        .unwrap_or_default()
}
