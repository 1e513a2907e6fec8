//! timeouts-and-retries: the server retries a failing activity according to its retry policy
//! until it succeeds; an activity that runs past its start-to-close timeout is timed out by the
//! server (and retried, up to the policy's maximum attempts).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};
use temporalio_common::{RetryPolicy, error::TimeoutType};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, WorkerOptions, WorkflowContext, WorkflowResult,
    activities::{ActivityContext, ActivityError},
};

use crate::support::{Env, start_options, unique, with_worker, within};

/// `(activity, attempt, when)` for every attempt the worker ran.
type AttemptLog = Arc<Mutex<Vec<(&'static str, u32, Instant)>>>;

pub struct PaymentActivities {
    attempts: AttemptLog,
}

#[activities]
impl PaymentActivities {
    /// Fails with a retryable error on its first two attempts, succeeds on the third.
    #[activity]
    pub async fn charge_card(
        self: Arc<Self>,
        ctx: ActivityContext,
        amount_cents: u32,
    ) -> Result<String, ActivityError> {
        let attempt = ctx.info().attempt;
        self.attempts
            .lock()
            .unwrap()
            .push(("charge_card", attempt, Instant::now()));
        if attempt < 3 {
            // Any error that is not marked non-retryable is retried by the server.
            return Err(anyhow::anyhow!("payment gateway unavailable (attempt {attempt})").into());
        }
        Ok(format!("charged {amount_cents} cents on attempt {attempt}"))
    }

    /// Takes 3 s: longer than the 1 s start-to-close timeout it is called with.
    #[activity]
    pub async fn slow_fraud_check(
        self: Arc<Self>,
        ctx: ActivityContext,
    ) -> Result<String, ActivityError> {
        let attempt = ctx.info().attempt;
        self.attempts
            .lock()
            .unwrap()
            .push(("slow_fraud_check", attempt, Instant::now()));
        tokio::select! {
            _ = ctx.cancelled() => Err(ActivityError::cancelled()),
            _ = tokio::time::sleep(Duration::from_secs(3)) => Ok("no fraud".to_string()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentReport {
    pub charge: String,
    pub fraud_check: String,
}

#[workflow]
#[derive(Default)]
pub struct PaymentWorkflow;

#[workflow_methods]
impl PaymentWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<PaymentReport> {
        // Retry policy: 200 ms before the first retry, doubling each time, at most 5 attempts.
        let charge = ctx
            .execute_activity(
                PaymentActivities::charge_card,
                4200u32,
                ActivityOptions::with_start_to_close_timeout(Duration::from_secs(10))
                    .retry_policy(
                        RetryPolicy::builder()
                            .initial_interval(Duration::from_millis(200))
                            .backoff_coefficient(2.0)
                            .maximum_attempts(5)
                            .build(),
                    )
                    .build(),
            )
            .await?;

        // Each attempt may run for 1 s; two attempts in all. The workflow handles the timeout.
        let fraud_check = match ctx
            .execute_activity(
                PaymentActivities::slow_fraud_check,
                (),
                ActivityOptions::with_start_to_close_timeout(Duration::from_secs(1))
                    .retry_policy(
                        RetryPolicy::builder()
                            .initial_interval(Duration::from_millis(100))
                            .maximum_attempts(2)
                            .build(),
                    )
                    .build(),
            )
            .await
        {
            Ok(verdict) => verdict,
            Err(e) => match e.as_timeout() {
                Some(t) if t.timeout_type() == TimeoutType::StartToClose => {
                    "skipped: timed out (start-to-close) on every attempt".to_string()
                }
                _ => return Err(e.into()),
            },
        };
        Ok(PaymentReport {
            charge,
            fraud_check,
        })
    }
}

pub async fn run(env: &Env) -> Result<()> {
    let client = env.client().await?;
    let task_queue = unique("timeouts-and-retries");
    let attempts: AttemptLog = Arc::default();
    let mut worker = env.worker(
        &client,
        WorkerOptions::new(task_queue.clone())
            .register_workflow::<PaymentWorkflow>()?
            .register_activities(PaymentActivities {
                attempts: attempts.clone(),
            })
            .build(),
    )?;

    with_worker(&mut worker, async {
        let workflow_id = unique("payment");
        let started = Instant::now();
        let handle = client
            .start_workflow(
                PaymentWorkflow::run,
                (),
                start_options(&task_queue, &workflow_id),
            )
            .await?;
        println!("started PaymentWorkflow {workflow_id}");
        let report = within(
            60,
            "the workflow result",
            handle.get_result(Default::default()),
        )
        .await??;

        let log = attempts.lock().unwrap().clone();
        for (activity, attempt, at) in &log {
            println!(
                "  t+{:>4.1}s {activity} attempt {attempt}",
                at.duration_since(started).as_secs_f64()
            );
        }
        println!("workflow result: {report:?}");
        let count = |name| log.iter().filter(|(a, _, _)| *a == name).count();
        ensure!(count("charge_card") == 3, "charge_card should run 3 times");
        ensure!(report.charge == "charged 4200 cents on attempt 3");
        ensure!(
            count("slow_fraud_check") == 2,
            "slow_fraud_check should run twice (maximum_attempts = 2)"
        );
        ensure!(report.fraud_check.starts_with("skipped: timed out"));
        Ok(())
    })
    .await
}
