//! Persistence. Every engine change is one [`LogRecord`]; a reply to an RPC is sent only once
//! the record carrying that change is durable. The embedded backend is [`wal::Wal`], an
//! append-only log with group commit (closed runs move on to [`archive`]); [`postgres::PgStore`]
//! keeps the same log in PostgreSQL.

pub mod archive;
pub mod backup;
mod durability;
pub mod frame;
mod group_commit;
pub(crate) mod log_block;
pub mod postgres;
mod record_dictionary;
pub mod records;
pub mod state;
pub mod wal;

use std::future::Future;
use std::pin::Pin;

pub use records::{
    DeletedRun, ExecutionRecord, LogRecord, NamespaceRecord, NexusEndpointRecord, RecordBatch,
    RemovedEntries, RunHandles, encode_batch, encode_execution, encode_execution_delta, log_record,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("storage is unavailable after an earlier write failure: {0}")]
    Failed(String),
    #[error("corrupt stored record: {0}")]
    Corrupt(String),
    /// A store file is damaged where a crash cannot have left it; the message says where
    /// and what to do.
    #[error("{0}")]
    Damaged(String),
    /// The record's shard belongs to another replica now; the operation did not happen.
    #[error("{0}")]
    Moved(String),
}

/// A monotonically increasing position in the log.
pub type Lsn = u64;

/// The shard a record belongs to; `None` for what the whole cluster shares (namespaces).
pub type Shard = Option<u32>;

/// An encoded [`LogRecord`] and its shard. The bytes are shared, not copied, where the engine
/// keeps them too (a frozen run's record, an operation a compaction under way re-logs).
pub type ShardedRecord = (Shard, bytes::Bytes);

pub type DurableFuture = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

pub trait Store: Send + Sync + 'static {
    /// Hands `each` every record appended so far to the shards this replica owns at start-up,
    /// in append order, one at a time: a large log is never held decoded all at once (used
    /// once, at start-up). Stops at the first error, of the log or of `each`.
    fn load_each(
        &self,
        each: &mut dyn FnMut(LogRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Every record `load_each` hands over, collected (for tests and tools).
    fn load(&self) -> Result<Vec<LogRecord>, StoreError> {
        let mut records = Vec::new();
        self.load_each(&mut |record| {
            records.push(record);
            Ok(())
        })?;
        Ok(records)
    }
    /// Queues the records of one operation (kept all or none). Callers append in the order
    /// their changes were made; the returned position becomes durable no earlier than every
    /// position before it.
    fn append(&self, records: Vec<ShardedRecord>) -> Lsn;
    /// Resolves once `lsn` (and so everything before it) is on disk.
    fn wait_durable(&self, lsn: Lsn) -> DurableFuture;
    /// Replaces everything appended so far to `shards` (and to no shard) with `records`,
    /// which must describe the same state; later appends follow them. A record may come
    /// packed (`log_block::pack_record`, as frozen runs hold theirs): the store unpacks it
    /// or keeps it packed, off the engine's lock.
    fn compact(&self, shards: Vec<u32>, records: Vec<ShardedRecord>) -> Lsn;
    /// Resolves once the compaction at `lsn` is complete; fails if it did not complete.
    fn wait_compacted(&self, lsn: Lsn) -> DurableFuture {
        self.wait_durable(lsn)
    }
    /// The last position handed out by `append`.
    fn last_lsn(&self) -> Lsn;
    /// The secret task tokens are signed with: the same for every replica of the store and
    /// across restarts, so a token stays valid while its task does.
    fn token_secret(&self) -> Vec<u8>;
    /// How many shards executions are spread over (fixed for the life of the store).
    fn shard_count(&self) -> u32 {
        1
    }
    /// The shards whose records `load` returns.
    fn initial_shards(&self) -> Vec<u32> {
        vec![0]
    }
}

/// The shard of an execution (or schedule) id: a stable hash of namespace and id, so every
/// replica and every version of Durin agrees (FNV-1a, 64 bits).
pub fn shard_of(shard_count: u32, namespace: &str, id: &str) -> u32 {
    if shard_count <= 1 {
        return 0;
    }
    let h = crate::stable_hash::fnv1a(namespace.bytes().chain([0xff]).chain(id.bytes()));
    (h % u64::from(shard_count)) as u32
}
