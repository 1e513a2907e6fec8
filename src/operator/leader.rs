//! Leader election with a `coordination.k8s.io` Lease: only the holder runs controllers, so
//! two operator replicas never both act on a resource.

use std::future::Future;
use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;

pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// Seconds a lease is valid without renewal.
    pub duration_secs: u64,
}

/// Runs `lead` while this process holds the lease; stops it when the lease is lost and
/// competes again. Never returns unless the lease machinery is dropped.
pub async fn run_while_leader<F, Fut>(client: Client, cfg: LeaseConfig, lead: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let grace = (cfg.duration_secs / 3).max(1);
    loop {
        let manager = match LeaseManagerBuilder::new(client.clone(), &cfg.name)
            .with_namespace(&cfg.namespace)
            .with_identity(&cfg.identity)
            .with_duration(cfg.duration_secs)
            .with_grace(grace)
            .build()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot set up the leader lease; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        let (mut leader, watcher) = manager.watch().await;
        tracing::info!(lease = %cfg.name, identity = %cfg.identity, "waiting for leadership");
        loop {
            if leader.wait_for(|is| *is).await.is_err() {
                break;
            }
            tracing::info!(identity = %cfg.identity, "became leader; starting controllers");
            let task = tokio::spawn(lead());
            let lost = leader.wait_for(|is| !*is).await;
            task.abort();
            tracing::warn!(identity = %cfg.identity, "lost leadership; controllers stopped");
            if lost.is_err() {
                break;
            }
        }
        drop(leader);
        let _ = watcher.await;
    }
}
