//! How a command-line client (`durin apply`) reaches a server: the connection flags of the
//! `temporal` CLI, with the same names and the same `TEMPORAL_*` environment variables, so a
//! shell set up for `temporal` works for `durin` too.

use std::path::PathBuf;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::{Request, Status};

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConnectionArgs {
    /// Server address, host:port (a `http://` or `https://` prefix is accepted).
    #[arg(long, default_value = "127.0.0.1:7233", env = "TEMPORAL_ADDRESS")]
    pub address: String,
    /// API key sent as `authorization: Bearer <key>` on every call; implies --tls unless the
    /// address says `http://`.
    #[arg(long, env = "TEMPORAL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Use TLS (implied by any other --tls-* flag or an `https://` address).
    #[arg(long, env = "TEMPORAL_TLS")]
    pub tls: bool,
    /// The CA certificate (PEM) the server's certificate must chain to; without it, the
    /// system's roots.
    #[arg(
        long,
        env = "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        conflicts_with = "tls_ca_data"
    )]
    pub tls_ca_path: Option<PathBuf>,
    /// The server CA certificate itself (PEM), instead of a path.
    #[arg(long, env = "TEMPORAL_TLS_SERVER_CA_CERT_DATA", hide_env_values = true)]
    pub tls_ca_data: Option<String>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(
        long,
        env = "TEMPORAL_TLS_CLIENT_CERT_PATH",
        conflicts_with = "tls_cert_data"
    )]
    pub tls_cert_path: Option<PathBuf>,
    /// The client certificate itself (PEM), instead of a path.
    #[arg(long, env = "TEMPORAL_TLS_CLIENT_CERT_DATA", hide_env_values = true)]
    pub tls_cert_data: Option<String>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(
        long,
        env = "TEMPORAL_TLS_CLIENT_KEY_PATH",
        conflicts_with = "tls_key_data"
    )]
    pub tls_key_path: Option<PathBuf>,
    /// The client private key itself (PEM), instead of a path.
    #[arg(long, env = "TEMPORAL_TLS_CLIENT_KEY_DATA", hide_env_values = true)]
    pub tls_key_data: Option<String>,
    /// The name the server's certificate must carry, when it is not the address's host.
    #[arg(long, env = "TEMPORAL_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("{0}")]
    Config(String),
    #[error("cannot reach {address}: {reason}")]
    Unreachable { address: String, reason: String },
}

/// Adds the API key to every call.
#[derive(Clone)]
pub struct ApiKey(Option<MetadataValue<Ascii>>);

impl Interceptor for ApiKey {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

impl ConnectionArgs {
    /// TLS is on when asked for, when any TLS material or an API key is given (as the
    /// `temporal` CLI does), or when the address says `https://`; an `http://` address keeps
    /// an API key in plaintext (a local server).
    fn wants_tls(&self) -> bool {
        if self.address.starts_with("https://") {
            return true;
        }
        if self.address.starts_with("http://") {
            return false;
        }
        self.tls
            || self.api_key.is_some()
            || self.tls_ca_path.is_some()
            || self.tls_ca_data.is_some()
            || self.tls_cert_path.is_some()
            || self.tls_cert_data.is_some()
            || self.tls_server_name.is_some()
    }

    fn host_port(&self) -> &str {
        self.address
            .trim_start_matches("https://")
            .trim_start_matches("http://")
    }

    fn tls_config(&self) -> Result<ClientTlsConfig, ConnectionError> {
        let pem = |path: &Option<PathBuf>, data: &Option<String>, what: &str| match (path, data) {
            (Some(p), _) => std::fs::read(p)
                .map(Some)
                .map_err(|e| ConnectionError::Config(format!("{what} {}: {e}", p.display()))),
            (None, Some(d)) => Ok(Some(d.as_bytes().to_vec())),
            (None, None) => Ok(None),
        };
        let mut config = ClientTlsConfig::new();
        match pem(&self.tls_ca_path, &self.tls_ca_data, "server CA")? {
            Some(ca) => config = config.ca_certificate(Certificate::from_pem(ca)),
            None => config = config.with_native_roots(),
        }
        let cert = pem(
            &self.tls_cert_path,
            &self.tls_cert_data,
            "client certificate",
        )?;
        let key = pem(&self.tls_key_path, &self.tls_key_data, "client key")?;
        match (cert, key) {
            (Some(cert), Some(key)) => config = config.identity(Identity::from_pem(cert, key)),
            (None, None) => {}
            _ => {
                return Err(ConnectionError::Config(
                    "mutual TLS needs both a client certificate and its key".into(),
                ));
            }
        }
        let host = self.host_port();
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let name = self.tls_server_name.as_deref().unwrap_or(host);
        Ok(config.domain_name(name.trim_start_matches('[').trim_end_matches(']')))
    }

    fn api_key(&self) -> Result<ApiKey, ConnectionError> {
        let Some(key) = &self.api_key else {
            return Ok(ApiKey(None));
        };
        format!("Bearer {key}")
            .parse()
            .map(|v| ApiKey(Some(v)))
            .map_err(|_| ConnectionError::Config("the API key is not a valid header value".into()))
    }

    /// A channel to the server, and the interceptor that authenticates each call on it.
    pub async fn connect(&self) -> Result<(Channel, ApiKey), ConnectionError> {
        let tls = self.wants_tls();
        let scheme = if tls { "https" } else { "http" };
        let uri = format!("{scheme}://{}", self.host_port());
        let mut endpoint = Channel::from_shared(uri)
            .map_err(|e| ConnectionError::Config(format!("bad address {}: {e}", self.address)))?;
        if tls {
            endpoint = endpoint
                .tls_config(self.tls_config()?)
                .map_err(|e| ConnectionError::Config(format!("TLS: {e}")))?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| ConnectionError::Unreachable {
                address: self.address.clone(),
                reason: with_causes(&e),
            })?;
        Ok((channel, self.api_key()?))
    }
}

/// An error with its causes ("transport error" alone says nothing about a refused handshake).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
