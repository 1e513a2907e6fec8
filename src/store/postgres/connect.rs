//! Connections to PostgreSQL, in plaintext or TLS. With a CA file, connections use TLS and
//! verify the server's certificate and host name against it (libpq's `verify-full`); the
//! connection string's `sslmode` decides whether plaintext is refused (`require`) or TLS is
//! only preferred (the default, `prefer`).

use std::path::Path;
use std::sync::Arc;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls::ClientConfig;

use super::pg_error;
use crate::store::StoreError;

/// Where the store's PostgreSQL is and how to reach it.
#[derive(Clone)]
pub struct PgTarget {
    url: String,
    tls: Option<MakeRustlsConnect>,
    /// How long a session may sit inside a transaction doing nothing before PostgreSQL ends
    /// it (see [`PgTarget::idle_transactions_end_after`]).
    idle_in_transaction: Option<std::time::Duration>,
}

impl PgTarget {
    /// `url` is a libpq-style connection string or `postgres://` URL; `ca_file` the PEM CA
    /// that signed the server's certificate.
    pub fn new(url: &str, ca_file: Option<&Path>) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url.parse().map_err(pg_error)?;
        let tls = match ca_file {
            Some(path) => Some(tls_connector(path)?),
            None if config.get_ssl_mode() == SslMode::Require => {
                return Err(StoreError::Failed(
                    "PostgreSQL: sslmode=require needs --postgres-ca <file> (the CA that \
                     signed the server's certificate; Durin verifies the certificate and \
                     the host name)"
                        .into(),
                ));
            }
            None => None,
        };
        Ok(Self {
            url: url.to_string(),
            tls,
            idle_in_transaction: None,
        })
    }

    /// A replica frozen in the middle of a commit (a stalled VM, SIGSTOP) holds its
    /// transaction's row locks — the shard rows its commit fences on — and so would block
    /// the takeover of its shards until it woke. PostgreSQL ends such a session after
    /// `limit`, releasing the locks; its commit then fails and is answered UNAVAILABLE.
    pub fn idle_transactions_end_after(mut self, limit: std::time::Duration) -> Self {
        self.idle_in_transaction = Some(limit.max(std::time::Duration::from_secs(1)));
        self
    }

    /// A new connection; its driver runs as a task until the connection closes.
    pub async fn connect(&self) -> Result<Client, StoreError> {
        let client = self.open().await?;
        if let Some(limit) = self.idle_in_transaction {
            client
                .batch_execute(&format!(
                    "SET idle_in_transaction_session_timeout = {}",
                    limit.as_millis()
                ))
                .await
                .map_err(pg_error)?;
        }
        Ok(client)
    }

    async fn open(&self) -> Result<Client, StoreError> {
        match &self.tls {
            Some(tls) => {
                let (client, connection) = tokio_postgres::connect(&self.url, tls.clone())
                    .await
                    .map_err(pg_error)?;
                tokio::spawn(drive(connection));
                Ok(client)
            }
            None => {
                let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
                    .await
                    .map_err(pg_error)?;
                tokio::spawn(drive(connection));
                Ok(client)
            }
        }
    }
}

async fn drive<C: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: C) {
    if let Err(e) = connection.await {
        tracing::warn!(error = %e, "PostgreSQL connection closed");
    }
}

fn tls_connector(ca_file: &Path) -> Result<MakeRustlsConnect, StoreError> {
    let roots = crate::tls::load_roots(ca_file)
        .map_err(|e| StoreError::Failed(format!("PostgreSQL CA: {e}")))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Failed(format!("PostgreSQL TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}
