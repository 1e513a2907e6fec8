//! Nexus over HTTP, the handler's side: outside Nexus callers start and cancel operations on
//! an endpoint whose handlers are Durin workers, at Temporal's paths
//!
//! - `POST /nexus/endpoints/{endpoint id}/services/{service}/{operation}` (start), and
//!   `…/{operation}/cancel` with the operation's token in `Nexus-Operation-Token`;
//! - the same under `/namespaces/{namespace}/task-queues/{task queue}/nexus-services/`,
//!   addressing the handlers' task queue directly.
//!
//! The request is held until a handler answers (see `engine/nexus/inbound.rs`) and answered
//! as the Nexus protocol says: 200 with a synchronous result, 201 with an asynchronous
//! operation's token, 424 when the operation failed or was canceled, 202 for a cancellation,
//! the handler error's status, or 520 when no handler answered before the deadline. Bearer
//! tokens are checked for the handlers' namespace.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use temporalio_protos::temporal::api::failure::v1::{Failure, failure};
use temporalio_protos::temporal::api::nexus::v1::start_operation_response::Variant as Start;
use temporalio_protos::temporal::api::nexus::v1::{Link as NexusLink, response};

use super::nexus_http::{Served, header, refuse};
use crate::engine::Error;
use crate::engine::nexus::http::wire::{self, NexusFailure};
use crate::engine::nexus::inbound::{InboundAnswer, InboundKind, InboundRequest, InboundTarget};

/// The longest a request waits for a handler (Temporal's cap on a dispatched Nexus task);
/// also the wait when the caller sets no `Request-Timeout`.
const MAX_WAIT_MS: i64 = 60_000;

/// Request headers that are the transport's, not the caller's Nexus headers for the handler.
const NOT_NEXUS_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "host",
    "accept",
    "accept-encoding",
    "transfer-encoding",
    "te",
    "nexus-link",
    "nexus-request-id",
    "nexus-operation-token",
    "request-timeout",
];

pub(super) fn add_routes(router: axum::Router<Served>) -> axum::Router<Served> {
    const BY_ENDPOINT: &str = "/nexus/endpoints/{endpoint}/services/{service}/{operation}";
    const BY_QUEUE: &str =
        "/namespaces/{namespace}/task-queues/{queue}/nexus-services/{service}/{operation}";
    router
        .route(BY_ENDPOINT, post(start_by_endpoint))
        .route(&format!("{BY_ENDPOINT}/cancel"), post(cancel_by_endpoint))
        .route(BY_QUEUE, post(start_by_queue))
        .route(&format!("{BY_QUEUE}/cancel"), post(cancel_by_queue))
}

/// Where a request goes: an endpoint by id, or a namespace's task queue.
enum Address {
    Endpoint(String),
    Queue { namespace: String, queue: String },
}

async fn start_by_endpoint(
    State(served): State<Served>,
    Path((endpoint, service, operation)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = start_kind(&uri, &headers, body);
    serve(
        served,
        Address::Endpoint(endpoint),
        (service, operation),
        headers,
        kind,
    )
    .await
}

async fn cancel_by_endpoint(
    State(served): State<Served>,
    Path((endpoint, service, operation)): Path<(String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let kind = cancel_kind(&uri, &headers);
    serve(
        served,
        Address::Endpoint(endpoint),
        (service, operation),
        headers,
        kind,
    )
    .await
}

async fn start_by_queue(
    State(served): State<Served>,
    Path((namespace, queue, service, operation)): Path<(String, String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let kind = start_kind(&uri, &headers, body);
    let address = Address::Queue { namespace, queue };
    serve(served, address, (service, operation), headers, kind).await
}

async fn cancel_by_queue(
    State(served): State<Served>,
    Path((namespace, queue, service, operation)): Path<(String, String, String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let kind = cancel_kind(&uri, &headers);
    let address = Address::Queue { namespace, queue };
    serve(served, address, (service, operation), headers, kind).await
}

/// Resolves, authorizes and dispatches a request, and answers with the handler's answer.
async fn serve(
    served: Served,
    address: Address,
    (service, operation): (String, String),
    headers: HeaderMap,
    kind: Result<InboundKind, String>,
) -> Response {
    let target = match address {
        Address::Endpoint(id) => match served.engine.inbound_nexus_target(&id) {
            Ok(target) => target,
            Err(e) => return refuse_error(e),
        },
        Address::Queue { namespace, queue } => InboundTarget {
            endpoint: String::new(),
            namespace,
            task_queue: queue,
        },
    };
    if let Some(refused) = served.refusal(&headers, &target.namespace) {
        return refused;
    }
    let kind = match kind {
        Ok(kind) => kind,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message),
    };
    let wait_ms = match header(&headers, "request-timeout")
        .map(|t| crate::go_duration::parse_millis(t.trim()))
    {
        None => MAX_WAIT_MS,
        Some(Some(ms)) => ms.min(MAX_WAIT_MS),
        Some(None) => return refuse(StatusCode::BAD_REQUEST, "invalid request timeout"),
    };
    let request = InboundRequest {
        service,
        operation,
        header: nexus_headers(&headers),
        kind,
    };
    match served
        .engine
        .dispatch_inbound_nexus(target, request, wait_ms)
        .await
    {
        Ok(Some(answer)) => answer_response(answer),
        Ok(None) => refuse(
            status(wire::handler_error_status("UPSTREAM_TIMEOUT")),
            "upstream timeout",
        ),
        Err(e) => refuse_error(e),
    }
}

fn refuse_error(e: Error) -> Response {
    match e {
        Error::NotFound(m) | Error::NamespaceNotFound(m) => refuse(StatusCode::NOT_FOUND, m),
        Error::InvalidArgument(m) => refuse(StatusCode::BAD_REQUEST, m),
        Error::Unavailable(m) => refuse(StatusCode::SERVICE_UNAVAILABLE, m),
        e => refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A start request: its id, callback, links and payload.
fn start_kind(uri: &Uri, headers: &HeaderMap, body: Bytes) -> Result<InboundKind, String> {
    let payload = wire::from_content(header(headers, "content-type"), body.to_vec())
        .ok_or("invalid request content")?;
    let callback_header = headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix("nexus-callback-")?;
            Some((name.to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    Ok(InboundKind::Start {
        request_id: header(headers, "nexus-request-id")
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        callback: query_value(uri, "callback").unwrap_or_default(),
        callback_header,
        payload: Some(payload),
        links: wire::parse_links(
            headers
                .get_all("nexus-link")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        ),
    })
}

/// A cancel request: the operation's token, from its header or (older callers) the query.
fn cancel_kind(uri: &Uri, headers: &HeaderMap) -> Result<InboundKind, String> {
    let operation_token = header(headers, "nexus-operation-token")
        .map(str::to_string)
        .or_else(|| query_value(uri, "token"))
        .filter(|t| !t.is_empty())
        .ok_or("missing operation token")?;
    Ok(InboundKind::Cancel { operation_token })
}

fn query_value(uri: &Uri, name: &str) -> Option<String> {
    url::form_urlencoded::parse(uri.query()?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The caller's headers the handler gets (lowercased): all but the transport's, the
/// content's and the callback's.
fn nexus_headers(headers: &HeaderMap) -> HashMap<String, String> {
    headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !NOT_NEXUS_HEADERS.contains(&name)
                && !name.starts_with("content-")
                && !name.starts_with("nexus-callback-")
        })
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect()
}

/// The handler's answer as the Nexus protocol's HTTP response.
fn answer_response(answer: InboundAnswer) -> Response {
    match answer {
        InboundAnswer::Answered(response::Variant::CancelOperation(_)) => {
            StatusCode::ACCEPTED.into_response()
        }
        InboundAnswer::Answered(response::Variant::StartOperation(start)) => match start.variant {
            Some(Start::SyncSuccess(sync)) => {
                let content = wire::to_content(sync.payload.as_ref());
                let mut resp = (StatusCode::OK, content.body).into_response();
                for (name, value) in &content.headers {
                    add_header(&mut resp, &format!("content-{name}"), value);
                }
                add_links(resp, &sync.links)
            }
            Some(Start::AsyncSuccess(started)) => {
                let body = serde_json::json!({
                    "token": started.operation_token,
                    "state": "running",
                });
                let resp = (StatusCode::CREATED, axum_json(&body)).into_response();
                add_links(json_typed(resp), &started.links)
            }
            Some(Start::Failure(f)) => {
                let canceled = matches!(
                    f.failure_info,
                    Some(failure::FailureInfo::CanceledFailureInfo(_))
                );
                operation_unsuccessful(canceled, &wire::from_failure(&f))
            }
            #[allow(deprecated)]
            Some(Start::OperationError(e)) => {
                let f = e.failure.unwrap_or_default();
                let body = NexusFailure {
                    message: f.message,
                    stack_trace: f.stack_trace,
                    metadata: f.metadata.into_iter().collect(),
                    details: serde_json::from_slice(&f.details).ok(),
                    cause: None,
                };
                operation_unsuccessful(e.operation_state == "canceled", &body)
            }
            None => refuse(StatusCode::INTERNAL_SERVER_ERROR, "empty handler response"),
        },
        InboundAnswer::Failed(f) => handler_error(&f),
    }
}

/// 424: the operation failed or was canceled, with the handler's failure.
fn operation_unsuccessful(canceled: bool, failure: &NexusFailure) -> Response {
    let state = if canceled { "canceled" } else { "failed" };
    let mut resp =
        json_typed((status(wire::OPERATION_FAILED_STATUS), axum_json(failure)).into_response());
    add_header(&mut resp, "nexus-operation-state", state);
    resp
}

/// A handler error: its type's status, the failure, and its retry behaviour when the
/// handler gave one.
fn handler_error(f: &Failure) -> Response {
    use temporalio_protos::temporal::api::enums::v1::NexusHandlerErrorRetryBehavior as B;
    let Some(failure::FailureInfo::NexusHandlerFailureInfo(about)) = &f.failure_info else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, f.message.clone());
    };
    let status = status(wire::handler_error_status(&about.r#type));
    let mut resp = json_typed((status, axum_json(&wire::from_failure(f))).into_response());
    match B::try_from(about.retry_behavior).unwrap_or(B::Unspecified) {
        B::Retryable => add_header(&mut resp, "nexus-request-retryable", "true"),
        B::NonRetryable => add_header(&mut resp, "nexus-request-retryable", "false"),
        B::Unspecified => {}
    }
    resp
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn axum_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn json_typed(mut resp: Response) -> Response {
    add_header(&mut resp, "content-type", "application/json");
    resp
}

/// Sets a header (Nexus-Link, which may come several times, is added).
fn add_header(resp: &mut Response, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        http::HeaderName::from_bytes(name.as_bytes()),
        http::HeaderValue::from_str(value),
    ) {
        if name == "nexus-link" {
            resp.headers_mut().append(name, value);
        } else {
            resp.headers_mut().insert(name, value);
        }
    }
}

fn add_links(mut resp: Response, links: &[NexusLink]) -> Response {
    for link in links {
        add_header(&mut resp, "nexus-link", &wire::link_header(link));
    }
    resp
}
