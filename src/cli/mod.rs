//! Command line: `durin dev` runs the engine with the embedded store, `durin operator` adds
//! the Kubernetes controllers, `durin crds` prints the CRDs, `durin apply` takes resource
//! manifests to a running server without a cluster.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

mod dev_server;
mod ui;
pub use dev_server::{DevServerArgs, Flavor};

use crate::engine::{Engine, EngineConfig};
use crate::operator::leader::LeaseConfig;
use crate::operator::run::OperatorConfig;
use crate::store::wal::Wal;

#[derive(Parser, Debug)]
#[command(
    name = "durin",
    version = crate::api::LONG_VERSION,
    about = "Durable execution on Kubernetes, speaking Temporal's API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log level: debug, info, warn, error or never (default: info; warn for `server
    /// start-dev`, as Temporal's). RUST_LOG, when set, wins.
    #[arg(long, global = true, value_parser = ["debug", "info", "warn", "error", "never"])]
    pub log_level: Option<String>,
    /// Log format: text (or its alias pretty) or json (one object per line).
    #[arg(long, global = true, value_parser = ["text", "pretty", "json"])]
    pub log_format: Option<String>,
}

impl Cli {
    /// The log filter: RUST_LOG if set, else `--log-level`, else the command's default.
    pub fn log_filter(&self) -> String {
        if let Ok(filter) = std::env::var("RUST_LOG") {
            return filter;
        }
        let default = match self.command {
            Command::Server(ServerCommand::StartDev(_)) => "warn",
            _ => "info",
        };
        match self.log_level.as_deref().unwrap_or(default) {
            "never" => "off".to_string(),
            level => level.to_string(),
        }
    }

    pub fn log_json(&self) -> bool {
        self.log_format.as_deref() == Some("json")
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the engine locally with the embedded store (no other service needed); takes
    /// `temporal server start-dev`'s flags and keeps its data directory.
    Dev(DevServerArgs),
    /// `durin server start-dev`: a drop-in for `temporal server start-dev` (same flags,
    /// ephemeral without `--db-filename`).
    #[command(subcommand)]
    Server(ServerCommand),
    /// Run the engine and the Kubernetes controllers (in a cluster, or with a kubeconfig).
    Operator(OperatorArgs),
    /// Print the CustomResourceDefinitions (YAML) for `kubectl apply -f -`.
    Crds {
        /// Print the field reference (Markdown) instead.
        #[arg(long)]
        reference: bool,
    },
    /// Apply Workflow and Schedule manifests to a running Durin server, no cluster needed.
    Apply(crate::operator::apply::ApplyArgs),
    /// Print a shell completion script: `source <(durin completion bash)`, or for zsh
    /// `durin completion zsh > "${fpath[1]}/_durin"`, for fish
    /// `durin completion fish > ~/.config/fish/completions/durin.fish`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Copy a (possibly running) server's data directory to a tar file or standard output
    /// (`--out -`). Restore: `tar -xf FILE -C <empty data directory>`, then start Durin on it.
    Backup(BackupArgs),
    /// Rewrite a damaged log (one Durin refuses to start on) with every valid record before
    /// and after the damage; the damaged file is kept beside it. Only with the server
    /// stopped, and only when no backup can be restored: the damaged records stay lost.
    Salvage(SalvageArgs),
}

#[derive(Subcommand, Debug)]
pub enum ServerCommand {
    /// Start a development server, as `temporal server start-dev` does.
    StartDev(DevServerArgs),
}

#[derive(clap::Args, Debug)]
pub struct SalvageArgs {
    /// The (stopped) server's data directory.
    #[arg(long, env = "DURIN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// The server's data directory.
    #[arg(long, env = "DURIN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where to write the backup, a tar archive (`-` for standard output).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct EngineArgs {
    /// Port for the Temporal gRPC API.
    #[arg(short = 'p', long, default_value_t = 7233, env = "DURIN_PORT")]
    pub port: u16,
    /// Directory for the embedded store (default: $XDG_DATA_HOME/durin or
    /// ~/.local/share/durin; `server start-dev` keeps nothing without it). `--db-filename`
    /// names the same directory, for `temporal server start-dev` users.
    #[arg(
        short = 'f',
        long,
        visible_alias = "db-filename",
        env = "DURIN_DATA_DIR"
    )]
    pub data_dir: Option<PathBuf>,
    /// Namespaces to create at start besides `default`. Repeatable.
    #[arg(short = 'n', long = "namespace")]
    pub namespaces: Vec<String>,
    /// Serve Prometheus metrics on this port (`/metrics`), on the same address. `durin dev`
    /// serves them on 9233 without it (a free port when 9233 is taken), `server start-dev` on
    /// a free port, as Temporal's; `durin operator` only when given.
    #[arg(long, env = "DURIN_METRICS_PORT")]
    pub metrics_port: Option<u16>,
    /// Serve the gRPC port over TLS with this certificate chain (PEM; re-read when it changes).
    #[arg(long, env = "DURIN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "DURIN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (mutual TLS).
    #[arg(long, env = "DURIN_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Require a bearer token from this file (YAML: tokens with the namespaces each may use).
    #[arg(long, env = "DURIN_AUTH_FILE")]
    pub auth_file: Option<PathBuf>,
    /// Where workflows' and activities' Nexus completion callbacks may go besides Durin
    /// itself: a glob over `scheme://host:port` (`*` any characters), e.g.
    /// `https://*.example.com:443`. Repeatable; none by default (`durin dev`: `*`).
    #[arg(
        long = "allowed-callback-address",
        value_name = "GLOB",
        env = "DURIN_ALLOWED_CALLBACK_ADDRESSES",
        value_delimiter = ';'
    )]
    pub allowed_callback_addresses: Vec<String>,
    /// Requests in flight beyond which new ones get RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = crate::api::DEFAULT_MAX_INFLIGHT)]
    pub max_inflight: usize,
    /// Long polls (and other calls that wait) in flight beyond which new ones are refused.
    #[arg(long, default_value_t = crate::api::DEFAULT_MAX_WAITING)]
    pub max_waiting: usize,
    /// Client connections open at once; further ones wait in the listen backlog until one
    /// closes.
    #[arg(long, default_value_t = crate::connections::DEFAULT_MAX_CONNECTIONS, env = "DURIN_MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// Requests per second each namespace may make (long polls not counted); beyond it
    /// RESOURCE_EXHAUSTED. 0 turns the limit off.
    #[arg(long, default_value_t = crate::api::rate::DEFAULT_NAMESPACE_RPS, env = "DURIN_NAMESPACE_RPS")]
    pub namespace_rps: u32,
    /// Seconds a closed run stays in memory before it moves to the on-disk archive.
    #[arg(long, default_value_t = 10, env = "DURIN_ARCHIVE_AFTER")]
    pub archive_after: u64,
    /// Seconds an open workflow run may go unused before it is frozen: kept in memory as its
    /// compressed log record, a fraction of its decoded size, and thawed when next used
    /// (0: within a second).
    #[arg(long, default_value_t = 10, env = "DURIN_FREEZE_IDLE_AFTER")]
    pub freeze_idle_after: u64,
    /// The log is rewritten as one record per live object once it holds at least this many
    /// records and more than twice as many as live objects.
    #[arg(long, default_value_t = 200_000, env = "DURIN_COMPACT_AFTER_RECORDS")]
    pub compact_after_records: u64,
    /// Keep the store in PostgreSQL (a `postgres://` URL or libpq connection string) instead
    /// of the data directory. The schema is created and migrated by Durin.
    #[arg(long, env = "DURIN_POSTGRES_URL")]
    pub postgres: Option<String>,
    /// The CA (PEM) that signed PostgreSQL's server certificate: connections then use TLS,
    /// verifying the certificate and the host name. Add `sslmode=require` to the connection
    /// string to refuse a server that does not offer TLS.
    #[arg(long, env = "DURIN_POSTGRES_CA", requires = "postgres")]
    pub postgres_ca: Option<PathBuf>,
    /// This replica's name, which holds the shard lease in PostgreSQL (default: the host
    /// name, which is the pod name in Kubernetes).
    #[arg(long, env = "DURIN_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// Seconds a shard lease lasts without renewal before another replica may take it over.
    #[arg(long, default_value_t = 10, env = "DURIN_LEASE_TTL")]
    pub lease_ttl: u64,
    /// Shards a new PostgreSQL cluster spreads executions over (fixed once created).
    #[arg(long, default_value_t = 16, env = "DURIN_SHARDS")]
    pub shards: u32,
    /// Where other replicas reach this one's cluster port: host:port, or a host the port is
    /// added to (default: the listen address, or the host name when listening on all
    /// interfaces).
    #[arg(long, env = "DURIN_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<String>,
    /// The client port's URL as Nexus handlers at external endpoints reach it, e.g.
    /// `https://durin.example.com:7233`: they are given
    /// `<it>/namespaces/<namespace>/nexus/callback` to complete asynchronous operations
    /// (default: `http(s)://` and the listen address).
    #[arg(long, env = "DURIN_NEXUS_CALLBACK_URL")]
    pub nexus_callback_url: Option<String>,
    /// Port replicas call each other on (with --postgres), apart from the client port. 0:
    /// any free port; the port is advertised to the others through the database.
    #[arg(long, default_value_t = 0, env = "DURIN_CLUSTER_PORT")]
    pub cluster_port: u16,
    /// This replica's certificate (PEM) for mutual TLS between replicas: served on the
    /// cluster port and presented when calling the others. Without it replica traffic is
    /// plaintext and guarded by the cluster's secret only.
    #[arg(long, env = "DURIN_CLUSTER_TLS_CERT", requires_all = ["cluster_tls_key", "cluster_tls_ca"])]
    pub cluster_tls_cert: Option<PathBuf>,
    #[arg(long, env = "DURIN_CLUSTER_TLS_KEY", requires = "cluster_tls_cert")]
    pub cluster_tls_key: Option<PathBuf>,
    /// The CA (PEM) that signed every replica's certificate; no other peer is accepted.
    #[arg(long, env = "DURIN_CLUSTER_TLS_CA", requires = "cluster_tls_cert")]
    pub cluster_tls_ca: Option<PathBuf>,
    /// The name every replica's certificate carries (default: the host each replica
    /// advertises, so each certificate must name its own replica).
    #[arg(
        long,
        env = "DURIN_CLUSTER_TLS_SERVER_NAME",
        requires = "cluster_tls_cert"
    )]
    pub cluster_tls_server_name: Option<String>,
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "durin".to_string())
}

impl EngineArgs {
    fn access(&self) -> Result<crate::api::Access, Box<dyn std::error::Error>> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                Some(crate::tls::ReloadingAcceptor::new(crate::tls::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: self.tls_client_ca.clone(),
                })?)
            }
            _ => None,
        };
        let auth = match &self.auth_file {
            Some(path) => Some(crate::api::auth::AuthPolicy::load(path.clone())?),
            None => None,
        };
        Ok(crate::api::Access {
            tls,
            auth,
            max_inflight: self.max_inflight,
            max_waiting: self.max_waiting,
            namespace_rps: self.namespace_rps,
            max_connections: self.max_connections,
        })
    }
}

impl EngineArgs {
    fn cluster_tls(&self) -> Option<crate::cluster::tls::ClusterTls> {
        match (
            &self.cluster_tls_cert,
            &self.cluster_tls_key,
            &self.cluster_tls_ca,
        ) {
            (Some(cert), Some(key), Some(ca)) => Some(crate::cluster::tls::ClusterTls {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
                server_name: self.cluster_tls_server_name.clone(),
            }),
            _ => None,
        }
    }

    /// Where the others reach this replica's cluster port, bound on `port`.
    fn advertised(&self, ip: std::net::IpAddr, port: u16) -> String {
        match &self.advertise_address {
            Some(a)
                if a.rsplit_once(':')
                    .is_some_and(|(_, p)| p.parse::<u16>().is_ok()) =>
            {
                a.clone()
            }
            Some(host) => format!("{host}:{port}"),
            None if ip.is_unspecified() => format!("{}:{port}", host_name()),
            None => SocketAddr::new(ip, port).to_string(),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct OperatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0", env = "DURIN_IP")]
    pub ip: std::net::IpAddr,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Engine address given to worker pods as TEMPORAL_ADDRESS (default: 127.0.0.1:<port>;
    /// in a cluster, the Service's DNS name).
    #[arg(long, env = "DURIN_ENGINE_ADDRESS")]
    pub engine_address: Option<String>,
    /// Only watch resources in this Kubernetes namespace.
    #[arg(long, env = "DURIN_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Lets the resources of Kubernetes namespace KUBE_NS use these Durin namespaces too
    /// (`*`: all), besides the one of the same name and what the Namespace's
    /// `durin.dev/allowed-namespaces` annotation grants. Repeatable; in the environment,
    /// grants are separated by `;`.
    #[arg(
        long = "allow-namespace",
        value_name = "KUBE_NS=DURIN_NS[,DURIN_NS...]",
        env = "DURIN_ALLOW_NAMESPACES",
        value_delimiter = ';'
    )]
    pub allow_namespaces: Vec<crate::operator::tenancy::Grant>,
    /// Elect a leader with a Lease so only one replica runs the controllers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "DURIN_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Namespace of the leader Lease (in a pod: its own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    #[arg(long, default_value = "durin-operator")]
    pub lease_name: String,
    /// Seconds a leader keeps the lease without renewing it.
    #[arg(long, default_value_t = 15)]
    pub lease_duration: u64,
    /// This replica's identity in the Lease (in a pod: its name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
}

fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(x).join("durin");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".local/share/durin");
    }
    PathBuf::from(".durin")
}

pub async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Dev(args) => dev(args, Flavor::Dev).await,
        Command::Server(ServerCommand::StartDev(args)) => dev(args, Flavor::StartDev).await,
        Command::Operator(args) => operator(args).await,
        Command::Crds { reference } => {
            if reference {
                print!("{}", crate::operator::crd::reference::markdown());
            } else {
                print!("{}", crate::operator::crd::to_yaml()?);
            }
            Ok(())
        }
        Command::Apply(args) => crate::operator::apply::run(args).await,
        Command::Completion { shell } => {
            let mut cli = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cli, "durin", &mut std::io::stdout());
            Ok(())
        }
        Command::Backup(args) => {
            let dir = args.data_dir.unwrap_or_else(default_data_dir);
            let stats = crate::store::backup::backup(&dir, &args.out)?;
            eprintln!(
                "backed up {} log records and {} archive segments ({} bytes) from {}",
                stats.log_records,
                stats.segments,
                stats.bytes,
                dir.display()
            );
            Ok(())
        }
        Command::Salvage(args) => {
            let dir = args.data_dir.unwrap_or_else(default_data_dir);
            let salvaged = crate::store::wal::salvage(&dir)?;
            eprintln!(
                "kept {} valid records of {}; skipped {} damaged bytes, {} blocks that did not \
                 read (damaged, or after a damaged one in their compressed run) and {} records \
                 whose run's earlier records were lost; the damaged log is kept as {}",
                salvaged.records,
                dir.join(crate::store::wal::LOG_FILE).display(),
                salvaged.bytes_skipped,
                salvaged.blocks_skipped,
                salvaged.records_dropped,
                salvaged.damaged_copy.display()
            );
            Ok(())
        }
    }
}

struct Started {
    engine: Arc<Engine>,
    /// With PostgreSQL: the store (for leases) and the cluster port with the request routing
    /// between replicas.
    cluster: Option<(
        Arc<crate::store::postgres::PgStore>,
        crate::api::ClusterPort,
    )>,
    listener: tokio::net::TcpListener,
    access: crate::api::Access,
    /// Where `/metrics` is served, if it is.
    metrics_address: Option<SocketAddr>,
    /// Where the store is, for people.
    store: String,
}

/// A write past the file-size limit (RLIMIT_FSIZE) raises SIGXFSZ, whose default action
/// kills the process; with a handler installed the write fails with EFBIG instead and the
/// store reports it like a full disk.
fn survive_file_size_limit() {
    #[cfg(target_os = "linux")]
    {
        const SIGXFSZ: i32 = 25;
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ)) {
            Ok(mut sig) => {
                tokio::spawn(async move { while sig.recv().await.is_some() {} });
            }
            Err(e) => tracing::debug!(error = %e, "cannot handle SIGXFSZ"),
        }
    }
}

/// What a subcommand decides where its flags are silent.
#[derive(Default)]
struct Defaults {
    data_dir: Option<PathBuf>,
    /// Where metrics are served unless `--metrics-port` says; when this port is taken, any
    /// free one (a second `durin dev` on the machine still starts).
    metrics_port: Option<u16>,
    tuning: crate::engine::Tuning,
    /// Callback addresses allowed when the flags name none.
    callback_addresses: crate::engine::nexus::callbacks::CallbackAddresses,
}

/// `durin dev` serves metrics here by default: beside Temporal's 7233 (gRPC) and 8233 (UI).
pub const DEV_METRICS_PORT: u16 = 9233;

/// The metrics listener: the port asked for, or the default (any free port if it is taken).
async fn bind_metrics(
    ip: std::net::IpAddr,
    asked: Option<u16>,
    default: Option<u16>,
) -> std::io::Result<Option<tokio::net::TcpListener>> {
    if let Some(port) = asked {
        return tokio::net::TcpListener::bind(SocketAddr::new(ip, port))
            .await
            .map(Some);
    }
    let Some(port) = default else {
        return Ok(None);
    };
    match tokio::net::TcpListener::bind(SocketAddr::new(ip, port)).await {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::warn!(
                port,
                "the default metrics port is taken; serving metrics on a free port"
            );
            tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
                .await
                .map(Some)
        }
        bound => bound.map(Some),
    }
}

async fn start_engine(
    ip: std::net::IpAddr,
    args: &EngineArgs,
    defaults: Defaults,
) -> Result<Started, Box<dyn std::error::Error>> {
    survive_file_size_limit();
    let access = args.access()?;
    // The API port first: a replica that cannot serve must fail before it opens the log or
    // joins the cluster, where it would take shards the others then wait a lease out for.
    let addr = SocketAddr::new(ip, args.port);
    let listener = (tokio::net::TcpListener::bind(addr).await)
        .map_err(|e| format!("cannot listen for the API on {addr}: {e}"))?;
    let callback_addresses = if args.allowed_callback_addresses.is_empty() {
        defaults.callback_addresses.clone()
    } else {
        crate::engine::nexus::callbacks::CallbackAddresses {
            patterns: args.allowed_callback_addresses.clone(),
        }
    };
    let data_dir = (args.data_dir.clone())
        .or(defaults.data_dir)
        .unwrap_or_else(default_data_dir);
    let archive_after = std::time::Duration::from_secs(args.archive_after);
    let freeze_idle_after = Some(std::time::Duration::from_secs(args.freeze_idle_after));
    let mut cluster = None;
    let engine = match &args.postgres {
        Some(url) => {
            let tls = args.cluster_tls();
            let acceptor = tls.as_ref().map(|t| t.acceptor()).transpose()?;
            if tls.is_none() {
                tracing::warn!(
                    "replicas call each other in plaintext, guarded only by the cluster's \
                     secret in the database; give --cluster-tls-cert, --cluster-tls-key and \
                     --cluster-tls-ca for mutual TLS"
                );
            }
            let cluster_listener =
                tokio::net::TcpListener::bind(SocketAddr::new(ip, args.cluster_port)).await?;
            let address = args.advertised(ip, cluster_listener.local_addr()?.port());
            tracing::info!(%address, tls = tls.is_some(), "cluster port for the other replicas");
            let store = crate::store::postgres::PgStore::open(crate::store::postgres::PgConfig {
                url: url.clone(),
                ca_file: args.postgres_ca.clone(),
                owner: args.replica_id.clone().unwrap_or_else(host_name),
                address,
                lease_ttl: std::time::Duration::from_secs(args.lease_ttl.max(1)),
                shards: args.shards,
            })
            .await?;
            // Closed runs stay in memory until their retention ends (no archive table yet).
            let config = EngineConfig {
                tuning: defaults.tuning,
                callback_addresses: callback_addresses.clone(),
                freeze_idle_after,
                ..EngineConfig::default()
            };
            let engine = Engine::open(store.clone(), config)?;
            let view = crate::cluster::membership::spawn(store.clone(), &engine);
            let routing = crate::cluster::Cluster::new(store.clone(), engine.clone(), view, tls);
            engine.set_transfer_router(routing.clone());
            routing.spawn_refetch();
            cluster = Some((
                store,
                crate::api::ClusterPort {
                    cluster: routing,
                    listener: cluster_listener,
                    tls: acceptor,
                },
            ));
            engine
        }
        None => Engine::open(
            Wal::open(&data_dir)?,
            EngineConfig {
                archive_dir: Some(data_dir.clone()),
                archive_after,
                compact_min_records: args.compact_after_records,
                tuning: defaults.tuning,
                callback_addresses: callback_addresses.clone(),
                freeze_idle_after,
                ..EngineConfig::default()
            },
        )?,
    };
    engine.ensure_namespace("default").await?;
    for ns in &args.namespaces {
        engine.ensure_namespace(ns).await?;
    }
    let mut metrics_address = None;
    if let Some(metrics) = bind_metrics(ip, args.metrics_port, defaults.metrics_port).await? {
        metrics_address = Some(metrics.local_addr()?);
        tracing::info!(address = %metrics.local_addr()?, "metrics on /metrics");
        crate::metrics::spawn_engine_counters(&engine);
        tokio::spawn(crate::metrics::serve(engine.clone(), metrics));
    }
    let scheme = if access.tls.is_some() {
        "https"
    } else {
        "http"
    };
    engine.set_nexus_callback_base(args.nexus_callback_url.clone().unwrap_or_else(|| {
        format!(
            "{scheme}://{}",
            listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        )
    }));
    tracing::info!(
        address = %listener.local_addr()?,
        store = %match &args.postgres {
            Some(_) => "postgres".to_string(),
            None => data_dir.display().to_string(),
        },
        tls = access.tls.is_some(),
        auth = access.auth.is_some(),
        "durin listening"
    );
    Ok(Started {
        engine,
        cluster,
        listener,
        access,
        metrics_address,
        store: match &args.postgres {
            Some(_) => "PostgreSQL".to_string(),
            None => data_dir.display().to_string(),
        },
    })
}

async fn serve(started: Started) -> Result<(), Box<dyn std::error::Error>> {
    let Started {
        engine,
        cluster,
        listener,
        access,
        ..
    } = started;
    let _timers = engine.spawn_timer_loop();
    let _transfers = engine.spawn_transfer_loop();
    let _nexus_calls = engine.spawn_nexus_http_loop();
    let _archiver = engine.spawn_archiver();
    let _freezer = engine.spawn_freezer();
    let _batches = crate::batch::spawn(
        engine.clone(),
        cluster.as_ref().map(|(_, port)| port.cluster.clone()),
    );
    let stopping = engine.clone();
    let shutdown = async move {
        shutdown_signal().await;
        stopping.begin_shutdown();
    };
    let (store, cluster_port) = cluster.unzip();
    crate::api::serve(engine.clone(), cluster_port, listener, access, shutdown).await?;
    match &store {
        Some(store) => crate::cluster::membership::leave(store, &engine).await,
        // A replica's shards go on elsewhere at once; a lone server compacts for its next
        // start.
        None => engine.checkpoint().await,
    }
    tracing::info!("durin stopped");
    Ok(())
}

async fn dev(args: DevServerArgs, flavor: Flavor) -> Result<(), Box<dyn std::error::Error>> {
    args.report_accepted_flags();
    if args.log_config {
        eprintln!("{args:#?}");
    }
    if let Some(path) = args.engine.data_dir.as_ref().filter(|p| p.is_file()) {
        return Err(format!(
            "{} is a file: Durin keeps its store in a directory (give a directory path; it is \
             created)",
            path.display()
        )
        .into());
    }
    let ephemeral = match (flavor, &args.engine.data_dir, &args.engine.postgres) {
        (Flavor::StartDev, None, None) => Some(dev_server::EphemeralDir::create()?),
        _ => None,
    };
    let defaults = Defaults {
        data_dir: ephemeral.as_ref().map(|d| d.path().to_path_buf()),
        // Temporal's dev server always serves metrics, on a free port unless given one;
        // `durin dev` on a known one.
        metrics_port: Some(match flavor {
            Flavor::StartDev => 0,
            Flavor::Dev => DEV_METRICS_PORT,
        }),
        tuning: args.tuning(),
        // As `temporal server start-dev`: callbacks may go anywhere.
        callback_addresses: crate::engine::nexus::callbacks::CallbackAddresses::any(),
    };
    let started = start_engine(args.ip, &args.engine, defaults).await?;
    args.register_search_attributes(&started.engine).await?;
    let grpc = started.listener.local_addr()?;
    let ui = match args.ui_options(flavor, grpc) {
        Some(options) => start_ui(&args, &options, grpc),
        None => UiState::Headless,
    };
    print_banner(&started, ephemeral.is_some(), &ui);
    let result = serve(started).await;
    drop(ui);
    drop(ephemeral);
    result
}

/// The Web UI of a dev server, as the banner tells it.
enum UiState {
    Headless,
    Running(Box<ui::UiServer>),
    /// Wanted, not started: why.
    NotStarted(&'static str),
}

/// Starts the official UI server beside the engine when it is installed; a dev server runs
/// on without it.
fn start_ui(args: &DevServerArgs, options: &ui::UiOptions, grpc: SocketAddr) -> UiState {
    if args.engine.tls_cert.is_some() || args.engine.auth_file.is_some() {
        tracing::warn!(
            "the Web UI is not started with --tls-cert or --auth-file: run the UI server with \
             their settings (docs/ui.md)"
        );
        return UiState::NotStarted("not started with TLS or an auth file (docs/ui.md)");
    }
    let Some(binary) = ui::find_ui_server() else {
        tracing::warn!(
            "the Temporal Web UI server {} is not installed: {}",
            ui::UI_SERVER_VERSION,
            ui::INSTALL_HINT
        );
        return UiState::NotStarted("not installed (scripts/ui-server build)");
    };
    match ui::start(&binary, options, grpc) {
        Ok(server) => {
            tracing::info!(url = %server.url, "Temporal Web UI started");
            UiState::Running(Box::new(server))
        }
        Err(e) => {
            tracing::warn!(binary = %binary.display(), error = %e, "the Web UI did not start");
            UiState::NotStarted("did not start (see the log)")
        }
    }
}

/// What `temporal server start-dev` users look for on standard output: where to connect.
fn print_banner(started: &Started, ephemeral: bool, ui: &UiState) {
    let shown = |a: SocketAddr| match a.ip() {
        ip if ip.is_loopback() => format!("localhost:{}", a.port()),
        _ => a.to_string(),
    };
    let server = started.listener.local_addr().map(shown).unwrap_or_default();
    let store = if ephemeral {
        format!("ephemeral (removed on exit: {})", started.store)
    } else {
        started.store.clone()
    };
    println!(
        "Durin {} — Temporal's API, embedded store\n",
        env!("CARGO_PKG_VERSION")
    );
    println!("{:<13}{server}", "Server:");
    println!("{:<13}{store}", "Persistence:");
    match ui {
        UiState::Headless => println!("{:<13}headless", "UI:"),
        UiState::Running(server) => println!("{:<13}{}", "UI:", server.url),
        UiState::NotStarted(why) => println!("{:<13}{why}", "UI:"),
    }
    if let Some(metrics) = started.metrics_address {
        println!("{:<13}http://{}/metrics", "Metrics:", shown(metrics));
    }
}

async fn operator(args: OperatorArgs) -> Result<(), Box<dyn std::error::Error>> {
    let client = kube::Client::try_default().await.map_err(|e| {
        format!("cannot configure a Kubernetes client (in-cluster or KUBECONFIG): {e}")
    })?;
    let started = start_engine(args.ip, &args.engine, Defaults::default()).await?;
    let port = started.listener.local_addr()?.port();
    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "durin".into());
        format!("{host}-{}", std::process::id())
    });
    let cfg = OperatorConfig {
        engine_address: args
            .engine_address
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{port}")),
        watch_namespace: args.watch_namespace.clone(),
        lease: args.leader_election.then(|| LeaseConfig {
            namespace: args.lease_namespace.clone(),
            name: args.lease_name.clone(),
            identity,
            duration_secs: args.lease_duration.max(2),
        }),
        cluster: started.cluster.as_ref().map(|c| c.1.cluster.clone()),
        allowed_namespaces: args.allow_namespaces.clone(),
    };
    let controllers = tokio::spawn(crate::operator::run::run(
        started.engine.clone(),
        client,
        cfg,
    ));
    let result = serve(started).await;
    controllers.abort();
    result
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
