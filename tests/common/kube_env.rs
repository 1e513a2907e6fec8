//! A real kube-apiserver and etcd on loopback ports for the operator tests (envtest's
//! approach; no Docker, no mock). Binaries come from `scripts/kube-env build`, which builds
//! them from their Go modules once and caches them. Certificates are generated here.

use std::fs::File;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use super::free_ports;

pub struct KubeEnv {
    tmp: tempfile::TempDir,
    etcd: Option<Child>,
    apiserver: Option<Child>,
    pub kubeconfig: PathBuf,
    pub kubectl: PathBuf,
    pub helm: PathBuf,
    pub server: String,
    apiserver_bin: PathBuf,
    apiserver_args: Vec<String>,
    api_port: u16,
}

fn spawn_apiserver(bin: &Path, args: &[String], dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("kube-apiserver.log"))
        .expect("apiserver log");
    let err = log.try_clone().expect("clone log");
    Command::new(bin)
        .args(args)
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("spawn kube-apiserver")
}

struct Binaries {
    apiserver: PathBuf,
    kubectl: PathBuf,
    etcd: PathBuf,
    helm: PathBuf,
}

fn binaries() -> Binaries {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(format!("{root}/scripts/kube-env"))
        .arg("build")
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/kube-env build");
    assert!(
        out.status.success(),
        "scripts/kube-env build failed (kube-apiserver/etcd could not be built from their Go modules)"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("scripts/kube-env build printed no {key}"))
    };
    Binaries {
        apiserver: get("KUBE_APISERVER"),
        kubectl: get("KUBECTL"),
        etcd: get("ETCD"),
        helm: get("HELM"),
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// CA, serving certificate for 127.0.0.1, an admin client certificate (system:masters) and
/// the service-account signing key.
fn make_certs(dir: &Path) {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.distinguished_name
        .push(DnType::CommonName, "durin-test-ca");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca, ca_key);

    let serving_key = KeyPair::generate().expect("serving key");
    let mut serving =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("serving params");
    serving
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving
        .signed_by(&serving_key, &issuer)
        .expect("serving cert");

    let client_key = KeyPair::generate().expect("client key");
    let mut client = CertificateParams::new(Vec::<String>::new()).expect("client params");
    client
        .distinguished_name
        .push(DnType::CommonName, "durin-test-admin");
    client
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &issuer).expect("client cert");

    let sa_key = KeyPair::generate().expect("sa key");
    std::fs::create_dir_all(dir.join("serving")).expect("cert dir");
    write(&dir.join("ca.crt"), &ca_cert.pem());
    write(&dir.join("serving/apiserver.crt"), &serving_cert.pem());
    write(
        &dir.join("serving/apiserver.key"),
        &serving_key.serialize_pem(),
    );
    write(&dir.join("client.crt"), &client_cert.pem());
    write(&dir.join("client.key"), &client_key.serialize_pem());
    write(&dir.join("sa.key"), &sa_key.serialize_pem());
    write(&dir.join("sa.pub"), &sa_key.public_key_pem());
}

fn log_file(path: &Path) -> (Stdio, Stdio) {
    let f = File::create(path).expect("log file");
    let g = f.try_clone().expect("clone log");
    (Stdio::from(f), Stdio::from(g))
}

impl KubeEnv {
    /// Starts etcd and kube-apiserver and waits until the API server is ready.
    pub async fn start() -> Self {
        let bins = binaries();
        let tmp = tempfile::Builder::new()
            .prefix("durin-kube-")
            .tempdir()
            .expect("temp dir");
        let d = tmp.path();
        let certs = d.join("certs");
        make_certs(&certs);

        let [etcd_port, peer_port, api_port] = free_ports();
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let (out, err) = log_file(&d.join("etcd.log"));
        let etcd = Command::new(&bins.etcd)
            .arg("--name=default")
            .arg(format!("--data-dir={}", d.join("etcd-data").display()))
            .arg(format!("--listen-client-urls={etcd_url}"))
            .arg(format!("--advertise-client-urls={etcd_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            .arg("--unsafe-no-fsync=true")
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn etcd");

        let server = format!("https://127.0.0.1:{api_port}");
        let c = |name: &str| certs.join(name).display().to_string();
        // Every request by a ServiceAccount is audited (metadata only), so tests can see
        // exactly which verbs an operator running as one used.
        let audit_policy = d.join("audit-policy.yaml");
        write(
            &audit_policy,
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n  userGroups: [\"system:serviceaccounts\"]\n- level: None\n",
        );
        let apiserver_args: Vec<String> = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            // The lease reconciler refuses a loopback advertise address since 1.37.
            "--endpoint-reconciler-type=none".into(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", c("serving")),
            "--service-cluster-ip-range=10.0.0.0/24".into(),
            "--authorization-mode=RBAC".into(),
            "--disable-admission-plugins=ServiceAccount".into(),
            "--allow-privileged=true".into(),
            format!("--service-account-issuer={server}"),
            format!("--service-account-key-file={}", c("sa.pub")),
            format!("--service-account-signing-key-file={}", c("sa.key")),
            format!("--client-ca-file={}", c("ca.crt")),
            format!("--audit-policy-file={}", audit_policy.display()),
            format!("--audit-log-path={}", d.join("audit.log").display()),
        ];
        let apiserver = spawn_apiserver(&bins.apiserver, &apiserver_args, d);

        let kubeconfig = d.join("kubeconfig");
        write(
            &kubeconfig,
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: durin-test\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: admin\n  user:\n    client-certificate: {crt}\n    client-key: {key}\ncontexts:\n- name: durin-test\n  context:\n    cluster: durin-test\n    user: admin\n    namespace: default\ncurrent-context: durin-test\n",
                ca = c("ca.crt"),
                crt = c("client.crt"),
                key = c("client.key"),
            ),
        );
        let env = KubeEnv {
            tmp,
            etcd: Some(etcd),
            apiserver: Some(apiserver),
            apiserver_bin: bins.apiserver,
            apiserver_args,
            api_port,
            kubeconfig,
            kubectl: bins.kubectl,
            helm: bins.helm,
            server,
        };
        env.wait_ready(api_port).await;
        env
    }

    async fn wait_ready(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "kube-apiserver never listened\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        loop {
            let out = self.kubectl(&["get", "--raw", "/readyz"]).await;
            if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "kube-apiserver not ready\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // The default namespace and RBAC bootstrap appear shortly after /readyz.
        while !self
            .kubectl(&["get", "namespace", "default"])
            .await
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "no default namespace\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// Runs the built kubectl against this API server.
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .await
            .expect("run kubectl")
    }

    /// Runs the built helm against this API server.
    pub async fn helm(&self, args: &[&str]) -> Output {
        let mut cmd = tokio::process::Command::new(&self.helm);
        if args.first() == Some(&"template") && !args.contains(&"--kube-version") {
            // `helm template` checks the chart's kubeVersion against Helm's built-in default
            // (far older than any cluster the chart supports), not the cluster: give it this
            // API server's, as `helm install` would see.
            cmd.arg("--kube-version").arg(self.server_version().await);
        }
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("HELM_CACHE_HOME", self.tmp.path().join("helm-cache"))
            .env("HELM_CONFIG_HOME", self.tmp.path().join("helm-config"))
            .env("HELM_DATA_HOME", self.tmp.path().join("helm-data"))
            .output()
            .await
            .expect("run helm")
    }

    /// The API server's version (`v1.37.2`).
    pub async fn server_version(&self) -> String {
        let version: serde_json::Value =
            serde_json::from_str(&self.kubectl_ok(&["version", "-o", "json"]).await)
                .expect("kubectl version json");
        version["serverVersion"]["gitVersion"]
            .as_str()
            .expect("serverVersion.gitVersion")
            .to_string()
    }

    /// A kubeconfig that authenticates with `token` (a ServiceAccount's) instead of the
    /// admin certificate.
    pub fn token_kubeconfig(&self, name: &str, token: &str) -> PathBuf {
        let path = self.tmp.path().join(format!("kubeconfig-{name}"));
        write(
            &path,
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: durin-test\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: {name}\n  user:\n    token: {token}\ncontexts:\n- name: {name}\n  context:\n    cluster: durin-test\n    user: {name}\ncurrent-context: {name}\n",
                self.server,
                self.tmp.path().join("certs/ca.crt").display()
            ),
        );
        path
    }

    /// Runs kubectl and panics with its output unless it succeeds; returns stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            out.status.success(),
            "kubectl {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until every CRD the API server has is established (served).
    ///
    /// A CRD created a moment ago may not have a `status.conditions` list yet, and
    /// `kubectl wait` then fails at once ("accessor error") instead of waiting: retry that.
    pub async fn crds_established(&self) {
        let args = [
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ];
        for _ in 0..50 {
            let out = self.kubectl(&args).await;
            if out.status.success() {
                return;
            }
            if !String::from_utf8_lossy(&out.stderr).contains("accessor error") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        self.kubectl_ok(&args).await;
    }

    /// Applies the CRDs in `path` (a file or directory, server-side) and waits until they
    /// are served.
    pub async fn install_crds(&self, path: &str) {
        self.kubectl_ok(&["apply", "--server-side", "-f", path])
            .await;
        self.crds_established().await;
    }

    /// kubectl apply with a manifest given as text.
    pub async fn apply(&self, manifest: &str) -> Output {
        let path = self
            .tmp
            .path()
            .join(format!("manifest-{}.yaml", super::unique("m")));
        write(&path, manifest);
        self.kubectl(&["apply", "-f", &path.display().to_string()])
            .await
    }

    /// `kubectl get ... -o json` parsed.
    pub async fn get_json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = vec!["get"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&full).await).expect("kubectl json")
    }

    /// The requests `user` made so far, as `group/resource[/subresource]:verb` (the core group
    /// is empty), from the API server's audit log.
    pub fn audited_requests(&self, user: &str) -> std::collections::BTreeSet<String> {
        let text = std::fs::read_to_string(self.tmp.path().join("audit.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|e| e["user"]["username"] == user)
            .filter_map(|e| {
                let o = &e["objectRef"];
                let mut resource = format!(
                    "{}/{}",
                    o["apiGroup"].as_str().unwrap_or(""),
                    o["resource"].as_str()?
                );
                if let Some(sub) = o["subresource"].as_str() {
                    resource = format!("{resource}/{sub}");
                }
                Some(format!("{resource}:{}", e["verb"].as_str()?))
            })
            .collect()
    }

    pub fn logs(&self) -> String {
        let tail = |name: &str| {
            let text = std::fs::read_to_string(self.tmp.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(20)..].join("\n")
        };
        format!(
            "--- etcd.log ---\n{}\n--- kube-apiserver.log ---\n{}",
            tail("etcd.log"),
            tail("kube-apiserver.log")
        )
    }

    /// Stops the API server (etcd keeps the data) — for tests of an operator riding out an
    /// API server outage.
    pub fn stop_apiserver(&mut self) {
        if let Some(mut c) = self.apiserver.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the API server again on the same port and data, and waits until it is ready.
    pub async fn start_apiserver(&mut self) {
        self.stop_apiserver();
        self.apiserver = Some(spawn_apiserver(
            &self.apiserver_bin,
            &self.apiserver_args,
            self.tmp.path(),
        ));
        self.wait_ready(self.api_port).await;
    }
}

impl Drop for KubeEnv {
    fn drop(&mut self) {
        for child in [self.apiserver.take(), self.etcd.take()]
            .into_iter()
            .flatten()
        {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() || std::env::var_os("DURIN_TEST_KEEP").is_some() {
            self.tmp.disable_cleanup(true);
            eprintln!(
                "kube test dir kept: {}\n{}",
                self.tmp.path().display(),
                self.logs()
            );
        }
    }
}

/// Polls `check` until it returns `Some`, or panics after `secs` naming `what`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The condition of `type_` in a resource's status (`null` when absent).
pub fn condition<'a>(status: &'a serde_json::Value, type_: &str) -> &'a serde_json::Value {
    status["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&serde_json::Value::Null)
}
