//! The schema Durin keeps in PostgreSQL, as versioned migrations that Durin applies itself.

use tokio_postgres::Client;

use super::pg_error;
use crate::store::StoreError;

/// Versioned schema changes, applied in order, each once. Never edit a released entry; add a
/// new one.
const MIGRATIONS: &[(i32, &str)] = &[
    (
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
    ),
    (
        2,
        // The shard count is fixed when the first replica creates the cluster; a database
        // written before shards existed has everything in shard 0, so it keeps one shard.
        "CREATE TABLE durin_cluster (
             singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
             shard_count integer NOT NULL CHECK (shard_count > 0)
         );
         INSERT INTO durin_cluster (shard_count)
             SELECT 1 WHERE EXISTS (SELECT 1 FROM durin_shards);
         CREATE TABLE durin_namespaces (
             name text PRIMARY KEY,
             record bytea NOT NULL
         );
         CREATE TABLE durin_replicas (
             replica_id text PRIMARY KEY,
             address text NOT NULL,
             heartbeat timestamptz NOT NULL
         );",
    ),
    (
        3,
        // Replicas prove to each other that they share the database: every replica-to-replica
        // call carries this secret, which only readers of the database know.
        "ALTER TABLE durin_cluster
             ADD COLUMN secret text NOT NULL
             DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');",
    ),
    (
        4,
        // The Nexus endpoint registry, beside the namespaces: every replica reads all of it.
        // The version column lets a write keep only the newest copy of an endpoint.
        "CREATE TABLE durin_nexus_endpoints (
             id text PRIMARY KEY,
             version bigint NOT NULL,
             record bytea NOT NULL
         );",
    ),
];

/// Any constant: replicas migrating at once queue on this advisory lock.
const MIGRATION_LOCK: i64 = 0x6475_7269_6e00_0001;

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

/// The cluster's shard count (`wanted` if this replica creates the cluster, else what the
/// first replica chose; one row per shard, created unowned) and its secret.
pub async fn cluster(client: &Client, wanted: u32) -> Result<(u32, String), StoreError> {
    let wanted = i32::try_from(wanted.max(1)).unwrap_or(i32::MAX);
    client
        .execute(
            "INSERT INTO durin_cluster (shard_count) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&wanted],
        )
        .await
        .map_err(pg_error)?;
    let row = client
        .query_one("SELECT shard_count, secret FROM durin_cluster", &[])
        .await
        .map_err(pg_error)?;
    let count: i32 = row.get(0);
    let secret: String = row.get(1);
    client
        .execute(
            "INSERT INTO durin_shards (shard_id, owner, epoch, lease_until)
             SELECT g, '', 0, 'epoch' FROM generate_series(0, $1 - 1) AS g
             ON CONFLICT (shard_id) DO NOTHING",
            &[&count],
        )
        .await
        .map_err(pg_error)?;
    if count != wanted && wanted != 16 {
        tracing::info!(
            shards = count,
            "the cluster's shard count was fixed when it was created"
        );
    }
    Ok((count as u32, secret))
}
