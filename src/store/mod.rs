//! Persistence. Every engine change is one [`LogRecord`]; a reply to an RPC is sent only once
//! the record carrying that change is durable. The embedded backend is [`wal::Wal`], an
//! append-only log with group commit (closed runs move on to [`archive`]); [`postgres::PgStore`]
//! keeps the same log in PostgreSQL.

pub mod archive;
pub mod backup;
mod durability;
pub mod postgres;
pub mod records;
pub mod wal;

use std::future::Future;
use std::pin::Pin;

pub use records::{
    DeletedRun, ExecutionRecord, LogRecord, NamespaceRecord, RecordBatch, encode_batch,
    encode_execution, log_record,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage is unavailable after an earlier write failure: {0}")]
    Failed(String),
    #[error("corrupt record in the log: {0}")]
    Corrupt(String),
}

/// A monotonically increasing position in the log.
pub type Lsn = u64;

pub type DurableFuture = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

pub trait Store: Send + Sync + 'static {
    /// Every record appended so far, in append order (used once, at start-up).
    fn load(&self) -> Result<Vec<LogRecord>, StoreError>;
    /// Queues an encoded [`LogRecord`]. Callers append in the order their changes were made;
    /// the returned position becomes durable no earlier than every position before it.
    fn append(&self, record: Vec<u8>) -> Lsn;
    /// Resolves once `lsn` (and so everything before it) is on disk.
    fn wait_durable(&self, lsn: Lsn) -> DurableFuture;
    /// Replaces everything appended so far with `records` (encoded [`LogRecord`]s), which
    /// must describe the same state; later appends follow them.
    fn compact(&self, records: Vec<Vec<u8>>) -> Lsn;
    /// The last position handed out by `append`.
    fn last_lsn(&self) -> Lsn;
}
