//! Bearer-token authentication with per-namespace authorization. Tokens come from a YAML
//! file (re-read when it changes):
//!
//! ```yaml
//! tokens:
//!   - name: team-a-ci          # shown in logs, never the token
//!     token: "long random"
//!     namespaces: [team-a]     # or ["*"] for every namespace
//! ```
//!
//! A request without a known token gets UNAUTHENTICATED; a token used on a namespace it does
//! not list gets PERMISSION_DENIED. Calls that name no namespace (system info, listing
//! namespaces) need a known token only.

/// What a token lists to use every namespace (and what calls for every namespace, such as
/// deleting one, name as their namespace).
pub const EVERY_NAMESPACE: &str = "*";

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use serde::Deserialize;
use tonic::Status;

const RELOAD_CHECK: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Deserialize)]
struct TokenEntry {
    #[serde(default)]
    name: String,
    token: String,
    namespaces: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct AuthFile {
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, thiserror::Error)]
#[error("auth file {path}: {message}")]
pub struct AuthError {
    path: String,
    message: String,
}

fn read(path: &PathBuf) -> Result<AuthFile, AuthError> {
    let err = |message: String| AuthError {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let file: AuthFile = serde_saphyr::from_str(&text).map_err(|e| err(e.to_string()))?;
    if file.tokens.iter().any(|t| t.token.len() < 8) {
        return Err(err("every token must be at least 8 characters".into()));
    }
    Ok(file)
}

struct Loaded {
    file: Arc<AuthFile>,
    mtime: Option<SystemTime>,
    checked: Instant,
}

pub struct AuthPolicy {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

impl AuthPolicy {
    pub fn load(path: PathBuf) -> Result<Arc<Self>, AuthError> {
        let file = read(&path)?;
        let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        Ok(Arc::new(Self {
            loaded: Mutex::new(Loaded {
                file: Arc::new(file),
                mtime,
                checked: Instant::now(),
            }),
            path,
        }))
    }

    /// The current tokens (checked on every RPC: shared, not copied).
    fn entries(&self) -> Arc<AuthFile> {
        let mut l = self.loaded.lock();
        if l.checked.elapsed() >= RELOAD_CHECK {
            l.checked = Instant::now();
            let mtime = std::fs::metadata(&self.path)
                .and_then(|m| m.modified())
                .ok();
            if mtime != l.mtime {
                match read(&self.path) {
                    Ok(file) => {
                        l.file = Arc::new(file);
                        l.mtime = mtime;
                        tracing::info!(path = %self.path.display(), "auth file changed; reloaded");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "auth file changed but does not load; keeping the previous tokens")
                    }
                }
            }
        }
        l.file.clone()
    }

    /// Checks the request's bearer token, and that it may use `namespace`.
    pub fn check(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        namespace: Option<&str>,
    ) -> Result<(), Status> {
        let presented = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .unwrap_or("");
        let file = self.entries();
        let Some(entry) = file.tokens.iter().find(|e| {
            !presented.is_empty() && constant_time_eq(e.token.as_bytes(), presented.as_bytes())
        }) else {
            return Err(Status::unauthenticated(
                "missing or unknown bearer token (send `authorization: Bearer <token>`)",
            ));
        };
        match namespace {
            Some(ns)
                if !ns.is_empty()
                    && !entry
                        .namespaces
                        .iter()
                        .any(|n| n == EVERY_NAMESPACE || n == ns) =>
            {
                Err(Status::permission_denied(format!(
                    "token {:?} may not use namespace {ns:?}",
                    entry.name
                )))
            }
            _ => Ok(()),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the bearer token of every call to Temporal's services from its headers, before its
/// body is read and decoded: an unknown client cannot make the server decode up to the
/// largest message. Which namespaces the token may use is checked later, per RPC, by
/// [`super::authz::Guarded`] (the namespace is in the body).
#[derive(Clone)]
pub struct AuthenticateLayer {
    policy: Option<std::sync::Arc<AuthPolicy>>,
}

impl AuthenticateLayer {
    pub fn new(policy: Option<std::sync::Arc<AuthPolicy>>) -> Self {
        Self { policy }
    }
}

impl<S> tower::Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            policy: self.policy.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Authenticate<S> {
    inner: S,
    policy: Option<std::sync::Arc<AuthPolicy>>,
}

impl<S, B, R> tower::Service<http::Request<B>> for Authenticate<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // Health checks stay open for probes; replica-to-replica calls carry the cluster's
        // secret instead (checked by their handler).
        if let Some(policy) = &self.policy
            && req.uri().path().starts_with("/temporal.api.")
        {
            let metadata = tonic::metadata::MetadataMap::from_headers(req.headers().clone());
            if let Err(status) = policy.check(&metadata, None) {
                return Box::pin(async move { Ok(status.into_http()) });
            }
        }
        Box::pin(self.inner.call(req))
    }
}
