//! The engine and its log: rebuilding the state from the records at start-up (or when a
//! replica adopts a shard), and which shard a record belongs to. Rewriting the log as one
//! record per live object is `compaction.rs`.

use super::state::MutableState;
use super::{Core, Error, Result, Run, RunKey, clock};
use crate::store::{LogRecord, Shard, log_record};

/// At start-up the run table's clock ticks once per this many records replayed, and a run
/// freezes once its last record is `REPLAY_IDLE_TICKS` ticks behind: a run's records mostly
/// lie close together in the log (a compacted log holds one per run), so few thaw again.
pub(super) const REPLAY_TICK_RECORDS: u64 = 8192;
pub(super) const REPLAY_IDLE_TICKS: u32 = 4;

impl Core {
    /// Applies one record of the log (Err: the log is damaged).
    pub(super) fn replay(&mut self, record: LogRecord) -> std::result::Result<(), String> {
        match record.kind {
            Some(log_record::Kind::Namespace(ns)) => {
                if let Some(name) = ns
                    .namespace
                    .as_ref()
                    .and_then(|n| n.namespace_info.as_ref())
                    .map(|i| i.name.clone())
                {
                    // A deleted namespace's runs went with it (their own records say so).
                    if super::namespace_delete::is_tombstone(&ns) {
                        self.namespaces.remove(&name);
                        self.namespace_tombstones.insert(name, ns.version);
                    } else {
                        self.namespaces.insert(name, ns);
                    }
                }
            }
            Some(log_record::Kind::Execution(exec)) => {
                let Some(mut ms) = exec.state else {
                    return Ok(());
                };
                self.replay_handles.name(&mut ms, exec.handle)?;
                ms.upgrade_timers();
                let key = RunKey {
                    namespace: ms.namespace.clone(),
                    workflow_id: ms.workflow_id.clone(),
                    run_id: ms.run_id.clone(),
                };
                // The archive holds a closed run's final state; older log records of it are
                // superseded (they go at the next compaction).
                if self.archive.as_ref().is_some_and(|a| a.contains(&key)) {
                    return Ok(());
                }
                super::kept_fields::restore(
                    &mut ms,
                    self.runs.get_mut(&key).map(|r| &mut r.ms),
                    exec.removed.as_ref(),
                )?;
                // A run's first record is its start, and runs of one id are logged in the
                // order they start (a closed run's last record before the run that continues
                // it, see `txn.rs`), so a run seen for the first time is the newest unless it
                // started earlier (an archived run that changed comes back to the log late).
                // Later records of a run already seen never make it current again.
                let id_key = (key.namespace.clone(), key.workflow_id.clone());
                let newer = match self.current.get(&id_key) {
                    Some(cur) if *cur != key.run_id => {
                        !self.runs.contains_key(&key)
                            && self
                                .runs
                                .get(&RunKey {
                                    run_id: cur.clone(),
                                    ..key.clone()
                                })
                                .is_none_or(|r| {
                                    clock::opt_ts_millis(&r.ms.start_time)
                                        <= clock::opt_ts_millis(&ms.start_time)
                                })
                    }
                    _ => true,
                };
                if newer {
                    self.current.insert(id_key, key.run_id.clone());
                }
                let run = self
                    .runs
                    .get_or_insert_with(key, || Box::new(Run::new(MutableState::default())));
                run.ms = ms;
                run.history.push_all_encoded(&exec.new_events);
                run.publish_progress();
            }
            Some(log_record::Kind::Batch(batch)) => {
                for record in batch.records {
                    self.replay(record)?;
                }
            }
            Some(log_record::Kind::Deleted(d)) => {
                self.forget_run(&RunKey {
                    namespace: d.namespace,
                    workflow_id: d.workflow_id,
                    run_id: d.run_id,
                });
            }
            Some(log_record::Kind::Schedule(record)) => self.replay_schedule(record),
            Some(log_record::Kind::ScheduleDeleted(k)) => {
                self.schedules.remove(&(k.namespace, k.schedule_id));
            }
            Some(log_record::Kind::BatchJob(job)) => self.replay_batch(job),
            Some(log_record::Kind::NexusEndpoint(endpoint)) => self.replay_endpoint(endpoint),
            None => {}
        }
        Ok(())
    }

    /// Applies the `count`th record loaded at start-up. With `freeze`, runs whose records
    /// stopped coming a while ago in the log are frozen as the replay goes, so a log of a
    /// million runs is never held decoded all at once.
    pub(super) fn replay_loaded(
        &mut self,
        record: LogRecord,
        count: u64,
        freeze: bool,
    ) -> std::result::Result<(), String> {
        self.replay(record)?;
        if freeze && count.is_multiple_of(REPLAY_TICK_RECORDS) {
            self.runs.tick();
            self.runs.freeze_idle(REPLAY_IDLE_TICKS, None);
        }
        Ok(())
    }

    /// Forgets the handles of the records just replayed: the next records of every run name
    /// it again (its `logged` fields start empty), so they are not needed once loaded.
    pub(super) fn end_replay(&mut self) {
        self.replay_handles = Default::default();
    }

    /// The shard of an id (a workflow id, or a schedule id) in a namespace.
    pub(crate) fn shard_of(&self, namespace: &str, id: &str) -> u32 {
        crate::store::shard_of(self.shard_count, namespace, id)
    }

    /// Whether this replica serves the shard of `id` in `namespace`.
    pub(crate) fn owns(&self, namespace: &str, id: &str) -> bool {
        self.owned_shards.contains(&self.shard_of(namespace, id))
    }

    /// Fails when another replica serves the shard of `id` (it moved since the request was
    /// routed here).
    pub(crate) fn check_owned(&self, namespace: &str, id: &str) -> Result<()> {
        if self.owns(namespace, id) {
            Ok(())
        } else {
            Err(Error::Unavailable(format!(
                "shard {} of {id} is served by another replica now; retry",
                self.shard_of(namespace, id)
            )))
        }
    }

    pub(super) fn record_shard(&self, record: &LogRecord) -> Shard {
        match &record.kind {
            Some(log_record::Kind::Execution(e)) => e
                .state
                .as_ref()
                .map(|ms| self.shard_of(&ms.namespace, &ms.workflow_id)),
            Some(log_record::Kind::Deleted(d)) => Some(self.shard_of(&d.namespace, &d.workflow_id)),
            Some(log_record::Kind::Schedule(r)) => {
                Some(self.shard_of(&r.namespace, &r.schedule_id))
            }
            Some(log_record::Kind::ScheduleDeleted(k)) => {
                Some(self.shard_of(&k.namespace, &k.schedule_id))
            }
            Some(log_record::Kind::BatchJob(j)) => Some(self.shard_of(&j.namespace, &j.job_id)),
            Some(log_record::Kind::Namespace(_))
            | Some(log_record::Kind::NexusEndpoint(_))
            | Some(log_record::Kind::Batch(_))
            | None => None,
        }
    }
}
