//! The official Temporal Web UI beside `durin dev` and `durin server start-dev`.
//!
//! The UI is Temporal's own UI server (`github.com/temporalio/ui-server/v2`, which embeds the
//! web app) talking to Durin over gRPC. Durin does not bundle it: `scripts/ui-server build`
//! builds it from the Go module pinned in `tests/ui/server/go.mod` into the user's cache,
//! where this module finds it, writes its configuration and runs it as a child process that
//! ends with Durin.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The UI server release `scripts/ui-server` builds (checked against tests/ui/server/go.mod).
pub const UI_SERVER_VERSION: &str = "v2.54.1";

/// How to get the UI server when it is not installed.
pub const INSTALL_HINT: &str = "build it once with scripts/ui-server build (needs Go), or set \
                                DURIN_UI_SERVER to a Temporal UI server binary";

/// What the UI serves and where.
#[derive(Debug, Clone)]
pub struct UiOptions {
    pub address: SocketAddr,
    pub public_path: Option<String>,
    pub codec_endpoint: Option<String>,
    pub asset_path: Option<PathBuf>,
}

/// A running UI server; stopped (and its configuration removed) when dropped.
pub struct UiServer {
    child: tokio::process::Child,
    config_dir: PathBuf,
    pub url: String,
}

impl Drop for UiServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.config_dir);
    }
}

/// The UI server binary: `$DURIN_UI_SERVER`, else the one `scripts/ui-server build` cached.
pub fn find_ui_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("DURIN_UI_SERVER") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let cache = std::env::var_os("DURIN_UI_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|c| Path::new(&c).join("durin/ui")))
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/durin/ui")))?;
    Some(cache.join(UI_SERVER_VERSION).join("ui-server")).filter(|p| p.is_file())
}

/// The UI server's configuration for a Durin frontend at `grpc` (plaintext: with TLS or an
/// auth file the UI is set up by hand, see docs/ui.md).
fn config_yaml(options: &UiOptions, grpc: SocketAddr) -> String {
    let mut yaml = format!(
        "temporalGrpcAddress: {}\nhost: {}\nport: {}\nenableUi: true\ndisableNewsFetch: true\n",
        connectable(grpc),
        options.address.ip(),
        options.address.port()
    );
    if let Some(path) = &options.public_path {
        yaml.push_str(&format!("publicPath: {}\n", quoted(path)));
    }
    if let Some(path) = &options.asset_path {
        yaml.push_str(&format!(
            "uiAssetPath: {}\n",
            quoted(&path.display().to_string())
        ));
    }
    if let Some(endpoint) = &options.codec_endpoint {
        yaml.push_str(&format!("codec:\n  endpoint: {}\n", quoted(endpoint)));
    }
    yaml
}

/// A listening address a client can dial (an unspecified ip is reached on loopback).
fn connectable(a: SocketAddr) -> SocketAddr {
    if a.ip().is_unspecified() {
        let loopback = match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        };
        SocketAddr::new(loopback, a.port())
    } else {
        a
    }
}

/// A YAML double-quoted scalar (JSON strings are valid YAML).
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// Starts `binary` serving the UI for the frontend at `grpc`.
pub fn start(binary: &Path, options: &UiOptions, grpc: SocketAddr) -> std::io::Result<UiServer> {
    let config_dir = std::env::temp_dir().join(format!(
        "durin-ui-{}-{}",
        std::process::id(),
        options.address.port()
    ));
    std::fs::create_dir_all(&config_dir)?;
    std::fs::write(config_dir.join("durin.yaml"), config_yaml(options, grpc))?;
    let mut command = tokio::process::Command::new(binary);
    command
        .arg("--root")
        .arg("/")
        .arg("--config")
        .arg(&config_dir)
        .args(["--env", "durin", "start"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    // The UI server ends with Durin even when Durin is killed outright. (The signal follows
    // the spawning *thread*: this runs on the runtime's main or worker threads, which live as
    // long as Durin, never on a blocking-pool thread that may retire.)
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = command.spawn().inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&config_dir);
    })?;
    let host = match options.address.ip() {
        ip if ip.is_loopback() || ip.is_unspecified() => "localhost".to_string(),
        ip => ip.to_string(),
    };
    let path = options.public_path.as_deref().unwrap_or("");
    Ok(UiServer {
        child,
        config_dir,
        url: format!("http://{host}:{}{path}", options.address.port()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pinned_version_is_the_one_scripts_ui_server_builds() {
        let go_mod = include_str!("../../tests/ui/server/go.mod");
        let required = go_mod.lines().find_map(|l| {
            let l = l.trim().trim_start_matches("require ");
            l.strip_prefix("github.com/temporalio/ui-server/v2 ")
        });
        let version = required.and_then(|r| r.split_whitespace().next());
        assert_eq!(version, Some(UI_SERVER_VERSION));
    }

    #[test]
    fn the_config_points_the_ui_at_the_frontend() {
        let options = UiOptions {
            address: "0.0.0.0:8233".parse().unwrap(),
            public_path: Some("/ui".into()),
            codec_endpoint: Some("http://localhost:8888".into()),
            asset_path: None,
        };
        let yaml = config_yaml(&options, "0.0.0.0:7233".parse().unwrap());
        assert!(
            yaml.contains("temporalGrpcAddress: 127.0.0.1:7233\n"),
            "{yaml}"
        );
        assert!(
            yaml.contains("host: 0.0.0.0\nport: 8233\nenableUi: true\n"),
            "{yaml}"
        );
        assert!(yaml.contains("publicPath: \"/ui\"\n"), "{yaml}");
        assert!(
            yaml.contains("codec:\n  endpoint: \"http://localhost:8888\"\n"),
            "{yaml}"
        );
    }
}
