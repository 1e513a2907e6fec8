//! PostgreSQL for the tests: the server `scripts/test` started (`DURIN_TEST_POSTGRES_URL`), or
//! a private one started with `scripts/pg-env` and stopped when dropped. Each Durin server
//! gets a database of its own.

use std::path::PathBuf;
use std::process::Command;

pub struct PgServer {
    url: String,
    /// Set when this process started the server (and so stops it).
    dir: Option<tempfile::TempDir>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/pg-env")
}

impl PgServer {
    pub fn start() -> Self {
        if let Ok(url) = std::env::var("DURIN_TEST_POSTGRES_URL") {
            return Self { url, dir: None };
        }
        let dir = tempfile::Builder::new()
            .prefix("durin-pg-")
            .tempdir()
            .expect("temp dir");
        let out = Command::new(script())
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("run scripts/pg-env");
        assert!(
            out.status.success(),
            "scripts/pg-env start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Self {
            url,
            dir: Some(dir),
        }
    }

    /// The CA that signed the server's TLS certificate (`scripts/pg-env` makes one).
    pub fn ca_file(&self) -> PathBuf {
        match (&self.dir, std::env::var("DURIN_TEST_POSTGRES_CA")) {
            (Some(dir), _) => dir.path().join("ca.crt"),
            (None, Ok(path)) => PathBuf::from(path),
            (None, Err(_)) => {
                panic!("DURIN_TEST_POSTGRES_URL is set without DURIN_TEST_POSTGRES_CA")
            }
        }
    }

    /// Runs one SQL statement with psql on `url`; returns its unaligned output.
    pub fn psql(url: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([url, "-At", "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A fresh, empty database on the server; returns its URL.
    pub fn new_database(&self, prefix: &str) -> String {
        new_database(&self.url, prefix)
    }
}

/// Creates an empty database on the server at `url` and returns its URL.
pub fn new_database(url: &str, prefix: &str) -> String {
    let name = format!("{prefix}_{}", super::unique("db").replace('-', "_"));
    let out = Command::new("psql")
        .arg(url)
        .arg("-q")
        .arg("-c")
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "CREATE DATABASE failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("unexpected PostgreSQL URL {url}"),
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = Command::new(script()).arg("stop").arg(dir.path()).status();
        }
    }
}
