//! Shard leases and replica membership, as rows in PostgreSQL.
//!
//! A replica owns a shard through its row in `durin_shards`: owner, epoch and lease expiry.
//! Taking a shard bumps the epoch; every write transaction first updates the row *where the
//! epoch is still the writer's own*, so the database rejects a stale owner's writes even if
//! that owner was paused and does not know it lost the shard (fencing). Replicas announce
//! themselves in `durin_replicas` with an address for forwarded requests and a heartbeat.

use std::time::Duration;

use tokio_postgres::Client;

use super::pg_error;
use crate::store::StoreError;

fn millis(d: Duration) -> f64 {
    d.as_millis() as f64
}

/// Takes `shard` if its lease ran out (or, when `restarting`, if this replica id held it:
/// the same replica coming back). Returns the new epoch.
pub async fn try_acquire(
    client: &Client,
    shard: u32,
    owner: &str,
    ttl: Duration,
    restarting: bool,
) -> Result<Option<i64>, StoreError> {
    let row = client
        .query_opt(
            "UPDATE durin_shards
                SET owner = $2, epoch = epoch + 1,
                    lease_until = now() + $3 * interval '1 millisecond'
              WHERE shard_id = $1 AND (lease_until < now() OR ($4 AND owner = $2))
              RETURNING epoch",
            &[&(shard as i32), &owner, &millis(ttl), &restarting],
        )
        .await
        .map_err(pg_error)?;
    Ok(row.map(|r| r.get(0)))
}

/// Extends the leases still held at the given epochs; returns the shards that were.
pub async fn renew(
    client: &Client,
    held: &[(u32, i64)],
    ttl: Duration,
) -> Result<Vec<u32>, StoreError> {
    let ids: Vec<i32> = held.iter().map(|h| h.0 as i32).collect();
    let epochs: Vec<i64> = held.iter().map(|h| h.1).collect();
    let rows = client
        .query(
            "UPDATE durin_shards AS s
                SET lease_until = now() + $3 * interval '1 millisecond'
               FROM UNNEST($1::integer[], $2::bigint[]) AS m(id, ep)
              WHERE s.shard_id = m.id AND s.epoch = m.ep
              RETURNING s.shard_id",
            &[&ids, &epochs, &millis(ttl)],
        )
        .await
        .map_err(pg_error)?;
    Ok(rows.iter().map(|r| r.get::<_, i32>(0) as u32).collect())
}

/// Gives a shard up at once (its lease is made expired), so another replica need not wait.
pub async fn release(client: &Client, shard: u32, epoch: i64) -> Result<(), StoreError> {
    client
        .execute(
            "UPDATE durin_shards SET lease_until = 'epoch'
              WHERE shard_id = $1 AND epoch = $2",
            &[&(shard as i32), &epoch],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// Says this replica is alive and where other replicas reach it.
pub async fn heartbeat(client: &Client, replica: &str, address: &str) -> Result<(), StoreError> {
    client
        .execute(
            "INSERT INTO durin_replicas (replica_id, address, heartbeat) VALUES ($1, $2, now())
             ON CONFLICT (replica_id) DO UPDATE SET address = EXCLUDED.address, heartbeat = now()",
            &[&replica, &address],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// Takes a replica out of the membership at once (a clean shutdown).
pub async fn leave(client: &Client, replica: &str) -> Result<(), StoreError> {
    client
        .execute(
            "DELETE FROM durin_replicas WHERE replica_id = $1",
            &[&replica],
        )
        .await
        .map_err(pg_error)?;
    Ok(())
}

/// Who is alive, and who holds which shard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Live replicas (heartbeat within the lease ttl): id and address, sorted by id.
    pub replicas: Vec<(String, String)>,
    /// Per shard, the owner whose lease is live (None while it is free or expired).
    pub owners: Vec<Option<String>>,
}

impl ClusterView {
    pub fn address_of(&self, replica: &str) -> Option<&str> {
        self.replicas
            .iter()
            .find(|(id, _)| id == replica)
            .map(|(_, a)| a.as_str())
    }
}

pub async fn view(client: &Client, ttl: Duration) -> Result<ClusterView, StoreError> {
    let replicas = client
        .query(
            "SELECT replica_id, address FROM durin_replicas
              WHERE heartbeat > now() - $1 * interval '1 millisecond'
              ORDER BY replica_id",
            &[&millis(ttl)],
        )
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let rows = client
        .query(
            "SELECT shard_id, owner, lease_until > now() FROM durin_shards ORDER BY shard_id",
            &[],
        )
        .await
        .map_err(pg_error)?;
    let mut owners = vec![None; rows.len()];
    for r in rows {
        let id: i32 = r.get(0);
        let live: bool = r.get(2);
        if let Some(slot) = owners.get_mut(id as usize) {
            *slot = live.then(|| r.get(1));
        }
    }
    Ok(ClusterView { replicas, owners })
}
