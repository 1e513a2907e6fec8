//! Nexus over HTTP, served beside the gRPC services on the client port (same listener, TLS
//! and bearer tokens): operations started by outside callers (`nexus_dispatch.rs`), and the
//! completion callback a handler at an external endpoint calls when
//! an operation it started asynchronously ends — `POST /namespaces/{namespace}/nexus/callback`,
//! Temporal's path, with the callback token in `Temporal-Callback-Token` and the outcome in
//! the Nexus completion's headers and body.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;

use super::auth::AuthPolicy;
use crate::engine::nexus::http::wire::{self, NexusFailure};
use crate::engine::nexus::http::{HttpCompletion, HttpOutcome};
use crate::engine::{Engine, Error};

/// Largest completion body accepted (Temporal's limit for Nexus bodies).
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Longest operation token accepted.
const MAX_TOKEN_BYTES: usize = 4096;

#[derive(Clone)]
pub(super) struct Served {
    pub engine: Arc<Engine>,
    auth: Option<Arc<AuthPolicy>>,
}

impl Served {
    /// Checks the request's bearer token for `namespace` as the gRPC port checks it: the
    /// refusal (401: none or unknown, 403: not for that namespace), if any.
    pub fn refusal(&self, headers: &HeaderMap, namespace: &str) -> Option<Response> {
        let policy = self.auth.as_ref()?;
        let metadata = tonic::metadata::MetadataMap::from_headers(headers.clone());
        let status = policy.check(&metadata, Some(namespace)).err()?;
        let code = match status.code() {
            tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        Some(refuse(code, status.message()))
    }
}

/// The HTTP routes.
pub fn routes(engine: Arc<Engine>, auth: Option<Arc<AuthPolicy>>) -> axum::Router {
    let router =
        axum::Router::new().route("/namespaces/{namespace}/nexus/callback", post(callback));
    super::nexus_dispatch::add_routes(router)
        .with_state(Served { engine, auth })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// An error answer: the status and a Nexus failure naming what went wrong.
pub(super) fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    let body = NexusFailure {
        message: message.into(),
        ..Default::default()
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let mut resp = (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response();
    let retryable = matches!(status.as_u16(), 429 | 500 | 503 | 520);
    if let Ok(v) = http::HeaderValue::from_str(&retryable.to_string()) {
        resp.headers_mut().insert("nexus-request-retryable", v);
    }
    resp
}

pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn callback(
    State(served): State<Served>,
    Path(namespace): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = served.refusal(&headers, &namespace) {
        return refused;
    }
    let completion = match read_completion(&headers, body) {
        Ok(c) => c,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message),
    };
    match served
        .engine
        .complete_nexus_operation_over_http(&namespace, completion)
        .await
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(Error::InvalidArgument(m)) => refuse(StatusCode::BAD_REQUEST, m),
        Err(Error::NotFound(m)) | Err(Error::NamespaceNotFound(m)) => {
            refuse(StatusCode::NOT_FOUND, m)
        }
        Err(Error::Unavailable(m)) => refuse(StatusCode::SERVICE_UNAVAILABLE, m),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The completion a request carries, or why it is refused.
fn read_completion(headers: &HeaderMap, body: Bytes) -> Result<HttpCompletion, String> {
    let token = header(headers, "temporal-callback-token")
        .ok_or("invalid callback token")?
        .as_bytes()
        .to_vec();
    // Older Nexus SDKs name the token `Nexus-Operation-Id` on failures.
    let operation_token = header(headers, "nexus-operation-token")
        .or_else(|| header(headers, "nexus-operation-id"))
        .unwrap_or_default()
        .to_string();
    if operation_token.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "operation token length exceeds allowed limit ({}/{MAX_TOKEN_BYTES})",
            operation_token.len()
        ));
    }
    let content_type = header(headers, "content-type");
    let failure = |canceled: bool| -> Result<_, String> {
        if !content_type.is_some_and(|t| t.starts_with("application/json")) {
            return Err("invalid request content type".to_string());
        }
        let f: NexusFailure =
            serde_json::from_slice(&body).map_err(|_| "invalid failure".to_string())?;
        Ok(wire::to_failure(&f, canceled))
    };
    let outcome = match header(headers, "nexus-operation-state") {
        Some("succeeded") => HttpOutcome::Succeeded(Some(
            wire::from_content(content_type, body.to_vec()).ok_or("invalid result content")?,
        )),
        Some("failed") => HttpOutcome::Failed(failure(false)?),
        Some("canceled") => HttpOutcome::Canceled(failure(true)?),
        other => return Err(format!("invalid operation state: {other:?}")),
    };
    Ok(HttpCompletion {
        token,
        operation_token,
        outcome,
        links: wire::parse_links(
            headers
                .get_all("nexus-link")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        ),
    })
}
