//! The PostgreSQL store: the same log of records as the embedded store, kept in a table and
//! split into shards, for users who already run PostgreSQL and for several replicas sharing
//! the work.
//!
//! - `schema`: versioned migrations Durin applies itself.
//! - `leases`: shard leases with fencing epochs, and replica membership.
//! - `writer`: group commit, fenced by the epochs of the shards each transaction touches.
//!
//! A reply waits until its record's transaction has committed (PostgreSQL's own durability:
//! `synchronous_commit`).

mod connect;
mod leases;
mod schema;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prost::Message;
use tokio::sync::{Notify, mpsc, watch};
use tokio_postgres::Client;

pub use leases::ClusterView;
pub use schema::migrate;

use super::durability::{Durable, WriterMsg, wait_durable};
use super::{DurableFuture, LogRecord, Lsn, ShardedRecord, Store, StoreError};
pub use connect::PgTarget;
use writer::{ShardTable, Shards};

#[derive(Clone, Debug)]
pub struct PgConfig {
    /// A libpq-style connection string or `postgres://` URL.
    pub url: String,
    /// The CA that signed the server's certificate: connections use TLS and verify it.
    pub ca_file: Option<std::path::PathBuf>,
    /// Who holds leases (a replica's stable name: the pod name in Kubernetes).
    pub owner: String,
    /// Where other replicas reach this one (host:port of its gRPC server).
    pub address: String,
    /// A lease not renewed for this long may be taken over.
    pub lease_ttl: Duration,
    /// The shard count for a new cluster (an existing one keeps its own).
    pub shards: u32,
}

pub struct PgStore {
    cfg: PgConfig,
    shard_count: u32,
    /// Carried by replica-to-replica calls (see `schema`).
    secret: String,
    initial: Vec<u32>,
    loaded: Mutex<Option<Vec<LogRecord>>>,
    sender: Mutex<(Lsn, mpsc::UnboundedSender<WriterMsg>)>,
    durable: watch::Receiver<Durable>,
    shards: Shards,
    /// Woken when the writer finds a shard taken over by another replica.
    lost: Arc<Notify>,
    /// The connection for leases and membership (the writer has its own).
    admin: tokio::sync::Mutex<Client>,
    target: PgTarget,
}

/// The error with its causes (tokio-postgres's own message hides why, e.g. which
/// certificate check a TLS handshake failed).
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let mut message = format!("PostgreSQL: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    StoreError::Failed(message)
}

/// A shard's records in append order, and the sequence number its next record takes.
async fn read_shard(client: &Client, shard: u32) -> Result<(Vec<LogRecord>, i64), StoreError> {
    let rows = client
        .query(
            "SELECT seq, record FROM durin_log WHERE shard_id = $1 ORDER BY seq",
            &[&(shard as i32)],
        )
        .await
        .map_err(pg_error)?;
    let mut next_seq = 1i64;
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let seq: i64 = row.get(0);
        let stored: &[u8] = row.get(1);
        let corrupt =
            |e: String| StoreError::Corrupt(format!("log record {seq} of shard {shard}: {e}"));
        let bytes = crate::store::log_block::unpack_record(stored).map_err(corrupt)?;
        records.push(LogRecord::decode(bytes.as_ref()).map_err(|e| corrupt(e.to_string()))?);
        next_seq = seq + 1;
    }
    Ok((records, next_seq))
}

/// What every replica holds whole: the namespaces and the Nexus endpoint registry.
async fn read_namespaces(client: &Client) -> Result<Vec<LogRecord>, StoreError> {
    let mut records = Vec::new();
    for (what, sql) in [
        (
            "namespace",
            "SELECT name, record FROM durin_namespaces ORDER BY name",
        ),
        (
            "Nexus endpoint",
            "SELECT id, record FROM durin_nexus_endpoints ORDER BY id",
        ),
    ] {
        for row in client.query(sql, &[]).await.map_err(pg_error)? {
            let key: &str = row.get(0);
            records.push(
                LogRecord::decode(row.get::<_, &[u8]>(1))
                    .map_err(|e| StoreError::Corrupt(format!("{what} {key}: {e}")))?,
            );
        }
    }
    Ok(records)
}

impl PgStore {
    /// Connects, migrates the schema, joins the cluster and takes this replica's share of the
    /// shards whose leases are free (first those it held before a restart), reading their
    /// records.
    pub async fn open(cfg: PgConfig) -> Result<Arc<Self>, StoreError> {
        let target = PgTarget::new(&cfg.url, cfg.ca_file.as_deref())?
            .idle_transactions_end_after(cfg.lease_ttl);
        let mut client = target.connect().await?;
        migrate(&mut client).await?;
        let (shard_count, secret) = schema::cluster(&client, cfg.shards).await?;
        leases::heartbeat(&client, &cfg.owner, &cfg.address).await?;
        let view = leases::view(&client, cfg.lease_ttl).await?;
        let share = fair_share(shard_count, view.replicas.len());
        let previously: Vec<u32> = client
            .query(
                "SELECT shard_id FROM durin_shards WHERE owner = $1 ORDER BY shard_id",
                &[&cfg.owner],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| r.get::<_, i32>(0) as u32)
            .collect();
        let mut table = ShardTable::default();
        let mut records = read_namespaces(&client).await?;
        for shard in previously.iter().copied().chain(0..shard_count) {
            let restarting = previously.contains(&shard);
            if table.epochs.contains_key(&shard) || (!restarting && table.epochs.len() >= share) {
                continue;
            }
            let Some(epoch) =
                leases::try_acquire(&client, shard, &cfg.owner, cfg.lease_ttl, restarting).await?
            else {
                continue;
            };
            let (shard_records, next_seq) = read_shard(&client, shard).await?;
            records.extend(shard_records);
            table.epochs.insert(shard, epoch);
            table.next_seq.insert(shard, next_seq);
        }
        let mut initial: Vec<u32> = table.epochs.keys().copied().collect();
        initial.sort_unstable();
        tracing::info!(shards = ?initial, of = shard_count, owner = %cfg.owner, "took shard leases");
        let shards = Arc::new(Mutex::new(table));
        let lost = Arc::new(Notify::new());
        let (tx, rx) = mpsc::unbounded_channel();
        let (durable_tx, durable_rx) = watch::channel(Durable::default());
        tokio::spawn(writer::writer_loop(
            target.connect().await?,
            target.clone(),
            shards.clone(),
            lost.clone(),
            rx,
            durable_tx,
        ));
        Ok(Arc::new(Self {
            cfg,
            shard_count,
            secret,
            initial,
            loaded: Mutex::new(Some(records)),
            sender: Mutex::new((0, tx)),
            durable: durable_rx,
            shards,
            lost,
            admin: tokio::sync::Mutex::new(client),
            target,
        }))
    }

    pub fn cluster_secret(&self) -> &str {
        &self.secret
    }

    pub fn replica_id(&self) -> &str {
        &self.cfg.owner
    }

    pub fn lease_ttl(&self) -> Duration {
        self.cfg.lease_ttl
    }

    /// Resolves when the writer found a shard taken over by another replica.
    pub async fn shard_lost(&self) {
        self.lost.notified().await
    }

    /// The shards held, with their epochs.
    pub fn held(&self) -> Vec<(u32, i64)> {
        let mut held: Vec<(u32, i64)> = self
            .shards
            .lock()
            .epochs
            .iter()
            .map(|(s, e)| (*s, *e))
            .collect();
        held.sort_unstable();
        held
    }

    async fn admin(&self) -> Result<tokio::sync::MutexGuard<'_, Client>, StoreError> {
        let mut client = self.admin.lock().await;
        if client.is_closed() {
            *client = self.target.connect().await?;
        }
        Ok(client)
    }

    /// Heartbeat, lease renewal and a fresh view of the cluster. Returns the view and the
    /// shards whose leases were lost (another replica holds them now: stop serving them).
    pub async fn tick(&self) -> Result<(ClusterView, Vec<u32>), StoreError> {
        let client = self.admin().await?;
        leases::heartbeat(&client, &self.cfg.owner, &self.cfg.address).await?;
        let held = self.held();
        let renewed = leases::renew(&client, &held, self.cfg.lease_ttl).await?;
        let mut lost = Vec::new();
        {
            let mut table = self.shards.lock();
            for (shard, epoch) in held {
                if !renewed.contains(&shard) && table.epochs.get(&shard) == Some(&epoch) {
                    table.epochs.remove(&shard);
                    lost.push(shard);
                }
            }
        }
        let view = leases::view(&client, self.cfg.lease_ttl).await?;
        Ok((view, lost))
    }

    /// Takes a shard whose lease ran out; returns its records (None if another replica was
    /// faster). Records are read after the epoch moved, so a previous owner's late writes
    /// are refused, never missed.
    pub async fn take(&self, shard: u32) -> Result<Option<Vec<LogRecord>>, StoreError> {
        let client = self.admin().await?;
        let Some(epoch) =
            leases::try_acquire(&client, shard, &self.cfg.owner, self.cfg.lease_ttl, false).await?
        else {
            return Ok(None);
        };
        let (records, next_seq) = match read_shard(&client, shard).await {
            Ok(r) => r,
            Err(e) => {
                let _ = leases::release(&client, shard, epoch).await;
                return Err(e);
            }
        };
        let mut table = self.shards.lock();
        table.epochs.insert(shard, epoch);
        table.next_seq.insert(shard, next_seq);
        tracing::info!(shard, epoch, records = records.len(), "took over a shard");
        Ok(Some(records))
    }

    /// Gives a shard up. The engine must have stopped serving it and everything it wrote
    /// must be durable: from here on, writes to the shard are refused.
    pub async fn give_up(&self, shard: u32) -> Result<(), StoreError> {
        let epoch = self.shards.lock().epochs.remove(&shard);
        if let Some(epoch) = epoch {
            let client = self.admin().await?;
            leases::release(&client, shard, epoch).await?;
            tracing::info!(shard, epoch, "gave a shard up");
        }
        Ok(())
    }

    /// Leaves the membership and gives every shard up (a clean shutdown; the engine stopped
    /// writing).
    pub async fn leave(&self) -> Result<(), StoreError> {
        for (shard, _) in self.held() {
            self.give_up(shard).await?;
        }
        leases::leave(&*self.admin().await?, &self.cfg.owner).await
    }

    /// Namespaces and Nexus endpoints as stored (other replicas change them too).
    pub async fn namespaces(&self) -> Result<Vec<LogRecord>, StoreError> {
        read_namespaces(&*self.admin().await?).await
    }
}

/// Shards each replica should hold so that all are held: rounded up.
pub fn fair_share(shard_count: u32, replicas: usize) -> usize {
    (shard_count as usize).div_ceil(replicas.max(1))
}

impl Store for PgStore {
    fn token_secret(&self) -> Vec<u8> {
        self.secret.as_bytes().to_vec()
    }

    fn load_each(
        &self,
        each: &mut dyn FnMut(LogRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let loaded = self.loaded.lock().take().unwrap_or_default();
        loaded.into_iter().try_for_each(each)
    }

    fn append(&self, records: Vec<ShardedRecord>) -> Lsn {
        let mut guard = self.sender.lock();
        guard.0 += 1;
        let lsn = guard.0;
        let _ = guard.1.send(WriterMsg::Append(lsn, records));
        lsn
    }

    fn wait_durable(&self, lsn: Lsn) -> DurableFuture {
        wait_durable(&self.durable, lsn)
    }

    fn compact(&self, shards: Vec<u32>, records: Vec<ShardedRecord>) -> Lsn {
        let mut guard = self.sender.lock();
        guard.0 += 1;
        let lsn = guard.0;
        let _ = guard.1.send(WriterMsg::Rewrite(lsn, shards, records));
        lsn
    }

    fn last_lsn(&self) -> Lsn {
        self.sender.lock().0
    }

    fn shard_count(&self) -> u32 {
        self.shard_count
    }

    fn initial_shards(&self) -> Vec<u32> {
        self.initial.clone()
    }
}
