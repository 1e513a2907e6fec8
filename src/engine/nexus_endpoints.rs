//! The Nexus endpoint registry (OperatorService's `…NexusEndpoint` calls): named routes from a
//! caller's Nexus operations to a handler, either a namespace's task queue (where handler
//! workers poll) or an external URL. The registry belongs to the cluster, not to a namespace:
//! like namespaces, every replica holds all of it and logs changes outside the shards.
//!
//! Validation, messages and codes follow Temporal's frontend, so the `temporal` CLI and the
//! SDKs see the answers they expect. Where Temporal's behaviour is a bug (an update drops the
//! creation time, renames skip the duplicate-name check, deletes ignore the version) Durin
//! does what the API promises instead.

use std::collections::BTreeMap;

use prost::Message;
use temporalio_protos::temporal::api::nexus::v1::{Endpoint, EndpointSpec, endpoint_target};
use temporalio_protos::temporal::api::operatorservice::v1::{
    CreateNexusEndpointRequest, DeleteNexusEndpointRequest, GetNexusEndpointRequest,
    ListNexusEndpointsRequest, ListNexusEndpointsResponse, UpdateNexusEndpointRequest,
};

use super::{Core, Engine, Error, Result, clock};
use crate::store::{LogRecord, NexusEndpointRecord, log_record};

const NAME_MAX_BYTES: usize = 200;
const TASK_QUEUE_MAX_BYTES: usize = 1000;
const URL_MAX_BYTES: usize = 4096;
const DESCRIPTION_MAX_BYTES: usize = 20_000;
const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;
/// Temporal's message quotes the pattern as Go's `%q` does (backslashes doubled).
const NAME_PATTERN_MESSAGE: &str =
    r#"endpoint name must match the regex: "^[a-zA-Z][a-zA-Z0-9\\-]*[a-zA-Z0-9]$""#;

/// The registry: every endpoint by id, deleted ones kept as tombstones (see
/// [`NexusEndpointRecord`]).
pub(crate) type Registry = BTreeMap<String, NexusEndpointRecord>;

impl Engine {
    pub async fn create_nexus_endpoint(&self, req: CreateNexusEndpointRequest) -> Result<Endpoint> {
        self.transact(|core| {
            let spec = core.valid_spec(req.spec)?;
            core.check_name_free(&spec.name, None)?;
            let now = clock::ts_from_millis(core.now());
            let record = NexusEndpointRecord {
                id: uuid::Uuid::new_v4().to_string(),
                version: 1,
                spec: Some(spec),
                created_time: Some(now),
                last_modified_time: None,
                deleted: false,
            };
            core.write_endpoint(record.clone());
            Ok(endpoint_message(&record))
        })
        .await
    }

    pub async fn update_nexus_endpoint(&self, req: UpdateNexusEndpointRequest) -> Result<Endpoint> {
        self.transact(|core| {
            let spec = core.valid_spec(req.spec)?;
            let mut record = core.live_endpoint(&req.id).cloned().ok_or_else(|| {
                Error::NotFound(format!(
                    "error updating Nexus endpoint. endpoint ID {} not found",
                    req.id
                ))
            })?;
            check_version(&record, req.version)?;
            core.check_name_free(&spec.name, Some(&record.id))?;
            record.version += 1;
            record.spec = Some(spec);
            record.last_modified_time = Some(clock::ts_from_millis(core.now()));
            core.write_endpoint(record.clone());
            Ok(endpoint_message(&record))
        })
        .await
    }

    pub async fn delete_nexus_endpoint(&self, req: DeleteNexusEndpointRequest) -> Result<()> {
        let mut issues = id_issues(&req.id);
        if req.version <= 0 {
            issues.push("endpoint version is non-positive".into());
        }
        if !issues.is_empty() {
            return Err(Error::InvalidArgument(issues.join(", ")));
        }
        self.transact(|core| {
            let mut record = core.live_endpoint(&req.id).cloned().ok_or_else(|| {
                Error::NotFound(format!("error deleting nexus endpoint with ID: {}", req.id))
            })?;
            check_version(&record, req.version)?;
            record.version += 1;
            record.deleted = true;
            record.last_modified_time = Some(clock::ts_from_millis(core.now()));
            core.write_endpoint(record);
            Ok(())
        })
        .await
    }

    pub async fn get_nexus_endpoint(&self, req: GetNexusEndpointRequest) -> Result<Endpoint> {
        let issues = id_issues(&req.id);
        if !issues.is_empty() {
            return Err(Error::InvalidArgument(issues.join(", ")));
        }
        self.transact(|core| {
            core.live_endpoint(&req.id)
                .map(endpoint_message)
                .ok_or_else(|| {
                    Error::NotFound(format!("Nexus endpoint with ID `{}` not found", req.id))
                })
        })
        .await
    }

    /// A page in id order (as Temporal pages); the token is the last id returned, given
    /// whenever the page is full. A name filter answers zero or one endpoint and ignores paging.
    pub async fn list_nexus_endpoints(
        &self,
        req: ListNexusEndpointsRequest,
    ) -> Result<ListNexusEndpointsResponse> {
        let page_size = match req.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => return Err(Error::InvalidArgument("page_size is negative".into())),
            n if n as usize > MAX_PAGE_SIZE => {
                return Err(Error::InvalidArgument(format!(
                    "page_size exceeds limit of {MAX_PAGE_SIZE}"
                )));
            }
            n => n as usize,
        };
        let after = String::from_utf8(req.next_page_token)
            .map_err(|_| Error::InvalidArgument("invalid next_page_token".into()))?;
        self.transact(|core| {
            let live = core.nexus_endpoints.values().filter(|r| !r.deleted);
            if !req.name.is_empty() {
                return Ok(ListNexusEndpointsResponse {
                    next_page_token: Vec::new(),
                    endpoints: live
                        .filter(|r| endpoint_name(r) == req.name)
                        .map(endpoint_message)
                        .collect(),
                });
            }
            let endpoints: Vec<Endpoint> = live
                .filter(|r| r.id > after)
                .take(page_size)
                .map(endpoint_message)
                .collect();
            let next_page_token = match endpoints.last() {
                Some(last) if endpoints.len() == page_size => last.id.clone().into_bytes(),
                _ => Vec::new(),
            };
            Ok(ListNexusEndpointsResponse {
                next_page_token,
                endpoints,
            })
        })
        .await
    }

    /// Takes in endpoint records read from the store (other replicas change the registry
    /// too); a copy no newer than the one held here is stale and skipped.
    pub async fn refresh_nexus_endpoints(&self, records: &[LogRecord]) -> Result<()> {
        self.transact(|core| {
            for record in records {
                if let Some(log_record::Kind::NexusEndpoint(endpoint)) = &record.kind {
                    core.replay_endpoint(endpoint.clone());
                }
            }
            Ok(())
        })
        .await
    }
}

impl Core {
    pub(super) fn replay_endpoint(&mut self, record: NexusEndpointRecord) {
        let newer = self
            .nexus_endpoints
            .get(&record.id)
            .is_none_or(|held| held.version < record.version);
        if newer {
            self.nexus_endpoints.insert(record.id.clone(), record);
        }
    }

    /// One record per endpoint (tombstones included), for a compacted log.
    pub(super) fn endpoint_snapshot(&self) -> impl Iterator<Item = LogRecord> + '_ {
        self.nexus_endpoints.values().map(|r| LogRecord {
            kind: Some(log_record::Kind::NexusEndpoint(r.clone())),
        })
    }

    fn write_endpoint(&mut self, record: NexusEndpointRecord) {
        self.log(LogRecord {
            kind: Some(log_record::Kind::NexusEndpoint(record.clone())),
        });
        self.nexus_endpoints.insert(record.id.clone(), record);
    }

    pub(crate) fn live_endpoint(&self, id: &str) -> Option<&NexusEndpointRecord> {
        self.nexus_endpoints.get(id).filter(|r| !r.deleted)
    }

    pub(crate) fn endpoint_by_name(&self, name: &str) -> Option<&NexusEndpointRecord> {
        self.nexus_endpoints
            .values()
            .find(|r| !r.deleted && endpoint_name(r) == name)
    }

    fn check_name_free(&self, name: &str, except_id: Option<&str>) -> Result<()> {
        match self.endpoint_by_name(name) {
            Some(other) if Some(other.id.as_str()) != except_id => {
                Err(Error::AlreadyExists(format!(
                    "error creating Nexus endpoint. Endpoint with name {name} already registered"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Temporal's checks of a spec, in its order: every issue in one INVALID_ARGUMENT, except
    /// a missing target (which ends the checks) and an unknown target namespace (its own
    /// FAILED_PRECONDITION).
    fn valid_spec(&self, spec: Option<EndpointSpec>) -> Result<EndpointSpec> {
        let spec = spec.unwrap_or_default();
        let mut issues = name_issues(&spec.name);
        let Some(target) = spec.target.as_ref().and_then(|t| t.variant.as_ref()) else {
            issues.push("empty target variant".into());
            return Err(Error::InvalidArgument(issues.join(", ")));
        };
        match target {
            endpoint_target::Variant::Worker(worker) if worker.namespace.is_empty() => {
                issues.push("target namespace not set".into());
                issues.extend(task_queue_issue(&worker.task_queue));
            }
            endpoint_target::Variant::Worker(worker) => {
                if !self.namespaces.contains_key(&worker.namespace) {
                    return Err(Error::FailedPrecondition(format!(
                        "could not verify namespace referenced by target exists: \
                         Namespace {} is not found.",
                        worker.namespace
                    )));
                }
                issues.extend(task_queue_issue(&worker.task_queue));
            }
            endpoint_target::Variant::External(external) => {
                issues.extend(url_issue(&external.url));
            }
        }
        let description_len = spec.description.as_ref().map_or(0, |d| d.encoded_len());
        if description_len > DESCRIPTION_MAX_BYTES {
            issues.push(format!(
                "description size exceeds limit of {DESCRIPTION_MAX_BYTES}"
            ));
        }
        if issues.is_empty() {
            Ok(spec)
        } else {
            Err(Error::InvalidArgument(issues.join(", ")))
        }
    }
}

fn check_version(record: &NexusEndpointRecord, requested: i64) -> Result<()> {
    if record.version == requested {
        Ok(())
    } else {
        Err(Error::FailedPrecondition(format!(
            "nexus endpoint version mismatch. received: {requested} expected {}",
            record.version
        )))
    }
}

fn name_issues(name: &str) -> Vec<String> {
    if name.is_empty() {
        return vec!["endpoint name not set".into()];
    }
    let mut issues = Vec::new();
    if name.len() > NAME_MAX_BYTES {
        issues.push(format!(
            "endpoint name exceeds length limit of {NAME_MAX_BYTES}"
        ));
    }
    if !name_matches_pattern(name) {
        issues.push(NAME_PATTERN_MESSAGE.into());
    }
    issues
}

/// `^[a-zA-Z][a-zA-Z0-9\-]*[a-zA-Z0-9]$`: a letter, then letters, digits and dashes, ending
/// in a letter or digit (two characters at least).
fn name_matches_pattern(name: &str) -> bool {
    let bytes = name.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    bytes.len() >= 2
        && first.is_ascii_alphabetic()
        && last.is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

fn task_queue_issue(task_queue: &str) -> Option<String> {
    let problem = if task_queue.is_empty() {
        "taskQueue is not set"
    } else if task_queue.len() > TASK_QUEUE_MAX_BYTES {
        "taskQueue length exceeds limit"
    } else if task_queue.starts_with("/_sys/") {
        "task queue name cannot start with reserved prefix /_sys/"
    } else {
        return None;
    };
    Some(format!("invalid target task queue: {problem:?}"))
}

fn url_issue(url: &str) -> Option<String> {
    if url.is_empty() {
        return Some("empty target URL".into());
    }
    if url.len() > URL_MAX_BYTES {
        return Some(format!(
            "target URL length exceeds limit of {URL_MAX_BYTES}"
        ));
    }
    match url::Url::parse(url) {
        Err(e) => Some(format!("invalid target URL: {e}")),
        Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => Some(format!(
            "invalid target URL scheme: {:?}, expected http or https",
            parsed.scheme()
        )),
        Ok(_) => None,
    }
}

/// Temporal's checks of an endpoint id: set, and a UUID.
fn id_issues(id: &str) -> Vec<String> {
    if id.is_empty() {
        return vec!["endpoint ID not set".into()];
    }
    match uuid::Uuid::parse_str(id) {
        Ok(_) => Vec::new(),
        Err(e) => vec![format!("malformed endpoint ID: {:?}", e.to_string())],
    }
}

fn endpoint_name(record: &NexusEndpointRecord) -> &str {
    record.spec.as_ref().map_or("", |s| s.name.as_str())
}

/// The endpoint as the API shows it: `last_modified_time` only once it changed (version > 1).
fn endpoint_message(record: &NexusEndpointRecord) -> Endpoint {
    Endpoint {
        version: record.version,
        id: record.id.clone(),
        spec: record.spec.clone(),
        created_time: record.created_time,
        last_modified_time: record.last_modified_time.filter(|_| record.version > 1),
        url_prefix: format!("/nexus/endpoints/{}/services", record.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::wal::Wal;
    use std::sync::Arc;
    use temporalio_protos::temporal::api::nexus::v1::EndpointTarget;

    async fn open(dir: &std::path::Path) -> (Arc<Engine>, Arc<Wal>) {
        let wal = Wal::open(dir).unwrap();
        let config = super::super::EngineConfig {
            compact_min_records: 1,
            ..Default::default()
        };
        let engine = Engine::open(wal.clone(), config).unwrap();
        engine.ensure_namespace("default").await.unwrap();
        (engine, wal)
    }

    fn spec(name: &str, task_queue: &str) -> Option<EndpointSpec> {
        Some(EndpointSpec {
            name: name.into(),
            description: None,
            target: Some(EndpointTarget {
                variant: Some(endpoint_target::Variant::Worker(endpoint_target::Worker {
                    namespace: "default".into(),
                    task_queue: task_queue.into(),
                })),
            }),
        })
    }

    async fn names(engine: &Engine) -> Vec<(String, i64)> {
        let mut all: Vec<(String, i64)> = engine
            .list_nexus_endpoints(ListNexusEndpointsRequest::default())
            .await
            .unwrap()
            .endpoints
            .into_iter()
            .map(|e| (e.spec.unwrap().name, e.version))
            .collect();
        all.sort();
        all
    }

    /// Changes survive a restart, and a compacted log (one record per endpoint, tombstones
    /// included) restores the same registry.
    #[tokio::test]
    async fn the_registry_is_durable_and_compacts() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, wal) = open(dir.path()).await;
        let mut ids = Vec::new();
        for name in ["alpha", "beta", "gamma"] {
            let created = engine
                .create_nexus_endpoint(CreateNexusEndpointRequest {
                    spec: spec(name, "tq"),
                })
                .await
                .unwrap();
            assert_eq!(created.version, 1);
            assert_eq!(created.last_modified_time, None);
            ids.push(created.id);
        }
        let mut version = 1;
        for tq in ["tq2", "tq3", "tq4"] {
            let updated = engine
                .update_nexus_endpoint(UpdateNexusEndpointRequest {
                    id: ids[0].clone(),
                    version,
                    spec: spec("alpha", tq),
                })
                .await
                .unwrap();
            version = updated.version;
            assert!(updated.created_time.is_some() && updated.last_modified_time.is_some());
        }
        engine
            .delete_nexus_endpoint(DeleteNexusEndpointRequest {
                id: ids[1].clone(),
                version: 1,
            })
            .await
            .unwrap();
        wal.wait_durable(wal.last_lsn()).await.unwrap();
        drop((engine, wal));

        let want = vec![("alpha".to_string(), 4), ("gamma".to_string(), 1)];
        let (engine, wal) = open(dir.path()).await;
        assert_eq!(names(&engine).await, want);
        wal.wait_durable(wal.last_lsn()).await.unwrap();
        // Opened with compaction at one record: the log now holds one per live object.
        assert_eq!(
            wal.load().unwrap().len(),
            1 + 3,
            "the namespace and three endpoints"
        );
        drop((engine, wal));

        let (engine, _wal) = open(dir.path()).await;
        assert_eq!(names(&engine).await, want);
        let alpha = engine
            .get_nexus_endpoint(GetNexusEndpointRequest { id: ids[0].clone() })
            .await
            .unwrap();
        let Some(endpoint_target::Variant::Worker(w)) = alpha.spec.unwrap().target.unwrap().variant
        else {
            panic!("a worker target")
        };
        assert_eq!(w.task_queue, "tq4");
        let gone = engine
            .get_nexus_endpoint(GetNexusEndpointRequest { id: ids[1].clone() })
            .await
            .unwrap_err();
        assert!(matches!(gone, Error::NotFound(_)), "{gone:?}");
    }

    #[tokio::test]
    async fn conflicts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _wal) = open(dir.path()).await;
        let create = |name: &str| {
            engine.create_nexus_endpoint(CreateNexusEndpointRequest {
                spec: spec(name, "tq"),
            })
        };
        let a = create("one").await.unwrap();
        let b = create("two").await.unwrap();
        assert!(matches!(create("one").await, Err(Error::AlreadyExists(_))));
        let stale = engine
            .update_nexus_endpoint(UpdateNexusEndpointRequest {
                id: a.id.clone(),
                version: 2,
                spec: spec("one", "other"),
            })
            .await
            .unwrap_err();
        assert_eq!(
            stale.to_string(),
            "nexus endpoint version mismatch. received: 2 expected 1"
        );
        let rename = engine
            .update_nexus_endpoint(UpdateNexusEndpointRequest {
                id: b.id.clone(),
                version: 1,
                spec: spec("one", "tq"),
            })
            .await;
        assert!(matches!(rename, Err(Error::AlreadyExists(_))), "{rename:?}");
        let unknown_namespace = engine
            .create_nexus_endpoint(CreateNexusEndpointRequest {
                spec: Some(EndpointSpec {
                    target: Some(EndpointTarget {
                        variant: Some(endpoint_target::Variant::Worker(endpoint_target::Worker {
                            namespace: "nowhere".into(),
                            task_queue: "tq".into(),
                        })),
                    }),
                    ..spec("three", "tq").unwrap()
                }),
            })
            .await
            .unwrap_err();
        assert!(matches!(unknown_namespace, Error::FailedPrecondition(_)));
        let nothing = engine
            .create_nexus_endpoint(CreateNexusEndpointRequest { spec: None })
            .await
            .unwrap_err();
        assert_eq!(
            nothing.to_string(),
            "endpoint name not set, empty target variant"
        );
        // A name freed by a delete can be taken again.
        engine
            .delete_nexus_endpoint(DeleteNexusEndpointRequest {
                id: a.id,
                version: 1,
            })
            .await
            .unwrap();
        create("one").await.unwrap();
    }

    #[tokio::test]
    async fn lists_page_in_id_order_and_filter_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _wal) = open(dir.path()).await;
        let mut ids = Vec::new();
        for i in 0..5 {
            let e = engine
                .create_nexus_endpoint(CreateNexusEndpointRequest {
                    spec: spec(&format!("ep-{i}"), "tq"),
                })
                .await
                .unwrap();
            ids.push(e.id);
        }
        ids.sort();
        let mut seen = Vec::new();
        let mut token = Vec::new();
        loop {
            let page = engine
                .list_nexus_endpoints(ListNexusEndpointsRequest {
                    page_size: 2,
                    next_page_token: token,
                    name: String::new(),
                })
                .await
                .unwrap();
            seen.extend(page.endpoints.into_iter().map(|e| e.id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(seen, ids);
        let one = engine
            .list_nexus_endpoints(ListNexusEndpointsRequest {
                name: "ep-3".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(one.endpoints.len(), 1);
        let none = engine
            .list_nexus_endpoints(ListNexusEndpointsRequest {
                name: "ep-9".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(none.endpoints.is_empty());
    }

    #[test]
    fn names_follow_temporals_pattern() {
        for good in ["ab", "nexus-endpoint-1f2e", "A9", "my-Endpoint-2"] {
            assert!(name_issues(good).is_empty(), "{good}");
        }
        for bad in ["a", "1ab", "ab-", "a_b", "a.b", "-ab", "ab c"] {
            assert_eq!(
                name_issues(bad),
                vec![NAME_PATTERN_MESSAGE.to_string()],
                "{bad}"
            );
        }
        assert_eq!(name_issues(""), vec!["endpoint name not set".to_string()]);
        assert_eq!(
            name_issues(&"a".repeat(201)),
            vec!["endpoint name exceeds length limit of 200".to_string()]
        );
    }

    #[test]
    fn urls_need_http_or_https() {
        assert_eq!(url_issue("https://example.com/nexus"), None);
        assert_eq!(url_issue("HTTP://example.com"), None);
        assert_eq!(
            url_issue("ftp://example.com"),
            Some(r#"invalid target URL scheme: "ftp", expected http or https"#.into())
        );
        assert!(
            url_issue("no scheme")
                .unwrap()
                .starts_with("invalid target URL: ")
        );
        assert_eq!(url_issue(""), Some("empty target URL".into()));
    }

    #[test]
    fn task_queues_are_checked_like_temporals() {
        assert_eq!(task_queue_issue("tq"), None);
        assert_eq!(
            task_queue_issue(""),
            Some(r#"invalid target task queue: "taskQueue is not set""#.into())
        );
        assert_eq!(
            task_queue_issue("/_sys/x"),
            Some(
                r#"invalid target task queue: "task queue name cannot start with reserved prefix /_sys/""#
                    .into()
            )
        );
    }
}
