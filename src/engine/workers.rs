//! Worker heartbeats: what each running worker last reported about itself
//! (RecordWorkerHeartbeat, and the final one in ShutdownWorker), for ListWorkers,
//! DescribeWorker and CountWorkers — `temporal worker list` and the UI's workers page.
//!
//! Like Temporal's worker registry this is kept in memory only: a heartbeat is a report
//! about the present, sent again every interval, and nothing acknowledged is lost when a
//! restart forgets it. An entry goes away when its worker reports `Shutdown`, when it has
//! not heartbeated for `TTL_MS` (the worker died), or — the oldest first — when the registry
//! is over its entry or byte budget, so a flood of workers cannot grow memory without bound.
//! With several replicas each keeps the heartbeats it received and the lists are merged
//! (`cluster/visibility.rs`).

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;
use prost::Message;
use temporalio_protos::temporal::api::enums::v1::{IndexedValueType, WorkerStatus};
use temporalio_protos::temporal::api::worker::v1::{WorkerHeartbeat, WorkerInfo, WorkerListInfo};
use temporalio_protos::temporal::api::workflowservice::v1::{
    CountWorkersRequest, CountWorkersResponse, DescribeWorkerRequest, DescribeWorkerResponse,
    ListWorkersRequest, ListWorkersResponse, RecordWorkerHeartbeatRequest,
};

use super::{Engine, Error, Result, clock};
use crate::visibility::query::{Query, Record, Value};

/// A worker silent this long is taken for dead (Temporal's default entry TTL).
const TTL_MS: i64 = 5 * 60_000;
/// Entries kept at most, over all namespaces (the oldest go first beyond it).
const MAX_ENTRIES: usize = 100_000;
/// Encoded heartbeat bytes kept at most, over all namespaces.
const MAX_BYTES: usize = 64 * 1024 * 1024;
/// One heartbeat larger than this is refused (a real one is well under a kilobyte).
const MAX_HEARTBEAT_BYTES: usize = 64 * 1024;
/// Workers on task queues with this prefix are the server's own (listed only on request).
const SYSTEM_QUEUE_PREFIX: &str = "temporal-sys-";

struct Entry {
    heartbeat: WorkerHeartbeat,
    /// When this replica last heard from the worker (its clock, not the worker's).
    last_seen_ms: i64,
    bytes: usize,
}

#[derive(Default)]
struct Registry {
    /// namespace -> worker instance key -> entry (ordered for stable pages).
    namespaces: HashMap<String, BTreeMap<String, Entry>>,
    entries: usize,
    bytes: usize,
}

/// The heartbeats this replica holds.
#[derive(Default)]
pub(crate) struct WorkerRegistry {
    inner: Mutex<Registry>,
}

impl Registry {
    fn upsert(&mut self, namespace: &str, heartbeat: WorkerHeartbeat, now: i64) {
        let key = heartbeat.worker_instance_key.clone();
        if heartbeat.status == WorkerStatus::Shutdown as i32 {
            self.remove(namespace, &key);
            return;
        }
        let bytes = heartbeat.encoded_len();
        let workers = self.namespaces.entry(namespace.to_string()).or_default();
        let entry = Entry {
            heartbeat,
            last_seen_ms: now,
            bytes,
        };
        match workers.insert(key, entry) {
            Some(old) => self.bytes = self.bytes - old.bytes + bytes,
            None => {
                self.entries += 1;
                self.bytes += bytes;
            }
        }
    }

    fn remove(&mut self, namespace: &str, key: &str) {
        let Some(workers) = self.namespaces.get_mut(namespace) else {
            return;
        };
        if let Some(old) = workers.remove(key) {
            self.entries -= 1;
            self.bytes -= old.bytes;
        }
        if workers.is_empty() {
            self.namespaces.remove(namespace);
        }
    }

    /// Drops workers silent past the TTL, then the least recently heard ones while over budget.
    fn evict(&mut self, now: i64) {
        let expired: Vec<(String, String)> = self.keys_where(|e| now - e.last_seen_ms >= TTL_MS);
        for (ns, key) in expired {
            self.remove(&ns, &key);
        }
        if self.entries <= MAX_ENTRIES && self.bytes <= MAX_BYTES {
            return;
        }
        let mut by_age: Vec<(i64, String, String)> = self
            .namespaces
            .iter()
            .flat_map(|(ns, workers)| {
                workers
                    .iter()
                    .map(|(key, e)| (e.last_seen_ms, ns.clone(), key.clone()))
            })
            .collect();
        by_age.sort();
        for (_, ns, key) in by_age {
            if self.entries <= MAX_ENTRIES && self.bytes <= MAX_BYTES {
                break;
            }
            self.remove(&ns, &key);
        }
    }

    fn keys_where(&self, pick: impl Fn(&Entry) -> bool) -> Vec<(String, String)> {
        self.namespaces
            .iter()
            .flat_map(|(ns, workers)| {
                workers
                    .iter()
                    .filter(|(_, e)| pick(e))
                    .map(|(key, _)| (ns.clone(), key.clone()))
            })
            .collect()
    }

    /// The namespace's workers the query selects, in instance-key order.
    fn matching(&self, namespace: &str, query: &Query, system: bool) -> Vec<&WorkerHeartbeat> {
        self.namespaces
            .get(namespace)
            .into_iter()
            .flat_map(|workers| workers.values())
            .map(|e| &e.heartbeat)
            .filter(|hb| system || !is_system_worker(hb))
            .filter(|hb| query.matches(&HeartbeatRecord(hb)))
            .collect()
    }
}

fn is_system_worker(hb: &WorkerHeartbeat) -> bool {
    hb.task_queue.starts_with(SYSTEM_QUEUE_PREFIX)
}

/// The attributes ListWorkers and CountWorkers queries may name (Temporal's set).
fn attribute_type(name: &str) -> Option<IndexedValueType> {
    match name {
        "WorkerInstanceKey" | "WorkerIdentity" | "HostName" | "TaskQueue" | "DeploymentName"
        | "BuildId" | "SdkName" | "SdkVersion" | "WorkerStatus" | "Status" => {
            Some(IndexedValueType::Keyword)
        }
        "StartTime" | "HeartbeatTime" => Some(IndexedValueType::Datetime),
        _ => None,
    }
}

fn parse_query(text: &str) -> Result<Query> {
    Query::parse(text, &attribute_type).map_err(|e| Error::InvalidArgument(e.to_string()))
}

/// A heartbeat seen through the query language; an empty field is absent (`IS NULL`).
struct HeartbeatRecord<'a>(&'a WorkerHeartbeat);

impl Record for HeartbeatRecord<'_> {
    fn get(&self, name: &str) -> Option<Value> {
        let hb = self.0;
        let keyword = |s: &str| (!s.is_empty()).then(|| Value::Str(s.to_string()));
        let version = hb.deployment_version.as_ref();
        match name {
            "WorkerInstanceKey" => keyword(&hb.worker_instance_key),
            "WorkerIdentity" => keyword(&hb.worker_identity),
            "HostName" => keyword(hb.host_info.as_ref().map_or("", |h| &h.host_name)),
            "TaskQueue" => keyword(&hb.task_queue),
            "DeploymentName" => keyword(version.map_or("", |v| &v.deployment_name)),
            "BuildId" => keyword(version.map_or("", |v| &v.build_id)),
            "SdkName" => keyword(&hb.sdk_name),
            "SdkVersion" => keyword(&hb.sdk_version),
            "WorkerStatus" | "Status" => keyword(status_name(hb.status)),
            "StartTime" => hb
                .start_time
                .as_ref()
                .map(|t| Value::Datetime(clock::ts_millis(t))),
            "HeartbeatTime" => hb
                .heartbeat_time
                .as_ref()
                .map(|t| Value::Datetime(clock::ts_millis(t))),
            _ => None,
        }
    }
}

/// A status as Temporal's queries name it (`Status = 'Running'`).
fn status_name(status: i32) -> &'static str {
    match WorkerStatus::try_from(status) {
        Ok(WorkerStatus::Running) => "Running",
        Ok(WorkerStatus::ShuttingDown) => "ShuttingDown",
        Ok(WorkerStatus::Shutdown) => "Shutdown",
        _ => "",
    }
}

/// The short form ListWorkers returns beside the full one.
pub fn list_info(hb: &WorkerHeartbeat) -> WorkerListInfo {
    let host = hb.host_info.clone().unwrap_or_default();
    WorkerListInfo {
        worker_instance_key: hb.worker_instance_key.clone(),
        worker_identity: hb.worker_identity.clone(),
        task_queue: hb.task_queue.clone(),
        deployment_version: hb.deployment_version.clone(),
        sdk_name: hb.sdk_name.clone(),
        sdk_version: hb.sdk_version.clone(),
        status: hb.status,
        start_time: hb.start_time,
        host_name: host.host_name,
        worker_grouping_key: host.worker_grouping_key,
        process_id: host.process_id,
        plugins: hb.plugins.clone(),
        drivers: hb.drivers.clone(),
    }
}

/// A ListWorkers page: workers after the token's instance key, at most `page_size` (all
/// when 0), and the token for the next page.
// `workers_info` is deprecated but it is what `temporal worker list` 1.9 reads.
#[allow(deprecated)]
pub fn page_of(
    mut workers: Vec<WorkerHeartbeat>,
    page_size: i32,
    token: &[u8],
) -> Result<ListWorkersResponse> {
    let after = std::str::from_utf8(token)
        .map_err(|_| Error::InvalidArgument("invalid next_page_token".into()))?;
    workers.sort_by(|a, b| a.worker_instance_key.cmp(&b.worker_instance_key));
    workers.retain(|w| w.worker_instance_key.as_str() > after);
    let size = usize::try_from(page_size)
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(usize::MAX);
    let next_page_token = if workers.len() > size {
        workers.truncate(size);
        workers
            .last()
            .map(|w| w.worker_instance_key.clone().into_bytes())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(ListWorkersResponse {
        workers: workers.iter().map(list_info).collect(),
        workers_info: workers
            .into_iter()
            .map(|hb| WorkerInfo {
                worker_heartbeat: Some(hb),
            })
            .collect(),
        next_page_token,
    })
}

impl Engine {
    /// Records the heartbeats a worker process sent (one per worker it runs).
    pub async fn record_worker_heartbeats(&self, req: RecordWorkerHeartbeatRequest) -> Result<()> {
        self.transact(|core| core.check_namespace(&req.namespace))
            .await?;
        for hb in &req.worker_heartbeat {
            if hb.worker_instance_key.is_empty() {
                return Err(Error::InvalidArgument(
                    "WorkerInstanceKey is not set on worker heartbeat.".into(),
                ));
            }
            if hb.encoded_len() > MAX_HEARTBEAT_BYTES {
                return Err(Error::InvalidArgument(format!(
                    "a worker heartbeat may be at most {MAX_HEARTBEAT_BYTES} bytes"
                )));
            }
        }
        let now = self.now();
        let mut registry = self.workers.inner.lock();
        for hb in req.worker_heartbeat {
            registry.upsert(&req.namespace, hb, now);
        }
        registry.evict(now);
        Ok(())
    }

    /// The workers of a namespace the query selects (all of them: the caller pages).
    pub async fn matching_workers(
        &self,
        namespace: &str,
        query: &str,
        include_system: bool,
    ) -> Result<Vec<WorkerHeartbeat>> {
        self.transact(|core| core.check_namespace(namespace))
            .await?;
        let query = parse_query(query)?;
        let now = self.now();
        let mut registry = self.workers.inner.lock();
        registry.evict(now);
        Ok(registry
            .matching(namespace, &query, include_system)
            .into_iter()
            .cloned()
            .collect())
    }

    /// Forgets the workers of a namespace that was deleted.
    pub(crate) fn forget_namespace_workers(&self, namespace: &str) {
        let mut registry = self.workers.inner.lock();
        let keys: Vec<String> = registry
            .namespaces
            .get(namespace)
            .map(|w| w.keys().cloned().collect())
            .unwrap_or_default();
        for key in keys {
            registry.remove(namespace, &key);
        }
    }

    pub async fn list_workers(&self, req: ListWorkersRequest) -> Result<ListWorkersResponse> {
        let workers = self
            .matching_workers(&req.namespace, &req.query, req.include_system_workers)
            .await?;
        page_of(workers, req.page_size, &req.next_page_token)
    }

    pub async fn count_workers(&self, req: CountWorkersRequest) -> Result<CountWorkersResponse> {
        let workers = self
            .matching_workers(&req.namespace, &req.query, req.include_system_workers)
            .await?;
        Ok(CountWorkersResponse {
            count: workers.len() as i64,
        })
    }

    pub async fn describe_worker(
        &self,
        req: DescribeWorkerRequest,
    ) -> Result<DescribeWorkerResponse> {
        self.transact(|core| core.check_namespace(&req.namespace))
            .await?;
        let now = self.now();
        let mut registry = self.workers.inner.lock();
        registry.evict(now);
        let heartbeat = registry
            .namespaces
            .get(&req.namespace)
            .and_then(|workers| workers.get(&req.worker_instance_key))
            .map(|e| e.heartbeat.clone())
            .ok_or_else(|| {
                Error::NotFound(format!("Worker {} not found", req.worker_instance_key))
            })?;
        Ok(DescribeWorkerResponse {
            worker_info: Some(WorkerInfo {
                worker_heartbeat: Some(heartbeat),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(key: &str, queue: &str, status: WorkerStatus) -> WorkerHeartbeat {
        WorkerHeartbeat {
            worker_instance_key: key.into(),
            task_queue: queue.into(),
            status: status as i32,
            ..Default::default()
        }
    }

    #[test]
    fn shutdown_removes_and_silence_expires() {
        let mut r = Registry::default();
        r.upsert("ns", hb("a", "q", WorkerStatus::Running), 0);
        r.upsert("ns", hb("b", "q", WorkerStatus::Running), 1_000);
        r.upsert("ns", hb("a", "q", WorkerStatus::Shutdown), 2_000);
        assert_eq!(r.entries, 1);
        r.evict(1_000 + TTL_MS - 1);
        assert_eq!(r.entries, 1);
        r.evict(1_000 + TTL_MS);
        assert_eq!((r.entries, r.bytes), (0, 0));
        assert!(r.namespaces.is_empty());
    }

    #[test]
    fn queries_select_by_attribute_and_status() {
        let mut r = Registry::default();
        r.upsert("ns", hb("a", "orders", WorkerStatus::Running), 0);
        r.upsert("ns", hb("b", "billing", WorkerStatus::ShuttingDown), 0);
        r.upsert("ns", hb("c", "temporal-sys-x", WorkerStatus::Running), 0);
        let keys = |q: &str, system: bool| -> Vec<String> {
            r.matching("ns", &parse_query(q).unwrap(), system)
                .iter()
                .map(|h| h.worker_instance_key.clone())
                .collect()
        };
        assert_eq!(keys("", false), ["a", "b"]);
        assert_eq!(keys("", true), ["a", "b", "c"]);
        assert_eq!(keys("TaskQueue = 'orders'", false), ["a"]);
        assert_eq!(keys("Status = 'ShuttingDown'", false), ["b"]);
        assert_eq!(keys("TaskQueue STARTS_WITH 'bill'", false), ["b"]);
        assert!(keys("HostName IS NULL", false).len() == 2);
        assert!(parse_query("NoSuchField = 'x'").is_err());
    }

    #[test]
    #[allow(deprecated)] // workers_info: the full form the CLI reads
    fn pages_follow_instance_keys() {
        let all: Vec<_> = ["c", "a", "b"]
            .iter()
            .map(|k| hb(k, "q", WorkerStatus::Running))
            .collect();
        let first = page_of(all.clone(), 2, b"").unwrap();
        let keys = |p: &ListWorkersResponse| -> Vec<String> {
            p.workers
                .iter()
                .map(|w| w.worker_instance_key.clone())
                .collect()
        };
        assert_eq!(keys(&first), ["a", "b"]);
        assert_eq!(first.workers_info.len(), 2);
        let second = page_of(all, 2, &first.next_page_token).unwrap();
        assert_eq!(keys(&second), ["c"]);
        assert!(second.next_page_token.is_empty());
    }
}
