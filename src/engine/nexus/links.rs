//! Links between the caller's and the handler's histories. Temporal's history events carry
//! `common.v1.Link`s; a Nexus request or response carries the same links as URLs
//! (`temporal:///namespaces/<ns>/workflows/<id>/<run>/history?eventID=…&eventType=…&
//! referenceType=EventReference`, or `referenceType=RequestIdReference&requestID=…`), which
//! is the form SDKs parse and print. These convert one form into the other.

use temporalio_protos::temporal::api::common::v1::{Link, link};
use temporalio_protos::temporal::api::enums::v1::EventType;
use temporalio_protos::temporal::api::nexus::v1::Link as NexusLink;

use crate::engine::RunKey;

/// The Nexus link type of a workflow event link.
const WORKFLOW_EVENT_TYPE: &str = "temporal.api.common.v1.Link.WorkflowEvent";
/// The Nexus link types of links to standalone executions.
const NEXUS_OPERATION_TYPE: &str = "temporal.api.common.v1.Link.NexusOperation";
const ACTIVITY_TYPE: &str = "temporal.api.common.v1.Link.Activity";

/// A link to event `event_id` of the run `key`.
pub(crate) fn event_link(key: &RunKey, event_id: i64, event_type: EventType) -> Link {
    workflow_event(
        key,
        link::workflow_event::Reference::EventRef(link::workflow_event::EventReference {
            event_id,
            event_type: event_type as i32,
        }),
    )
}

/// A link to what the request `request_id` did to the run `key` (an event it may share with
/// other requests, such as the options update that attached it).
pub(crate) fn request_link(key: &RunKey, request_id: &str, event_type: EventType) -> Link {
    workflow_event(
        key,
        link::workflow_event::Reference::RequestIdRef(link::workflow_event::RequestIdReference {
            request_id: request_id.to_string(),
            event_type: event_type as i32,
        }),
    )
}

fn workflow_event(key: &RunKey, reference: link::workflow_event::Reference) -> Link {
    Link {
        variant: Some(link::Variant::WorkflowEvent(link::WorkflowEvent {
            namespace: key.namespace.clone(),
            workflow_id: key.workflow_id.clone(),
            run_id: key.run_id.clone(),
            reference: Some(reference),
        })),
    }
}

/// The link to the signal `request_id` delivered to `key` (what a Nexus handler hands back to
/// its caller).
pub(crate) fn signal_link(key: &RunKey, request_id: &str) -> Link {
    request_link(key, request_id, EventType::WorkflowExecutionSignaled)
}

/// The link a handler gets to the caller's scheduled event.
pub(crate) fn scheduled_event_link(key: &RunKey, scheduled_event_id: i64) -> NexusLink {
    to_nexus(&event_link(
        key,
        scheduled_event_id,
        EventType::NexusOperationScheduled,
    ))
    .expect("a workflow event link converts")
}

/// The link a handler gets to a standalone operation (Temporal's form:
/// `temporal:///namespaces/<ns>/nexus-operations/<operation id>/<run id>/details`).
pub(crate) fn operation_link(namespace: &str, operation_id: &str, run_id: &str) -> NexusLink {
    execution_link(
        NEXUS_OPERATION_TYPE,
        [namespace, "nexus-operations", operation_id, run_id],
    )
}

/// A link to a standalone execution: `temporal:///namespaces/<ns>/<kind>/<id>/<run>/details`.
fn execution_link(link_type: &str, [namespace, kind, id, run_id]: [&str; 4]) -> NexusLink {
    let mut url = url::Url::parse("temporal:///").expect("a valid base URL");
    url.path_segments_mut()
        .expect("a hierarchical URL")
        .clear()
        .extend(["namespaces", namespace, kind, id, run_id, "details"]);
    NexusLink {
        url: url.to_string(),
        r#type: link_type.into(),
    }
}

/// A workflow event link in the Nexus URL form (None for other kinds of links).
pub(crate) fn to_nexus(l: &Link) -> Option<NexusLink> {
    let Some(link::Variant::WorkflowEvent(we)) = &l.variant else {
        return None;
    };
    let mut url = url::Url::parse("temporal:///").expect("a valid base URL");
    url.path_segments_mut()
        .expect("a hierarchical URL")
        .clear()
        .extend([
            "namespaces",
            &we.namespace,
            "workflows",
            &we.workflow_id,
            &we.run_id,
            "history",
        ]);
    {
        let mut query = url.query_pairs_mut();
        match &we.reference {
            Some(link::workflow_event::Reference::EventRef(r)) => {
                query
                    .append_pair("eventID", &r.event_id.to_string())
                    .append_pair("eventType", &pascal_event_type(r.event_type))
                    .append_pair("referenceType", "EventReference");
            }
            Some(link::workflow_event::Reference::RequestIdRef(r)) => {
                query
                    .append_pair("eventType", &pascal_event_type(r.event_type))
                    .append_pair("referenceType", "RequestIdReference")
                    .append_pair("requestID", &r.request_id);
            }
            None => {}
        }
    }
    Some(NexusLink {
        url: url.to_string(),
        r#type: WORKFLOW_EVENT_TYPE.into(),
    })
}

/// A Nexus link as a history event link: to a workflow event, a standalone activity or a
/// standalone Nexus operation; None for a link of another type or a URL that is not of its
/// type's form (Temporal skips those too).
pub(crate) fn from_nexus(l: &NexusLink) -> Option<Link> {
    let url = url::Url::parse(&l.url).ok()?;
    if url.scheme() != "temporal" {
        return None;
    }
    let segments: Vec<String> = url
        .path_segments()?
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let execution = |kind: &str| match segments.as_slice() {
        [namespaces, namespace, k, id, run_id, details]
            if namespaces == "namespaces"
                && !namespace.is_empty()
                && k == kind
                && details == "details" =>
        {
            Some((namespace.clone(), id.clone(), run_id.clone()))
        }
        _ => None,
    };
    match l.r#type.as_str() {
        WORKFLOW_EVENT_TYPE => workflow_event_from(&url, &segments),
        ACTIVITY_TYPE => {
            let (namespace, activity_id, run_id) = execution("activities")?;
            Some(Link {
                variant: Some(link::Variant::Activity(link::Activity {
                    namespace,
                    activity_id,
                    run_id,
                })),
            })
        }
        NEXUS_OPERATION_TYPE => {
            let (namespace, operation_id, run_id) = execution("nexus-operations")?;
            Some(Link {
                variant: Some(link::Variant::NexusOperation(link::NexusOperation {
                    namespace,
                    operation_id,
                    run_id,
                })),
            })
        }
        _ => None,
    }
}

/// A workflow event link's URL (and its decoded path segments) as the link.
fn workflow_event_from(url: &url::Url, segments: &[String]) -> Option<Link> {
    let [
        namespaces,
        namespace,
        workflows,
        workflow_id,
        run_id,
        history,
    ] = segments
    else {
        return None;
    };
    if namespaces != "namespaces"
        || namespace.is_empty()
        || workflows != "workflows"
        || history != "history"
    {
        return None;
    }
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    let event_type = query
        .get("eventType")
        .and_then(|t| parse_event_type(t))
        .unwrap_or(EventType::Unspecified);
    let key = RunKey {
        namespace: namespace.clone(),
        workflow_id: workflow_id.clone(),
        run_id: run_id.clone(),
    };
    match query.get("referenceType").map(String::as_str) {
        Some("EventReference") => {
            let event_id = query
                .get("eventID")
                .and_then(|i| i.parse().ok())
                .unwrap_or(0);
            Some(event_link(&key, event_id, event_type))
        }
        Some("RequestIdReference") => Some(request_link(
            &key,
            query.get("requestID").map_or("", String::as_str),
            event_type,
        )),
        _ => None,
    }
}

/// `EVENT_TYPE_NEXUS_OPERATION_SCHEDULED` as `NexusOperationScheduled`.
fn pascal_event_type(event_type: i32) -> String {
    let name = EventType::try_from(event_type)
        .unwrap_or(EventType::Unspecified)
        .as_str_name();
    name.trim_start_matches("EVENT_TYPE_")
        .split('_')
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// An event type in either form SDKs send: `NexusOperationScheduled` or
/// `EVENT_TYPE_NEXUS_OPERATION_SCHEDULED`.
fn parse_event_type(text: &str) -> Option<EventType> {
    if let Some(t) = EventType::from_str_name(text) {
        return Some(t);
    }
    let mut snake = String::from("EVENT_TYPE");
    for c in text.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
        }
        snake.push(c.to_ascii_uppercase());
    }
    EventType::from_str_name(&snake)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RunKey {
        RunKey {
            namespace: "default".into(),
            workflow_id: "caller wf".into(),
            run_id: "r1".into(),
        }
    }

    #[test]
    fn the_scheduled_event_link_is_temporals_form() {
        assert_eq!(
            scheduled_event_link(&key(), 6).url,
            "temporal:///namespaces/default/workflows/caller%20wf/r1/history\
             ?eventID=6&eventType=NexusOperationScheduled&referenceType=EventReference"
        );
    }

    #[test]
    fn links_round_trip_through_the_url_form() {
        for l in [
            event_link(&key(), 1, EventType::WorkflowExecutionStarted),
            request_link(&key(), "req 1", EventType::WorkflowExecutionOptionsUpdated),
        ] {
            let nexus = to_nexus(&l).unwrap();
            assert_eq!(from_nexus(&nexus), Some(l));
        }
    }

    #[test]
    fn links_to_standalone_executions_are_read() {
        let op = operation_link("default", "op/1", "r1");
        assert_eq!(
            op.url,
            "temporal:///namespaces/default/nexus-operations/op%2F1/r1/details"
        );
        let Some(Link {
            variant: Some(link::Variant::NexusOperation(n)),
        }) = from_nexus(&op)
        else {
            panic!("not converted: {op:?}");
        };
        assert_eq!(
            (n.namespace.as_str(), n.operation_id.as_str()),
            ("default", "op/1")
        );
        let activity = NexusLink {
            url: "temporal:///namespaces/ns/activities/act/r2/details".into(),
            r#type: ACTIVITY_TYPE.into(),
        };
        let Some(Link {
            variant: Some(link::Variant::Activity(a)),
        }) = from_nexus(&activity)
        else {
            panic!("not converted: {activity:?}");
        };
        assert_eq!((a.activity_id.as_str(), a.run_id.as_str()), ("act", "r2"));
        let mismatched = NexusLink {
            url: "temporal:///namespaces/ns/workflows/w/r/details".into(),
            r#type: ACTIVITY_TYPE.into(),
        };
        assert_eq!(from_nexus(&mismatched), None);
    }

    #[test]
    fn both_spellings_of_an_event_type_are_read_and_others_are_skipped() {
        let upper = NexusLink {
            url: "temporal:///namespaces/ns/workflows/w/r/history?eventID=1\
                  &eventType=EVENT_TYPE_WORKFLOW_EXECUTION_STARTED&referenceType=EventReference"
                .into(),
            r#type: WORKFLOW_EVENT_TYPE.into(),
        };
        let Some(Link {
            variant: Some(link::Variant::WorkflowEvent(we)),
        }) = from_nexus(&upper)
        else {
            panic!("not converted");
        };
        assert_eq!(
            we.reference,
            Some(link::workflow_event::Reference::EventRef(
                link::workflow_event::EventReference {
                    event_id: 1,
                    event_type: EventType::WorkflowExecutionStarted as i32
                }
            ))
        );
        let other = NexusLink {
            url: "https://example.com/x".into(),
            r#type: "something.Else".into(),
        };
        assert_eq!(from_nexus(&other), None);
    }
}
