//! Which Durin namespaces the resources of a Kubernetes namespace may use.
//!
//! Whoever may edit a Kubernetes namespace may create Workflows, Schedules and Workers there,
//! and each names a Durin namespace (`spec.namespace`). Without a rule, an editor of `team-a`
//! could start, signal, cancel, terminate or read executions of any other tenant. So a
//! Kubernetes namespace reaches only the Durin namespace of the same name, plus what the
//! cluster's administrators granted it: the annotation [`ALLOWED_NAMESPACES_ANNOTATION`] on
//! the `Namespace` object (which namespace editors cannot change) or the operator's
//! `--allow-namespace` flag.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};

/// On a Kubernetes `Namespace`: the other Durin namespaces its resources may use, comma
/// separated; `*` allows every Durin namespace.
pub const ALLOWED_NAMESPACES_ANNOTATION: &str = "durin.dev/allowed-namespaces";
/// The `Accepted=False` reason (and Warning event reason) of a resource refused by the rule.
pub const NAMESPACE_NOT_ALLOWED: &str = "NamespaceNotAllowed";

/// One `--allow-namespace KUBE_NS=DURIN_NS[,DURIN_NS...]` grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub kube_namespace: String,
    pub durin_namespaces: Vec<String>,
}

impl std::str::FromStr for Grant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kube_ns, list) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not KUBE_NS=DURIN_NS[,DURIN_NS...]"))?;
        let durin_namespaces: Vec<String> = names(list).map(str::to_string).collect();
        if kube_ns.trim().is_empty() || durin_namespaces.is_empty() {
            return Err(format!("{s:?} is not KUBE_NS=DURIN_NS[,DURIN_NS...]"));
        }
        Ok(Grant {
            kube_namespace: kube_ns.trim().to_string(),
            durin_namespaces,
        })
    }
}

/// What the operator knows of the rule beyond the Namespace objects.
#[derive(Clone, Debug, Default)]
pub struct Tenancy {
    /// Operator-wide grants (`--allow-namespace`): Kubernetes namespace → Durin namespaces.
    grants: BTreeMap<String, Vec<String>>,
    /// The one Kubernetes namespace watched (`--watch-namespace`); only its Namespace object
    /// is read.
    watch_namespace: Option<String>,
}

fn names(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|n| !n.is_empty())
}

/// Whether a grant list (annotation value or flag) covers `durin_ns`.
fn covers<'a>(mut list: impl Iterator<Item = &'a str>, durin_ns: &str) -> bool {
    list.any(|n| n == "*" || n == durin_ns)
}

impl Tenancy {
    pub fn new(grants: &[Grant], watch_namespace: Option<String>) -> Self {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for g in grants {
            map.entry(g.kube_namespace.clone())
                .or_default()
                .extend(g.durin_namespaces.iter().cloned());
        }
        Tenancy {
            grants: map,
            watch_namespace,
        }
    }

    /// Allowed without reading the Namespace object: the same name, or a flag grant.
    fn allowed_without_annotation(&self, kube_ns: &str, durin_ns: &str) -> bool {
        kube_ns == durin_ns
            || self
                .grants
                .get(kube_ns)
                .is_some_and(|l| covers(l.iter().map(String::as_str), durin_ns))
    }

    /// `None` when resources in `kube_ns` may use `durin_ns`, else why not. `annotation` is
    /// the Namespace object's [`ALLOWED_NAMESPACES_ANNOTATION`].
    pub fn refusal(
        &self,
        kube_ns: &str,
        durin_ns: &str,
        annotation: Option<&str>,
    ) -> Option<String> {
        if self.allowed_without_annotation(kube_ns, durin_ns)
            || annotation.is_some_and(|a| covers(names(a), durin_ns))
        {
            return None;
        }
        Some(format!(
            "Kubernetes namespace {kube_ns} may not use Durin namespace {durin_ns}: a \
             Kubernetes namespace reaches only the Durin namespace of the same name unless a \
             cluster administrator grants more with the annotation \
             {ALLOWED_NAMESPACES_ANNOTATION} on Namespace {kube_ns} (a comma-separated list, \
             \"*\" for all), e.g. `kubectl annotate namespace {kube_ns} \
             {ALLOWED_NAMESPACES_ANNOTATION}={durin_ns}`"
        ))
    }

    /// Checks the rule, reading the Namespace object when a grant is needed (on every call,
    /// so a revoked grant holds from the next reconcile on). `Ok(Some(why))` is a refusal.
    pub async fn check(
        &self,
        client: &Client,
        kube_ns: &str,
        durin_ns: &str,
    ) -> Result<Option<String>, kube::Error> {
        if self.allowed_without_annotation(kube_ns, durin_ns) {
            return Ok(None);
        }
        let ns = Api::<Namespace>::all(client.clone())
            .get_opt(kube_ns)
            .await?;
        let annotation = ns
            .as_ref()
            .and_then(|n| n.annotations().get(ALLOWED_NAMESPACES_ANNOTATION))
            .map(String::as_str);
        Ok(self.refusal(kube_ns, durin_ns, annotation))
    }

    /// The Namespace objects whose grants matter: all of them, or only the watched one (the
    /// field selector lets RBAC limit the grant to that name).
    pub fn namespace_watch(&self, client: &Client) -> (Api<Namespace>, watcher::Config) {
        let config = watcher::Config::default().any_semantic();
        let config = match &self.watch_namespace {
            Some(ns) => config.fields(&format!("metadata.name={ns}")),
            None => config,
        };
        (Api::all(client.clone()), config)
    }
}

/// Maps a changed Namespace object to the resources in it that use another Durin namespace
/// (the only ones a grant concerns), so a grant or a revocation reaches them at once.
pub fn grant_dependents<K>(
    store: Store<K>,
    durin_namespace: fn(&K) -> String,
) -> impl Fn(Namespace) -> Vec<ObjectRef<K>> + Send + Sync + 'static
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    move |ns: Namespace| {
        let name = ns.name_any();
        store
            .state()
            .iter()
            .filter(|o| o.meta().namespace.as_deref() == Some(name.as_str()))
            .filter(|o| durin_namespace(o) != name)
            .map(|o| ObjectRef::from_obj(o.as_ref()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_only_by_default() {
        let t = Tenancy::default();
        assert_eq!(t.refusal("team-a", "team-a", None), None);
        let why = t.refusal("team-a", "team-b", None).expect("refused");
        assert!(why.contains("team-a") && why.contains("team-b"), "{why}");
        assert!(why.contains(ALLOWED_NAMESPACES_ANNOTATION), "{why}");
        assert!(t.refusal("team-a", "team-b", Some("")).is_some());
        assert!(
            t.refusal("team-a", "team-b", Some("team-bb,team"))
                .is_some()
        );
    }

    #[test]
    fn annotation_grants_a_list_or_everything() {
        let t = Tenancy::default();
        assert_eq!(t.refusal("team-a", "team-b", Some("team-c, team-b")), None);
        assert_eq!(t.refusal("team-a", "anything", Some("*")), None);
        assert!(
            t.refusal("team-a", "team-d", Some("team-c,team-b"))
                .is_some()
        );
    }

    #[test]
    fn flag_grants_per_kubernetes_namespace() {
        let grant: Grant = "team-a=shared, reports".parse().unwrap();
        assert_eq!(grant.durin_namespaces, vec!["shared", "reports"]);
        let t = Tenancy::new(&[grant, "ops=*".parse().unwrap()], None);
        assert_eq!(t.refusal("team-a", "reports", None), None);
        assert!(t.refusal("team-b", "reports", None).is_some());
        assert_eq!(t.refusal("ops", "team-b", None), None);
        for bad in ["team-a", "=x", "team-a=", "team-a= , "] {
            assert!(bad.parse::<Grant>().is_err(), "{bad}");
        }
    }
}
