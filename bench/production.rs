//! The production anchor of the scale-out benchmark: the Temporal server as teams deploy it
//! (built from its Go module by `scripts/temporal-server`, every service in one process), on
//! the same private PostgreSQL as the Durin replicas. Sets up its two databases with its own
//! schema tool, writes its configuration, starts it and registers namespace `default`.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, anyhow, bail};
use temporalio_client::{Connection, ConnectionOptions, Url, tonic::Request};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeNamespaceRequest, ListWorkflowExecutionsRequest, RegisterNamespaceRequest,
};

use crate::server::{NAMESPACE, file_tail};

/// History shards of the Temporal server: the number its published PostgreSQL configuration
/// (`config/development-postgres12.yaml`) uses.
const HISTORY_SHARDS: u32 = 4;

/// The directory `scripts/temporal-server` built: both commands and the pinned version.
#[derive(Clone, Debug)]
pub struct TemporalBuild {
    dir: PathBuf,
}

impl TemporalBuild {
    pub fn at(dir: &Path) -> Result<Self> {
        for bin in ["temporal-server", "temporal-sql-tool"] {
            if !dir.join(bin).is_file() {
                bail!(
                    "{} not found in {} (run scripts/temporal-server)",
                    bin,
                    dir.display()
                );
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The go.temporal.io/server version that was built (e.g. "v1.30.4").
    pub fn version(&self) -> String {
        std::fs::read_to_string(self.dir.join("VERSION"))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|_| "unknown".into())
    }

    pub fn shards(&self) -> u32 {
        HISTORY_SHARDS
    }
}

/// A free loopback port below 32768: the server records its services' ports in a PostgreSQL
/// `smallint` column (cluster membership) and fails to start with a higher one, which the
/// kernel's ephemeral range usually gives.
fn free_port() -> Result<u16> {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Ports are handed out in turn from a start that differs per run, so that one
    // configuration never names a port twice.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20_000 + (std::process::id() % 10_000) as u16,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..1000 {
        let mut port = NEXT.fetch_add(1, Ordering::Relaxed);
        if port >= 32_768 {
            NEXT.store(20_000, Ordering::Relaxed);
            port = 20_000;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port below 32768")
}

/// Where the private PostgreSQL server listens (`postgres://user@host:port/db`).
struct PgAddress {
    host: String,
    port: u16,
    user: String,
}

fn pg_address(url: &str) -> Result<PgAddress> {
    let rest = url
        .strip_prefix("postgres://")
        .ok_or_else(|| anyhow!("unexpected PostgreSQL URL {url}"))?;
    let (user, rest) = rest.split_once('@').unwrap_or(("postgres", rest));
    let host_port = rest.split('/').next().unwrap_or(rest);
    let (host, port) = host_port
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("no port in {url}"))?;
    Ok(PgAddress {
        host: host.to_string(),
        port: port.parse().context("PostgreSQL port")?,
        user: user.to_string(),
    })
}

/// A running Temporal server; killed on drop.
pub struct TemporalServer {
    child: Child,
    pub port: u16,
}

impl TemporalServer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for TemporalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TemporalBuild {
    /// Creates databases `<prefix>` and `<prefix>_visibility` with the Temporal schema, starts
    /// the server on them (its log in `log_dir`) and registers namespace `default`.
    pub async fn start(
        &self,
        pg_url: &str,
        prefix: &str,
        log_dir: &Path,
    ) -> Result<TemporalServer> {
        let pg = pg_address(pg_url)?;
        let visibility = format!("{prefix}_visibility");
        self.setup_schema(&pg, prefix, "postgresql/v12/temporal")?;
        self.setup_schema(&pg, &visibility, "postgresql/v12/visibility")?;
        let port = free_port()?;
        let config = log_dir.join("temporal.yaml");
        std::fs::write(&config, server_config(&pg, prefix, &visibility, port)?)
            .context("write the Temporal server's configuration")?;
        let log_path = log_dir.join("temporal-server.log");
        let log = std::fs::File::create(&log_path).context("create the server log")?;
        let child = Command::new(self.dir.join("temporal-server"))
            .arg("--config-file")
            .arg(&config)
            .args(["--allow-no-auth", "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().context("log")?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("spawn temporal-server")?;
        let server = TemporalServer { child, port };
        register_default_namespace(port, &log_path).await?;
        Ok(server)
    }

    /// `temporal-sql-tool create-database`, `setup-schema -v 0.0`, then `update-schema` to the
    /// newest version of the schema embedded in the tool.
    fn setup_schema(&self, pg: &PgAddress, db: &str, schema: &str) -> Result<()> {
        let port = pg.port.to_string();
        let common = [
            "--plugin",
            "postgres12",
            "--ep",
            &pg.host,
            "-p",
            &port,
            "-u",
            &pg.user,
            "--db",
            db,
        ];
        let steps: [&[&str]; 3] = [
            &["create-database"],
            &["setup-schema", "-v", "0.0"],
            &["update-schema", "--schema-name", schema],
        ];
        for step in steps {
            let out = Command::new(self.dir.join("temporal-sql-tool"))
                .args(common)
                .args(step)
                .output()
                .context("run temporal-sql-tool")?;
            if !out.status.success() {
                bail!(
                    "temporal-sql-tool {} on {db} failed: {}{}",
                    step.join(" "),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Ok(())
    }
}

/// The server's configuration: the published PostgreSQL development configuration's shape,
/// with free loopback ports, no metrics or pprof listeners, and errors-only logging.
fn server_config(pg: &PgAddress, db: &str, visibility: &str, frontend: u16) -> Result<String> {
    let store = |name: &str, conns: u32| {
        format!(
            "    {name}:\n      sql:\n        pluginName: postgres12\n        databaseName: {db}\n        \
             connectAddr: \"{host}:{port}\"\n        connectProtocol: tcp\n        user: {user}\n        \
             password: \"\"\n        maxConns: {conns}\n        maxIdleConns: {conns}\n        \
             maxConnLifetime: 1h\n",
            db = if name == "default" { db } else { visibility },
            host = pg.host,
            port = pg.port,
            user = pg.user,
        )
    };
    let mut services = String::new();
    for (name, grpc) in [
        ("frontend", frontend),
        ("history", free_port()?),
        ("matching", free_port()?),
        ("worker", free_port()?),
    ] {
        services.push_str(&format!(
            "  {name}:\n    rpc:\n      grpcPort: {grpc}\n      membershipPort: {}\n      \
             bindOnLocalHost: true\n",
            free_port()?
        ));
        if name == "frontend" {
            services.push_str(&format!("      httpPort: {}\n", free_port()?));
        }
    }
    Ok(format!(
        "log:\n  stdout: true\n  level: error\n\
         persistence:\n  defaultStore: default\n  visibilityStore: visibility\n  \
         numHistoryShards: {HISTORY_SHARDS}\n  datastores:\n{}{}\
         global:\n  membership:\n    maxJoinDuration: 30s\n    broadcastAddress: \"127.0.0.1\"\n\
         services:\n{services}\
         clusterMetadata:\n  enableGlobalNamespace: false\n  failoverVersionIncrement: 10\n  \
         masterClusterName: active\n  currentClusterName: active\n  clusterInformation:\n    \
         active:\n      enabled: true\n      initialFailoverVersion: 1\n      rpcName: frontend\n      \
         rpcAddress: \"127.0.0.1:{frontend}\"\n\
         dcRedirectionPolicy:\n  policy: noop\n",
        store("default", 20),
        store("visibility", 2),
    ))
}

/// Registers `default` (one day's retention), then waits until the frontend's namespace cache
/// knows it (a list call in the namespace stops failing).
async fn register_default_namespace(port: u16, log: &Path) -> Result<()> {
    let url = Url::parse(&format!("http://127.0.0.1:{port}"))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let log_tail = || file_tail(log, 20);
    let conn = loop {
        let options = ConnectionOptions::new(url.clone())
            .identity("durin-bench-setup".to_string())
            .connect_timeout(Duration::from_secs(1))
            .build();
        match Connection::connect(options).await {
            Ok(c) => break c,
            Err(e) if Instant::now() > deadline => {
                bail!(
                    "the Temporal server did not answer: {e}; log tail:\n{}",
                    log_tail()
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let mut svc = conn.workflow_service();
    loop {
        let described = svc
            .describe_namespace(Request::new(DescribeNamespaceRequest {
                namespace: NAMESPACE.to_string(),
                ..Default::default()
            }))
            .await;
        if described.is_ok() {
            break;
        }
        let _ = svc
            .register_namespace(Request::new(RegisterNamespaceRequest {
                namespace: NAMESPACE.to_string(),
                workflow_execution_retention_period: Some(prost_wkt_types::Duration {
                    seconds: 86_400,
                    nanos: 0,
                }),
                ..Default::default()
            }))
            .await;
        if Instant::now() > deadline {
            bail!(
                "could not register namespace {NAMESPACE}; log tail:\n{}",
                log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    loop {
        let listed = svc
            .list_workflow_executions(Request::new(ListWorkflowExecutionsRequest {
                namespace: NAMESPACE.to_string(),
                page_size: 1,
                ..Default::default()
            }))
            .await;
        match listed {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                bail!(
                    "namespace {NAMESPACE} did not become usable: {e}; log tail:\n{}",
                    log_tail()
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
