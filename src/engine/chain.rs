//! Runs that follow runs: continue-as-new, workflow retries and cron. Each builds the next
//! run's `WorkflowExecutionStarted` attributes from the closing run; the caller writes the
//! close event (with `new_execution_run_id`) and creates the run in the same operation.

use std::str::FromStr;

use chrono::{TimeZone, Utc};
use temporalio_protos::temporal::api::command::v1::ContinueAsNewWorkflowExecutionCommandAttributes;
use temporalio_protos::temporal::api::common::v1::Payloads;
use temporalio_protos::temporal::api::enums::v1::{ContinueAsNewInitiator, RetryState};
use temporalio_protos::temporal::api::failure::v1::Failure;
use temporalio_protos::temporal::api::history::v1::WorkflowExecutionStartedEventAttributes;

use super::clock::{dur_from_millis, dur_millis, opt_ts_millis};
use super::state::MutableState;
use super::{retry, start::normalize_timeouts};

pub struct Continuation {
    pub run_id: String,
    pub started: WorkflowExecutionStartedEventAttributes,
}

/// What the next run inherits from the closing one.
fn next_started(ms: &MutableState, initiator: ContinueAsNewInitiator, now: i64) -> Continuation {
    let prev = ms.started.clone().unwrap_or_default();
    let run_id = super::clock::run_id_at(now);
    let started = WorkflowExecutionStartedEventAttributes {
        workflow_id: ms.workflow_id.clone(),
        workflow_type: prev.workflow_type,
        parent_workflow_namespace: prev.parent_workflow_namespace,
        parent_workflow_namespace_id: prev.parent_workflow_namespace_id,
        parent_workflow_execution: prev.parent_workflow_execution,
        parent_initiated_event_id: prev.parent_initiated_event_id,
        task_queue: prev.task_queue,
        input: prev.input,
        workflow_execution_timeout: prev.workflow_execution_timeout,
        workflow_run_timeout: prev.workflow_run_timeout,
        workflow_task_timeout: prev.workflow_task_timeout,
        continued_execution_run_id: ms.run_id.clone(),
        initiator: initiator as i32,
        original_execution_run_id: run_id.clone(),
        identity: prev.identity,
        first_execution_run_id: prev.first_execution_run_id,
        retry_policy: prev.retry_policy,
        attempt: 1,
        workflow_execution_expiration_time: prev.workflow_execution_expiration_time,
        cron_schedule: prev.cron_schedule,
        memo: ms.memo.clone(),
        search_attributes: ms.search_attributes.clone(),
        header: prev.header,
        root_workflow_execution: prev.root_workflow_execution,
        priority: prev.priority,
        // Retries, cron runs and continue-as-new stay on the version a run is pinned to.
        versioning_override: ms
            .versioning
            .as_ref()
            .and_then(|v| v.versioning_override.clone()),
        inherited_pinned_version: ms.versioning.as_ref().and_then(|v| v.pinned_version()),
        // Callbacks fire when the chain ends, not when one of its runs does.
        completion_callbacks: ms
            .callbacks
            .iter()
            .filter_map(|r| r.info.as_ref().and_then(|i| i.callback.clone()))
            .collect(),
        ..Default::default()
    };
    Continuation { run_id, started }
}

/// The retry of a failed (or timed-out) run, if its retry policy allows one.
pub(crate) fn retry(
    ms: &MutableState,
    failure: &Failure,
    now: i64,
) -> Result<Continuation, RetryState> {
    let started = ms.started.as_ref().ok_or(RetryState::RetryPolicyNotSet)?;
    let mut policy = started
        .retry_policy
        .clone()
        .ok_or(RetryState::RetryPolicyNotSet)?;
    retry::fill_defaults(&mut policy);
    let expiration = opt_ts_millis(&started.workflow_execution_expiration_time);
    let delay = retry::decide(&policy, started.attempt.max(1), failure, now, expiration)?;
    let mut next = next_started(ms, ContinueAsNewInitiator::Retry, now);
    next.started.attempt = started.attempt.max(1) + 1;
    next.started.continued_failure = Some(failure.clone());
    next.started.last_completion_result = started.last_completion_result.clone();
    next.started.first_workflow_task_backoff = Some(dur_from_millis(delay));
    Ok(next)
}

/// The next cron run after this one closed, if the run has a cron schedule.
pub(crate) fn cron(
    ms: &MutableState,
    result: Option<&Payloads>,
    failure: Option<&Failure>,
    now: i64,
) -> Option<Continuation> {
    let started = ms.started.as_ref()?;
    if started.cron_schedule.is_empty() {
        return None;
    }
    let backoff = cron_backoff(&started.cron_schedule, now)?;
    let expiration = opt_ts_millis(&started.workflow_execution_expiration_time);
    if expiration > 0 && now + backoff > expiration {
        return None;
    }
    let mut next = next_started(ms, ContinueAsNewInitiator::CronSchedule, now);
    next.started.last_completion_result = result
        .cloned()
        .or_else(|| started.last_completion_result.clone());
    next.started.continued_failure = failure.cloned();
    next.started.first_workflow_task_backoff = Some(dur_from_millis(backoff));
    Some(next)
}

/// The run a `ContinueAsNewWorkflowExecution` command asks for.
pub(crate) fn continue_as_new(
    ms: &MutableState,
    a: &ContinueAsNewWorkflowExecutionCommandAttributes,
    now: i64,
) -> Continuation {
    let mut next = next_started(ms, ContinueAsNewInitiator::Workflow, now);
    let s = &mut next.started;
    if a.workflow_type.as_ref().is_some_and(|t| !t.name.is_empty()) {
        s.workflow_type = a.workflow_type.clone();
    }
    if let Some(tq) = a.task_queue.as_ref().filter(|t| !t.name.is_empty()) {
        s.task_queue = Some(super::workflow_task::normal_queue(&tq.name));
    }
    s.input = a.input.clone();
    if dur_millis(&a.workflow_run_timeout) > 0 {
        s.workflow_run_timeout = a.workflow_run_timeout;
    }
    if dur_millis(&a.workflow_task_timeout) > 0 {
        s.workflow_task_timeout = a.workflow_task_timeout;
    }
    if a.retry_policy.is_some() {
        s.retry_policy = a.retry_policy.clone();
    }
    if !a.cron_schedule.is_empty() {
        s.cron_schedule = a.cron_schedule.clone();
    }
    if a.header.is_some() {
        s.header = a.header.clone();
    }
    if a.memo.is_some() {
        s.memo = a.memo.clone();
    }
    if a.search_attributes.is_some() {
        s.search_attributes = a.search_attributes.clone();
    }
    s.last_completion_result = a.last_completion_result.clone();
    s.continued_failure = a.failure.clone();
    let backoff = dur_millis(&a.backoff_start_interval);
    s.first_workflow_task_backoff = (backoff > 0).then(|| dur_from_millis(backoff));
    normalize_timeouts(s, now);
    super::deployments::continue_as_new_versioning(ms, a, s);
    next
}

enum CronSpec {
    Every(i64),
    /// Fires at the earliest next time of any of these (two when day-of-month and
    /// day-of-week are both restricted: classic cron ORs them).
    Calendar(Vec<cron::Schedule>, chrono_tz::Tz),
}

/// Checks a cron schedule in Temporal's syntax: five fields, `@hourly`-style descriptors or
/// `@every <duration>`, optionally prefixed with `CRON_TZ=<zone>`.
pub fn validate_cron(spec: &str) -> Result<(), String> {
    parse_cron(spec).map(|_| ())
}

/// Milliseconds from `now_ms` to the schedule's next time.
pub fn cron_backoff(spec: &str, now_ms: i64) -> Option<i64> {
    match parse_cron(spec).ok()? {
        CronSpec::Every(every) => Some(every),
        CronSpec::Calendar(schedules, tz) => {
            let now = Utc
                .timestamp_millis_opt(now_ms)
                .single()?
                .with_timezone(&tz);
            let next = schedules
                .iter()
                .filter_map(|s| s.after(&now).next())
                .min()?;
            Some((next.timestamp_millis() - now_ms).max(1))
        }
    }
}

fn parse_cron(spec: &str) -> Result<CronSpec, String> {
    let bad = |why: &str| format!("invalid cron schedule {spec:?}: {why}");
    let mut rest = spec.trim();
    let mut tz = chrono_tz::UTC;
    if let Some(after) = rest
        .strip_prefix("CRON_TZ=")
        .or_else(|| rest.strip_prefix("TZ="))
    {
        let (zone, expr) = after
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("missing expression after CRON_TZ"))?;
        tz = chrono_tz::Tz::from_str(zone).map_err(|_| bad("unknown time zone"))?;
        rest = expr.trim();
    }
    if let Some(d) = rest.strip_prefix("@every") {
        let ms =
            crate::go_duration::parse_millis(d.trim()).ok_or_else(|| bad("bad @every duration"))?;
        if ms <= 0 {
            return Err(bad("@every needs a positive duration"));
        }
        return Ok(CronSpec::Every(ms));
    }
    let exprs = if rest.starts_with('@') {
        vec![match rest {
            "@yearly" | "@annually" => "0 0 0 1 1 *".to_string(),
            "@monthly" => "0 0 0 1 * *".to_string(),
            "@weekly" => "0 0 0 * * 1".to_string(),
            "@daily" | "@midnight" => "0 0 0 * * *".to_string(),
            "@hourly" => "0 0 * * * *".to_string(),
            _ => return Err(bad("unknown descriptor")),
        }]
    } else {
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(bad(
                "expected five fields (minute hour day-of-month month day-of-week)",
            ));
        };
        let dow = day_of_week_from_sunday(dow).map_err(|e| bad(&e))?;
        let expr = |dom: &str, dow: &str| format!("0 {minute} {hour} {dom} {month} {dow}");
        // Classic cron (and Temporal's workflow cron): when both day fields are restricted a
        // day matching either one fires; when one is `*` (or `?`) they combine as usual.
        let unrestricted = |f: &str| f.starts_with('*') || f.starts_with('?');
        if unrestricted(dom) || unrestricted(&dow) {
            vec![expr(dom, &dow)]
        } else {
            vec![expr(dom, "*"), expr("*", &dow)]
        }
    };
    let schedules = exprs
        .iter()
        .map(|e| cron::Schedule::from_str(e).map_err(|e| bad(&e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CronSpec::Calendar(schedules, tz))
}

/// Standard cron counts days of week from Sunday = 0 to Saturday = 6; the `cron` crate from
/// Sunday = 1. Like Temporal's parser, 7 is refused (some crons read it as Sunday).
fn day_of_week_from_sunday(field: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut number = String::new();
    let flush = |number: &mut String, out: &mut String| -> Result<(), String> {
        if !number.is_empty() {
            let n: u32 = number
                .parse()
                .map_err(|_| format!("bad day of week {number}"))?;
            if n > 6 {
                return Err(format!("day of week {n} above maximum (6)"));
            }
            out.push_str(&(n + 1).to_string());
            number.clear();
        }
        Ok(())
    };
    let mut after_slash = false;
    for c in field.chars() {
        if c.is_ascii_digit() && !after_slash {
            number.push(c);
            continue;
        }
        flush(&mut number, &mut out)?;
        if c == '/' {
            after_slash = true;
        } else if !c.is_ascii_digit() {
            after_slash = false;
        }
        out.push(c);
    }
    flush(&mut number, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_specs() {
        let t = Utc
            .with_ymd_and_hms(2026, 1, 5, 10, 30, 15)
            .unwrap()
            .timestamp_millis(); // a Monday
        assert_eq!(cron_backoff("@every 2s", t), Some(2000));
        assert_eq!(cron_backoff("@every 1m30s", t), Some(90_000));
        assert_eq!(cron_backoff("* * * * *", t), Some(45_000));
        assert_eq!(cron_backoff("0 * * * *", t), Some(29 * 60_000 + 45_000));
        // Sunday = 0 in standard cron: next Sunday midnight is 6 days away (less 10:30:15).
        let to_sunday = cron_backoff("0 0 * * 0", t).unwrap();
        assert_eq!(
            to_sunday,
            6 * 86_400_000 - (10 * 3600 + 30 * 60 + 15) * 1000
        );
        assert_eq!(
            cron_backoff("0 0 * * 1-5", t),
            Some(86_400_000 - (10 * 3600 + 30 * 60 + 15) * 1000)
        );
        // 11:00 in New York is 16:00 UTC in January.
        assert_eq!(
            cron_backoff("CRON_TZ=America/New_York 0 11 * * *", t),
            Some((5 * 3600 + 29 * 60 + 45) * 1000)
        );
        assert!(validate_cron("* * *").is_err());
        // Temporal's parser takes Sunday as 0 only.
        assert!(validate_cron("0 0 * * 7").is_err());
        assert!(validate_cron("0 0 * * 5-7").is_err());
        assert!(validate_cron("0 0 * * */2").is_ok());
        assert!(validate_cron("@every x").is_err());
        assert!(validate_cron("CRON_TZ=Mars/Base 0 0 * * *").is_err());
        assert_eq!(cron_backoff("@hourly", t), Some(29 * 60_000 + 45_000));
    }

    #[test]
    fn restricted_day_of_month_and_week_fire_on_either() {
        // Monday 2026-01-05 10:30:15 UTC.
        let t = Utc
            .with_ymd_and_hms(2026, 1, 5, 10, 30, 15)
            .unwrap()
            .timestamp_millis();
        let at = |y, m, d| {
            Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        };
        let next = |spec: &str| t + cron_backoff(spec, t).unwrap();
        // The 1st of a month OR a Monday: next Monday (Jan 12), not only Mondays that are the 1st
        // (June 1st, 2026).
        assert_eq!(next("0 0 1 * MON"), at(2026, 1, 12));
        assert_eq!(next("0 0 1 * 1"), at(2026, 1, 12));
        // The 6th OR a Sunday: the 6th comes first.
        assert_eq!(next("0 0 6 * 0"), at(2026, 1, 6));
        // One field unrestricted: the other alone decides.
        assert_eq!(next("0 0 * * 1"), at(2026, 1, 12));
        assert_eq!(next("0 0 15 * *"), at(2026, 1, 15));
        assert_eq!(next("0 0 15 * ?"), at(2026, 1, 15));
    }
}
