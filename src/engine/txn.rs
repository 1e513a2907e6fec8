//! One transaction per operation.
//!
//! An operation runs under the engine lock inside [`super::Engine::with_core`]. While it runs it
//! changes runs and schedules in memory and says so with [`Core::changed`] and
//! [`Core::changed_schedule`]; other records (namespaces, deletions) it adds with
//! [`Core::log`]. When the operation ends, `with_core` calls [`Core::end_operation`], the only
//! place anything is committed: each changed run's staged events move into its history and its
//! state is encoded once, in the order things were first changed, and everything goes to the
//! store as one frame (a crash keeps all of it or none). Marking a run changed twice is
//! harmless, so a helper that changes a run marks it itself.

use std::collections::HashSet;

use prost::Message;

use super::schedules::ScheduleKey;
use super::{ChangeKind, Core, ExecutionChange, RunKey};
use crate::store::{LogRecord, ShardedRecord, encode_execution_delta, log_record};

/// What the operation in progress wrote, in order.
enum Entry {
    Record(ShardedRecord),
    /// A changed run; encoded at the end of the operation.
    Run(RunKey),
    /// A changed schedule; encoded at the end of the operation.
    Schedule(ScheduleKey),
}

/// The staged writes of the operation in progress.
#[derive(Default)]
pub(crate) struct Transaction {
    entries: Vec<Entry>,
    runs: HashSet<RunKey>,
    schedules: HashSet<ScheduleKey>,
}

impl Core {
    /// The run at `key` changed in this operation: its state and staged events are written
    /// when the operation ends, once, in the order runs were first changed (a closed run
    /// before the run that continues it, so replay makes the new one current).
    pub(crate) fn changed(&mut self, key: &RunKey) {
        if !self.txn.runs.contains(key) {
            self.txn.runs.insert(key.clone());
            self.txn.entries.push(Entry::Run(key.clone()));
        }
    }

    /// The schedule at `key` changed in this operation (written when it ends).
    pub(crate) fn changed_schedule(&mut self, key: &ScheduleKey) {
        if !self.txn.schedules.contains(key) {
            self.txn.schedules.insert(key.clone());
            self.txn.entries.push(Entry::Schedule(key.clone()));
        }
    }

    /// Adds a record to the operation in progress.
    pub(crate) fn log(&mut self, record: LogRecord) {
        let shard = self.record_shard(&record);
        self.txn
            .entries
            .push(Entry::Record((shard, record.encode_to_vec().into())));
    }

    /// Ends the operation: commits everything it changed and hands the records to the store
    /// as one frame. Only [`super::Engine::with_core`] calls this.
    pub(super) fn end_operation(&mut self) {
        // The sets and the list keep their capacity from one operation to the next: this
        // runs once per RPC.
        self.txn.runs.clear();
        self.txn.schedules.clear();
        let mut entries = std::mem::take(&mut self.txn.entries);
        let mut records = Vec::with_capacity(entries.len());
        for entry in entries.drain(..) {
            match entry {
                Entry::Record(record) => records.push(record),
                Entry::Run(key) => records.extend(self.commit_run(&key)),
                Entry::Schedule(key) => {
                    if let Some(s) = self.schedules.get(&key) {
                        let record = LogRecord {
                            kind: Some(log_record::Kind::Schedule(s.record.clone())),
                        };
                        records.push((self.record_shard(&record), record.encode_to_vec().into()));
                    }
                }
            }
        }
        self.txn.entries = entries;
        if !records.is_empty() {
            self.records_in_log += 1;
            self.note_logged(&records);
            self.store.append(records);
        }
    }

    /// Moves a run's staged events into its history, counts one state transition and
    /// returns the run's record; then tells watchers what changed. None when the run is gone
    /// (deleted later in the same operation).
    fn commit_run(&mut self, key: &RunKey) -> Option<ShardedRecord> {
        if self.runs.get(key).is_some_and(|r| r.archived) {
            self.unarchive(key);
        }
        let run = self.runs.get_mut(key)?;
        run.ms.state_transition_count += 1;
        let committed = run.history.len();
        run.history.push_all(&std::mem::take(&mut run.staged));
        if !run.is_open() {
            run.history.shrink_to_fit();
        }
        let elided = run.logged.elide(&mut run.ms, &mut self.last_log_handle);
        let record = encode_execution_delta(
            &run.ms,
            run.history.encoded_from(committed),
            Some(elided.removed()),
            elided.handle(),
        );
        super::kept_fields::put_back(&mut run.ms, elided);
        let shard = crate::store::shard_of(self.shard_count, &key.namespace, &key.workflow_id);
        run.publish_progress();
        if std::mem::take(&mut run.updates_dirty) || !run.is_open() {
            run.publish_updates_changed();
        }
        let mut closed = false;
        for kind in run.changes.drain(..) {
            closed |= matches!(kind, ChangeKind::Closed { .. });
            let _ = self.changes.send(ExecutionChange {
                key: key.clone(),
                kind,
            });
        }
        if closed {
            self.note_closed(key);
        }
        Some((Some(shard), record.into()))
    }
}
