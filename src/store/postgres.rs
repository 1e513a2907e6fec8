//! The PostgreSQL store: the same log of records as the embedded store, kept in a table, for
//! users who already run PostgreSQL and want its replication and backups.
//!
//! Records belong to a shard (today one, shard 0; the column is there for shards spread over
//! replicas). A replica owns a shard through a lease row with an epoch: taking the shard over
//! bumps the epoch, and every transaction that writes records first updates the lease row
//! *where the epoch is still its own*. So once another replica has taken the shard, a stale
//! owner's writes are rejected by the database itself, even if that owner was paused and
//! does not know yet (fencing).
//!
//! As in the embedded store, a writer task commits everything queued since its last commit as
//! one transaction (group commit), and a reply waits until its record's transaction has
//! committed (PostgreSQL's own durability: `synchronous_commit`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use prost::Message;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{Client, NoTls};

use super::durability::{Durable, WriterMsg, wait_durable};
use super::{DurableFuture, LogRecord, Lsn, Store, StoreError};

/// Versioned schema changes, applied in order, each once. Never edit a released entry; add a
/// new one.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE durin_shards (
         shard_id integer PRIMARY KEY,
         owner text NOT NULL,
         epoch bigint NOT NULL,
         lease_until timestamptz NOT NULL,
         last_seq bigint NOT NULL DEFAULT 0
     );
     CREATE TABLE durin_log (
         shard_id integer NOT NULL,
         seq bigint NOT NULL,
         record bytea NOT NULL,
         PRIMARY KEY (shard_id, seq)
     );",
)];

/// Any constant: replicas migrating at once queue on this advisory lock.
const MIGRATION_LOCK: i64 = 0x6475_7269_6e00_0001;
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct PgConfig {
    /// A libpq-style connection string or `postgres://` URL.
    pub url: String,
    pub shard: i32,
    /// Who holds the lease (a replica's stable name: the pod name in Kubernetes).
    pub owner: String,
    /// A lease not renewed for this long may be taken over.
    pub lease_ttl: Duration,
}

pub struct PgStore {
    loaded: Mutex<Option<Vec<LogRecord>>>,
    sender: Mutex<(Lsn, mpsc::UnboundedSender<WriterMsg>)>,
    durable: watch::Receiver<Durable>,
}

async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(pg_error)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

fn pg_error(e: tokio_postgres::Error) -> StoreError {
    StoreError::Failed(format!("PostgreSQL: {e}"))
}

/// Brings the schema up to date. Safe from several replicas at once: the advisory lock makes
/// them take turns, and each applies only the versions not yet recorded.
pub async fn migrate(client: &mut Client) -> Result<i32, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS durin_schema_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(pg_error)?;
    let applied: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM durin_schema_migrations",
            &[],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if applied > latest {
        return Err(StoreError::Failed(format!(
            "the database schema is at version {applied}, newer than this Durin knows ({latest}); \
             run a newer Durin"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > applied) {
        tx.batch_execute(sql).await.map_err(pg_error)?;
        tx.execute(
            "INSERT INTO durin_schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(pg_error)?;
        tracing::info!(version, "applied schema migration");
    }
    tx.commit().await.map_err(pg_error)?;
    Ok(latest)
}

/// Takes the shard's lease, waiting while another owner holds a live one. Returns the epoch.
async fn acquire(client: &Client, cfg: &PgConfig) -> Result<i64, StoreError> {
    let ttl_ms = cfg.lease_ttl.as_millis() as f64;
    let mut waited = false;
    loop {
        let row = client
            .query_opt(
                "INSERT INTO durin_shards (shard_id, owner, epoch, lease_until)
                 VALUES ($1, $2, 1, now() + $3 * interval '1 millisecond')
                 ON CONFLICT (shard_id) DO UPDATE
                   SET owner = EXCLUDED.owner, epoch = durin_shards.epoch + 1,
                       lease_until = EXCLUDED.lease_until
                   WHERE durin_shards.lease_until < now() OR durin_shards.owner = EXCLUDED.owner
                 RETURNING epoch",
                &[&cfg.shard, &cfg.owner, &ttl_ms],
            )
            .await
            .map_err(pg_error)?;
        if let Some(row) = row {
            let epoch: i64 = row.get(0);
            tracing::info!(shard = cfg.shard, epoch, owner = %cfg.owner, "took the shard lease");
            return Ok(epoch);
        }
        if !waited {
            let holder: Option<String> = client
                .query_opt(
                    "SELECT owner FROM durin_shards WHERE shard_id = $1",
                    &[&cfg.shard],
                )
                .await
                .map_err(pg_error)?
                .map(|r| r.get(0));
            tracing::info!(shard = cfg.shard, holder = ?holder, "waiting for another replica's shard lease to expire");
            waited = true;
        }
        tokio::time::sleep(cfg.lease_ttl / 4).await;
    }
}

impl PgStore {
    /// Connects, migrates the schema, takes the shard's lease and reads its records.
    pub async fn open(cfg: PgConfig) -> Result<Arc<Self>, StoreError> {
        let mut client = connect(&cfg.url).await?;
        migrate(&mut client).await?;
        let epoch = acquire(&client, &cfg).await?;
        let rows = client
            .query(
                "SELECT seq, record FROM durin_log WHERE shard_id = $1 ORDER BY seq",
                &[&cfg.shard],
            )
            .await
            .map_err(pg_error)?;
        let mut next_seq = 1i64;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let seq: i64 = row.get(0);
            let bytes: &[u8] = row.get(1);
            records.push(LogRecord::decode(bytes).map_err(|e| {
                StoreError::Corrupt(format!("log record {seq} of shard {}: {e}", cfg.shard))
            })?);
            next_seq = seq + 1;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (durable_tx, durable_rx) = watch::channel(Durable::default());
        let fenced = Arc::new(AtomicBool::new(false));
        tokio::spawn(writer_loop(
            client,
            cfg.clone(),
            epoch,
            next_seq,
            rx,
            durable_tx,
            fenced.clone(),
        ));
        tokio::spawn(renew_loop(cfg, epoch, fenced));
        Ok(Arc::new(Self {
            loaded: Mutex::new(Some(records)),
            sender: Mutex::new((0, tx)),
            durable: durable_rx,
        }))
    }
}

/// Keeps the lease alive; notices when another replica took the shard.
async fn renew_loop(cfg: PgConfig, epoch: i64, fenced: Arc<AtomicBool>) {
    let ttl_ms = cfg.lease_ttl.as_millis() as f64;
    let mut client: Option<Client> = None;
    loop {
        tokio::time::sleep(cfg.lease_ttl / 3).await;
        if fenced.load(Ordering::Relaxed) {
            return;
        }
        if client.as_ref().is_none_or(|c| c.is_closed()) {
            client = connect(&cfg.url).await.ok();
        }
        let Some(c) = client.as_ref() else { continue };
        match c
            .execute(
                "UPDATE durin_shards SET lease_until = now() + $3 * interval '1 millisecond'
                 WHERE shard_id = $1 AND epoch = $2",
                &[&cfg.shard, &epoch, &ttl_ms],
            )
            .await
        {
            Ok(1) => {}
            Ok(_) => {
                tracing::error!(
                    shard = cfg.shard,
                    epoch,
                    "another replica took this shard; writes are refused from now on"
                );
                fenced.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the shard lease"),
        }
    }
}

/// What failed in a commit.
enum CommitError {
    /// Another replica owns the shard: nothing this store writes can ever commit again.
    Fenced,
    Other(String),
}

async fn writer_loop(
    mut client: Client,
    cfg: PgConfig,
    epoch: i64,
    mut next_seq: i64,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    durable: watch::Sender<Durable>,
    fenced: Arc<AtomicBool>,
) {
    // Records not yet committed, with their sequence numbers, and whether the first thing to
    // commit is a rewrite of the whole log (compaction).
    let mut rows: Vec<(i64, Vec<u8>)> = Vec::new();
    let mut rewrite_from: Option<i64> = None;
    let mut last: Lsn = 0;
    let mut failing = false;
    loop {
        let first = if failing {
            match tokio::time::timeout(RETRY_AFTER_FAILURE, rx.recv()).await {
                Ok(Some(m)) => Some(m),
                Ok(None) => return,
                Err(_) => None,
            }
        } else {
            match rx.recv().await {
                Some(m) => Some(m),
                None => return,
            }
        };
        let mut next = first;
        while let Some(msg) = next.take() {
            match msg {
                WriterMsg::Append(lsn, bytes) => {
                    rows.push((next_seq, bytes));
                    next_seq += 1;
                    last = lsn;
                }
                WriterMsg::Rewrite(lsn, records) => {
                    // Everything queued before stands for nothing once the snapshot is in.
                    rows.clear();
                    rewrite_from = Some(next_seq);
                    for r in records {
                        rows.push((next_seq, r));
                        next_seq += 1;
                    }
                    last = last.max(lsn);
                }
            }
            next = rx.try_recv().ok();
        }
        if rows.is_empty() && rewrite_from.is_none() {
            continue;
        }
        if fenced.load(Ordering::Relaxed) {
            durable.send_modify(|d| d.failure = Some(fenced_message(&cfg)));
            continue;
        }
        if client.is_closed() {
            match connect(&cfg.url).await {
                Ok(c) => client = c,
                Err(e) => {
                    failing = true;
                    durable.send_modify(|d| d.failure = Some(e.to_string()));
                    continue;
                }
            }
        }
        match commit(&mut client, &cfg, epoch, &rows, rewrite_from).await {
            Ok(()) => {
                rows.clear();
                rewrite_from = None;
                if failing {
                    tracing::info!("PostgreSQL takes writes again");
                    failing = false;
                }
                durable.send_modify(|d| {
                    d.lsn = d.lsn.max(last);
                    d.failure = None;
                });
            }
            Err(CommitError::Fenced) => {
                tracing::error!(
                    shard = cfg.shard,
                    epoch,
                    "the database refused a write: another replica owns this shard"
                );
                fenced.store(true, Ordering::Relaxed);
                durable.send_modify(|d| d.failure = Some(fenced_message(&cfg)));
            }
            Err(CommitError::Other(e)) => {
                if !failing {
                    tracing::error!(error = %e, "PostgreSQL write failed; writes answer UNAVAILABLE and are retried every second, reads go on");
                    failing = true;
                }
                durable.send_modify(|d| d.failure = Some(e));
            }
        }
    }
}

fn fenced_message(cfg: &PgConfig) -> String {
    format!(
        "shard {} is owned by another replica; this one may no longer write",
        cfg.shard
    )
}

/// One transaction: check the lease epoch (and take the row lock a takeover needs), then
/// write the records. A retried commit whose first attempt did commit finds its rows there
/// already and leaves them.
async fn commit(
    client: &mut Client,
    cfg: &PgConfig,
    epoch: i64,
    rows: &[(i64, Vec<u8>)],
    rewrite_from: Option<i64>,
) -> Result<(), CommitError> {
    let other = |e: tokio_postgres::Error| CommitError::Other(format!("PostgreSQL: {e}"));
    let tx = client.transaction().await.map_err(other)?;
    let last_seq = rows.last().map(|r| r.0).unwrap_or(0);
    let owned = tx
        .execute(
            "UPDATE durin_shards SET last_seq = GREATEST(last_seq, $3)
             WHERE shard_id = $1 AND epoch = $2",
            &[&cfg.shard, &epoch, &last_seq],
        )
        .await
        .map_err(other)?;
    if owned != 1 {
        return Err(CommitError::Fenced);
    }
    if let Some(from) = rewrite_from {
        tx.execute(
            "DELETE FROM durin_log WHERE shard_id = $1 AND seq < $2",
            &[&cfg.shard, &from],
        )
        .await
        .map_err(other)?;
    }
    let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let records: Vec<&[u8]> = rows.iter().map(|r| r.1.as_slice()).collect();
    tx.execute(
        "INSERT INTO durin_log (shard_id, seq, record)
         SELECT $1, s, r FROM UNNEST($2::bigint[], $3::bytea[]) AS t(s, r)
         ON CONFLICT (shard_id, seq) DO NOTHING",
        &[&cfg.shard, &seqs, &records],
    )
    .await
    .map_err(other)?;
    tx.commit().await.map_err(other)
}

impl Store for PgStore {
    fn load(&self) -> Result<Vec<LogRecord>, StoreError> {
        Ok(self.loaded.lock().take().unwrap_or_default())
    }

    fn append(&self, record: Vec<u8>) -> Lsn {
        let mut guard = self.sender.lock();
        guard.0 += 1;
        let lsn = guard.0;
        let _ = guard.1.send(WriterMsg::Append(lsn, record));
        lsn
    }

    fn wait_durable(&self, lsn: Lsn) -> DurableFuture {
        wait_durable(&self.durable, lsn)
    }

    fn compact(&self, records: Vec<Vec<u8>>) -> Lsn {
        let mut guard = self.sender.lock();
        guard.0 += 1;
        let lsn = guard.0;
        let _ = guard.1.send(WriterMsg::Rewrite(lsn, records));
        lsn
    }

    fn last_lsn(&self) -> Lsn {
        self.sender.lock().0
    }
}
