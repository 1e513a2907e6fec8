//! What every store backend shares: the messages its writer takes, and how callers wait until
//! a position is durable (or learn that writes are failing).

use tokio::sync::watch;

use std::collections::BTreeSet;

use super::{DurableFuture, Lsn, ShardedRecord, StoreError};

/// Work for a store's writer, in the order the engine made the changes.
pub(crate) enum WriterMsg {
    Append(Lsn, Vec<ShardedRecord>),
    /// Replace everything written so far to these shards with these records (they stand for
    /// everything before `Lsn`).
    Rewrite(Lsn, Vec<u32>, Vec<ShardedRecord>),
}

/// What the writer publishes after each batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Durable {
    pub lsn: Lsn,
    /// Why the last write failed, until a write succeeds again.
    pub failure: Option<String>,
    /// Positions at or below `lsn` that were refused for good (their shard moved to another
    /// replica), and why.
    pub refused: BTreeSet<Lsn>,
    pub refused_reason: String,
    /// Compactions that did not complete (the log they meant to replace is still in use, or
    /// the writer is stopped until it can reopen the new one), and why.
    pub failed_compactions: BTreeSet<Lsn>,
    pub compaction_failure: String,
}

/// Refused positions remembered; a waiter looks its position up as soon as it is woken.
const REFUSED_KEPT: usize = 100_000;

impl Durable {
    pub fn refuse(&mut self, lsn: Lsn, reason: &str) {
        self.refused.insert(lsn);
        if self.refused.len() > REFUSED_KEPT {
            self.refused.pop_first();
        }
        self.refused_reason = reason.to_string();
    }

    pub fn compaction_failed(&mut self, lsn: Lsn, reason: &str) {
        self.failed_compactions.insert(lsn);
        if self.failed_compactions.len() > REFUSED_KEPT {
            self.failed_compactions.pop_first();
        }
        self.compaction_failure = reason.to_string();
    }
}

/// Resolves once `lsn` is durable, or fails once the writer reports a failure that leaves it
/// undurable.
pub(crate) fn wait_durable(durable: &watch::Receiver<Durable>, lsn: Lsn) -> DurableFuture {
    let mut rx = durable.clone();
    Box::pin(async move {
        let state = rx
            .wait_for(|d| d.lsn >= lsn || d.failure.is_some() || d.refused.contains(&lsn))
            .await
            .map_err(|_| StoreError::Failed("the store's writer stopped".into()))?;
        if state.refused.contains(&lsn) {
            return Err(StoreError::Moved(state.refused_reason.clone()));
        }
        match &state.failure {
            Some(f) if state.lsn < lsn => Err(StoreError::Failed(f.clone())),
            _ => Ok(()),
        }
    })
}

/// Resolves once the compaction at `lsn` is complete and durable; fails if it did not
/// complete (so nothing that relies on it, such as deleting archive segments, goes ahead).
pub(crate) fn wait_compacted(durable: &watch::Receiver<Durable>, lsn: Lsn) -> DurableFuture {
    let durable = durable.clone();
    Box::pin(async move {
        wait_durable(&durable, lsn).await?;
        let state = durable.borrow();
        if state.failed_compactions.contains(&lsn) {
            return Err(StoreError::Failed(format!(
                "log compaction failed: {}",
                state.compaction_failure
            )));
        }
        Ok(())
    })
}
