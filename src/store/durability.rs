//! What every store backend shares: the messages its writer takes, and how callers wait until
//! a position is durable (or learn that writes are failing).

use tokio::sync::watch;

use super::{DurableFuture, Lsn, StoreError};

/// Work for a store's writer, in the order the engine made the changes.
pub(crate) enum WriterMsg {
    Append(Lsn, Vec<u8>),
    /// Replace everything written so far with these records (they stand for everything
    /// before `Lsn`).
    Rewrite(Lsn, Vec<Vec<u8>>),
}

/// What the writer publishes after each batch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Durable {
    pub lsn: Lsn,
    /// Why the last write failed, until a write succeeds again.
    pub failure: Option<String>,
}

/// Resolves once `lsn` is durable, or fails once the writer reports a failure that leaves it
/// undurable.
pub(crate) fn wait_durable(durable: &watch::Receiver<Durable>, lsn: Lsn) -> DurableFuture {
    let mut rx = durable.clone();
    Box::pin(async move {
        let state = rx
            .wait_for(|d| d.lsn >= lsn || d.failure.is_some())
            .await
            .map_err(|_| StoreError::Failed("the store's writer stopped".into()))?;
        match &state.failure {
            Some(f) if state.lsn < lsn => Err(StoreError::Failed(f.clone())),
            _ => Ok(()),
        }
    })
}
