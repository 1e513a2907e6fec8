//! Shards moving between replicas: adopting one loads its records and re-arms its queues and
//! timers; releasing one drops its state from memory (its timers and queued task references
//! then find nothing and are skipped).

use crate::store::LogRecord;

use super::timers::TimerTask;
use super::{Core, Engine};

impl Engine {
    /// Starts serving `shard` from its stored records (its lease is already held). A damaged
    /// shard is not served: what was loaded of it is dropped and the damage returned.
    pub fn adopt_shard(
        &self,
        shard: u32,
        records: Vec<LogRecord>,
    ) -> Result<(), crate::store::StoreError> {
        let mut core = self.core.lock();
        core.owned_shards.insert(shard);
        core.records_in_log += records.len() as u64;
        let freeze = self.config.freeze_idle_after.is_some();
        let damage = (records.into_iter().zip(1..))
            .find_map(|(record, count)| core.replay_loaded(record, count, freeze).err());
        core.end_replay();
        if let Some(damage) = damage {
            drop(core);
            tracing::error!(shard, %damage, "the shard's records are damaged; not serving it");
            self.release_shard(shard);
            return Err(crate::store::StoreError::Corrupt(damage));
        }
        core.rearm_where(|s| s == shard);
        tracing::info!(shard, runs = core.runs.len(), "serving shard");
        Ok(())
    }

    /// Stops serving `shard`. Returns the log position to wait for before its lease may go:
    /// everything written to it so far.
    pub fn release_shard(&self, shard: u32) -> crate::store::Lsn {
        let mut core = self.core.lock();
        core.owned_shards.remove(&shard);
        let count = core.shard_count;
        let in_shard =
            |namespace: &str, id: &str| crate::store::shard_of(count, namespace, id) == shard;
        core.runs
            .retain_keys(|k| !in_shard(&k.namespace, &k.workflow_id));
        core.current.retain(|(ns, id), _| !in_shard(ns, id));
        core.schedules.retain(|(ns, id), _| !in_shard(ns, id));
        core.batches.retain(|(ns, id), _| !in_shard(ns, id));
        tracing::info!(shard, runs = core.runs.len(), "stopped serving shard");
        self.store.last_lsn()
    }

    /// Hands a task fetched from another replica to a poller here.
    pub fn push_fetched(&self, queue: super::matching::QueueKey, task: super::matching::ReadyTask) {
        self.core
            .lock()
            .matching
            .push(queue, super::matching::TaskRef::Ready(Box::new(task)));
    }

    /// Whether fetching for `queue` should go on: a client polled it here lately and no
    /// fetched task is still waiting for a poller.
    pub fn wants_fetch(&self, queue: &super::matching::QueueKey) -> (bool, bool) {
        let core = self.core.lock();
        (
            core.matching.is_live(queue, self.now()),
            core.matching.fetched_len(queue) == 0,
        )
    }

    /// Whether this replica serves `shard`.
    pub fn owns_shard(&self, shard: u32) -> bool {
        self.core.lock().owned_shards.contains(&shard)
    }

    /// Shards served here, and operations owed to runs in other replicas' shards that are not
    /// acknowledged yet (for metrics).
    pub fn cluster_snapshot(&self) -> (usize, usize) {
        let core = self.core.lock();
        let pending = (core.runs.live_iter())
            .map(|(_, r)| r.ms.outbox.len())
            .sum::<usize>()
            + core
                .schedules
                .values()
                .map(|s| s.record.outbox.len())
                .sum::<usize>();
        (core.owned_shards.len(), pending)
    }

    /// The shards this replica serves.
    pub fn owned_shards(&self) -> Vec<u32> {
        self.core.lock().owned_shards.iter().copied().collect()
    }

    /// Waits until everything written so far is durable (or refused).
    pub async fn settle(&self, lsn: crate::store::Lsn) {
        let _ = self.store.wait_durable(lsn).await;
    }
}

impl Core {
    /// Re-creates queue entries and timers for the runs and schedules in the shards `pick`
    /// selects (after a restart, or when a shard moves here).
    pub(crate) fn rearm_where(&mut self, pick: impl Fn(u32) -> bool) {
        // Frozen runs stay frozen: each is decoded once, for the moment, by `rearm_run`.
        let keys: Vec<(super::RunKey, bool)> = self
            .runs
            .open_flags()
            .filter(|(k, _)| pick(self.shard_of(&k.namespace, &k.workflow_id)))
            .map(|(k, open)| (k.clone(), open))
            .collect();
        for (key, open) in keys {
            self.requeue_transfers(&key);
            self.requeue_outside_callbacks(&key);
            if open {
                self.rearm_run(&key);
            } else {
                self.arm_retention(&key);
                self.note_closed(&key);
            }
        }
        let schedules: Vec<(String, String)> = self
            .schedules
            .keys()
            .filter(|(ns, id)| pick(self.shard_of(ns, id)))
            .cloned()
            .collect();
        for (namespace, schedule_id) in schedules {
            self.requeue_schedule_transfers(&(namespace.clone(), schedule_id.clone()));
            // Times missed while down are taken now (the catch-up window decides).
            self.push_timer(
                self.now(),
                TimerTask::ScheduleWake {
                    namespace,
                    schedule_id,
                },
            );
        }
    }
}
