//! Test harness: runs a real `durin` server as a child process and connects the official
//! Temporal Rust SDK (client + worker) to it.
//!
//! * [`DurinServer::start`] starts `durin dev` on a fresh temp dir and a free port.
//! * [`DurinServer::kill`] sends SIGKILL (no graceful shutdown) and reaps the child.
//! * [`DurinServer::restart`] starts it again on the same data dir and port.
//! * Dropping a [`DurinServer`] kills the child. If the test is panicking, the temp dir is kept
//!   and the server log path plus its tail are printed to stderr. Set `DURIN_TEST_KEEP=1` to
//!   keep every test's temp dir (data + `durin.log`).

#![allow(dead_code)]

pub mod certs;
pub mod kube_env;
pub mod kubelet;
pub mod pg_env;
pub mod replicas;

use std::{
    fs::{File, OpenOptions},
    future::Future,
    io::Write,
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    pin::pin,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

/// Namespace created by `durin dev` at start.
pub const NAMESPACE: &str = "default";

/// How long to wait for the server to accept SDK connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A `durin dev` child process plus the temp dir holding its data and log.
pub struct DurinServer {
    child: Option<Child>,
    port: u16,
    tmp: tempfile::TempDir,
    data_dir: PathBuf,
    log_path: PathBuf,
    starts: u32,
    /// `dev`, or `operator` with its flags and KUBECONFIG.
    subcommand: Vec<String>,
    env: Vec<(String, String)>,
    /// With `DURIN_TEST_STORE=postgres`: the server's own database.
    postgres: Option<String>,
    /// With `DURIN_TEST_STORE=postgres-cluster`: a second replica on the same database,
    /// serving half the shards (the tests talk to the first one only).
    peer: Option<Peer>,
}

struct Peer {
    child: Option<Child>,
    port: u16,
    log_path: PathBuf,
}

impl DurinServer {
    /// Start a fresh server (new temp dir, new free port) and wait until it accepts SDK
    /// connections.
    /// Its runs are frozen within a second of going idle (`--freeze-idle-after 0`), so every
    /// test also checks that freezing and thawing a run loses nothing.
    pub async fn start() -> Self {
        let freeze = vec![("DURIN_FREEZE_IDLE_AFTER".to_string(), "0".to_string())];
        Self::start_with(vec!["dev".into()], freeze).await
    }

    /// Start `durin operator` (engine + controllers) against the cluster in `kubeconfig`.
    pub async fn start_operator(kubeconfig: &Path, extra: &[&str]) -> Self {
        let mut args = vec!["operator".to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let env = vec![
            ("KUBECONFIG".to_string(), kubeconfig.display().to_string()),
            (
                "RUST_LOG".to_string(),
                "info,durin=debug,kube=info".to_string(),
            ),
        ];
        Self::start_with(args, env).await
    }

    /// Start `durin` with these arguments and wait only until its port accepts TCP (for
    /// servers a plain SDK client cannot reach: TLS, tokens).
    pub async fn start_listening(subcommand: Vec<String>) -> Self {
        let mut server = Self::unstarted(subcommand, Vec::new());
        server.spawn();
        let deadline = Instant::now() + READY_TIMEOUT;
        while !server.is_accepting() {
            if let Some(child) = server.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "durin exited during startup with {status}\n{}",
                    server.log_tail(40)
                );
            }
            assert!(
                Instant::now() < deadline,
                "durin never listened\n{}",
                server.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    /// Start `durin` with these leading arguments (`["dev", ...]`) and extra environment.
    pub async fn start_with(subcommand: Vec<String>, env: Vec<(String, String)>) -> Self {
        let mut server = Self::unstarted(subcommand, env);
        server.spawn();
        server.wait_ready().await;
        server
    }

    /// `durin dev` serving metrics on a free port; returns the server and that port.
    #[allow(dead_code)]
    pub async fn with_metrics() -> (Self, u16) {
        let port = free_port();
        let args = vec!["dev".into(), "--metrics-port".into(), port.to_string()];
        let freeze = vec![("DURIN_FREEZE_IDLE_AFTER".to_string(), "0".to_string())];
        (Self::start_with(args, freeze).await, port)
    }

    /// A `durin dev` server not yet started (its data dir is known, so the environment can
    /// name it); start it with [`DurinServer::launch`].
    pub fn prepare_dev() -> Self {
        Self::unstarted(vec!["dev".into()], Vec::new())
    }

    /// The environment the next start passes to the server.
    pub fn env_mut(&mut self) -> &mut Vec<(String, String)> {
        &mut self.env
    }

    /// Starts a prepared server and waits until it is ready.
    pub async fn launch(&mut self) {
        self.spawn();
        self.wait_ready().await;
    }

    /// A fresh temp dir and free port, nothing running yet.
    fn unstarted(subcommand: Vec<String>, env: Vec<(String, String)>) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("durin-sdk-test-")
            .tempdir()
            .expect("create temp dir");
        let data_dir = tmp.path().join("data");
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let log_path = tmp.path().join("durin.log");
        // DURIN_TEST_STORE=postgres runs the engine on PostgreSQL (the server at
        // DURIN_TEST_POSTGRES_URL, which scripts/test starts), a database per server.
        let store = std::env::var("DURIN_TEST_STORE").unwrap_or_default();
        let postgres = (store.starts_with("postgres")
            && !subcommand.iter().any(|a| a == "--postgres"))
        .then(|| {
            let url = std::env::var("DURIN_TEST_POSTGRES_URL")
                .expect("DURIN_TEST_STORE=postgres needs DURIN_TEST_POSTGRES_URL");
            pg_env::new_database(&url, "durin")
        });
        // Both ports at once: asked for one after the other they can come back the same, and
        // the peer then cannot listen.
        let [port, peer_port] = free_ports::<2>();
        let peer = (postgres.is_some() && store == "postgres-cluster").then(|| Peer {
            child: None,
            port: peer_port,
            log_path: tmp.path().join("peer.log"),
        });
        DurinServer {
            child: None,
            port,
            tmp,
            data_dir,
            log_path,
            starts: 0,
            subcommand,
            env,
            postgres,
            peer,
        }
    }

    /// The running child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Port the server listens on (stable across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Data dir passed to `--data-dir` (stable across restarts).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// File receiving the server's stdout/stderr (appended to across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> Url {
        Url::parse(&format!("http://127.0.0.1:{}", self.port)).expect("valid url")
    }

    /// Connect a new SDK client bound to the `default` namespace. Panics if that fails.
    pub async fn client(&self) -> Client {
        match connect_client(self.url()).await {
            Ok(c) => c,
            Err(e) => panic!(
                "could not connect SDK client to durin at {}: {e}\nserver log: {}",
                self.url(),
                self.log_path.display()
            ),
        }
    }

    /// SIGKILL the server (no chance to flush or shut down cleanly) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` sends SIGKILL on unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the server again on the same data dir and port, and wait until it is ready.
    /// Kills the current process first if it is still running.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn();
        self.wait_ready().await;
    }

    /// True if something accepts TCP connections on the server's port.
    pub fn is_accepting(&self) -> bool {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    }

    /// Last `n` lines of the server log.
    pub fn log_tail(&self, n: usize) -> String {
        file_tail(&self.log_path, n)
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open server log");
        let _ = writeln!(
            log,
            "===== durin start #{} (port {}, data dir {}) =====",
            self.starts,
            self.port,
            self.data_dir.display()
        );
        let stderr: File = log.try_clone().expect("clone log handle");
        let mut command = Command::new(durin_binary());
        command.args(&self.subcommand);
        if let Some(url) = &self.postgres {
            command
                .arg("--postgres")
                .arg(url)
                .arg("--replica-id")
                .arg(format!("test-{}", self.port));
            if self.peer.is_some() {
                command.args(CLUSTER_ARGS).args(certs::cluster_tls_args());
            }
        }
        let child = command
            .arg("--ip")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env(
                "RUST_LOG",
                std::env::var("DURIN_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn durin binary");
        self.child = Some(child);
    }

    /// Starts the second replica (cluster mode) and waits until the two share the shards.
    async fn start_peer(&mut self) {
        let (Some(peer), Some(url)) = (self.peer.as_mut(), self.postgres.as_ref()) else {
            return;
        };
        if peer.child.is_none() {
            let log = File::create(&peer.log_path).expect("create peer log");
            let stderr = log.try_clone().expect("clone log handle");
            let child = Command::new(durin_binary())
                .args(["dev", "--postgres", url.as_str()])
                .arg("--replica-id")
                .arg(format!("peer-{}", peer.port))
                .args(CLUSTER_ARGS)
                .args(certs::cluster_tls_args())
                .args(["--ip", "127.0.0.1", "--port", &peer.port.to_string()])
                .arg("--data-dir")
                .arg(self.tmp.path().join("peer-data"))
                .env(
                    "RUST_LOG",
                    std::env::var("DURIN_TEST_LOG").unwrap_or_else(|_| "info".into()),
                )
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::from(stderr))
                .spawn()
                .expect("spawn durin peer");
            peer.child = Some(child);
        }
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let (mine, theirs) = (
                serving_shards(&self.log_path),
                serving_shards(&peer.log_path),
            );
            if mine >= 1 && theirs >= 1 && mine + theirs == 8 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the two replicas never shared the shards ({mine} + {theirs})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "durin exited during startup with {status}\nserver log: {}\n{}",
                    self.log_path.display(),
                    self.log_tail(40)
                );
            }
            let last_err = if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
            {
                match connect_client(self.url()).await {
                    Ok(_) => {
                        self.start_peer().await;
                        return;
                    }
                    Err(e) => e,
                }
            } else {
                "TCP connect refused".to_string()
            };
            if Instant::now() > deadline {
                panic!(
                    "durin not ready after {READY_TIMEOUT:?} on port {}: {last_err}\nserver log: {}\n{}",
                    self.port,
                    self.log_path.display(),
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for DurinServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(mut child) = self.peer.as_mut().and_then(|p| p.child.take()) {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::env::var_os("DURIN_TEST_KEEP").is_some() {
            self.tmp.disable_cleanup(true);
            eprintln!("durin test dir kept: {}", self.tmp.path().display());
        }
        if std::thread::panicking() {
            self.tmp.disable_cleanup(true);
            eprintln!(
                "---- durin server log (kept): {} ----\n{}\n---- end of durin log tail ----",
                self.log_path.display(),
                self.log_tail(60)
            );
            if let Some(peer) = &self.peer {
                eprintln!(
                    "---- peer replica log: {} ----\n{}\n---- end of peer log tail ----",
                    peer.log_path.display(),
                    file_tail(&peer.log_path, 40)
                );
            }
        }
    }
}

fn file_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub async fn connect_client(url: Url) -> Result<Client, String> {
    let opts = ConnectionOptions::new(url)
        .identity("durin-sdk-test".to_string())
        .connect_timeout(Duration::from_secs(2))
        .build();
    let conn = tokio::time::timeout(Duration::from_secs(10), Connection::connect(opts))
        .await
        .map_err(|_| "Connection::connect timed out".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    Client::new(conn, ClientOptions::new(NAMESPACE).build()).map_err(|e| format!("{e:?}"))
}

/// Runs `durin <args>`, expecting it to refuse to start (exit non-zero within 30 s); returns
/// what it printed on standard error.
pub fn refused_start(args: &[&str]) -> String {
    use std::io::Read;
    let mut child = Command::new(durin_binary())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn durin");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().expect("wait for durin") {
            let mut err = String::new();
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err)
                .expect("read stderr");
            assert!(!status.success(), "durin must refuse to start\n{err}");
            return err;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("durin did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `durin <args>` to completion; returns its exit status and standard error.
pub fn run_durin(args: &[&str]) -> (bool, String) {
    let out = Command::new(durin_binary())
        .args(args)
        .output()
        .expect("run durin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A plain gRPC channel (no SDK) to the server on `port`, for any service's client.
pub async fn grpc_channel(port: u16) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect")
}

/// A raw gRPC WorkflowService client (no SDK) to the server on `port`.
pub async fn grpc_client(
    port: u16,
) -> durin::proto::workflowservice::workflow_service_client::WorkflowServiceClient<
    tonic::transport::Channel,
> {
    durin::proto::workflowservice::workflow_service_client::WorkflowServiceClient::new(
        grpc_channel(port).await,
    )
}

/// The durin binary under test; DURIN_TEST_BIN runs the tests against another build (e.g.
/// target/release/durin).
fn durin_binary() -> PathBuf {
    std::env::var_os("DURIN_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_durin")))
}

/// Flags of the test replicas in cluster mode: short leases, eight shards.
const CLUSTER_ARGS: [&str; 4] = ["--lease-ttl", "2", "--shards", "8"];

/// How many shards a replica serves now, from its log ("took shard leases" at start, then
/// "serving shard" / "stopped serving shard" as shards move).
pub fn serving_shards(log_path: &Path) -> usize {
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    let mut shards = std::collections::BTreeSet::new();
    for line in log.lines() {
        if line.contains("===== durin start") {
            shards.clear();
        }
        let shard = line
            .split("shard=")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|d| d.parse::<u32>().ok());
        if let Some(shard) = shard {
            if line.contains("stopped serving shard") || line.contains("lost the lease") {
                shards.remove(&shard);
            } else if line.contains("serving shard") {
                shards.insert(shard);
            }
        }
        if line.contains("took shard leases")
            && let Some(list) = line
                .split("shards=[")
                .nth(1)
                .and_then(|r| r.split(']').next())
        {
            shards.extend(list.split(',').filter_map(|s| s.trim().parse::<u32>().ok()));
        }
    }
    shards.len()
}

/// Pick a free TCP port on 127.0.0.1 by binding port 0 and dropping the listener.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// `N` distinct free ports: every listener is held until all are chosen, since ports asked
/// for one after another can come back the same (etcd once got one port for its client and
/// peer URLs and could not start).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("local addr").port())
}

/// A string unique within this machine run, for task queue / workflow ids.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// SDK runtime on the current tokio runtime.
pub fn sdk_runtime() -> Runtime {
    Runtime::from_current_tokio(Default::default()).expect("create SDK runtime")
}

/// Build a worker for `client` with the given options.
pub fn new_worker(runtime: &Runtime, client: &Client, options: WorkerOptions) -> Worker {
    Worker::new(runtime, client.clone(), options).expect("create worker")
}

/// Run `worker` concurrently with `body` on the current task (the worker's `run()` future is
/// `!Send`, so it cannot be spawned). When `body` finishes the worker is shut down gracefully
/// and `body`'s output is returned. Panics if the worker stops on its own before `body`
/// finishes. A worker that does not finish shutting down within 10 s only causes a warning.
pub async fn with_worker<T>(worker: &mut Worker, body: impl Future<Output = T>) -> T {
    drive_worker(worker, body, false).await
}

/// Like [`with_worker`], but the worker must shut down cleanly within 10 s after `body`
/// finishes (used where a lingering worker would interfere with the rest of the test).
pub async fn with_worker_strict<T>(worker: &mut Worker, body: impl Future<Output = T>) -> T {
    drive_worker(worker, body, true).await
}

async fn drive_worker<T>(worker: &mut Worker, body: impl Future<Output = T>, strict: bool) -> T {
    let shutdown = worker.shutdown_handle();
    let mut run = pin!(worker.run());
    let mut body = pin!(body);
    tokio::select! {
        biased;
        res = &mut run => panic!("worker stopped before the test body finished: {res:?}"),
        out = &mut body => {
            shutdown();
            let problem = match tokio::time::timeout(Duration::from_secs(10), run).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("worker returned an error on shutdown: {e:?}")),
                Err(_) => Some("worker did not finish shutting down within 10s".to_string()),
            };
            if let Some(problem) = problem {
                if strict {
                    panic!("{problem}");
                }
                eprintln!("warning: {problem}");
            }
            out
        }
    }
}

/// Await `fut`, panicking with a descriptive message if it takes longer than `secs` seconds.
pub async fn within<F: Future>(secs: u64, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs}s waiting for {what}"),
    }
}

/// The example worker `examples/k8s_worker` (the one behind `examples/k8s/`) as a child
/// process, polling a durin server like any user's worker would.
pub struct ExampleWorker {
    child: Child,
}

impl ExampleWorker {
    pub fn start(port: u16, namespace: &str, task_queue: &str) -> Self {
        let exe = example_binary("k8s-worker");
        let child = Command::new(&exe)
            .env("TEMPORAL_ADDRESS", format!("127.0.0.1:{port}"))
            .env("TEMPORAL_NAMESPACE", namespace)
            .env("TEMPORAL_TASK_QUEUE", task_queue)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", exe.display()));
        ExampleWorker { child }
    }
}

impl Drop for ExampleWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Path of a built example, building it first when `cargo test` was asked for one test only.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build --example");
        assert!(status.success(), "cargo build --example {name} failed");
    }
    path
}

/// Builds a test's LD_PRELOAD library from `tests/<name>/<name>.c` with the machine's C
/// compiler, into `dir`.
#[allow(dead_code)]
pub fn build_preload(name: &str, dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/{name}/{name}.c"));
    let out = dir.join(format!("{name}.so"));
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-o"])
        .arg(&out)
        .arg(&source)
        .arg("-ldl")
        .arg("-lpthread")
        .status()
        .expect("a C compiler (cc) is needed to build the test's preload library");
    assert!(status.success(), "building {}", source.display());
    out
}

/// The HTTP response (status line, headers and body) to `GET path` on the metrics port.
#[allow(dead_code)]
pub fn scrape(port: u16, path: &str) -> String {
    use std::io::Read;
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

/// The value of an unlabelled metric on the metrics port.
#[allow(dead_code)]
pub fn metric(port: u16, name: &str) -> f64 {
    let text = scrape(port, "/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

/// A top-level field of `charts/durin/Chart.yaml` (`version`, `appVersion`), unquoted.
pub fn chart_field(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/durin/Chart.yaml");
    std::fs::read_to_string(path)
        .expect("Chart.yaml")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("{name} in Chart.yaml"))
}
