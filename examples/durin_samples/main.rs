//! Samples for Durin: the official Temporal Rust SDK (temporalio-sdk 1.1.1), unchanged, against a
//! running `durin dev`.
//!
//! ```text
//! cargo run --release -- dev                       # terminal 1: the server
//! cargo run --example samples -- hello-activity    # terminal 2: a sample
//! ```
//!
//! Every sample starts its own worker on a fresh task queue, runs its scenario end to end against
//! the server, prints what happened and exits 0 (or non-zero with the reason). The server address
//! comes from `TEMPORAL_ADDRESS` (default `http://127.0.0.1:7233`) and the namespace from
//! `TEMPORAL_NAMESPACE` (default `default`).

mod support;

mod activity_cancellation;
mod async_completion;
mod cancel_terminate;
mod child_workflows;
mod continue_as_new;
mod cron;
mod dynamic_handlers;
mod external_signal;
mod heartbeats;
mod hello_activity;
mod namespaces;
mod payload_codec;
mod schedules;
mod signals_and_queries;
mod timeouts_and_retries;
mod timers;
mod updates;
mod workflow_retries;

use std::process::ExitCode;

use support::Env;

/// `(name on the command line, what it shows)`, in the order `--help` lists them.
const SAMPLES: &[(&str, &str)] = &[
    ("hello-activity", "a workflow calls an activity"),
    (
        "signals-and-queries",
        "signal a running workflow, query its state, signal-with-start",
    ),
    (
        "child-workflows",
        "a parent starts children and collects results; parent-close policies",
    ),
    ("continue-as-new", "a counter carried across runs"),
    (
        "cron",
        "a cron workflow (@every 2s) run a few times, then terminated",
    ),
    (
        "timeouts-and-retries",
        "activity retry policy with a flaky activity; a start-to-close timeout",
    ),
    (
        "heartbeats",
        "a long activity heartbeats progress and resumes from it after a retry",
    ),
    (
        "async-completion",
        "an activity completed from client code with its task token",
    ),
    (
        "updates",
        "workflow updates with a validator: accepted and rejected",
    ),
    (
        "dynamic-handlers",
        "runtime dispatch by name (the SDK has no dynamic handlers; see README)",
    ),
    (
        "payload-codec",
        "an XOR \"encryption\" payload codec; history holds only encoded bytes",
    ),
    (
        "schedules",
        "a schedule every 2 s: pause, trigger, backfill, list, delete",
    ),
    ("timers", "durable timers; a timer raced against a signal"),
    (
        "cancel-terminate",
        "cancel a workflow (it cleans up, ends Canceled); terminate another",
    ),
    (
        "activity-cancellation",
        "a workflow cancels heartbeating activities it started (token, future)",
    ),
    (
        "workflow-retries",
        "a workflow retry policy (succeeds on attempt 3); an execution timeout",
    ),
    (
        "external-signal",
        "a workflow signals another by id, with a custom signal name",
    ),
    (
        "namespaces",
        "register, describe and list a namespace; run a workflow in it",
    ),
];

fn usage() -> String {
    let mut text = String::from(
        "usage: cargo run --example samples -- <sample>\n\n\
         Runs against `durin dev` at $TEMPORAL_ADDRESS (default http://127.0.0.1:7233),\n\
         namespace $TEMPORAL_NAMESPACE (default `default`).\n\nsamples:\n",
    );
    for (name, what) in SAMPLES {
        text.push_str(&format!("  {name:<22} {what}\n"));
    }
    text
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = match args.as_slice() {
        [name] if SAMPLES.iter().any(|(n, _)| n == name) => name.as_str(),
        [flag] if flag == "-h" || flag == "--help" || flag == "help" => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        _ => {
            eprint!("{}", usage());
            return ExitCode::from(2);
        }
    };

    let env = match Env::from_env() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "== sample {name} (server {}, namespace {})",
        env.address.as_str().trim_end_matches('/'),
        env.namespace
    );
    let outcome = match name {
        "hello-activity" => hello_activity::run(&env).await,
        "signals-and-queries" => signals_and_queries::run(&env).await,
        "child-workflows" => child_workflows::run(&env).await,
        "continue-as-new" => continue_as_new::run(&env).await,
        "cron" => cron::run(&env).await,
        "timeouts-and-retries" => timeouts_and_retries::run(&env).await,
        "heartbeats" => heartbeats::run(&env).await,
        "async-completion" => async_completion::run(&env).await,
        "updates" => updates::run(&env).await,
        "dynamic-handlers" => dynamic_handlers::run(&env).await,
        "payload-codec" => payload_codec::run(&env).await,
        "schedules" => schedules::run(&env).await,
        "timers" => timers::run(&env).await,
        "cancel-terminate" => cancel_terminate::run(&env).await,
        "activity-cancellation" => activity_cancellation::run(&env).await,
        "workflow-retries" => workflow_retries::run(&env).await,
        "external-signal" => external_signal::run(&env).await,
        "namespaces" => namespaces::run(&env).await,
        _ => unreachable!("sample names are checked above"),
    };
    match outcome {
        Ok(()) => {
            println!("== sample {name}: OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("== sample {name} FAILED: {e:#}");
            ExitCode::FAILURE
        }
    }
}
