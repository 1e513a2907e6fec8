//! The writer task: commits everything queued since its last commit as one transaction
//! (group commit), fenced by the lease epoch of every shard the transaction touches.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prost::Message;
use tokio::sync::{Notify, mpsc, watch};
use tokio_postgres::Client;

use super::connect::PgTarget;
use crate::store::durability::{Durable, WriterMsg};
use crate::store::{LogRecord, Lsn, Shard, ShardedRecord, log_record};

const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// The shards this replica holds: the epoch its writes are fenced with, and the next
/// sequence number of each shard's log.
#[derive(Default)]
pub(super) struct ShardTable {
    pub epochs: HashMap<u32, i64>,
    pub next_seq: HashMap<u32, i64>,
}

pub(super) type Shards = Arc<Mutex<ShardTable>>;

struct Row {
    shard: Shard,
    seq: i64,
    bytes: Vec<u8>,
}

/// One operation's records: committed together or refused together.
struct Op {
    lsn: Lsn,
    rows: Vec<Row>,
}

/// What the next commit carries.
#[derive(Default)]
struct Batch {
    ops: Vec<Op>,
    /// Shards being rewritten (compaction): their rows below this sequence go.
    rewrites: BTreeMap<u32, i64>,
    last: Lsn,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.rewrites.is_empty()
    }

    /// Numbers the rows; an operation touching a shard not held here is refused.
    fn push(&mut self, lsn: Lsn, records: Vec<ShardedRecord>, table: &mut ShardTable) -> bool {
        self.last = self.last.max(lsn);
        if records
            .iter()
            .any(|(s, _)| s.is_some_and(|s| !table.epochs.contains_key(&s)))
        {
            return false;
        }
        let rows = records
            .into_iter()
            .map(|(shard, bytes)| {
                let seq = match shard {
                    Some(s) => {
                        let next = table.next_seq.entry(s).or_insert(1);
                        *next += 1;
                        *next - 1
                    }
                    None => 0,
                };
                // A shard's records are stored compressed when that is smaller (the
                // cluster-wide ones are read by their key, so stay as they are).
                let bytes = match shard {
                    Some(_) => crate::store::log_block::pack_record(&bytes).into_owned(),
                    None => bytes.to_vec(),
                };
                Row { shard, seq, bytes }
            })
            .collect();
        self.ops.push(Op { lsn, rows });
        true
    }

    fn rewrite(&mut self, shards: &[u32], table: &ShardTable) {
        for &s in shards {
            let Some(&below) = table.next_seq.get(&s) else {
                continue;
            };
            self.rewrites.insert(s, below);
            // Queued rows of a rewritten shard are part of the snapshot now.
            for op in &mut self.ops {
                op.rows.retain(|r| r.shard != Some(s));
            }
        }
    }

    /// Drops every operation that touches one of `lost`; returns their positions.
    fn drop_shards(&mut self, lost: &BTreeSet<u32>) -> Vec<Lsn> {
        let mut refused = Vec::new();
        self.ops.retain(|op| {
            let touches = op
                .rows
                .iter()
                .any(|r| r.shard.is_some_and(|s| lost.contains(&s)));
            if touches {
                refused.push(op.lsn);
            }
            !touches
        });
        self.rewrites.retain(|s, _| !lost.contains(s));
        refused
    }
}

/// What failed in a commit.
enum CommitError {
    /// Other replicas own these shards now: nothing this replica writes to them commits.
    Fenced(BTreeSet<u32>),
    Other(String),
}

pub(super) fn moved_message(shards: &BTreeSet<u32>) -> String {
    format!("shard(s) {shards:?} are owned by another replica now; retry")
}

pub(super) async fn writer_loop(
    mut client: Client,
    target: PgTarget,
    shards: Shards,
    lost_notify: Arc<Notify>,
    mut rx: mpsc::UnboundedReceiver<WriterMsg>,
    durable: watch::Sender<Durable>,
) {
    let mut batch = Batch::default();
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
            let mut table = shards.lock();
            match msg {
                WriterMsg::Append(lsn, records) => {
                    if !batch.push(lsn, records, &mut table) {
                        durable.send_modify(|d| {
                            d.refuse(lsn, "the shard is owned by another replica now; retry")
                        });
                    }
                }
                WriterMsg::Rewrite(lsn, rewritten, records) => {
                    batch.rewrite(&rewritten, &table);
                    let records = records
                        .into_iter()
                        .filter(|(s, _)| s.is_none_or(|s| table.epochs.contains_key(&s)))
                        .collect();
                    batch.push(lsn, records, &mut table);
                }
            }
            drop(table);
            next = rx.try_recv().ok();
        }
        if client.is_closed() {
            match target.connect().await {
                Ok(c) => client = c,
                Err(e) => {
                    failing = true;
                    durable.send_modify(|d| d.failure = Some(e.to_string()));
                    continue;
                }
            }
        }
        loop {
            if batch.is_empty() {
                let last = batch.last;
                durable.send_modify(|d| d.lsn = d.lsn.max(last));
                break;
            }
            let epochs = shards.lock().epochs.clone();
            let started = std::time::Instant::now();
            let committed = commit(&mut client, &epochs, &batch).await;
            crate::metrics::record_persistence(
                "CommitTransaction",
                committed.is_ok(),
                started.elapsed(),
            );
            match committed {
                Ok(()) => {
                    let last = batch.last;
                    batch = Batch {
                        last,
                        ..Default::default()
                    };
                    if failing {
                        tracing::info!("PostgreSQL takes writes again");
                        failing = false;
                    }
                    durable.send_modify(|d| {
                        d.lsn = d.lsn.max(last);
                        d.failure = None;
                    });
                    break;
                }
                Err(CommitError::Fenced(lost)) => {
                    tracing::warn!(
                        shards = ?lost,
                        "the database refused a write: another replica owns these shards now"
                    );
                    {
                        let mut table = shards.lock();
                        for s in &lost {
                            table.epochs.remove(s);
                        }
                    }
                    lost_notify.notify_one();
                    let refused = batch.drop_shards(&lost);
                    let reason = moved_message(&lost);
                    durable.send_modify(|d| {
                        for lsn in refused {
                            d.refuse(lsn, &reason);
                        }
                    });
                }
                Err(CommitError::Other(e)) => {
                    if !failing {
                        tracing::error!(error = %e, "PostgreSQL write failed; writes answer UNAVAILABLE and are retried every second; replies that would report queued state wait");
                        failing = true;
                    }
                    durable.send_modify(|d| d.failure = Some(e));
                    break;
                }
            }
        }
    }
}

/// One transaction: check every touched shard's lease epoch (taking the row locks a takeover
/// needs), then write. A retried commit whose first attempt did commit finds its rows there
/// already and leaves them.
async fn commit(
    client: &mut Client,
    epochs: &HashMap<u32, i64>,
    batch: &Batch,
) -> Result<(), CommitError> {
    let other = |e: tokio_postgres::Error| CommitError::Other(format!("PostgreSQL: {e}"));
    let mut touched: BTreeMap<u32, i64> = batch.rewrites.keys().map(|&s| (s, 0)).collect();
    let mut namespaces: Vec<(String, &[u8])> = Vec::new();
    let mut endpoints: Vec<(String, i64, &[u8])> = Vec::new();
    let (mut shard_col, mut seq_col, mut record_col) = (Vec::new(), Vec::new(), Vec::new());
    for row in batch.ops.iter().flat_map(|op| &op.rows) {
        match row.shard {
            Some(s) => {
                let max = touched.entry(s).or_insert(0);
                *max = (*max).max(row.seq);
                shard_col.push(s as i32);
                seq_col.push(row.seq);
                record_col.push(row.bytes.as_slice());
            }
            None => match cluster_row(&row.bytes) {
                Some(ClusterRow::Namespace(name)) => namespaces.push((name, row.bytes.as_slice())),
                Some(ClusterRow::NexusEndpoint(id, version)) => {
                    endpoints.push((id, version, row.bytes.as_slice()))
                }
                None => {}
            },
        }
    }
    let unheld: BTreeSet<u32> = touched
        .keys()
        .filter(|s| !epochs.contains_key(s))
        .copied()
        .collect();
    if !unheld.is_empty() {
        return Err(CommitError::Fenced(unheld));
    }
    let tx = client.transaction().await.map_err(other)?;
    if !touched.is_empty() {
        let ids: Vec<i32> = touched.keys().map(|&s| s as i32).collect();
        let eps: Vec<i64> = touched.keys().map(|s| epochs[s]).collect();
        let seqs: Vec<i64> = touched.values().copied().collect();
        let owned = tx
            .query(
                "UPDATE durin_shards AS s SET last_seq = GREATEST(s.last_seq, m.seq)
                   FROM UNNEST($1::integer[], $2::bigint[], $3::bigint[]) AS m(id, ep, seq)
                  WHERE s.shard_id = m.id AND s.epoch = m.ep
                  RETURNING s.shard_id",
                &[&ids, &eps, &seqs],
            )
            .await
            .map_err(other)?;
        if owned.len() != touched.len() {
            let kept: BTreeSet<u32> = owned.iter().map(|r| r.get::<_, i32>(0) as u32).collect();
            return Err(CommitError::Fenced(
                touched
                    .keys()
                    .filter(|s| !kept.contains(s))
                    .copied()
                    .collect(),
            ));
        }
    }
    if !batch.rewrites.is_empty() {
        let ids: Vec<i32> = batch.rewrites.keys().map(|&s| s as i32).collect();
        let below: Vec<i64> = batch.rewrites.values().copied().collect();
        tx.execute(
            "DELETE FROM durin_log AS d USING UNNEST($1::integer[], $2::bigint[]) AS m(id, below)
              WHERE d.shard_id = m.id AND d.seq < m.below",
            &[&ids, &below],
        )
        .await
        .map_err(other)?;
    }
    if !shard_col.is_empty() {
        tx.execute(
            "INSERT INTO durin_log (shard_id, seq, record)
             SELECT * FROM UNNEST($1::integer[], $2::bigint[], $3::bytea[])
             ON CONFLICT (shard_id, seq) DO NOTHING",
            &[&shard_col, &seq_col, &record_col],
        )
        .await
        .map_err(other)?;
    }
    for (name, record) in namespaces {
        tx.execute(
            "INSERT INTO durin_namespaces (name, record) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record",
            &[&name, &record],
        )
        .await
        .map_err(other)?;
    }
    // Another replica may have written a newer version meanwhile: the newest stays.
    for (id, version, record) in endpoints {
        tx.execute(
            "INSERT INTO durin_nexus_endpoints (id, version, record) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, record = EXCLUDED.record
             WHERE durin_nexus_endpoints.version < EXCLUDED.version",
            &[&id, &version, &record],
        )
        .await
        .map_err(other)?;
    }
    tx.commit().await.map_err(other)
}

/// A record every replica holds whole, by its key in its table.
enum ClusterRow {
    Namespace(String),
    NexusEndpoint(String, i64),
}

fn cluster_row(bytes: &[u8]) -> Option<ClusterRow> {
    match LogRecord::decode(bytes).ok()?.kind? {
        log_record::Kind::Namespace(ns) => {
            Some(ClusterRow::Namespace(ns.namespace?.namespace_info?.name))
        }
        log_record::Kind::NexusEndpoint(e) => Some(ClusterRow::NexusEndpoint(e.id, e.version)),
        _ => None,
    }
}
