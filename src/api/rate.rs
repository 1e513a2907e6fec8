//! Per-namespace request rates: each namespace gets a token bucket refilled at
//! `--namespace-rps` requests per second (bursts up to one second's worth); a request beyond
//! it is answered RESOURCE_EXHAUSTED at once, which the SDKs retry with backoff. Long polls
//! are not counted (they are bounded by `--max-waiting`). Namespaces share a fixed number of
//! buckets by hash, so a client naming endless namespaces cannot grow the table.

use std::hash::{Hash, Hasher};
use std::time::Instant;

use parking_lot::Mutex;
use tonic::Status;

/// Temporal's default per-namespace frontend rate is 2,400 requests per second per instance;
/// Durin serves more per instance, so its default is higher.
pub const DEFAULT_NAMESPACE_RPS: u32 = 10_000;

const BUCKETS: usize = 1024;

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

pub struct NamespaceRates {
    per_second: f64,
    buckets: Vec<Mutex<Bucket>>,
}

impl NamespaceRates {
    /// `per_second` of 0 turns the limit off.
    pub fn new(per_second: u32) -> Option<Self> {
        (per_second > 0).then(|| {
            let full = Bucket {
                tokens: f64::from(per_second),
                refilled: Instant::now(),
            };
            Self {
                per_second: f64::from(per_second),
                buckets: (0..BUCKETS).map(|_| Mutex::new(full)).collect(),
            }
        })
    }

    /// Takes one request of `namespace` from its bucket, or refuses it.
    pub fn admit(&self, namespace: &str) -> Result<(), Status> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        namespace.hash(&mut hasher);
        let mut bucket = self.buckets[(hasher.finish() as usize) % BUCKETS].lock();
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.per_second);
        bucket.refilled = now;
        if bucket.tokens < 1.0 {
            return Err(Status::resource_exhausted(format!(
                "namespace {namespace:?} is over its rate of {} requests per second; retry with \
                 backoff",
                self.per_second
            )));
        }
        bucket.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_over_its_rate_is_refused_and_others_are_not() {
        let rates = NamespaceRates::new(100).expect("on");
        let admitted = (0..150).filter(|_| rates.admit("busy").is_ok()).count();
        assert!((100..=101).contains(&admitted), "{admitted}");
        let refused = rates.admit("busy").unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        // Another namespace (in another bucket) still has its own budget.
        let other = (0..BUCKETS)
            .map(|i| format!("other-{i}"))
            .find(|n| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                n.hash(&mut h);
                let mut b = std::collections::hash_map::DefaultHasher::new();
                "busy".hash(&mut b);
                h.finish() as usize % BUCKETS != b.finish() as usize % BUCKETS
            })
            .expect("a namespace in another bucket");
        assert!(rates.admit(&other).is_ok());
        assert!(NamespaceRates::new(0).is_none(), "0 turns the limit off");
    }
}
