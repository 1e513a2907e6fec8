//! Deleting a namespace (OperatorService DeleteNamespace): its workflow runs (open ones are
//! terminated first, so parents, children and the parent-close policies in other namespaces
//! hear of it), their histories and archived copies, its schedules and batch operations go,
//! and its name is free for a new namespace at once.
//!
//! The replica that takes the call deletes what its shards hold in one operation, including
//! the namespace record, which stays in the store as a tombstone (state `Deleted`): every
//! other replica, when it re-reads namespaces (at once, told by the first, and on each
//! membership round), sees the tombstone — or a namespace of that name with another id,
//! registered since — and deletes what its own shards hold of the old namespace.

use std::collections::BTreeSet;

use temporalio_protos::temporal::api::enums::v1::NamespaceState;
use temporalio_protos::temporal::api::operatorservice::v1::{
    DeleteNamespaceRequest, DeleteNamespaceResponse,
};

use super::{Core, Engine, Error, Result, RunKey};
use crate::store::archive::Scanned;
use crate::store::records::{BatchJobRecord, ScheduleKeyRecord};
use crate::store::{LogRecord, NamespaceRecord, log_record};

/// Why the open runs of a deleted namespace were terminated.
const TERMINATE_REASON: &str = "Delete namespace";

impl Engine {
    pub async fn delete_namespace(
        &self,
        req: DeleteNamespaceRequest,
    ) -> Result<DeleteNamespaceResponse> {
        let name = self.namespace_to_delete(&req)?;
        let archived = self.archived_runs_of(&name).await?;
        self.transact(|core| {
            let record = core
                .namespaces
                .get(&name)
                .cloned()
                .ok_or_else(|| Error::NamespaceNotFound(name.clone()))?;
            core.purge_namespace(&name, &archived)?;
            core.namespaces.remove(&name);
            let id = namespace_id(&record).to_string();
            let tombstone = tombstone(record);
            core.namespace_tombstones
                .insert(name.clone(), tombstone.version);
            core.log(LogRecord {
                kind: Some(log_record::Kind::Namespace(tombstone)),
            });
            // Temporal renames a namespace while it deletes it in the background and answers
            // with that name; Durin is done here, and answers in the same form.
            let short: String = id.chars().take(5).collect();
            Ok(DeleteNamespaceResponse {
                deleted_namespace: format!("{name}-deleted-{short}"),
            })
        })
        .await
        .inspect(|_| self.forget_namespace_workers(&name))
    }

    /// The namespace a request names, by name or by id.
    fn namespace_to_delete(&self, req: &DeleteNamespaceRequest) -> Result<String> {
        if !req.namespace.is_empty() {
            return Ok(req.namespace.clone());
        }
        if req.namespace_id.is_empty() {
            return Err(Error::InvalidArgument(
                "Namespace or NamespaceId is not set on request.".into(),
            ));
        }
        let core = self.core.lock();
        core.namespaces
            .iter()
            .find(|(_, r)| namespace_id(r) == req.namespace_id)
            .map(|(name, _)| name.clone())
            .ok_or_else(|| Error::NamespaceNotFound(req.namespace_id.clone()))
    }

    /// The runs of a namespace in the archive, read from disk outside the engine's lock (a
    /// run archived meanwhile was in memory before, and is found there).
    async fn archived_runs_of(&self, namespace: &str) -> Result<Vec<RunKey>> {
        let Some((files, segments)) = self.core.lock().archive_scan_plan() else {
            return Ok(Vec::new());
        };
        let namespace = namespace.to_string();
        tokio::task::spawn_blocking(move || {
            let mut keys = Vec::new();
            for id in segments {
                files.scan_segment(id, &mut |scanned| {
                    if let Scanned::Run { state, .. } = scanned
                        && state.namespace == namespace
                    {
                        keys.push(RunKey {
                            namespace: state.namespace.clone(),
                            workflow_id: state.workflow_id.clone(),
                            run_id: state.run_id.clone(),
                        });
                    }
                })?;
            }
            Ok::<_, Error>(keys)
        })
        .await
        .map_err(|e| Error::Store(crate::store::StoreError::Failed(e.to_string())))?
    }

    /// Takes in the namespaces the store holds (other replicas register, update and delete
    /// them too); what this replica's shards hold of a namespace deleted elsewhere goes.
    pub async fn refresh_namespaces(&self, records: Vec<LogRecord>) -> Result<()> {
        let mut gone = Vec::new();
        self.transact(|core| {
            for record in records {
                let Some(log_record::Kind::Namespace(ns)) = record.kind else {
                    continue;
                };
                let Some(name) = namespace_name(&ns) else {
                    continue;
                };
                // A read that raced a change made here since is stale: skip it.
                if ns.version <= core.namespace_version(&name) {
                    continue;
                }
                let replaced = core
                    .namespaces
                    .get(&name)
                    .is_some_and(|k| namespace_id(k) != namespace_id(&ns));
                if is_tombstone(&ns) || replaced {
                    if core.namespaces.contains_key(&name) {
                        core.purge_namespace(&name, &[])?;
                        core.namespaces.remove(&name);
                        gone.push(name.clone());
                    }
                    if is_tombstone(&ns) {
                        core.namespace_tombstones.insert(name, ns.version);
                        continue;
                    }
                }
                let routing_changed = core
                    .namespaces
                    .get(&name)
                    .is_some_and(|k| k.worker_deployments != ns.worker_deployments);
                core.namespaces.insert(name.clone(), ns);
                if routing_changed {
                    // Tasks waiting here go where the new routing sends them.
                    core.reroute_waiting_tasks(&name);
                }
            }
            Ok(())
        })
        .await?;
        for name in gone {
            tracing::info!(namespace = %name, "namespace deleted on another replica");
            self.forget_namespace_workers(&name);
        }
        Ok(())
    }
}

impl Core {
    /// The version of the newest record this replica knows of a namespace's name: the live
    /// namespace's, else its tombstone's (0 if neither).
    pub(super) fn namespace_version(&self, name: &str) -> u64 {
        self.namespaces
            .get(name)
            .map(|r| r.version)
            .or_else(|| self.namespace_tombstones.get(name).copied())
            .unwrap_or(0)
    }

    /// Removes everything of `namespace` this replica holds, with a log record for each
    /// thing removed; `archived` names runs in the archive (found on disk beforehand).
    fn purge_namespace(&mut self, namespace: &str, archived: &[RunKey]) -> Result<()> {
        let resident: Vec<RunKey> = self
            .runs
            .keys()
            .filter(|k| k.namespace == namespace)
            .cloned()
            .collect();
        for key in &resident {
            if self.run(key).is_ok_and(|r| r.is_open()) {
                self.terminate_run(key, TERMINATE_REASON, None, "durin")?;
            }
        }
        let keys: BTreeSet<&RunKey> = resident.iter().chain(archived).collect();
        for key in &keys {
            self.forget_archived(key)?;
            self.log_deleted(key);
        }
        // Removed in one sweep (run by run, each removal would look for the workflow id's
        // next current run among all runs).
        self.runs.retain_keys(|k| k.namespace != namespace);
        self.current.retain(|(ns, _), _| ns != namespace);
        let schedules: Vec<_> = self
            .schedules
            .keys()
            .filter(|k| k.0 == namespace)
            .cloned()
            .collect();
        for key in schedules {
            self.schedules.remove(&key);
            self.log(LogRecord {
                kind: Some(log_record::Kind::ScheduleDeleted(ScheduleKeyRecord {
                    namespace: key.0,
                    schedule_id: key.1,
                })),
            });
        }
        let batches: Vec<_> = self
            .batches
            .keys()
            .filter(|k| k.0 == namespace)
            .cloned()
            .collect();
        for key in batches {
            self.batches.remove(&key);
            self.log(LogRecord {
                kind: Some(log_record::Kind::BatchJob(BatchJobRecord {
                    namespace: key.0,
                    job_id: key.1,
                    deleted: true,
                    ..Default::default()
                })),
            });
        }
        tracing::info!(namespace, runs = keys.len(), "namespace data deleted");
        Ok(())
    }
}

/// A namespace's tombstone: its record with state `Deleted`, one version on.
pub(super) fn tombstone(mut record: NamespaceRecord) -> NamespaceRecord {
    if let Some(info) = record
        .namespace
        .as_mut()
        .and_then(|n| n.namespace_info.as_mut())
    {
        info.state = NamespaceState::Deleted as i32;
    }
    record.version += 1;
    record
}

fn namespace_name(record: &NamespaceRecord) -> Option<String> {
    record
        .namespace
        .as_ref()
        .and_then(|n| n.namespace_info.as_ref())
        .map(|i| i.name.clone())
}

fn namespace_id(record: &NamespaceRecord) -> &str {
    record
        .namespace
        .as_ref()
        .and_then(|n| n.namespace_info.as_ref())
        .map_or("", |i| i.id.as_str())
}

/// Whether a namespace record says the namespace was deleted.
pub(crate) fn is_tombstone(record: &NamespaceRecord) -> bool {
    record
        .namespace
        .as_ref()
        .and_then(|n| n.namespace_info.as_ref())
        .is_some_and(|i| i.state == NamespaceState::Deleted as i32)
}
