//! Keeps this replica's share of the shards: renews its leases, takes over shards whose
//! owner died, gives shards up when replicas join, and publishes who owns what for routing.

use std::sync::Arc;
use tokio::sync::watch;

use crate::engine::Engine;
use crate::store::postgres::{ClusterView, PgStore, fair_share};

/// Runs until the engine is dropped; the returned receiver always holds the latest view.
pub fn spawn(store: Arc<PgStore>, engine: &Arc<Engine>) -> watch::Receiver<ClusterView> {
    let (tx, rx) = watch::channel(ClusterView::default());
    let weak = Arc::downgrade(engine);
    let every = store.lease_ttl() / 3;
    tokio::spawn(async move {
        loop {
            let Some(engine) = weak.upgrade() else { return };
            match balance(&store, &engine).await {
                Ok(view) => {
                    tx.send_if_modified(|v| {
                        let changed = *v != view;
                        *v = view;
                        changed
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cluster membership round failed"),
            }
            drop(engine);
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = store.shard_lost() => {}
            }
        }
    });
    rx
}

/// One round: heartbeat and renew, drop lost shards, then move toward a fair share.
async fn balance(
    store: &PgStore,
    engine: &Engine,
) -> Result<ClusterView, crate::store::StoreError> {
    let (mut view, _) = store.tick().await?;
    if let Err(e) = engine.refresh_namespaces(store.namespaces().await?).await {
        tracing::warn!(error = %e, "could not take in the stored namespaces");
    }
    let me = store.replica_id().to_string();
    let held: Vec<u32> = store.held().iter().map(|h| h.0).collect();
    for shard in engine.owned_shards() {
        if !held.contains(&shard) {
            tracing::warn!(
                shard,
                "lost the lease of a shard; another replica serves it now"
            );
            engine.release_shard(shard);
        }
    }
    let share = fair_share(crate::store::Store::shard_count(store), view.replicas.len());
    let owned_by = |view: &ClusterView, id: &str| {
        view.owners
            .iter()
            .filter(|o| o.as_deref() == Some(id))
            .count()
    };
    let mut held_count = held.len();
    if held_count < share {
        for shard in 0..view.owners.len() {
            if held_count >= share {
                break;
            }
            if view.owners[shard].is_some() {
                continue;
            }
            if let Some(records) = store.take(shard as u32).await? {
                engine.adopt_shard(shard as u32, records)?;
                view.owners[shard] = Some(me.clone());
                held_count += 1;
            }
        }
    } else if held_count > share {
        let someone_short = view
            .replicas
            .iter()
            .any(|(id, _)| *id != me && owned_by(&view, id) < share);
        if someone_short {
            for &shard in held.iter().rev().take(held_count - share) {
                hand_over(store, engine, shard).await?;
                view.owners[shard as usize] = None;
            }
        }
    }
    Ok(view)
}

/// Stops serving a shard, waits until everything written to it is durable, then lets its
/// lease go so another replica can take it at once.
async fn hand_over(
    store: &PgStore,
    engine: &Engine,
    shard: u32,
) -> Result<(), crate::store::StoreError> {
    let lsn = engine.release_shard(shard);
    engine.settle(lsn).await;
    store.give_up(shard).await
}

/// A clean shutdown: every shard is handed over, and the replica leaves the membership.
pub async fn leave(store: &PgStore, engine: &Engine) {
    for shard in engine.owned_shards() {
        if let Err(e) = hand_over(store, engine, shard).await {
            tracing::warn!(shard, error = %e, "could not hand a shard over; its lease will expire");
        }
    }
    if let Err(e) = store.leave().await {
        tracing::warn!(error = %e, "could not leave the cluster membership");
    }
}
