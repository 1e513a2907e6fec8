//! TLS and mutual TLS for the gRPC port, from PEM files that are re-read when they change
//! (certificate rotation without a restart). A client CA file turns on mutual TLS: clients
//! without a certificate signed by it are refused during the handshake.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::connections::{self, Counted};

use parking_lot::Mutex;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;

/// How often the files' modification times are checked.
const RELOAD_CHECK: Duration = Duration::from_secs(2);
/// TLS handshakes in progress at once.
const MAX_CONCURRENT_HANDSHAKES: usize = 256;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA for client certificates; set means mutual TLS.
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[error("TLS configuration: {0}")]
pub struct TlsError(pub String);

/// The CA certificates of a PEM file, to verify peers with.
pub fn load_roots(path: &std::path::Path) -> Result<RootCertStore, TlsError> {
    let err = |e: &dyn std::fmt::Display| TlsError(format!("{}: {e}", path.display()));
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(path).map_err(|e| err(&e))? {
        roots.add(c.map_err(|e| err(&e))?).map_err(|e| err(&e))?;
    }
    if roots.is_empty() {
        return Err(err(&"no CA certificate"));
    }
    Ok(roots)
}

fn load(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let err = |what: &str, e: &dyn std::fmt::Display| TlsError(format!("{what}: {e}"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| err(&files.cert.display().to_string(), &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(&files.cert.display().to_string(), &e))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{}: no certificate",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| err(&files.key.display().to_string(), &e))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err("protocol versions", &e))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let roots = load_roots(ca)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| err("client CA", &e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| err("certificate and key", &e))?;
    // HTTP/1.1 too: Nexus handlers call back over it.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

impl TlsFiles {
    /// The files' modification times, to notice a rotation.
    pub fn mtimes(&self) -> Vec<Option<SystemTime>> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }
}

struct Current {
    acceptor: TlsAcceptor,
    mtimes: Vec<Option<SystemTime>>,
    checked: Instant,
}

/// Hands out an acceptor for the current files, reloading them when they change. A reload
/// that fails (a half-written file) keeps the previous configuration and is logged.
pub struct ReloadingAcceptor {
    files: TlsFiles,
    current: Mutex<Current>,
}

impl ReloadingAcceptor {
    pub fn new(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let config = load(&files)?;
        Ok(Arc::new(Self {
            current: Mutex::new(Current {
                acceptor: TlsAcceptor::from(Arc::new(config)),
                mtimes: files.mtimes(),
                checked: Instant::now(),
            }),
            files,
        }))
    }

    fn acceptor(&self) -> TlsAcceptor {
        let mut cur = self.current.lock();
        if cur.checked.elapsed() >= RELOAD_CHECK {
            cur.checked = Instant::now();
            let now = self.files.mtimes();
            if now != cur.mtimes {
                match load(&self.files) {
                    Ok(config) => {
                        cur.acceptor = TlsAcceptor::from(Arc::new(config));
                        cur.mtimes = now;
                        tracing::info!(cert = %self.files.cert.display(), "TLS files changed; reloaded");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "TLS files changed but do not load; keeping the previous ones")
                    }
                }
            }
        }
        cur.acceptor.clone()
    }

    /// TLS connections from a TCP listener, handshaken off the accept loop, at most `cap`
    /// open at once (handshakes in progress included).
    pub fn incoming(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        cap: Arc<tokio::sync::Semaphore>,
    ) -> tokio_stream::wrappers::ReceiverStream<Result<Counted<TlsStream<TcpStream>>, std::io::Error>>
    {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        // Handshakes cost CPU before the peer has proven anything: at most this many run at
        // once; further connections wait in the listen backlog.
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(handshake_permit) = handshakes.clone().acquire_owned().await else {
                    return;
                };
                let Some((tcp, peer, connection)) = connections::accept(&listener, &cap).await
                else {
                    return;
                };
                let acceptor = self.acceptor();
                let conn_tx = tx.clone();
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                    let handshake = handshake.await;
                    drop(handshake_permit);
                    match handshake {
                        Ok(Ok(stream)) => {
                            let _ = conn_tx.send(Ok(Counted::new(stream, connection))).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake refused"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    return;
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}
