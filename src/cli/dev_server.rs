//! `durin server start-dev` and `durin dev`: the flags of `temporal server start-dev`, with
//! their meaning, so SDK test harnesses that launch an existing dev server binary
//! (`server start-dev --port … --namespace … --dynamic-config-value … --headless`) run Durin.
//!
//! The two differ only in defaults: `server start-dev` keeps nothing without `--db-filename`
//! (as Temporal's), logs at `warn` and serves metrics on a free port; `durin dev` keeps its
//! data directory, logs at `info` and serves metrics on 9233.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use temporalio_protos::temporal::api::enums::v1::IndexedValueType;
use temporalio_protos::temporal::api::operatorservice::v1::AddSearchAttributesRequest;

use super::EngineArgs;
use super::ui::UiOptions;
use crate::engine::Tuning;

#[derive(clap::Args, Debug)]
pub struct DevServerArgs {
    /// Address to listen on (`localhost` means 127.0.0.1).
    #[arg(long, default_value = "localhost", env = "DURIN_IP", value_parser = parse_ip)]
    pub ip: IpAddr,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// A custom search attribute registered in every namespace created at start, as
    /// NAME=TYPE with TYPE one of Text, Keyword, Int, Double, Bool, Datetime, KeywordList.
    /// Repeatable.
    #[arg(long = "search-attribute", value_name = "NAME=TYPE", value_parser = parse_search_attribute)]
    pub search_attributes: Vec<SearchAttribute>,
    /// A dynamic config value, KEY=VALUE with VALUE in JSON. Honoured:
    /// limit.historyCount.suggestContinueAsNew, limit.historySize.suggestContinueAsNew;
    /// switches for what Durin always does (updates, eager start, multi-operations) and other
    /// keys are accepted with a log line each. Repeatable.
    #[arg(long = "dynamic-config-value", value_name = "KEY=VALUE", value_parser = parse_dynamic_config)]
    pub dynamic_config: Vec<DynamicConfigValue>,
    /// Do not start the Web UI.
    #[arg(long)]
    pub headless: bool,
    /// Port for the Temporal Web UI (default for `server start-dev`: the gRPC port + 1000;
    /// `durin dev` starts the UI only when given one). The UI server is built once with
    /// `scripts/ui-server build`.
    #[arg(long)]
    pub ui_port: Option<u16>,
    /// Address for the Web UI (default: the gRPC address).
    #[arg(long, value_parser = parse_ip)]
    pub ui_ip: Option<IpAddr>,
    /// Public path of the Web UI.
    #[arg(long)]
    pub ui_public_path: Option<String>,
    /// Custom UI assets instead of the UI server's own.
    #[arg(long)]
    pub ui_asset_path: Option<PathBuf>,
    /// Remote codec endpoint for the UI.
    #[arg(long)]
    pub ui_codec_endpoint: Option<String>,
    /// Accepted for compatibility: the UI never fetches news here.
    #[arg(long)]
    pub ui_disable_news_fetch: bool,
    /// Port for Temporal's HTTP API (accepted; Durin serves gRPC only).
    #[arg(long)]
    pub http_port: Option<u16>,
    /// A SQLite pragma (accepted and ignored: Durin's store is not SQLite).
    #[arg(long = "sqlite-pragma", value_name = "PRAGMA=VALUE")]
    pub sqlite_pragmas: Vec<String>,
    /// Print the server's configuration to standard error at start.
    #[arg(long)]
    pub log_config: bool,
}

/// Which command started the server, for its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `durin dev`: durable by default.
    Dev,
    /// `durin server start-dev`: ephemeral by default, like Temporal's.
    StartDev,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchAttribute {
    pub name: String,
    pub kind: IndexedValueType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DynamicConfigValue {
    pub key: String,
    pub value: serde_json::Value,
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    if s.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    s.parse()
        .map_err(|_| format!("{s:?} is not an IP address (or `localhost`)"))
}

fn parse_search_attribute(s: &str) -> Result<SearchAttribute, String> {
    let (name, kind) = s
        .split_once('=')
        .ok_or_else(|| format!("missing expected '=' in {s:?} (NAME=TYPE)"))?;
    let kind = match kind.to_ascii_lowercase().as_str() {
        "text" => IndexedValueType::Text,
        "keyword" => IndexedValueType::Keyword,
        "int" => IndexedValueType::Int,
        "double" => IndexedValueType::Double,
        "bool" => IndexedValueType::Bool,
        "datetime" => IndexedValueType::Datetime,
        "keywordlist" => IndexedValueType::KeywordList,
        _ => {
            return Err(format!(
                "invalid search attribute value type {kind:?} (one of Text, Keyword, Int, \
                 Double, Bool, Datetime, KeywordList)"
            ));
        }
    };
    if name.is_empty() {
        return Err(format!("no search attribute name in {s:?}"));
    }
    Ok(SearchAttribute {
        name: name.to_string(),
        kind,
    })
}

fn parse_dynamic_config(s: &str) -> Result<DynamicConfigValue, String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("missing expected '=' in {s:?} (KEY=VALUE)"))?;
    let value = serde_json::from_str(value)
        .map_err(|e| format!("invalid JSON value for key {key:?}: {e}"))?;
    let setting = DynamicConfigValue {
        key: key.to_string(),
        value,
    };
    // A key Durin honours must carry a value it can use: refused now, not ignored later.
    apply_dynamic_config(&mut Tuning::default(), &setting)?;
    Ok(setting)
}

/// What a dynamic config key does on Durin.
enum Outcome {
    /// Changes the engine's tuning.
    Applied,
    /// Durin always behaves as the key asks (it has no switch for it).
    AlwaysOn,
    /// Nothing in Durin corresponds to it.
    Ignored,
}

/// Keys that are switches in Temporal for behaviour Durin always has.
const ALWAYS_ON: &[&str] = &[
    "frontend.enableUpdateWorkflowExecution",
    "frontend.enableUpdateWorkflowExecutionAsyncAccepted",
    "frontend.enableExecuteMultiOperation",
    "system.enableEagerWorkflowStart",
    "system.enableActivityEagerExecution",
    "system.forceSearchAttributesCacheRefreshOnRead",
    "frontend.enableServerVersionCheck",
];

fn apply_dynamic_config(
    tuning: &mut Tuning,
    setting: &DynamicConfigValue,
) -> Result<Outcome, String> {
    let positive = |v: &serde_json::Value| {
        v.as_i64()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{} needs a positive integer, not {v}", setting.key))
    };
    match setting.key.as_str() {
        "limit.historyCount.suggestContinueAsNew" => {
            tuning.suggest_continue_as_new_events = positive(&setting.value)?;
            Ok(Outcome::Applied)
        }
        "limit.historySize.suggestContinueAsNew" => {
            tuning.suggest_continue_as_new_bytes = positive(&setting.value)?;
            Ok(Outcome::Applied)
        }
        key if ALWAYS_ON.contains(&key) => Ok(Outcome::AlwaysOn),
        _ => Ok(Outcome::Ignored),
    }
}

impl DevServerArgs {
    /// Where the Web UI is to be served, if it is: with `--ui-port`, and by `server start-dev`
    /// unless `--headless` (on the gRPC port + 1000, as Temporal's).
    pub fn ui_options(&self, flavor: Flavor, grpc: SocketAddr) -> Option<UiOptions> {
        if self.headless {
            return None;
        }
        let port = match (self.ui_port, flavor) {
            (Some(port), _) => port,
            (None, Flavor::StartDev) => grpc.port().checked_add(1000)?,
            (None, Flavor::Dev) => return None,
        };
        Some(UiOptions {
            address: SocketAddr::new(self.ui_ip.unwrap_or(grpc.ip()), port),
            public_path: self.ui_public_path.clone(),
            codec_endpoint: self.ui_codec_endpoint.clone(),
            asset_path: self.ui_asset_path.clone(),
        })
    }

    /// The engine tuning the dynamic config values ask for, logging what each one does.
    pub fn tuning(&self) -> Tuning {
        let mut tuning = Tuning::default();
        for setting in &self.dynamic_config {
            let (key, value) = (&setting.key, &setting.value);
            match apply_dynamic_config(&mut tuning, setting) {
                Ok(Outcome::Applied) => tracing::info!(%key, %value, "dynamic config applied"),
                Ok(Outcome::AlwaysOn) => {
                    tracing::info!(%key, %value, "dynamic config: Durin always has this on")
                }
                Ok(Outcome::Ignored) => {
                    tracing::info!(%key, %value, "dynamic config accepted, no effect on Durin")
                }
                // Checked when the flag was parsed.
                Err(e) => tracing::warn!(%key, error = %e, "dynamic config refused"),
            }
        }
        tuning
    }

    /// One log line for each accepted flag that changes nothing here.
    pub fn report_accepted_flags(&self) {
        if let Some(port) = self.http_port {
            tracing::info!(port, "--http-port accepted: Durin serves the gRPC API only");
        }
        for pragma in &self.sqlite_pragmas {
            tracing::info!(%pragma, "--sqlite-pragma ignored: Durin's store is not SQLite");
        }
    }
}

impl DevServerArgs {
    /// Registers `--search-attribute`s in `default` and every namespace created at start
    /// (again on a restart with the same store: registering the same type twice is a no-op).
    pub async fn register_search_attributes(
        &self,
        engine: &crate::engine::Engine,
    ) -> Result<(), Box<dyn std::error::Error>> {
        if self.search_attributes.is_empty() {
            return Ok(());
        }
        let attributes: std::collections::HashMap<String, i32> = self
            .search_attributes
            .iter()
            .map(|a| (a.name.clone(), a.kind as i32))
            .collect();
        let namespaces =
            std::iter::once("default").chain(self.engine.namespaces.iter().map(String::as_str));
        for namespace in namespaces {
            engine
                .add_search_attributes(AddSearchAttributesRequest {
                    namespace: namespace.to_string(),
                    search_attributes: attributes.clone(),
                })
                .await
                .map_err(|e| format!("--search-attribute in namespace {namespace}: {e}"))?;
        }
        Ok(())
    }
}

/// A data directory that lives as long as the server: `server start-dev` without
/// `--db-filename`. Removed on a clean stop; one left by a killed server (SDK test harnesses
/// stop the dev server with SIGKILL) is removed by the next start.
pub struct EphemeralDir {
    path: PathBuf,
}

const EPHEMERAL_PREFIX: &str = "durin-ephemeral-";

impl EphemeralDir {
    pub fn create() -> std::io::Result<Self> {
        let base = std::env::temp_dir();
        sweep_abandoned(&base);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = base.join(format!(
            "{EPHEMERAL_PREFIX}{}-{nanos:08x}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path)?;
        Ok(EphemeralDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for EphemeralDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove the ephemeral store");
        }
    }
}

/// Removes ephemeral stores whose server process is gone.
fn sweep_abandoned(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(EPHEMERAL_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !process_alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true // cannot tell: leave it
    }
}
