//! Calls to a Nexus handler at an external endpoint's URL: start an operation (with the
//! callback URL and token, links and deadlines) or cancel it, and the handler's answer read
//! as the shapes a worker's answer has.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use temporalio_protos::temporal::api::common::v1::Payload;
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::nexus::v1::Link as NexusLink;

use super::wire::{self, NexusFailure};

/// Largest answer read from a handler (Temporal's limit on Nexus bodies).
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// What a start call sends.
pub struct StartCall {
    pub url: String,
    pub service: String,
    pub operation: String,
    pub request_id: String,
    pub input: Option<Payload>,
    /// The caller's Nexus headers (lowercased) and the operation timeout.
    pub header: Vec<(String, String)>,
    pub callback_url: String,
    pub callback_header: Vec<(String, String)>,
    pub links: Vec<NexusLink>,
    pub timeout: Duration,
}

/// What a cancel call sends.
pub struct CancelCall {
    pub url: String,
    pub service: String,
    pub operation: String,
    pub token: String,
    pub header: Vec<(String, String)>,
    pub timeout: Duration,
}

/// A completion to post to a caller's callback URL.
pub struct CompletionPost {
    pub url: String,
    /// The callback's own headers (the caller's token among them).
    pub header: Vec<(String, String)>,
    /// `succeeded`, `failed` or `canceled`.
    pub state: &'static str,
    /// The result (succeeded) or the failure JSON (otherwise), with its content headers.
    pub content: wire::Content,
    pub operation_token: String,
    /// When the operation started and closed, in milliseconds since the epoch.
    pub start_time: i64,
    pub close_time: i64,
    pub links: Vec<NexusLink>,
}

/// How a completion's delivery went.
#[derive(Debug)]
pub enum Delivery {
    Delivered,
    /// Refused for good (a 4xx answer).
    Refused(String),
    /// Not taken yet (a 5xx answer, or the caller's server unreachable): try again later.
    Retry(String),
}

/// A handler's answer.
#[derive(Debug)]
pub enum Answer {
    /// Completed synchronously with this result.
    Completed(Option<Payload>, Vec<NexusLink>),
    /// Started asynchronously under this token.
    Started(String, Vec<NexusLink>),
    /// The operation failed, or was canceled (a canceled failure).
    Unsuccessful(Failure),
    /// The cancellation was accepted.
    CancelAccepted,
    /// A handler error of this type; retried unless the handler or the type says not.
    HandlerError {
        error_type: String,
        message: String,
        retryable: Option<bool>,
    },
}

/// The HTTP client for handler calls (HTTP or HTTPS with the system's roots).
pub struct HandlerClient {
    client: HttpsClient,
}

impl HandlerClient {
    pub fn new() -> std::io::Result<Self> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        Ok(Self { client })
    }

    pub async fn start(&self, call: StartCall) -> Answer {
        let url = operation_url(&call.url, &call.service, &call.operation, None);
        let url = match url {
            Ok(mut u) => {
                if !call.callback_url.is_empty() {
                    u.query_pairs_mut()
                        .append_pair("callback", &call.callback_url);
                }
                u
            }
            Err(e) => return bad_endpoint(e),
        };
        let content = wire::to_content(call.input.as_ref());
        let mut req = http::Request::post(url.as_str())
            .header("nexus-request-id", &call.request_id)
            .header("request-timeout", format!("{}ms", call.timeout.as_millis()));
        for (k, v) in &content.headers {
            req = req.header(format!("content-{k}"), v);
        }
        for (k, v) in &call.header {
            req = req.header(k, v);
        }
        for (k, v) in &call.callback_header {
            req = req.header(format!("nexus-callback-{k}"), v);
        }
        for l in &call.links {
            req = req.header("nexus-link", wire::link_header(l));
        }
        self.send(req, content.body, call.timeout, false).await
    }

    pub async fn cancel(&self, call: CancelCall) -> Answer {
        let url = match operation_url(&call.url, &call.service, &call.operation, Some("cancel")) {
            Ok(u) => u,
            Err(e) => return bad_endpoint(e),
        };
        let mut req = http::Request::post(url.as_str())
            .header("nexus-operation-token", &call.token)
            .header("request-timeout", format!("{}ms", call.timeout.as_millis()));
        for (k, v) in &call.header {
            req = req.header(k, v);
        }
        self.send(req, Vec::new(), call.timeout, true).await
    }

    /// Posts a completion to its callback URL.
    pub async fn complete(&self, post: CompletionPost) -> Delivery {
        const TIMEOUT: Duration = Duration::from_secs(10);
        let mut req = http::Request::post(post.url.as_str())
            .header("nexus-operation-state", post.state)
            .header("nexus-operation-start-time", http_date(post.start_time))
            .header("nexus-operation-close-time", rfc3339(post.close_time));
        if !post.operation_token.is_empty() {
            req = req.header("nexus-operation-token", &post.operation_token);
        }
        for (k, v) in &post.content.headers {
            req = req.header(format!("content-{k}"), v);
        }
        for (k, v) in &post.header {
            req = req.header(k, v);
        }
        for l in &post.links {
            req = req.header("nexus-link", wire::link_header(l));
        }
        let req = match req.body(Full::new(Bytes::from(post.content.body))) {
            Ok(r) => r,
            Err(e) => return Delivery::Refused(format!("invalid completion request: {e}")),
        };
        let resp = match tokio::time::timeout(TIMEOUT, self.client.request(req)).await {
            Err(_) => return Delivery::Retry("the callback did not answer in time".into()),
            Ok(Err(e)) => return Delivery::Retry(format!("calling the callback: {e}")),
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status();
        let body =
            tokio::time::timeout(TIMEOUT, Limited::new(resp.into_body(), 64 * 1024).collect())
                .await
                .ok()
                .and_then(|b| b.ok())
                .map(|b| b.to_bytes().to_vec())
                .unwrap_or_default();
        let message = || {
            serde_json::from_slice::<NexusFailure>(&body)
                .map(|f| f.message)
                .unwrap_or_else(|_| format!("callback answered {status}"))
        };
        if status.is_success() {
            Delivery::Delivered
        } else if status.is_client_error() && status.as_u16() != 429 && status.as_u16() != 408 {
            Delivery::Refused(message())
        } else {
            Delivery::Retry(message())
        }
    }

    async fn send(
        &self,
        req: http::request::Builder,
        body: Vec<u8>,
        timeout: Duration,
        cancel: bool,
    ) -> Answer {
        let req = match req.body(Full::new(Bytes::from(body))) {
            Ok(r) => r,
            Err(e) => return bad_endpoint(e.to_string()),
        };
        let resp = match tokio::time::timeout(timeout, self.client.request(req)).await {
            Err(_) => return handler_error("UPSTREAM_TIMEOUT", "upstream timeout", None),
            Ok(Err(e)) => {
                return handler_error("UNAVAILABLE", &format!("calling the handler: {e}"), None);
            }
            Ok(Ok(resp)) => resp,
        };
        let (parts, body) = resp.into_parts();
        let body = match tokio::time::timeout(timeout, Limited::new(body, MAX_BODY_BYTES).collect())
            .await
        {
            Ok(Ok(b)) => b.to_bytes().to_vec(),
            Ok(Err(e)) => {
                return handler_error("INTERNAL", &format!("reading the answer: {e}"), None);
            }
            Err(_) => return handler_error("UPSTREAM_TIMEOUT", "upstream timeout", None),
        };
        read_answer(&parts, body, cancel)
    }
}

/// `<base>/<service>/<operation>[/<suffix>]`, each name path-escaped.
fn operation_url(
    base: &str,
    service: &str,
    operation: &str,
    suffix: Option<&str>,
) -> Result<url::Url, String> {
    let mut url = url::Url::parse(base).map_err(|e| format!("invalid endpoint URL: {e}"))?;
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|_| "invalid endpoint URL: it cannot have a path".to_string())?;
        path.pop_if_empty().push(service).push(operation);
        if let Some(s) = suffix {
            path.push(s);
        }
    }
    Ok(url)
}

fn header<'a>(parts: &'a http::response::Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The handler's HTTP answer as an [`Answer`].
fn read_answer(parts: &http::response::Parts, body: Vec<u8>, cancel: bool) -> Answer {
    let links = || {
        wire::parse_links(
            parts
                .headers
                .get_all("nexus-link")
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
    };
    let failure = |body: &[u8]| serde_json::from_slice::<NexusFailure>(body).ok();
    let status = parts.status.as_u16();
    match status {
        200 if !cancel => Answer::Completed(
            wire::from_content(header(parts, "content-type"), body),
            links(),
        ),
        201 if !cancel => {
            #[derive(serde::Deserialize)]
            struct Started {
                #[serde(default)]
                token: String,
                #[serde(default)]
                id: String,
            }
            match serde_json::from_slice::<Started>(&body) {
                Ok(s) if !s.token.is_empty() || !s.id.is_empty() => {
                    let token = if s.token.is_empty() { s.id } else { s.token };
                    Answer::Started(token, links())
                }
                _ => handler_error("INTERNAL", "invalid asynchronous start answer", None),
            }
        }
        200..=299 if cancel => Answer::CancelAccepted,
        424 => {
            let state = header(parts, "nexus-operation-state").unwrap_or("failed");
            let f = failure(&body).unwrap_or_else(|| NexusFailure {
                message: "operation failed".into(),
                ..Default::default()
            });
            Answer::Unsuccessful(wire::to_failure(&f, state == "canceled"))
        }
        _ => {
            let message = failure(&body)
                .map(|f| f.message)
                .unwrap_or_else(|| format!("unexpected response status {status}"));
            let retryable = header(parts, "nexus-request-retryable").and_then(|v| v.parse().ok());
            match wire::handler_error_type(status) {
                Some(t) => handler_error(t, &message, retryable),
                // An unexpected status is retried, as Temporal retries it.
                None => handler_error("INTERNAL", &message, Some(true)),
            }
        }
    }
}

fn handler_error(error_type: &str, message: &str, retryable: Option<bool>) -> Answer {
    Answer::HandlerError {
        error_type: error_type.into(),
        message: message.into(),
        retryable,
    }
}

fn bad_endpoint(message: String) -> Answer {
    handler_error("BAD_REQUEST", &message, Some(false))
}

/// `Mon, 02 Jan 2006 15:04:05 GMT` (HTTP's date form).
fn http_date(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// RFC 3339 in UTC with milliseconds.
fn rfc3339(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_urls_escape_names_under_the_base_path() {
        let u = operation_url("http://h:1/api/", "my svc", "op/x", None).unwrap();
        assert_eq!(u.as_str(), "http://h:1/api/my%20svc/op%2Fx");
        let c = operation_url("https://h/base", "s", "o", Some("cancel")).unwrap();
        assert_eq!(c.as_str(), "https://h/base/s/o/cancel");
    }
}
