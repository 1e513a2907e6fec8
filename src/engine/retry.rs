//! Retry-policy defaults, validation and the next-attempt decision.

use prost_wkt_types::Duration;
use temporalio_protos::temporal::api::common::v1::RetryPolicy;
use temporalio_protos::temporal::api::enums::v1::RetryState;
use temporalio_protos::temporal::api::failure::v1::{Failure, failure};

use super::clock::{dur_from_millis, dur_millis};

const DEFAULT_INITIAL_INTERVAL_MS: i64 = 1000;
const DEFAULT_BACKOFF: f64 = 2.0;
const DEFAULT_MAX_INTERVAL_FACTOR: i64 = 100;

pub fn fill_defaults(p: &mut RetryPolicy) {
    if dur_millis(&p.initial_interval) == 0 {
        p.initial_interval = Some(dur_from_millis(DEFAULT_INITIAL_INTERVAL_MS));
    }
    if p.backoff_coefficient == 0.0 {
        p.backoff_coefficient = DEFAULT_BACKOFF;
    }
    if dur_millis(&p.maximum_interval) == 0 {
        p.maximum_interval = Some(dur_from_millis(
            dur_millis(&p.initial_interval) * DEFAULT_MAX_INTERVAL_FACTOR,
        ));
    }
}

pub fn validate(p: &RetryPolicy) -> Result<(), String> {
    let neg = |d: &Option<Duration>| matches!(d, Some(d) if d.seconds < 0 || d.nanos < 0);
    if p.maximum_attempts == 1 {
        return Ok(());
    }
    if neg(&p.initial_interval) {
        return Err("InitialInterval cannot be negative on retry policy.".into());
    }
    if p.backoff_coefficient != 0.0 && p.backoff_coefficient < 1.0 {
        return Err("BackoffCoefficient cannot be less than 1 on retry policy.".into());
    }
    if neg(&p.maximum_interval) {
        return Err("MaximumInterval cannot be negative on retry policy.".into());
    }
    let max = dur_millis(&p.maximum_interval);
    if max > 0 && max < dur_millis(&p.initial_interval) {
        return Err("MaximumInterval cannot be less than InitialInterval on retry policy.".into());
    }
    if p.maximum_attempts < 0 {
        return Err("MaximumAttempts cannot be negative on retry policy.".into());
    }
    Ok(())
}

/// The failure's type name as used in `non_retryable_error_types`.
fn failure_type(f: &Failure) -> Option<String> {
    match &f.failure_info {
        Some(failure::FailureInfo::ApplicationFailureInfo(a)) => Some(a.r#type.clone()),
        Some(failure::FailureInfo::TimeoutFailureInfo(t)) => {
            let name = match t.timeout_type {
                1 => "START_TO_CLOSE",
                2 => "SCHEDULE_TO_START",
                3 => "SCHEDULE_TO_CLOSE",
                4 => "HEARTBEAT",
                _ => "UNSPECIFIED",
            };
            Some(format!("TemporalTimeout:{name}"))
        }
        _ => None,
    }
}

fn is_non_retryable(f: &Failure) -> bool {
    match &f.failure_info {
        Some(failure::FailureInfo::ApplicationFailureInfo(a)) => a.non_retryable,
        Some(failure::FailureInfo::ServerFailureInfo(s)) => s.non_retryable,
        Some(failure::FailureInfo::TerminatedFailureInfo(_))
        | Some(failure::FailureInfo::CanceledFailureInfo(_)) => true,
        Some(failure::FailureInfo::TimeoutFailureInfo(t)) => {
            !(t.timeout_type == 1 || t.timeout_type == 4)
        }
        _ => false,
    }
}

fn next_retry_delay(f: &Failure) -> Option<i64> {
    match &f.failure_info {
        Some(failure::FailureInfo::ApplicationFailureInfo(a)) => a
            .next_retry_delay
            .as_ref()
            .map(|d| dur_millis(&Some(*d)))
            .filter(|d| *d > 0),
        _ => None,
    }
}

/// Decides whether attempt `attempt` (which just failed) is retried: Ok(delay in ms) or the
/// retry state that stops it. `expiration_ms` of 0 means no deadline.
pub fn decide(
    policy: &RetryPolicy,
    attempt: i32,
    failure: &Failure,
    now_ms: i64,
    expiration_ms: i64,
) -> Result<i64, RetryState> {
    if is_non_retryable(failure) {
        return Err(RetryState::NonRetryableFailure);
    }
    if let Some(t) = failure_type(failure)
        && policy.non_retryable_error_types.contains(&t)
    {
        return Err(RetryState::NonRetryableFailure);
    }
    if policy.maximum_attempts > 0 && attempt >= policy.maximum_attempts {
        return Err(RetryState::MaximumAttemptsReached);
    }
    let initial = dur_millis(&policy.initial_interval).max(1) as f64;
    let coefficient = if policy.backoff_coefficient >= 1.0 {
        policy.backoff_coefficient
    } else {
        DEFAULT_BACKOFF
    };
    let max = dur_millis(&policy.maximum_interval);
    let delay = match next_retry_delay(failure) {
        Some(d) => d,
        None => {
            let raw = initial * coefficient.powi(attempt.saturating_sub(1).min(1000));
            let capped = if max > 0 { raw.min(max as f64) } else { raw };
            capped.min(i64::MAX as f64 / 2.0) as i64
        }
    };
    if expiration_ms > 0 && now_ms + delay > expiration_ms {
        return Err(RetryState::Timeout);
    }
    Ok(delay)
}

/// Workflow-task attempts up to this one get the workflow's own task timeout.
const WFT_PLAIN_ATTEMPTS: i32 = 3;
const WFT_EXTRA_INITIAL_MS: i64 = 5_000;
const WFT_EXTRA_MAX_MS: i64 = 10 * 60_000;

/// The start-to-close timeout of a workflow task's `attempt`. From the fourth attempt on, a
/// growing allowance (5 s doubling to at most 10 min, less up to a fifth as jitter) is added,
/// as Temporal does: a worker whose first task of a run is slow (a cold sandbox, a long
/// replay) would otherwise time out on every attempt forever, since each failed completion
/// evicts the run and the next attempt starts cold again. `seed` spreads the jitter.
pub fn workflow_task_timeout(base: Option<Duration>, attempt: i32, seed: u64) -> Option<Duration> {
    if attempt <= WFT_PLAIN_ATTEMPTS {
        return base;
    }
    let doublings = (attempt - WFT_PLAIN_ATTEMPTS - 1).min(20) as u32;
    let extra = (WFT_EXTRA_INITIAL_MS << doublings).min(WFT_EXTRA_MAX_MS);
    let jitter = (seed % (extra as u64 / 5).max(1)) as i64;
    let extra = extra - extra / 5 + jitter;
    Some(dur_from_millis(dur_millis(&base) + extra))
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_protos::temporal::api::failure::v1::ApplicationFailureInfo;

    fn app_failure(kind: &str) -> Failure {
        Failure {
            message: "boom".into(),
            failure_info: Some(failure::FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo {
                    r#type: kind.into(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        }
    }

    #[test]
    fn exponential_backoff_capped_and_bounded() {
        let mut p = RetryPolicy {
            maximum_attempts: 5,
            ..Default::default()
        };
        fill_defaults(&mut p);
        let f = app_failure("E");
        assert_eq!(decide(&p, 1, &f, 0, 0), Ok(1000));
        assert_eq!(decide(&p, 3, &f, 0, 0), Ok(4000));
        assert_eq!(
            decide(&p, 5, &f, 0, 0),
            Err(RetryState::MaximumAttemptsReached)
        );
        p.maximum_attempts = 0;
        assert_eq!(decide(&p, 30, &f, 0, 0), Ok(100_000));
        assert_eq!(decide(&p, 1, &f, 0, 500), Err(RetryState::Timeout));
        p.non_retryable_error_types.push("E".into());
        assert_eq!(
            decide(&p, 1, &f, 0, 0),
            Err(RetryState::NonRetryableFailure)
        );
    }

    #[test]
    fn workflow_task_timeout_grows_from_the_fourth_attempt() {
        let base = Some(dur_from_millis(1000));
        for attempt in 1..=3 {
            assert_eq!(workflow_task_timeout(base, attempt, 7), base);
        }
        let ms = |attempt, seed| dur_millis(&workflow_task_timeout(base, attempt, seed));
        for seed in [0, 1, 999, 12_345, u64::MAX] {
            assert!(
                (1000 + 4000..=1000 + 5000).contains(&ms(4, seed)),
                "{}",
                ms(4, seed)
            );
            assert!((1000 + 8000..=1000 + 10_000).contains(&ms(5, seed)));
            assert!((1000 + 480_000..=1000 + 600_000).contains(&ms(40, seed)));
        }
        assert_ne!(ms(4, 1), ms(4, 2), "the seed spreads the jitter");
    }
}
