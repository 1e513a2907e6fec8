//! Namespaces: registration, description, listing and updates.

use temporalio_protos::temporal::api::enums::v1::{NamespaceState, ReplicationState};
use temporalio_protos::temporal::api::namespace::v1::{
    NamespaceConfig, NamespaceInfo, namespace_info, namespace_info::Capabilities,
};
use temporalio_protos::temporal::api::replication::v1::{
    ClusterReplicationConfig, NamespaceReplicationConfig,
};
use temporalio_protos::temporal::api::workflowservice::v1::{
    DescribeNamespaceRequest, DescribeNamespaceResponse, ListNamespacesRequest,
    ListNamespacesResponse, RegisterNamespaceRequest, UpdateNamespaceRequest,
    UpdateNamespaceResponse,
};

use super::clock::{dur_from_millis, dur_millis};
use super::{Engine, Error, Result};
use crate::store::NamespaceRecord;
use temporalio_protos::temporal::api::operatorservice::v1::AddSearchAttributesRequest;

const MIN_RETENTION_MS: i64 = 3_600_000;
/// The one cluster a Durin deployment is, as named in namespace replication configs.
pub const CLUSTER_NAME: &str = "active";

/// Temporal servers always describe a namespace's replication; clients (the CLI) rely on it.
fn single_cluster() -> NamespaceReplicationConfig {
    NamespaceReplicationConfig {
        active_cluster_name: CLUSTER_NAME.into(),
        clusters: vec![ClusterReplicationConfig {
            cluster_name: CLUSTER_NAME.into(),
            ..Default::default()
        }],
        state: ReplicationState::Normal as i32,
    }
}

/// A namespace as described: with its replication config, and the capabilities of this
/// server (what the server can do now, not what it could when the namespace was registered).
fn as_described(mut ns: DescribeNamespaceResponse) -> DescribeNamespaceResponse {
    if ns.replication_config.is_none() {
        ns.replication_config = Some(single_cluster());
    }
    if let Some(info) = ns.namespace_info.as_mut() {
        info.capabilities = Some(capabilities());
        // SDKs check payloads against these before sending them.
        info.limits = Some(namespace_info::Limits {
            blob_size_limit_error: super::limits::MAX_PAYLOAD_BYTES as i64,
            memo_size_limit_error: super::limits::MAX_MEMO_BYTES as i64,
            ..Default::default()
        });
    }
    ns
}

/// What clients may rely on in every namespace.
fn capabilities() -> Capabilities {
    Capabilities {
        eager_workflow_start: true,
        sync_update: true,
        async_update: true,
        worker_poll_complete_on_shutdown: true,
        worker_heartbeats: true,
        standalone_activities: true,
        standalone_activity_start_delay: true,
        ..Default::default()
    }
}
const DEFAULT_RETENTION_MS: i64 = 72 * 3_600_000;

impl Engine {
    /// Creates the namespace if it does not exist yet (used for `default` at start-up).
    pub async fn ensure_namespace(&self, name: &str) -> Result<()> {
        let req = RegisterNamespaceRequest {
            namespace: name.to_string(),
            workflow_execution_retention_period: Some(dur_from_millis(DEFAULT_RETENTION_MS)),
            ..Default::default()
        };
        match self.register_namespace(req).await {
            Ok(()) => {}
            Err(Error::NamespaceAlreadyExists(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
        let defaults = crate::visibility::search_attributes::DEV_DEFAULTS;
        self.add_search_attributes(AddSearchAttributesRequest {
            namespace: name.to_string(),
            search_attributes: defaults
                .iter()
                .map(|(n, t)| (n.to_string(), *t as i32))
                .collect(),
        })
        .await
    }

    pub async fn register_namespace(&self, req: RegisterNamespaceRequest) -> Result<()> {
        self.transact(|core| {
            if req.namespace.is_empty() {
                return Err(Error::InvalidArgument(
                    "Namespace is not set on request.".into(),
                ));
            }
            if core.namespaces.contains_key(&req.namespace) {
                return Err(Error::NamespaceAlreadyExists(req.namespace.clone()));
            }
            let retention = dur_millis(&req.workflow_execution_retention_period);
            if retention < MIN_RETENTION_MS {
                return Err(Error::InvalidArgument(
                    "WorkflowExecutionRetentionPeriod must be at least 1 hour.".into(),
                ));
            }
            let ns = DescribeNamespaceResponse {
                namespace_info: Some(NamespaceInfo {
                    name: req.namespace.clone(),
                    state: NamespaceState::Registered as i32,
                    description: req.description.clone(),
                    owner_email: req.owner_email.clone(),
                    data: req.data.clone(),
                    id: uuid::Uuid::new_v4().to_string(),
                    capabilities: Some(capabilities()),
                    ..Default::default()
                }),
                config: Some(NamespaceConfig {
                    workflow_execution_retention_ttl: Some(dur_from_millis(retention)),
                    ..Default::default()
                }),
                ..Default::default()
            };
            core.write_namespace(NamespaceRecord {
                namespace: Some(ns),
                ..Default::default()
            });
            Ok(())
        })
        .await
    }

    pub async fn describe_namespace(
        &self,
        req: DescribeNamespaceRequest,
    ) -> Result<DescribeNamespaceResponse> {
        self.transact(|core| {
            let found = if !req.namespace.is_empty() {
                core.namespaces.get(&req.namespace)
            } else if !req.id.is_empty() {
                core.namespaces.values().find(|n| {
                    n.namespace
                        .as_ref()
                        .and_then(|d| d.namespace_info.as_ref())
                        .is_some_and(|i| i.id == req.id)
                })
            } else {
                return Err(Error::InvalidArgument(
                    "Namespace or namespace id is required.".into(),
                ));
            };
            found
                .and_then(|r| r.namespace.clone())
                .map(as_described)
                .ok_or_else(|| {
                    Error::NamespaceNotFound(if req.namespace.is_empty() {
                        req.id.clone()
                    } else {
                        req.namespace.clone()
                    })
                })
        })
        .await
    }

    pub async fn list_namespaces(
        &self,
        req: ListNamespacesRequest,
    ) -> Result<ListNamespacesResponse> {
        self.transact(|core| {
            let mut names: Vec<&String> = core.namespaces.keys().collect();
            names.sort();
            let start = if req.next_page_token.is_empty() {
                0
            } else {
                String::from_utf8_lossy(&req.next_page_token)
                    .parse::<usize>()
                    .map_err(|_| Error::InvalidArgument("Invalid NextPageToken.".into()))?
            };
            let size = if req.page_size > 0 {
                req.page_size as usize
            } else {
                100
            };
            let page: Vec<DescribeNamespaceResponse> = names
                .iter()
                .skip(start)
                .take(size)
                .filter_map(|n| {
                    core.namespaces
                        .get(*n)
                        .and_then(|r| r.namespace.clone())
                        .map(as_described)
                })
                .collect();
            let next = start + page.len();
            Ok(ListNamespacesResponse {
                namespaces: page,
                next_page_token: if next < names.len() {
                    next.to_string().into_bytes()
                } else {
                    Vec::new()
                },
            })
        })
        .await
    }

    pub async fn update_namespace(
        &self,
        req: UpdateNamespaceRequest,
    ) -> Result<UpdateNamespaceResponse> {
        self.transact(|core| {
            let mut ns = core
                .namespaces
                .get(&req.namespace)
                .and_then(|r| r.namespace.clone())
                .map(as_described)
                .ok_or_else(|| Error::NamespaceNotFound(req.namespace.clone()))?;
            if let (Some(update), Some(info)) = (&req.update_info, ns.namespace_info.as_mut()) {
                if !update.description.is_empty() {
                    info.description = update.description.clone();
                }
                if !update.owner_email.is_empty() {
                    info.owner_email = update.owner_email.clone();
                }
                info.data.extend(update.data.clone());
            }
            if let Some(config) = &req.config {
                let current = ns.config.get_or_insert_with(Default::default);
                if let Some(ttl) = config.workflow_execution_retention_ttl {
                    if dur_millis(&Some(ttl)) < MIN_RETENTION_MS {
                        return Err(Error::InvalidArgument(
                            "WorkflowExecutionRetentionPeriod must be at least 1 hour.".into(),
                        ));
                    }
                    current.workflow_execution_retention_ttl = Some(ttl);
                }
            }
            let mut record = core
                .namespaces
                .get(&req.namespace)
                .cloned()
                .unwrap_or_default();
            record.namespace = Some(ns.clone());
            core.write_namespace(record);
            Ok(UpdateNamespaceResponse {
                namespace_info: ns.namespace_info,
                config: ns.config,
                replication_config: ns.replication_config,
                ..Default::default()
            })
        })
        .await
    }
}
