//! Mutual TLS between replicas. Each replica serves the cluster protocol on its own port
//! with a certificate signed by the cluster's CA, and dials the others with the same
//! certificate as its client certificate: only holders of a certificate from that CA can
//! forward calls, transfer signals or completions, or read a replica's traffic.
//!
//! The files are re-read when they change (certificate rotation without a restart): the
//! acceptor reloads itself, and dialled connections are made again with the new files.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::tls::{ReloadingAcceptor, TlsError, TlsFiles};

#[derive(Clone, Debug)]
pub struct ClusterTls {
    /// This replica's certificate, served and presented when dialling (PEM).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that signed every replica's certificate (PEM).
    pub ca: PathBuf,
    /// The name every replica's certificate carries; unset: the host of the peer's address.
    pub server_name: Option<String>,
}

impl ClusterTls {
    /// This replica's certificate, with the cluster's CA as the CA of its clients.
    fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.cert.clone(),
            key: self.key.clone(),
            client_ca: Some(self.ca.clone()),
        }
    }

    /// Accepts only peers with a certificate from the cluster's CA.
    pub fn acceptor(&self) -> Result<Arc<ReloadingAcceptor>, TlsError> {
        ReloadingAcceptor::new(self.files())
    }

    /// TLS for dialling the replica at `address` (host:port): its certificate must come from
    /// the cluster's CA and name the configured server name (or the address's host).
    pub fn client_config(&self, address: &str) -> Result<ClientTlsConfig, TlsError> {
        let read =
            |p: &PathBuf| std::fs::read(p).map_err(|e| TlsError(format!("{}: {e}", p.display())));
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => host_of(address).to_string(),
        };
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&self.ca)?))
            .identity(Identity::from_pem(read(&self.cert)?, read(&self.key)?))
            .domain_name(name))
    }

    /// The files' modification times: dialled connections are made again when they change.
    pub fn mtimes(&self) -> Vec<Option<SystemTime>> {
        self.files().mtimes()
    }
}

/// `host` of `host:port` (`[v6]:port` included).
fn host_of(address: &str) -> &str {
    let host = match address.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => address,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_an_address() {
        assert_eq!(
            host_of("durin-0.durin-headless.ns.svc:7234"),
            "durin-0.durin-headless.ns.svc"
        );
        assert_eq!(host_of("127.0.0.1:7234"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7234"), "::1");
        assert_eq!(host_of("replica"), "replica");
    }
}
