//! The official Temporal Rust SDK (client and worker) against a real `durin` process, one
//! module per topic, in one test binary (each binary linking the SDK costs CI a link step).
//! Each module defines its workflows and activities right before the tests that use them.
//!
//! Every test starts its own server (fresh temp dir, free port) and uses its own task queue.
//! The worker's `run()` future is `!Send`, so it is driven on the test's main task next to the
//! test body (see `common::with_worker`).

#[path = "../common/mod.rs"]
mod common;

/// Activities: round trip, heartbeats and cancellation, async completion, retries, heartbeat
/// timeouts.
mod activities;
/// Workflow cancellation (with cleanup) and termination.
mod cancel_and_terminate;
/// Child workflows: results, failures, signals and cancels from the parent, chains of runs.
mod child_workflows;
/// Continue-as-new.
mod continue_as_new;
/// SIGKILL restarts of the server, with the same worker and with a new one.
mod crash_recovery;
/// Cron schedules.
mod cron;
/// Delayed workflow starts.
mod delayed_start;
/// Signals and cancellation requests from one workflow to another.
mod external_workflows;
/// Helpers the topics share.
mod helpers;
/// Workflow id conflict and reuse policies.
mod id_conflicts;
/// Parent-close policies.
mod parent_close_policies;
/// Signals, signal-with-start and queries.
mod signals_and_queries;
/// Standalone activities: started, retried, listed and kept across a SIGKILL.
mod standalone_activities;
/// Workflow run / execution timeouts, activity schedule-to-close timeouts and retry options.
mod timeouts_and_retries;
/// Durable timers.
mod timers;
/// Updates and update-with-start.
mod updates;
/// Visibility: search attributes, list / count queries, registering attributes.
mod visibility;
/// Workflow retry policies.
mod workflow_retries;
