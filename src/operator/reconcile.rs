//! What the three controllers share: their error type, the retry policy after an error, and
//! draining a controller's stream into logs and metrics.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::finalizer;

use super::context::Context;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("engine: {0}")]
    Engine(#[from] tonic::Status),
    #[error("{0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

/// A failed reconcile is retried after a short pause (the error is logged).
pub fn retry_after_error<K: ResourceExt>(obj: Arc<K>, err: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(
        kind = std::any::type_name::<K>().rsplit("::").next().unwrap_or(""),
        name = %obj.name_any(),
        error = %err,
        "reconcile failed; retrying"
    );
    Action::requeue(Duration::from_secs(5))
}

/// Runs a controller's stream to its end, counting reconciles by outcome.
pub async fn drain<T: Debug, E: std::fmt::Display>(
    controller: &'static str,
    results: impl Stream<Item = Result<T, E>>,
) {
    results
        .for_each(|res| async move {
            crate::metrics::record_reconcile(controller, res.is_ok());
            if let Err(e) = res {
                tracing::debug!(controller, error = %e, "reconcile");
            }
        })
        .await;
}
