//! The Nexus HTTP protocol's shapes, as Temporal and the Nexus SDKs speak it: a payload as an
//! HTTP body with `Content-*` headers, Nexus failures as JSON, handler errors as HTTP
//! statuses, links as `Nexus-Link` headers. Pure conversions, no I/O.

use std::collections::BTreeMap;

use prost::Message;
use serde::{Deserialize, Serialize};
use temporalio_protos::temporal::api::common::v1::Payload;
use temporalio_protos::temporal::api::failure::v1::{
    ApplicationFailureInfo, CanceledFailureInfo, Failure, failure,
};
use temporalio_protos::temporal::api::nexus::v1::Link as NexusLink;

/// The content type of a payload sent whole (its metadata does not map to plain content).
const TEMPORAL_PAYLOAD: &str = "application/x-temporal-payload";

/// A payload as an HTTP body and its `Content-*` headers (name without the prefix -> value).
pub struct Content {
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// A payload as Temporal sends it over HTTP: plain JSON or bytes as themselves (so any Nexus
/// handler reads them), anything else as the whole payload message.
pub fn to_content(payload: Option<&Payload>) -> Content {
    let Some(p) = payload else {
        return Content {
            headers: BTreeMap::new(),
            body: Vec::new(),
        };
    };
    let meta = |k: &str| p.metadata.get(k).map(|v| v.as_slice());
    let only_encoding = p.metadata.len() == 1;
    let plain = match meta("encoding") {
        Some(b"json/plain") if only_encoding => Some("application/json"),
        Some(b"binary/plain") if only_encoding => Some("application/octet-stream"),
        Some(b"binary/null") if only_encoding => None,
        _ => {
            return Content {
                headers: [("type".to_string(), TEMPORAL_PAYLOAD.to_string())].into(),
                body: p.encode_to_vec(),
            };
        }
    };
    Content {
        headers: plain
            .map(|t| ("type".to_string(), t.to_string()))
            .into_iter()
            .collect(),
        body: p.data.clone(),
    }
}

/// An HTTP body and its content headers as a payload (the inverse of [`to_content`]).
pub fn from_content(content_type: Option<&str>, body: Vec<u8>) -> Option<Payload> {
    let encoding = |e: &str| -> BTreeMap<String, Vec<u8>> {
        [("encoding".to_string(), e.as_bytes().to_vec())].into()
    };
    let base = content_type.map(|t| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    Some(match base.as_deref() {
        Some(TEMPORAL_PAYLOAD) => return Payload::decode(body.as_slice()).ok(),
        Some("application/json") => Payload {
            metadata: encoding("json/plain").into_iter().collect(),
            data: body,
            ..Default::default()
        },
        None if body.is_empty() => Payload {
            metadata: encoding("binary/null").into_iter().collect(),
            ..Default::default()
        },
        _ => Payload {
            metadata: encoding("binary/plain").into_iter().collect(),
            data: body,
            ..Default::default()
        },
    })
}

/// A Nexus failure as JSON (every field optional).
#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NexusFailure {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stack_trace: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Box<NexusFailure>>,
}

/// A failure a handler sent as a Temporal failure: the operation's failure (canceled when
/// the handler said so) with the message and the chain of causes.
pub fn to_failure(f: &NexusFailure, canceled: bool) -> Failure {
    let info = if canceled {
        failure::FailureInfo::CanceledFailureInfo(CanceledFailureInfo::default())
    } else {
        failure::FailureInfo::ApplicationFailureInfo(ApplicationFailureInfo {
            r#type: f
                .metadata
                .get("type")
                .cloned()
                .unwrap_or_else(|| "NexusFailure".into()),
            non_retryable: true,
            ..Default::default()
        })
    };
    Failure {
        message: f.message.clone(),
        stack_trace: f.stack_trace.clone(),
        failure_info: Some(info),
        cause: f.cause.as_ref().map(|c| Box::new(to_failure(c, false))),
        ..Default::default()
    }
}

/// A Temporal failure as the Nexus failure a completion carries (message and causes).
pub fn from_failure(f: &Failure) -> NexusFailure {
    NexusFailure {
        message: f.message.clone(),
        stack_trace: f.stack_trace.clone(),
        cause: f.cause.as_ref().map(|c| Box::new(from_failure(c))),
        ..Default::default()
    }
}

/// Handler error types and the HTTP statuses that carry them.
const HANDLER_ERROR_STATUSES: &[(u16, &str)] = &[
    (400, "BAD_REQUEST"),
    (401, "UNAUTHENTICATED"),
    (403, "UNAUTHORIZED"),
    (404, "NOT_FOUND"),
    (408, "REQUEST_TIMEOUT"),
    (409, "CONFLICT"),
    (429, "RESOURCE_EXHAUSTED"),
    (500, "INTERNAL"),
    (501, "NOT_IMPLEMENTED"),
    (503, "UNAVAILABLE"),
    (520, "UPSTREAM_TIMEOUT"),
];

/// The status of an operation that failed or was canceled.
pub const OPERATION_FAILED_STATUS: u16 = 424;

/// The handler error type an HTTP status stands for (None: not a handler error's status).
pub fn handler_error_type(status: u16) -> Option<&'static str> {
    HANDLER_ERROR_STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, t)| *t)
}

/// The HTTP status of a handler error type (500, INTERNAL's, for a type not known).
pub fn handler_error_status(error_type: &str) -> u16 {
    HANDLER_ERROR_STATUSES
        .iter()
        .find(|(_, t)| *t == error_type)
        .map_or(500, |(s, _)| *s)
}

/// A link as a `Nexus-Link` header value: `<url>; type="<type>"`.
pub fn link_header(l: &NexusLink) -> String {
    format!("<{}>; type=\"{}\"", l.url, l.r#type)
}

/// The links of `Nexus-Link` header values (values may also be joined by commas); malformed
/// ones are skipped.
pub fn parse_links<'a>(values: impl Iterator<Item = &'a str>) -> Vec<NexusLink> {
    values
        .flat_map(|v| v.split(','))
        .filter_map(|one| {
            let one = one.trim();
            let (url, params) = one.strip_prefix('<')?.split_once('>')?;
            let r#type = params.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k.trim() == "type").then(|| v.trim().trim_matches('"').to_string())
            })?;
            Some(NexusLink {
                url: url.to_string(),
                r#type,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(encoding: &str, data: &[u8]) -> Payload {
        Payload {
            metadata: [("encoding".to_string(), encoding.as_bytes().to_vec())].into(),
            data: data.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn plain_payloads_go_as_themselves_and_others_whole() {
        let json = to_content(Some(&payload("json/plain", b"\"hi\"")));
        assert_eq!(json.headers["type"], "application/json");
        assert_eq!(json.body, b"\"hi\"");
        assert_eq!(
            from_content(Some("application/json"), json.body),
            Some(payload("json/plain", b"\"hi\""))
        );
        let mut odd = payload("json/plain", b"1");
        odd.metadata.insert("messageType".into(), b"x".to_vec());
        let whole = to_content(Some(&odd));
        assert_eq!(whole.headers["type"], TEMPORAL_PAYLOAD);
        assert_eq!(from_content(Some(TEMPORAL_PAYLOAD), whole.body), Some(odd));
        assert_eq!(
            from_content(None, Vec::new()),
            Some(payload("binary/null", b""))
        );
    }

    #[test]
    fn failures_and_links_read_as_handlers_write_them() {
        let f: NexusFailure =
            serde_json::from_str(r#"{"message":"boom","cause":{"message":"why"}}"#).unwrap();
        let t = to_failure(&f, false);
        assert_eq!(t.message, "boom");
        assert_eq!(t.cause.unwrap().message, "why");
        assert!(matches!(
            to_failure(&f, true).failure_info,
            Some(failure::FailureInfo::CanceledFailureInfo(_))
        ));
        let l = NexusLink {
            url: "temporal:///namespaces/a/workflows/b/c/history?eventID=1".into(),
            r#type: "temporal.api.common.v1.Link.WorkflowEvent".into(),
        };
        let header = link_header(&l);
        assert_eq!(parse_links([header.as_str()].into_iter()), vec![l]);
        assert_eq!(handler_error_type(520), Some("UPSTREAM_TIMEOUT"));
        assert_eq!(handler_error_type(418), None);
    }
}
