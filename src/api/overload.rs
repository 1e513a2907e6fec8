//! Admission control: at most so many requests in flight, long polls counted apart. A request
//! beyond the limit is answered RESOURCE_EXHAUSTED at once instead of queueing without bound;
//! SDKs back off and retry it.

use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Semaphore;

/// Calls that may wait for a long time by design (long polls, waits for results).
fn waits(method: &str) -> bool {
    matches!(
        method,
        "PollWorkflowTaskQueue"
            | "PollActivityTaskQueue"
            | "PollWorkflowExecutionUpdate"
            | "GetWorkflowExecutionHistory"
            | "UpdateWorkflowExecution"
            | "QueryWorkflow"
            | "ExecuteMultiOperation"
            | "PollActivityExecution"
            | "DescribeActivityExecution"
            | "PollNexusOperationExecution"
            | "DescribeNexusOperationExecution"
    )
}

#[derive(Clone)]
pub struct OverloadLayer {
    calls: Arc<Semaphore>,
    waits: Arc<Semaphore>,
}

impl OverloadLayer {
    pub fn new(max_calls: usize, max_waits: usize) -> Self {
        Self {
            calls: Arc::new(Semaphore::new(max_calls.max(1))),
            waits: Arc::new(Semaphore::new(max_waits.max(1))),
        }
    }
}

impl<S> tower::Layer<S> for OverloadLayer {
    type Service = Overload<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Overload {
            inner,
            limits: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Overload<S> {
    inner: S,
    limits: OverloadLayer,
}

impl<S, B, R> tower::Service<http::Request<B>> for Overload<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().rsplit('/').next().unwrap_or("");
        let pool = if waits(method) {
            &self.limits.waits
        } else {
            &self.limits.calls
        };
        // gRPC health checks are never refused (probes must see an overloaded server alive).
        let exempt = req.uri().path().starts_with("/grpc.health.");
        let permit = if exempt {
            None
        } else {
            match pool.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    let status = tonic::Status::resource_exhausted(
                        "the server is at its limit of requests in flight; retry with backoff",
                    );
                    return Box::pin(async move { Ok(status.into_http()) });
                }
            }
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            drop(permit);
            res
        })
    }
}
