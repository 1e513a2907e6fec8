//! Retention: a closed run is removed once its namespace's retention period has passed. The
//! removal is logged, so the run stays gone after a restart and compaction drops it.

use super::timers::TimerTask;
use super::{Core, RunKey, clock};
use crate::store::{DeletedRun, LogRecord, log_record};

impl Core {
    pub(crate) fn retention_ms(&self, namespace: &str) -> Option<i64> {
        self.namespaces
            .get(namespace)
            .and_then(|n| n.namespace.as_ref())
            .and_then(|n| n.config.as_ref())
            .map(|c| clock::dur_millis(&c.workflow_execution_retention_ttl))
            .filter(|ms| *ms > 0)
    }

    /// Schedules the removal of a closed run once its namespace's retention has passed.
    pub(crate) fn arm_retention(&mut self, key: &RunKey) {
        let Some(run) = self.runs.get(key) else {
            return;
        };
        if let (Some(retention), Some(_)) = (self.retention_ms(&key.namespace), &run.ms.close_time)
        {
            let due = clock::opt_ts_millis(&run.ms.close_time) + retention;
            // A run archived before then expires with its archive segment instead, so no
            // timer (and no memory) is kept per retained run.
            if let Some(after) = self.archive_after_ms()
                && due > self.now() + after
            {
                return;
            }
            self.push_timer(due, TimerTask::RetentionExpired { key: key.clone() });
        }
    }

    /// Removes a closed run whose retention has passed (open runs are never removed).
    pub(crate) fn retention_expired(&mut self, key: &RunKey) {
        let Some(run) = self.runs.get(key) else {
            return;
        };
        let Some(retention) = self.retention_ms(&key.namespace) else {
            return;
        };
        if run.is_open() {
            return;
        }
        if run.archiving {
            let later = self.now() + 1000;
            self.push_timer(later, TimerTask::RetentionExpired { key: key.clone() });
            return;
        }
        let due = clock::opt_ts_millis(&run.ms.close_time) + retention;
        if due > self.now() {
            self.push_timer(due, TimerTask::RetentionExpired { key: key.clone() });
            return;
        }
        self.forget_run(key);
        self.log_deleted(key);
    }

    /// Logs that a run is gone, so it stays gone after a restart.
    pub(crate) fn log_deleted(&mut self, key: &RunKey) {
        self.log(LogRecord {
            kind: Some(log_record::Kind::Deleted(DeletedRun {
                namespace: key.namespace.clone(),
                workflow_id: key.workflow_id.clone(),
                run_id: key.run_id.clone(),
            })),
        });
    }

    pub(crate) fn forget_run(&mut self, key: &RunKey) {
        self.runs.remove(key);
        let id_key = (key.namespace.clone(), key.workflow_id.clone());
        if self.current.get(&id_key) == Some(&key.run_id) {
            // The newest remaining run of this workflow id, if any, becomes current.
            let newest = self
                .runs
                .iter()
                .filter(|(k, _)| k.namespace == key.namespace && k.workflow_id == key.workflow_id)
                .max_by_key(|(_, r)| clock::opt_ts_millis(&r.ms.start_time))
                .map(|(k, _)| k.run_id.clone());
            match newest {
                Some(run_id) => self.current.insert(id_key, run_id),
                None => self.current.remove(&id_key),
            };
        }
    }
}
