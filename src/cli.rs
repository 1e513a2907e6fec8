//! Command line: `durin dev` runs the engine with the embedded store.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::engine::{Engine, EngineConfig};
use crate::store::wal::Wal;

#[derive(Parser, Debug)]
#[command(
    name = "durin",
    version,
    about = "Durable execution on Kubernetes, speaking Temporal's API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the engine locally with the embedded store (no other service needed).
    Dev(DevArgs),
}

#[derive(clap::Args, Debug)]
pub struct DevArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "DURIN_IP")]
    pub ip: std::net::IpAddr,
    /// Port for the Temporal gRPC API.
    #[arg(long, default_value_t = 7233, env = "DURIN_PORT")]
    pub port: u16,
    /// Directory for the embedded store (default: $XDG_DATA_HOME/durin or ~/.local/share/durin).
    #[arg(long, env = "DURIN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Namespaces to create at start besides `default`.
    #[arg(long = "namespace")]
    pub namespaces: Vec<String>,
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
        Command::Dev(args) => dev(args).await,
    }
}

async fn dev(args: DevArgs) -> Result<(), Box<dyn std::error::Error>> {
    let data_dir = args.data_dir.unwrap_or_else(default_data_dir);
    let store = Wal::open(&data_dir)?;
    let engine = Engine::open(store, EngineConfig::default())?;
    engine.ensure_namespace("default").await?;
    for ns in &args.namespaces {
        engine.ensure_namespace(ns).await?;
    }
    let _timers = engine.spawn_timer_loop();
    let addr = SocketAddr::new(args.ip, args.port);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, data_dir = %data_dir.display(), "durin dev server listening");
    let stopping = engine.clone();
    let shutdown = async move {
        shutdown_signal().await;
        stopping.begin_shutdown();
    };
    crate::api::serve(engine, listener, shutdown).await?;
    tracing::info!("durin stopped");
    Ok(())
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
