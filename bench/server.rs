//! The servers under test: spawned fresh (own temp dir, free port), timed until they answer
//! their first RPC, measured through /proc while workloads run, and stopped (SIGTERM, then
//! SIGKILL).

use std::{
    fs::File,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, tonic::Request,
};
use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeNamespaceRequest;

pub const NAMESPACE: &str = "default";

/// How long a server may take to answer its first RPC.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerKind {
    Durin,
    Temporal,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Durin => "durin",
            ServerKind::Temporal => "temporal",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s.trim() {
            "durin" => Ok(ServerKind::Durin),
            "temporal" => Ok(ServerKind::Temporal),
            other => bail!("unknown server {other:?} (expected durin or temporal)"),
        }
    }
}

/// Where the two server binaries are.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub durin: PathBuf,
    pub temporal: PathBuf,
}

/// A running server process with its own data dir.
pub struct Server {
    pub kind: ServerKind,
    child: Option<Child>,
    pub port: u16,
    pub data_dir: PathBuf,
    log_path: PathBuf,
    tmp: tempfile::TempDir,
    /// Spawn until the first answered RPC.
    pub startup: Duration,
}

impl Server {
    /// Spawns a fresh server and waits until it answers DescribeNamespace("default").
    pub async fn start(kind: ServerKind, bins: &Binaries, keep: bool) -> Result<Self> {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("durin-bench-{}-", kind.name()))
            .tempdir()
            .context("create a temp dir")?;
        let tmp = if keep {
            let mut tmp = tmp;
            tmp.disable_cleanup(true);
            tmp
        } else {
            tmp
        };
        let data_dir = tmp.path().join("data");
        std::fs::create_dir_all(&data_dir).context("create the data dir")?;
        let log_path = tmp.path().join("server.log");
        let port = free_port()?;
        let spawned_at = Instant::now();
        let child = spawn(kind, bins, port, &data_dir, &log_path)?;
        let mut server = Server {
            kind,
            child: Some(child),
            port,
            data_dir,
            log_path,
            tmp,
            startup: Duration::ZERO,
        };
        server.wait_ready(spawned_at).await?;
        server.startup = spawned_at.elapsed();
        tracing::info!(server = kind.name(), startup = ?server.startup, dir = %server.tmp.path().display(), "server ready");
        Ok(server)
    }

    /// Stops the server (SIGTERM, SIGKILL after `grace`) and starts it again on the same data
    /// dir and port; returns the time from the new spawn until it answered its first RPC.
    /// Stops the server (SIGTERM, `grace` to exit) and starts it again on the same data:
    /// how long the stop took, and the start (spawn to first answer).
    pub async fn restart(
        &mut self,
        bins: &Binaries,
        grace: Duration,
    ) -> Result<(Duration, Duration)> {
        let stopping = Instant::now();
        self.stop(grace).await;
        let stopped = stopping.elapsed();
        let spawned_at = Instant::now();
        self.child = Some(spawn(
            self.kind,
            bins,
            self.port,
            &self.data_dir,
            &self.log_path,
        )?);
        self.wait_ready(spawned_at).await?;
        Ok((stopped, spawned_at.elapsed()))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn url(&self) -> Result<Url> {
        Url::parse(&format!("http://127.0.0.1:{}", self.port)).context("server url")
    }

    /// Everything the server logged so far (all of its starts).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `n` lines of the server's log, for error messages.
    pub fn log_tail(&self, n: usize) -> String {
        file_tail(&self.log_path, n)
    }

    /// Fails if the process has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            bail!(
                "{} exited with {status}; log tail:\n{}",
                self.kind.name(),
                self.log_tail(20)
            );
        }
        Ok(())
    }

    async fn wait_ready(&mut self, spawned_at: Instant) -> Result<()> {
        let url = self.url()?;
        loop {
            self.check_alive()?;
            let last_err = match answer_first_rpc(url.clone()).await {
                Ok(()) => return Ok(()),
                Err(e) => format!("{e:#}"),
            };
            if spawned_at.elapsed() > STARTUP_TIMEOUT {
                bail!(
                    "{} did not answer within {STARTUP_TIMEOUT:?}: {last_err}; log tail:\n{}",
                    self.kind.name(),
                    self.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; reaps the child.
    pub async fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                _ => break,
            }
        }
        tracing::warn!(
            server = self.kind.name(),
            "did not stop within {grace:?} of SIGTERM; killing"
        );
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Total size of every file under the data dir (the store plus any WAL/journal files).
    pub fn disk_bytes(&self) -> u64 {
        dir_size(&self.data_dir)
    }

    /// The server process and its descendants (found by scanning /proc: call it once per
    /// measurement, not per sample).
    pub fn pids(&self) -> Vec<u32> {
        self.pid().map(tree_pids).unwrap_or_default()
    }

    /// Resource figures of the server process and its descendants.
    pub fn sample(&self) -> ProcSample {
        ProcSample::of_pids(&self.pids())
    }

    /// Resets the kernel's peak-RSS mark (VmHWM) of the server processes, so that VmHWM read
    /// later is the peak since now. Returns false if the kernel refused.
    pub fn reset_peak_rss(&self) -> bool {
        let Some(pid) = self.pid() else { return false };
        tree_pids(pid)
            .into_iter()
            .all(|p| std::fs::write(format!("/proc/{p}/clear_refs"), "5").is_ok())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last `n` lines of a log file (empty if it cannot be read).
pub fn file_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Spawns `kind` on `port` with its data in `data_dir`, its output appended to `log_path`.
fn spawn(
    kind: ServerKind,
    bins: &Binaries,
    port: u16,
    data_dir: &Path,
    log_path: &Path,
) -> Result<Child> {
    let log = File::options()
        .create(true)
        .append(true)
        .open(log_path)
        .context("open the server log")?;
    let log2 = log.try_clone().context("clone the log handle")?;
    let mut cmd = match kind {
        ServerKind::Durin => {
            let mut c = Command::new(&bins.durin);
            c.arg("dev")
                .arg("--ip")
                .arg("127.0.0.1")
                .arg("--port")
                .arg(port.to_string())
                .arg("--data-dir")
                .arg(data_dir)
                // Log compactions too: the sleepers bench reports how long they held the engine.
                .env("RUST_LOG", "error,durin::engine::compaction=info")
                .env("NO_COLOR", "1");
            c
        }
        ServerKind::Temporal => {
            let mut c = Command::new(&bins.temporal);
            c.args(["server", "start-dev", "--db-filename"])
                .arg(data_dir.join("temporal.db"))
                .arg("--ip")
                .arg("127.0.0.1")
                .arg("--port")
                .arg(port.to_string())
                .args(["--headless", "--log-level", "error"]);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log2));
    cmd.spawn().with_context(|| {
        format!(
            "spawn {} ({})",
            kind.name(),
            match kind {
                ServerKind::Durin => bins.durin.display(),
                ServerKind::Temporal => bins.temporal.display(),
            }
        )
    })
}

/// Connects an SDK client (which calls GetSystemInfo) and asks DescribeNamespace("default").
async fn answer_first_rpc(url: Url) -> Result<()> {
    let options = ConnectionOptions::new(url)
        .identity("durin-bench-probe".to_string())
        .connect_timeout(Duration::from_secs(1))
        .build();
    let conn = tokio::time::timeout(Duration::from_secs(5), Connection::connect(options))
        .await
        .map_err(|_| anyhow!("connect timed out"))?
        .map_err(|e| anyhow!("connect: {e}"))?;
    let mut svc = conn.workflow_service();
    tokio::time::timeout(
        Duration::from_secs(5),
        svc.describe_namespace(Request::new(DescribeNamespaceRequest {
            namespace: NAMESPACE.to_string(),
            ..Default::default()
        })),
    )
    .await
    .map_err(|_| anyhow!("DescribeNamespace timed out"))?
    .map_err(|e| anyhow!("DescribeNamespace: {e}"))?;
    Ok(())
}

/// A client for namespace `default` on its own connection (HTTP/2 streams are not shared
/// with other clients).
pub async fn connect(url: Url, identity: &str) -> Result<Client> {
    let options = ConnectionOptions::new(url.clone())
        .identity(identity.to_string())
        .connect_timeout(Duration::from_secs(5))
        .build();
    let conn = tokio::time::timeout(Duration::from_secs(15), Connection::connect(options))
        .await
        .map_err(|_| anyhow!("timed out connecting to {url}"))?
        .map_err(|e| anyhow!("connect to {url}: {e}"))?;
    Client::new(conn, ClientOptions::new(NAMESPACE).build()).map_err(|e| anyhow!("client: {e}"))
}

/// A free TCP port on 127.0.0.1 (bound to port 0, then released).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind an ephemeral port")?;
    Ok(l.local_addr().context("local addr")?.port())
}

/// Sum of file sizes under `dir`, recursively.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Clock ticks per second, the unit of utime/stime in /proc/<pid>/stat.
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// CPU seconds every process on the machine has used (all CPUs, not idle or iowait), from the
/// first line of /proc/stat.
pub fn machine_busy_secs() -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let busy: f64 = ticks
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    busy / clock_ticks()
}

/// CPU seconds (user + system) this process has used, from getrusage(RUSAGE_SELF).
pub fn self_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// Resource figures of a process tree at one instant.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    /// utime + stime of the processes, plus cutime + cstime (reaped children), in seconds.
    pub cpu_secs: f64,
    /// Sum of VmRSS, KiB.
    pub rss_kib: u64,
    /// Sum of VmHWM (peak RSS since start or since the last reset), KiB.
    pub hwm_kib: u64,
    pub processes: usize,
}

impl ProcSample {
    pub fn of_pids(pids: &[u32]) -> Self {
        let ticks = clock_ticks();
        let mut s = ProcSample::default();
        for &pid in pids {
            let Some(stat) = read_stat(pid) else { continue };
            s.processes += 1;
            // Fields after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13)
            // cstime(14).
            let t: f64 = [11, 12, 13, 14]
                .iter()
                .filter_map(|&i| stat.get(i).and_then(|v| v.parse::<f64>().ok()))
                .sum();
            s.cpu_secs += t / ticks;
            let (rss, hwm) = read_status_mem(pid);
            s.rss_kib += rss;
            s.hwm_kib += hwm;
        }
        s
    }
}

/// The fields of /proc/<pid>/stat after the `(comm)` field.
fn read_stat(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = text.rsplit_once(')')?.1;
    Some(after.split_whitespace().map(str::to_string).collect())
}

fn read_status_mem(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `root` and every live descendant of it.
pub fn tree_pids(root: u32) -> Vec<u32> {
    let mut parent_of: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(ppid) = read_stat(pid)
                .and_then(|f| f.get(1).cloned())
                .and_then(|p| p.parse::<u32>().ok())
            {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}
