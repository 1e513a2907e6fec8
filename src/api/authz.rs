//! Wraps the service handlers so that, when an auth file is configured, every RPC is checked
//! against it before it reaches the engine (see `auth.rs`).

use std::sync::Arc;

use temporalio_protos::temporal::api::operatorservice::v1::*;
use temporalio_protos::temporal::api::workflowservice::v1::*;
use tonic::{Request, Response, Status};

use super::auth::AuthPolicy;
use super::rate::NamespaceRates;
use crate::proto::operatorservice::operator_service_server::OperatorService;
use crate::proto::workflowservice::workflow_service_server::WorkflowService;

/// A handler behind an optional auth policy and per-namespace rate limits.
pub struct Guarded<H> {
    inner: H,
    policy: Option<Arc<AuthPolicy>>,
    rates: Option<Arc<NamespaceRates>>,
}

impl<H> Guarded<H> {
    pub fn new(
        inner: H,
        policy: Option<Arc<AuthPolicy>>,
        rates: Option<Arc<NamespaceRates>>,
    ) -> Self {
        Self {
            inner,
            policy,
            rates,
        }
    }

    fn check<T>(
        &self,
        req: &Request<T>,
        method: &str,
        namespace: Option<&str>,
    ) -> Result<(), Status> {
        if let Some(p) = &self.policy {
            p.check(req.metadata(), namespace)?;
        }
        // Long polls are bounded by --max-waiting; a forwarded call was counted where it
        // entered the cluster.
        if let (Some(rates), Some(ns)) = (&self.rates, namespace)
            && !method.starts_with("poll_")
            && req.extensions().get::<crate::rpc::Forwarded>().is_none()
        {
            rates.admit(ns)?;
        }
        Ok(())
    }
}

/// One call as `RUST_LOG=durin::rpc=debug` shows it: when it came in and how it ended (long
/// polls that never return are the ones with a start and no end).
struct CallTrace {
    method: &'static str,
    namespace: String,
    started: std::time::Instant,
}

impl CallTrace {
    fn start(method: &'static str, namespace: Option<&str>) -> Self {
        let namespace = namespace.unwrap_or_default().to_owned();
        tracing::debug!(target: "durin::rpc", method, namespace, "call");
        Self {
            method,
            namespace,
            started: std::time::Instant::now(),
        }
    }

    fn finish<T>(self, result: &Result<T, Status>) {
        let code = result.as_ref().err().map_or(tonic::Code::Ok, Status::code);
        tracing::debug!(
            target: "durin::rpc",
            method = self.method,
            namespace = self.namespace,
            ?code,
            elapsed_ms = self.started.elapsed().as_millis() as u64,
            "answered"
        );
    }
}

/// The checks in front of every RPC of the table (`crate::rpc`); the rest keep the
/// generated UNIMPLEMENTED answers.
macro_rules! guard {
    ([$service:ident] $($method:ident($req:ty) -> $resp:ty, $name:literal, $ns:expr, $key:expr;)*) => {
        #[tonic::async_trait]
        impl<H: $service> $service for Guarded<H> {
            $(
                async fn $method(&self, req: Request<$req>) -> Result<Response<$resp>, Status> {
                    let namespace: fn(&$req) -> Option<&str> = $ns;
                    crate::metrics::label_call(
                        stringify!($method),
                        namespace(req.get_ref()),
                        req.get_ref(),
                    );
                    self.check(&req, stringify!($method), namespace(req.get_ref()))?;
                    let route: fn(&$req) -> $crate::rpc::RouteKey<'_> = $key;
                    $crate::rpc::check_route_key(route(req.get_ref()))?;
                    let traced = tracing::enabled!(target: "durin::rpc", tracing::Level::DEBUG)
                        .then(|| CallTrace::start($name, namespace(req.get_ref())));
                    let result = self.inner.$method(req).await;
                    if let Some(trace) = traced {
                        trace.finish(&result);
                    }
                    result
                }
            )*
        }
    };
}

crate::workflow_rpcs!(guard[WorkflowService]);
crate::operator_rpcs!(guard[OperatorService]);
