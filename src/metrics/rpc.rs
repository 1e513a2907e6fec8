//! Per-call metrics: a tower layer around the gRPC server times every call and reads its
//! status code; the handlers' guard (`api/authz.rs`), which knows each request's namespace,
//! labels the call through a task-local while it runs.

use std::any::Any;
use std::cell::RefCell;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use temporalio_protos::temporal::api::workflowservice::v1::GetWorkflowExecutionHistoryRequest;

/// What the guard learned about the call being served.
#[derive(Default, Debug)]
pub struct CallLabels {
    pub namespace: Option<String>,
    /// A call that waits for work or events by design (its latency is not the server's).
    pub long_poll: bool,
    /// Temporal's name for the operation where it differs from the method's
    /// (`PollWorkflowExecutionHistory` for a history long poll).
    pub operation: Option<&'static str>,
}

tokio::task_local! {
    static CALL: RefCell<CallLabels>;
}

/// Labels the call being served (a no-op outside a served call, e.g. the operator calling
/// the handlers in-process).
pub fn label_call(method: &str, namespace: Option<&str>, request: &dyn Any) {
    let history_poll = request
        .downcast_ref::<GetWorkflowExecutionHistoryRequest>()
        .is_some_and(|r| r.wait_new_event);
    let _ = CALL.try_with(|call| {
        let mut call = call.borrow_mut();
        call.namespace = namespace.map(str::to_string);
        call.long_poll = history_poll || method.starts_with("poll_");
        if history_poll {
            call.operation = Some("PollWorkflowExecutionHistory");
        }
    });
}

include!(concat!(env!("OUT_DIR"), "/rpc_paths.rs"));

/// The operation label of a call: its method name when the path is one Durin serves, else
/// `unknown` (so a client cannot add labels).
pub(super) fn method_label(path: &str) -> &'static str {
    match RPC_PATHS.binary_search(&path) {
        Ok(i) => RPC_PATHS[i].rsplit('/').next().unwrap_or("unknown"),
        Err(_) => "unknown",
    }
}

/// Temporal's `error_type` label for a gRPC status code (`serviceerror_<type>`).
pub(super) fn error_type(code: tonic::Code) -> Option<&'static str> {
    use tonic::Code::*;
    Some(match code {
        Ok => return None,
        Cancelled => "serviceerror_Canceled",
        Unknown => "serviceerror_Unknown",
        InvalidArgument => "serviceerror_InvalidArgument",
        DeadlineExceeded => "serviceerror_DeadlineExceeded",
        NotFound => "serviceerror_NotFound",
        AlreadyExists => "serviceerror_AlreadyExists",
        PermissionDenied => "serviceerror_PermissionDenied",
        ResourceExhausted => "serviceerror_ResourceExhausted",
        FailedPrecondition => "serviceerror_FailedPrecondition",
        Aborted => "serviceerror_Aborted",
        OutOfRange => "serviceerror_OutOfRange",
        Unimplemented => "serviceerror_Unimplemented",
        Internal => "serviceerror_Internal",
        Unavailable => "serviceerror_Unavailable",
        DataLoss => "serviceerror_DataLoss",
        Unauthenticated => "serviceerror_Unauthenticated",
    })
}

/// A tower layer that records every gRPC call's operation, namespace, status and latency.
#[derive(Clone, Default)]
pub struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics { inner }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = method_label(req.uri().path());
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(CALL.scope(RefCell::new(CallLabels::default()), async move {
            let res = fut.await;
            // Handler errors come back trailers-only: the status is in the headers.
            let code = match &res {
                Ok(r) => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map(tonic::Code::from_i32)
                    .unwrap_or(tonic::Code::Ok),
                Err(_) => tonic::Code::Unavailable,
            };
            let labels = CALL.with(|c| c.take());
            super::record_call(method, labels, code, started.elapsed());
            res
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::method_label;

    #[test]
    fn only_served_methods_become_labels() {
        assert_eq!(
            method_label("/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"),
            "StartWorkflowExecution"
        );
        assert_eq!(
            method_label("/temporal.api.operatorservice.v1.OperatorService/ListSearchAttributes"),
            "ListSearchAttributes"
        );
        assert_eq!(method_label("/grpc.health.v1.Health/Check"), "Check");
        assert_eq!(
            method_label("/temporal.api.workflowservice.v1.WorkflowService/NoSuchMethod1"),
            "unknown"
        );
        assert_eq!(method_label("/made.up.Service/Anything"), "unknown");
        assert_eq!(method_label(""), "unknown");
    }
}
