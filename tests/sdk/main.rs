//! The official Temporal Rust SDK (client and worker) against a real `durin` process, one
//! module per topic, in one test binary (each binary linking the SDK costs CI a link step).
//!
//! Every test starts its own server (fresh temp dir, free port) and uses its own task queue.
//! The worker's `run()` future is `!Send`, so it is driven on the test's main task next to the
//! test body (see `common::with_worker`).

#[path = "../common/mod.rs"]
mod common;

/// Workflows, activities, signals, queries, cancellation and restarts.
mod basics;
/// Child workflows, parent-close policies, continue-as-new, retries, cron, external signals.
mod chains;
/// Helpers the topics share.
mod helpers;
/// Updates, visibility, timeouts, retries and delayed starts.
mod semantics;
