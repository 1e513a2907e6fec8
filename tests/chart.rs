//! The Helm chart: lint, render with default and non-default values and have the real API
//! server validate every object (server-side dry run), install it, and run the operator with
//! exactly the RBAC the chart grants (as its ServiceAccount, by token).

mod common;

use std::time::{Duration, Instant};

use common::kube_env::KubeEnv;
use common::{DurinServer, ExampleWorker};
use serde_json::Value;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/durin");
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/k8s");

const CUSTOM_VALUES: &str = r#"
fullnameOverride: durin-custom
image:
  repository: registry.example.com/durin
  tag: "9.9.9"
  pullPolicy: Always
imagePullSecrets: [{name: regcred}]
serviceAccount:
  create: true
  name: custom-sa
  annotations: {team: platform}
crds:
  install: false
leaderElection:
  enabled: false
operator:
  watchNamespace: team-a
  namespaces: [payments, billing]
  engineAddress: durin.example.internal:7233
  logLevel: debug
service:
  type: NodePort
  grpcPort: 17233
metrics:
  enabled: true
  port: 19090
grafanaDashboard:
  enabled: true
  namespace: monitoring
  annotations:
    grafana_folder: Durin
persistence:
  enabled: false
resources:
  requests: {cpu: 250m, memory: 256Mi}
  limits: {cpu: "2", memory: 2Gi}
podAnnotations: {prometheus.io/scrape: "true"}
podLabels: {tier: engine}
nodeSelector: {kubernetes.io/os: linux}
tolerations: [{key: dedicated, operator: Equal, value: durin, effect: NoSchedule}]
tls:
  secretName: durin-tls
  clientCA: true
auth:
  secretName: durin-tokens
postgres:
  secretName: durin-pg
  caSecretName: durin-pg-ca
extraArgs: ["--lease-duration=20"]
extraEnv: [{name: EXTRA, value: "1"}]
extraVolumes: [{name: scratch, emptyDir: {medium: Memory}}]
extraVolumeMounts: [{name: scratch, mountPath: /scratch}]
priorityClassName: durin-critical
networkPolicy:
  enabled: true
  from: [{namespaceSelector: {matchLabels: {team: a}}}]
ui:
  enabled: true
  tls:
    clientSecretName: durin-ui-client
  ingress:
    enabled: true
    className: nginx
    host: temporal.example.com
    tls: [{hosts: [temporal.example.com], secretName: durin-ui-tls}]
  extraEnv: [{name: TEMPORAL_CODEC_ENDPOINT, value: "https://codec.example.com"}]
"#;

/// Grants the operator needs that the test's requests do not show as such in the audit log.
/// A Worker with a rollout gets a Deployment per version; a new template before the first
/// version's workers ever polled deletes that version's Deployment (the `delete` grant).
async fn rollout_retires_a_version_that_never_polled(kube: &KubeEnv) {
    let manifest = std::fs::read_to_string(format!("{EXAMPLES}/worker-rollout.yaml"))
        .expect("example manifest");
    let versions = || async {
        let list = kube
            .get_json(&[
                "-n",
                "team-a",
                "deployments",
                "-l",
                "durin.dev/worker=orders",
            ])
            .await;
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                d["metadata"]["labels"]["durin.dev/build-id"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    for tag in ["v1", "v2"] {
        let text = manifest
            .replace("orders-worker:v1", &format!("orders-worker:{tag}"))
            .replace("  name: orders\n", "  name: orders\n  namespace: team-a\n");
        assert!(text.contains("namespace: team-a"));
        let out = kube.apply(&text).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let builds = versions().await;
            if builds.len() == 1 && builds[0].starts_with(&format!("{tag}-")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "versions of orders: {builds:?}, wanted only {tag}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

const NEEDED_BUT_NOT_AUDITED: &[(&str, &str)] = &[
    (
        "apps/deployments:create",
        "server-side apply of a Deployment that does not exist yet is audited as patch but \
         authorized as create too (without it: `cannot create resource \"deployments\"`, tried)",
    ),
    (
        "events.k8s.io/events:patch",
        "kube-runtime's Recorder patches an Event into a series when the same event recurs \
         within minutes, which this short run does not provoke",
    ),
];

/// The Secret the chart makes for replica-to-replica TLS holds a CA and a certificate that
/// verifies against it as a server's and as a client's, naming the configured server name.
fn replicas_get_a_certificate_for_mutual_tls(rendered: &str, dir: &std::path::Path) {
    let objects = objects(rendered);
    let secret = find(&objects, "Secret", "durin-cluster-tls").expect("cluster TLS Secret");
    let decode = |key: &str| {
        let b64 = secret["data"][key].as_str().expect("base64 data");
        let path = dir.join(format!("cluster-{key}"));
        let out = std::process::Command::new("openssl")
            .args(["base64", "-d", "-A"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(b64.as_bytes())?;
                child.wait_with_output()
            })
            .expect("openssl base64");
        std::fs::write(&path, out.stdout).expect("write");
        path.display().to_string()
    };
    let (ca, cert) = (decode("ca.crt"), decode("tls.crt"));
    for purpose in ["sslserver", "sslclient"] {
        let verified = std::process::Command::new("openssl")
            .args(["verify", "-CAfile", &ca, "-purpose", purpose, &cert])
            .output()
            .expect("openssl verify");
        assert!(
            verified.status.success(),
            "the cluster certificate does not verify for {purpose}: {}",
            String::from_utf8_lossy(&verified.stderr)
        );
    }
    let names = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in", &cert])
        .output()
        .expect("openssl x509");
    assert!(
        String::from_utf8_lossy(&names.stdout).contains("DNS:durin-cluster"),
        "the certificate names the server name the replicas check"
    );
    let statefulset = find(&objects, "StatefulSet", "durin").expect("StatefulSet");
    let mounted = statefulset
        .to_string()
        .contains("\"secretName\":\"durin-cluster-tls\"");
    assert!(mounted, "the replicas mount the cluster TLS Secret");
}

/// The objects of a rendered chart.
fn objects(rendered: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(rendered)
        .expect("rendered chart is YAML")
        .into_iter()
        .filter(|o| o.is_object())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

/// Whether any rule of `role` grants `verb` on `resource` (wildcards included).
fn grants(role: &Value, resource: &str, verb: &str) -> bool {
    let has = |list: &Value, want: &str| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|v| v == want || v == "*"))
    };
    role["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| has(&r["resources"], resource) && has(&r["verbs"], verb))
}

/// Without operator.watchNamespace the controllers get a ClusterRole; with it, a Role in that
/// namespace, and the only cluster-scoped grant is reading that one Namespace object.
fn operator_rbac_follows_watch_namespace(default: &str, scoped: &str) {
    let default = objects(default);
    let cluster_role = find(&default, "ClusterRole", "durin-operator").expect("ClusterRole");
    assert!(grants(cluster_role, "deployments", "create"));
    assert!(find(&default, "ClusterRoleBinding", "durin-operator").is_some());
    let namespaces = find(&default, "ClusterRole", "durin-namespaces").expect("namespaces role");
    assert!(grants(namespaces, "namespaces", "get"));
    assert!(namespaces["rules"][0]["resourceNames"].is_null());

    // CUSTOM_VALUES watch team-a.
    let scoped = objects(scoped);
    // durin-edit/durin-view only join the built-in roles users are bound to, per namespace.
    let aggregated = |role: &Value| {
        role["metadata"]["labels"].as_object().is_some_and(|l| {
            l.keys()
                .any(|k| k.starts_with("rbac.authorization.k8s.io/aggregate-to-"))
        })
    };
    for role in scoped
        .iter()
        .filter(|o| o["kind"] == "ClusterRole" && !aggregated(o))
    {
        for resource in [
            "deployments",
            "events",
            "workflows",
            "schedules",
            "workers",
            "nexusendpoints",
        ] {
            for verb in ["create", "patch", "delete", "list", "watch"] {
                assert!(
                    !grants(role, resource, verb),
                    "a ClusterRole grants {resource}/{verb} with watchNamespace set: {role}"
                );
            }
        }
    }
    assert!(
        find(&scoped, "ClusterRoleBinding", "durin-custom-operator").is_none(),
        "no cluster-wide binding of the controllers' role"
    );
    let role = find(&scoped, "Role", "durin-custom-operator").expect("the controllers' Role");
    assert_eq!(role["metadata"]["namespace"], "team-a");
    for (resource, verb) in [
        ("deployments", "create"),
        ("workflows", "watch"),
        ("events", "create"),
    ] {
        assert!(grants(role, resource, verb), "Role lacks {resource}/{verb}");
    }
    let binding = find(&scoped, "RoleBinding", "durin-custom-operator").expect("RoleBinding");
    assert_eq!(binding["metadata"]["namespace"], "team-a");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["subjects"][0]["name"], "custom-sa");
    assert_eq!(binding["subjects"][0]["namespace"], "durin-system");
    let namespaces =
        find(&scoped, "ClusterRole", "durin-custom-namespaces").expect("namespaces role");
    assert_eq!(
        namespaces["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["namespaces"],
            "verbs": ["get", "list", "watch"], "resourceNames": ["team-a"]}])
    );
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn ok(out: std::process::Output, what: &str) -> String {
    assert!(out.status.success(), "{what} failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_lints_renders_installs_and_runs_with_its_own_rbac() {
    let kube = KubeEnv::start().await;
    ok(
        kube.helm(&["lint", "--strict", CHART]).await,
        "helm lint --strict",
    )
    .await;
    // The schema refuses what the chart cannot do.
    let bad = kube
        .helm(&["template", "x", CHART, "--set", "replicaCount=3"])
        .await;
    assert!(
        !bad.status.success() && text(&bad).contains("replicaCount"),
        "{}",
        text(&bad)
    );

    // `helm package` makes the archive a registry takes (`helm push … oci://…`).
    let packaged = tempfile::tempdir().expect("tempdir");
    ok(
        kube.helm(&[
            "package",
            CHART,
            "-d",
            &packaged.path().display().to_string(),
        ])
        .await,
        "helm package",
    )
    .await;
    let version = common::chart_field("version");
    let archive = packaged.path().join(format!("durin-{version}.tgz"));
    assert!(
        std::fs::metadata(&archive).is_ok_and(|m| m.len() > 1000),
        "helm package wrote {archive:?}"
    );

    // The CRDs' transition rules need Kubernetes 1.30: older clusters are refused up front.
    let old_cluster = kube
        .helm(&["template", "x", CHART, "--kube-version", "1.28.0"])
        .await;
    assert!(
        !old_cluster.status.success() && text(&old_cluster).contains("kubeVersion"),
        "{}",
        text(&old_cluster)
    );

    kube.kubectl_ok(&["create", "namespace", "durin-system"])
        .await;
    kube.kubectl_ok(&["create", "namespace", "team-a"]).await;
    // Where the custom values put the Grafana dashboard, as a monitoring stack's would be.
    kube.kubectl_ok(&["create", "namespace", "monitoring"])
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let values = dir.path().join("custom.yaml");
    std::fs::write(&values, CUSTOM_VALUES).expect("values");

    // Default values: everything the chart renders passes the API server's validation.
    let rendered = ok(
        kube.helm(&["template", "durin", CHART, "-n", "durin-system"])
            .await,
        "helm template",
    )
    .await;
    for kind in [
        "CustomResourceDefinition",
        "StatefulSet",
        "Service",
        "ServiceAccount",
        "ClusterRole",
        "Role",
    ] {
        assert!(
            rendered.contains(&format!("kind: {kind}\n")),
            "no {kind} rendered"
        );
    }
    // The default image is the one `scripts/image` builds: its tag is the chart's appVersion
    // (tests/image.rs checks the script's side).
    let app_version = common::chart_field("appVersion");
    assert!(
        rendered.contains(&format!("image: \"ghcr.io/durin-dev/durin:{app_version}\"")),
        "the default image is what scripts/image builds"
    );
    assert!(
        !rendered.contains("temporalio/ui"),
        "the Web UI is off by default"
    );
    let default_file = dir.path().join("default.yaml");
    std::fs::write(&default_file, &rendered).expect("write");
    kube.kubectl_ok(&[
        "apply",
        "--dry-run=server",
        "-f",
        &default_file.display().to_string(),
    ])
    .await;

    // Non-default values render what they say, and validate too (CRDs from the default
    // render are installed first, as crds.install=false expects).
    let custom = ok(
        kube.helm(&[
            "template",
            "durin",
            CHART,
            "-n",
            "durin-system",
            "-f",
            &values.display().to_string(),
        ])
        .await,
        "helm template with custom values",
    )
    .await;
    for expected in [
        "image: \"registry.example.com/durin:9.9.9\"",
        "--watch-namespace=team-a",
        "--namespace=payments",
        "--engine-address=durin.example.internal:7233",
        "--leader-election=false",
        "--metrics-port=19090",
        "--lease-duration=20",
        "emptyDir: {}",
        "name: custom-sa",
        "type: NodePort",
        "kubernetes.io/os: linux",
        "--tls-client-ca=/etc/durin/tls/ca.crt",
        "--auth-file=/etc/durin/auth/tokens.yaml",
        "secretName: durin-tls",
        "tcpSocket:",
        "name: DURIN_POSTGRES_URL",
        "name: durin-pg",
        "value: /etc/durin/postgres-ca/ca.crt",
        "secretName: durin-pg-ca",
        "priorityClassName: \"durin-critical\"",
        "medium: Memory",
        "mountPath: /scratch",
        "kind: NetworkPolicy",
        "port: cluster",
        "team: a",
        "name: durin-custom-dashboard",
        "grafana_dashboard: \"1\"",
        "grafana_folder: Durin",
        "namespace: monitoring",
        "\"uid\": \"durin-overview\"",
        // The Web UI: the official image, pointed at the engine with TLS (Durin's CA,
        // verified; a client certificate for clientCA), behind an Ingress, let in by the
        // NetworkPolicy.
        "image: \"temporalio/ui:2.54.1\"",
        "name: durin-custom-ui",
        "value: \"durin.example.internal:7233\"",
        "name: TEMPORAL_TLS_ENABLE_HOST_VERIFICATION",
        "value: /etc/durin/ui-ca/ca.crt",
        "value: /etc/durin/ui-client/tls.crt",
        "secretName: durin-ui-client",
        "name: TEMPORAL_CODEC_ENDPOINT",
        "kind: Ingress",
        "host: \"temporal.example.com\"",
        "ingressClassName: nginx",
        "app.kubernetes.io/component: ui",
    ] {
        assert!(
            custom.contains(expected),
            "custom render lacks {expected:?}"
        );
    }
    assert!(
        !custom.contains("kind: CustomResourceDefinition"),
        "crds.install=false"
    );
    assert!(
        !custom.contains("durin-custom-leader-election"),
        "no Lease role without leader election"
    );
    operator_rbac_follows_watch_namespace(&rendered, &custom);
    let custom_file = dir.path().join("custom-rendered.yaml");
    std::fs::write(&custom_file, &custom).expect("write");
    kube.kubectl_ok(&[
        "apply",
        "--dry-run=server",
        "-f",
        &custom_file.display().to_string(),
    ])
    .await;

    // Several replicas on PostgreSQL: a disruption budget, replicas started together and
    // reachable by each other through the headless Service, and no volume.
    let replicated = ok(
        kube.helm(&[
            "template",
            "durin",
            CHART,
            "-n",
            "durin-system",
            "--set",
            "replicaCount=3",
            "--set",
            "postgres.secretName=durin-pg",
        ])
        .await,
        "helm template with three replicas",
    )
    .await;
    for expected in [
        "kind: PodDisruptionBudget",
        "maxUnavailable: 1",
        "replicas: 3",
        "podManagementPolicy: Parallel",
        "name: DURIN_ADVERTISE_ADDRESS",
        "$(POD_NAME).durin-headless.durin-system.svc:7234",
        "name: DURIN_SHARDS",
        "name: DURIN_CLUSTER_TLS_CERT",
        "name: DURIN_CLUSTER_TLS_CA",
    ] {
        assert!(
            replicated.contains(expected),
            "three-replica render lacks {expected:?}"
        );
    }
    replicas_get_a_certificate_for_mutual_tls(&replicated, dir.path());
    assert!(
        !replicated.contains("volumeClaimTemplates"),
        "no volume with PostgreSQL"
    );
    let replicated_file = dir.path().join("replicated-rendered.yaml");
    std::fs::write(&replicated_file, &replicated).expect("write");
    kube.kubectl_ok(&[
        "apply",
        "--dry-run=server",
        "-f",
        &replicated_file.display().to_string(),
    ])
    .await;

    // Install: the objects exist, the CRDs are kept on uninstall.
    ok(
        kube.helm(&["install", "durin", CHART, "-n", "durin-system"])
            .await,
        "helm install",
    )
    .await;
    kube.crds_established().await;
    for (kind, name) in [
        ("statefulset", "durin"),
        ("service", "durin"),
        ("service", "durin-headless"),
        ("serviceaccount", "durin"),
        ("role", "durin-leader-election"),
    ] {
        kube.kubectl_ok(&["-n", "durin-system", "get", kind, name])
            .await;
    }
    kube.kubectl_ok(&["get", "clusterrole", "durin-operator"])
        .await;
    let crd = kube.get_json(&["crd", "workflows.durin.dev"]).await;
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );

    // The operator as the chart's ServiceAccount: its RBAC is enough for every controller.
    let token = ok(
        kube.kubectl(&[
            "-n",
            "durin-system",
            "create",
            "token",
            "durin",
            "--duration=1h",
        ])
        .await,
        "create token",
    )
    .await;
    let sa_config = kube.token_kubeconfig("durin-sa", token.trim());
    let operator = DurinServer::start_operator(
        &sa_config,
        &["--lease-namespace", "durin-system", "--identity", "durin-0"],
    )
    .await;
    let hello =
        std::fs::read_to_string(format!("{EXAMPLES}/hello-workflow.yaml")).expect("example");
    let path = dir.path().join("hello.yaml");
    std::fs::write(&path, hello).expect("write");
    kube.kubectl_ok(&["-n", "team-a", "apply", "-f", &path.display().to_string()])
        .await;
    // The operator creates the `team-a` namespace in the engine on first use; the worker
    // comes once it exists.
    let deadline = Instant::now() + Duration::from_secs(30);
    while kube.get_json(&["-n", "team-a", "workflow", "hello"]).await["status"]["runId"].is_null() {
        assert!(Instant::now() < deadline, "the workflow never started");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _worker = ExampleWorker::start(operator.port(), "team-a", "durin-k8s-examples");
    kube.kubectl_ok(&[
        "-n",
        "team-a",
        "wait",
        "--for=condition=Completed",
        "workflow/hello",
        "--timeout=60s",
    ])
    .await;
    kube.kubectl_ok(&[
        "-n",
        "team-a",
        "apply",
        "-f",
        &format!("{EXAMPLES}/worker.yaml"),
    ])
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kube
        .kubectl(&["-n", "team-a", "get", "deployment", "examples"])
        .await
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "no Deployment for the Worker");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    rollout_retires_a_version_that_never_polled(&kube).await;
    // A Schedule (status, finalizer on create and delete) and a Workflow removed once finished
    // (ttlSecondsAfterFinished), so every controller path with its own verbs runs.
    kube.kubectl_ok(&[
        "-n",
        "team-a",
        "apply",
        "-f",
        &format!("{EXAMPLES}/schedule.yaml"),
    ])
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while kube
        .get_json(&["-n", "team-a", "schedule", "every-second"])
        .await["status"]
        .is_null()
    {
        assert!(Instant::now() < deadline, "the Schedule never got a status");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    kube.kubectl_ok(&[
        "-n",
        "team-a",
        "delete",
        "schedule",
        "every-second",
        "--timeout=30s",
    ])
    .await;
    // A NexusEndpoint (status, finalizer on create and delete, the engine's endpoint made and
    // removed) in team-a, routing to team-a's own Durin namespace.
    let endpoint = dir.path().join("nexus-endpoint.yaml");
    std::fs::write(
        &endpoint,
        "apiVersion: durin.dev/v1alpha1\nkind: NexusEndpoint\nmetadata:\n  name: team-a-billing\nspec:\n  taskQueue: billing\n",
    )
    .expect("write");
    kube.kubectl_ok(&[
        "-n",
        "team-a",
        "apply",
        "-f",
        &endpoint.display().to_string(),
    ])
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while kube
        .get_json(&["-n", "team-a", "nexusendpoint", "team-a-billing"])
        .await["status"]["endpointId"]
        .is_null()
    {
        assert!(
            Instant::now() < deadline,
            "the NexusEndpoint never got its endpoint"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    kube.kubectl_ok(&[
        "-n",
        "team-a",
        "delete",
        "nexusendpoint",
        "team-a-billing",
        "--timeout=30s",
    ])
    .await;
    let short_lived = dir.path().join("short-lived.yaml");
    std::fs::write(
        &short_lived,
        "apiVersion: durin.dev/v1alpha1\nkind: Workflow\nmetadata:\n  name: short-lived\nspec:\n  workflowType: HelloWorkflow\n  taskQueue: durin-k8s-examples\n  input: [\"ttl\"]\n  ttlSecondsAfterFinished: 1\n",
    )
    .expect("write");
    kube.kubectl_ok(&[
        "-n",
        "team-a",
        "apply",
        "-f",
        &short_lived.display().to_string(),
    ])
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while kube
        .kubectl(&["-n", "team-a", "get", "workflow", "short-lived"])
        .await
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the finished Workflow was never removed"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A Workflow naming a Durin namespace team-a was not granted is refused (the operator
    // reads the Namespace object for a grant).
    refused_without_grant(&kube, dir.path(), "not-granted", "durin-system").await;
    let events = kube
        .kubectl_ok(&["-n", "team-a", "get", "events", "-o", "name"])
        .await;
    assert!(!events.trim().is_empty(), "events were recorded");
    let log = std::fs::read_to_string(operator.log_path()).unwrap_or_default();
    assert!(
        !log.contains("forbidden"),
        "the operator hit an RBAC refusal:\n{log}"
    );
    // Least privilege, observed: the API server's audit log shows every request the
    // operator's ServiceAccount made; each verb the chart grants must be among them, except
    // those only a rarer path needs (named with the reason). With no refusal above, the
    // grants are also enough.
    let used = kube.audited_requests("system:serviceaccount:durin-system:durin");
    let mut granted = std::collections::BTreeSet::new();
    for role in [
        kube.get_json(&["clusterrole", "durin-operator"]).await,
        kube.get_json(&["clusterrole", "durin-namespaces"]).await,
        kube.get_json(&["-n", "durin-system", "role", "durin-leader-election"])
            .await,
    ] {
        for rule in role["rules"].as_array().into_iter().flatten() {
            for group in rule["apiGroups"].as_array().into_iter().flatten() {
                for resource in rule["resources"].as_array().into_iter().flatten() {
                    for verb in rule["verbs"].as_array().into_iter().flatten() {
                        granted.insert(format!(
                            "{}/{}:{}",
                            group.as_str().unwrap_or(""),
                            resource.as_str().unwrap_or(""),
                            verb.as_str().unwrap_or("")
                        ));
                    }
                }
            }
        }
    }
    let unused: Vec<&String> = granted
        .iter()
        .filter(|g| !used.contains(*g) && !NEEDED_BUT_NOT_AUDITED.iter().any(|(r, _)| r == g))
        .collect();
    assert!(
        unused.is_empty(),
        "the chart grants the operator more than it uses: {unused:?}\nused: {used:?}"
    );

    // durin-view and durin-edit join the built-in view/edit/admin roles by aggregation (done
    // by kube-controller-manager, which this test cluster does not run); bound directly here.
    let edit = kube.get_json(&["clusterrole", "durin-edit"]).await;
    assert_eq!(
        edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"],
        "true"
    );
    let view = kube.get_json(&["clusterrole", "durin-view"]).await;
    assert_eq!(
        view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );
    // A namespace viewer can read but not create workflows; an editor can create them.
    kube.kubectl_ok(&["-n", "team-a", "create", "serviceaccount", "viewer"])
        .await;
    kube.kubectl_ok(&[
        "-n",
        "team-a",
        "create",
        "rolebinding",
        "viewer",
        "--clusterrole=durin-view",
        "--serviceaccount=team-a:viewer",
    ])
    .await;
    let as_viewer = "--as=system:serviceaccount:team-a:viewer";
    assert_eq!(
        kube.kubectl_ok(&[
            "-n",
            "team-a",
            "auth",
            "can-i",
            "get",
            "workflows.durin.dev",
            as_viewer
        ])
        .await
        .trim(),
        "yes"
    );
    let can_create = kube
        .kubectl(&[
            "-n",
            "team-a",
            "auth",
            "can-i",
            "create",
            "workflows.durin.dev",
            as_viewer,
        ])
        .await;
    assert_eq!(String::from_utf8_lossy(&can_create.stdout).trim(), "no");
    let unbound = kube
        .kubectl(&[
            "-n",
            "team-a",
            "auth",
            "can-i",
            "create",
            "workflows.durin.dev",
            "--as=system:serviceaccount:team-a:default",
        ])
        .await;
    assert_eq!(
        String::from_utf8_lossy(&unbound.stdout).trim(),
        "no",
        "no binding, no workflows"
    );
    let editor = kube
        .kubectl(&[
            "-n",
            "team-a",
            "auth",
            "can-i",
            "create",
            "workflows.durin.dev",
            "--as=system:serviceaccount:team-a:editor",
        ])
        .await;
    assert_eq!(
        String::from_utf8_lossy(&editor.stdout).trim(),
        "no",
        "not yet bound"
    );
    kube.kubectl_ok(&[
        "-n",
        "team-a",
        "create",
        "rolebinding",
        "editor",
        "--clusterrole=durin-edit",
        "--serviceaccount=team-a:editor",
    ])
    .await;
    assert_eq!(
        kube.kubectl_ok(&[
            "-n",
            "team-a",
            "auth",
            "can-i",
            "create",
            "workflows.durin.dev",
            "--as=system:serviceaccount:team-a:editor"
        ])
        .await
        .trim(),
        "yes",
        "durin-edit lets a namespace editor start workflows"
    );

    drop(operator);
    runs_with_the_rbac_of_a_watched_namespace(&kube, dir.path()).await;
    let uninstall = kube
        .helm(&["uninstall", "durin", "-n", "durin-system"])
        .await;
    ok(uninstall, "helm uninstall").await;
    kube.kubectl_ok(&["get", "crd", "workflows.durin.dev"])
        .await;
}

/// Applies a Workflow in team-a that names Durin namespace `durin_ns` and waits until the
/// operator refuses it for want of a grant.
async fn refused_without_grant(kube: &KubeEnv, dir: &std::path::Path, name: &str, durin_ns: &str) {
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: durin.dev/v1alpha1\nkind: Workflow\nmetadata:\n  name: {name}\n  namespace: team-a\nspec:\n  namespace: {durin_ns}\n  workflowType: HelloWorkflow\n  taskQueue: durin-k8s-examples\n"
        ),
    )
    .expect("write");
    kube.kubectl_ok(&["apply", "-f", &path.display().to_string()])
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = kube.get_json(&["-n", "team-a", "workflow", name]).await["status"].clone();
        let accepted = s["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Accepted"))
            .cloned();
        if let Some(c) = accepted {
            assert_eq!(c["status"], "False", "{s}");
            assert_eq!(c["reason"], "NamespaceNotAllowed", "{s}");
            assert!(s["runId"].is_null(), "{s}");
            return;
        }
        assert!(Instant::now() < deadline, "{name} was never refused");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The operator with only the RBAC the chart renders for operator.watchNamespace (a Role in
/// that namespace, reading that one Namespace object): every controller works there, and the
/// grant annotation is read and watched.
async fn runs_with_the_rbac_of_a_watched_namespace(kube: &KubeEnv, dir: &std::path::Path) {
    let rendered = ok(
        kube.helm(&[
            "template",
            "durin-scoped",
            CHART,
            "-n",
            "durin-system",
            "--set",
            "operator.watchNamespace=team-a",
            "--set",
            "crds.install=false",
            "--set",
            "leaderElection.enabled=false",
        ])
        .await,
        "helm template with watchNamespace",
    )
    .await;
    let file = dir.join("scoped.yaml");
    std::fs::write(&file, &rendered).expect("write");
    kube.kubectl_ok(&["apply", "-f", &file.display().to_string()])
        .await;
    let token = ok(
        kube.kubectl(&[
            "-n",
            "durin-system",
            "create",
            "token",
            "durin-scoped",
            "--duration=1h",
        ])
        .await,
        "create token",
    )
    .await;
    let config = kube.token_kubeconfig("durin-scoped", token.trim());
    let operator = DurinServer::start_operator(
        &config,
        &["--watch-namespace", "team-a", "--leader-election=false"],
    )
    .await;
    // A Workflow starts, a Worker becomes a Deployment (created in team-a).
    let hello = std::fs::read_to_string(format!("{EXAMPLES}/hello-workflow.yaml"))
        .expect("example")
        .replace("name: hello", "name: scoped-hello");
    let worker = std::fs::read_to_string(format!("{EXAMPLES}/worker.yaml"))
        .expect("example")
        .replace("name: examples", "name: scoped-worker");
    for (name, manifest) in [("scoped-hello", hello), ("scoped-worker", worker)] {
        let path = dir.join(format!("{name}.yaml"));
        std::fs::write(&path, manifest).expect("write");
        kube.kubectl_ok(&["-n", "team-a", "apply", "-f", &path.display().to_string()])
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while kube
        .get_json(&["-n", "team-a", "workflow", "scoped-hello"])
        .await["status"]["runId"]
        .is_null()
        || !kube
            .kubectl(&["-n", "team-a", "get", "deployment", "scoped-worker"])
            .await
            .status
            .success()
    {
        assert!(
            Instant::now() < deadline,
            "the scoped operator did not start the workflow or create the Deployment\n{}",
            std::fs::read_to_string(operator.log_path()).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Refused without a grant; the annotation (seen through the watch of that one Namespace)
    // lets it start.
    refused_without_grant(kube, dir, "scoped-shared", "shared").await;
    kube.kubectl_ok(&[
        "annotate",
        "namespace",
        "team-a",
        "durin.dev/allowed-namespaces=shared",
    ])
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while kube
        .get_json(&["-n", "team-a", "workflow", "scoped-shared"])
        .await["status"]["runId"]
        .is_null()
    {
        assert!(
            Instant::now() < deadline,
            "the grant never reached scoped-shared"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = std::fs::read_to_string(operator.log_path()).unwrap_or_default();
    assert!(
        !log.contains("forbidden"),
        "the operator hit an RBAC refusal with the watchNamespace RBAC:\n{log}"
    );
}

/// The values table of `charts/durin/README.md`, generated from `values.yaml` (the comment
/// lines right above a key are its description, the value its default) and
/// `values.schema.json` (types, and descriptions the comments lack).
fn values_table() -> String {
    let values = std::fs::read_to_string(format!("{CHART}/values.yaml")).expect("values.yaml");
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{CHART}/values.schema.json")).expect("schema"),
    )
    .expect("schema json");
    let schema_at = |path: &[String]| {
        path.iter()
            .try_fold(&schema, |node, key| node["properties"].get(key.as_str()))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let mut rows = vec![
        "| Key | Type | Default | Description |".to_string(),
        "|---|---|---|---|".to_string(),
    ];
    let mut parents: Vec<(usize, String)> = Vec::new();
    // Indent of a free-form object (no properties in the schema, e.g. resources): one row for
    // it, none for what is nested inside.
    let mut opaque_at: Option<usize> = None;
    let mut comment: Vec<String> = Vec::new();
    for line in values.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() {
            comment.clear();
            continue;
        }
        if let Some(text) = trimmed.strip_prefix('#') {
            comment.push(text.trim().to_string());
            continue;
        }
        let Some((key, value)) = trimmed.split_once(':') else {
            comment.clear();
            continue;
        };
        if opaque_at.is_some_and(|i| indent > i) {
            comment.clear();
            continue;
        }
        opaque_at = None;
        parents.retain(|(i, _)| *i < indent);
        let mut path: Vec<String> = parents.iter().map(|(_, k)| k.clone()).collect();
        path.push(key.to_string());
        let value = value.trim();
        let node = schema_at(&path);
        let described = comment
            .iter()
            .filter(|l| !l.is_empty())
            .cloned()
            .collect::<Vec<_>>();
        let description = if described.is_empty() {
            node["description"].as_str().unwrap_or_default().to_string()
        } else {
            described.join(" ")
        };
        let free_form =
            value.is_empty() && node["type"] == "object" && node["properties"].is_null();
        if free_form {
            opaque_at = Some(indent);
        } else if value.is_empty() {
            parents.push((indent, key.to_string()));
        }
        if !value.is_empty() || !description.is_empty() || free_form {
            let default = match value {
                "" if free_form => "see `values.yaml`".to_string(),
                "" => String::new(),
                v => format!("`{v}`"),
            };
            rows.push(format!(
                "| `{}` | {} | {} | {} |",
                path.join("."),
                node["type"]
                    .as_str()
                    .unwrap_or(if value.is_empty() { "object" } else { "" }),
                default,
                description.replace('|', "\\|")
            ));
        }
        comment.clear();
    }
    rows.join("\n") + "\n"
}

/// `charts/durin/README.md` lists every value as `values.yaml` and the schema say;
/// `DURIN_BLESS=1 cargo test --test chart chart_readme` rewrites the table.
#[test]
fn chart_readme_lists_every_value() {
    let path = format!("{CHART}/README.md");
    let readme = std::fs::read_to_string(&path).expect("charts/durin/README.md");
    let (begin, end) = ("<!-- values:begin -->\n", "<!-- values:end -->");
    let start = readme.find(begin).expect("values:begin marker") + begin.len();
    let stop = readme.find(end).expect("values:end marker");
    let table = values_table();
    if std::env::var_os("DURIN_BLESS").is_some() {
        let updated = format!("{}{table}{}", &readme[..start], &readme[stop..]);
        std::fs::write(&path, updated).expect("write README");
        return;
    }
    assert!(
        readme[start..stop] == table,
        "charts/durin/README.md's values table is stale: run \
         DURIN_BLESS=1 cargo test --test chart chart_readme"
    );
}
