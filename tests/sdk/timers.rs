//! Durable timers: a workflow sleeps on a timer that fires after its duration (wall clock,
//! workflow time and history agree).

use crate::common;
use crate::helpers::*;

use std::time::{Duration, Instant};

use common::{DurinServer, new_worker, sdk_runtime, unique, with_worker, within};
use serde::{Deserialize, Serialize};
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{TimerResult, WorkerOptions, WorkflowContext, WorkflowResult};

// ---- 2. durable timer ----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerOutcome {
    pub fired: bool,
    /// Workflow time that passed across the timer, in ms.
    pub workflow_elapsed_ms: u64,
}

#[workflow]
#[derive(Default)]
pub struct SleepyWorkflow;

#[workflow_methods]
impl SleepyWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, millis: u64) -> WorkflowResult<TimerOutcome> {
        let before = ctx.workflow_time();
        let fired = ctx.timer(Duration::from_millis(millis)).await == TimerResult::Fired;
        let after = ctx.workflow_time();
        let workflow_elapsed_ms = match (before, after) {
            (Some(b), Some(a)) => a
                .duration_since(b)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            _ => 0,
        };
        Ok(TimerOutcome {
            fired,
            workflow_elapsed_ms,
        })
    }
}

/// 2. A durable timer: the workflow sleeps 1.5 s and then returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_timer_fires_after_its_duration() {
    let server = DurinServer::start().await;
    let client = server.client().await;
    let tq = unique("tq-timer");
    let runtime = sdk_runtime();
    let mut worker = new_worker(
        &runtime,
        &client,
        WorkerOptions::new(tq.clone())
            .register_workflow::<SleepyWorkflow>()
            .unwrap()
            .build(),
    );
    let wf_id = unique("sleepy");

    with_worker(&mut worker, async {
        let started = Instant::now();
        let handle = client
            .start_workflow(SleepyWorkflow::run, 1500u64, start_opts(&tq, &wf_id))
            .await
            .expect("start workflow");
        let outcome = within(
            20,
            "timer workflow result",
            handle.get_result(result_opts()),
        )
        .await
        .expect("workflow should complete successfully");
        let wall = started.elapsed();

        assert!(outcome.fired, "timer must report Fired, got {outcome:?}");
        assert!(
            wall >= Duration::from_millis(1500),
            "workflow completed after {wall:?}, before its 1.5 s timer could fire"
        );
        assert!(
            wall < Duration::from_secs(15),
            "timer took far too long: {wall:?}"
        );
        assert!(
            outcome.workflow_elapsed_ms >= 1500,
            "workflow time advanced only {} ms across a 1.5 s timer",
            outcome.workflow_elapsed_ms
        );

        let events = full_history(&handle).await;
        let timer_started = events
            .iter()
            .find_map(|e| match &e.attributes {
                Some(Attributes::TimerStartedEventAttributes(a)) => Some(a.clone()),
                _ => None,
            })
            .expect("history has a TimerStarted event");
        let fire_after = timer_started
            .start_to_fire_timeout
            .expect("TimerStarted has start_to_fire_timeout");
        assert_eq!((fire_after.seconds, fire_after.nanos), (1, 500_000_000));
        assert!(
            events
                .iter()
                .any(|e| matches!(e.attributes, Some(Attributes::TimerFiredEventAttributes(_)))),
            "history has a TimerFired event"
        );
        assert!(matches!(
            events.last().and_then(|e| e.attributes.as_ref()),
            Some(Attributes::WorkflowExecutionCompletedEventAttributes(_))
        ));
    })
    .await;
}
