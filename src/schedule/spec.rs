//! Schedule specs: compiling Temporal's `ScheduleSpec` (structured calendars, calendar and
//! cron strings, intervals, exclusions, bounds, time zone, jitter) and walking its times.
//!
//! Semantics follow Temporal's server: the spec's times are the union of its calendars and
//! intervals, minus the exclusions, within `[start_time, end_time]`. Calendars match local
//! wall-clock time in `timezone_name`: a wall time that does not exist (spring-forward gap)
//! is skipped, an ambiguous one (fall-back) happens once, at the earlier instant. Intervals
//! count whole seconds from the Unix epoch. All nominal times are whole seconds.

use std::str::FromStr;

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Timelike};
use chrono_tz::Tz;

use super::calendar::{Calendar, Span};
use super::cron::{CronSpec, calendar_to_structured, parse_cron_string};
use crate::proto::api::schedule::v1::ScheduleSpec;

/// How many years ahead a calendar search looks before giving up.
const SEARCH_YEARS: i32 = 10;
/// The same horizon in seconds, for skipping excluded times.
const SEARCH_HORIZON_SECS: i64 = 10 * 366 * 86_400;
/// Upper bound on candidate times rejected by exclusions in one `next` call.
const MAX_EXCLUDED_STEPS: usize = 200_000;

/// A spec ready to answer "what is the next action time after t".
#[derive(Clone, Debug)]
pub struct CompiledSpec {
    calendars: Vec<Calendar>,
    excludes: Vec<Calendar>,
    /// `(every, phase)` in whole seconds; `every > 0`.
    intervals: Vec<(i64, i64)>,
    /// Inclusive bounds, Unix milliseconds.
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    jitter_ms: i64,
    tz: Tz,
}

fn parse_tz(name: &str) -> Result<Tz, String> {
    if name.is_empty() {
        return Ok(Tz::UTC);
    }
    Tz::from_str(name).map_err(|_| format!("unknown time zone {name:?}"))
}

fn timestamp_ms(t: &prost_wkt_types::Timestamp) -> i64 {
    let ms = i128::from(t.seconds) * 1000 + i128::from(t.nanos) / 1_000_000;
    ms.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn duration_field(d: &prost_wkt_types::Duration, what: &str) -> Result<(i64, i32), String> {
    if d.seconds < 0 || d.nanos < 0 {
        return Err(format!("{what} must not be negative"));
    }
    Ok((d.seconds, d.nanos))
}

/// The canonical form DescribeSchedule returns: cron strings and calendar strings compiled
/// to structured calendars (and intervals for `@every`), exclusions structured, the time zone
/// from `CRON_TZ=` moved to `timezone_name`. Errors are messages for INVALID_ARGUMENT.
#[allow(deprecated)] // exclude_calendar
pub fn canonicalize(spec: &ScheduleSpec) -> Result<ScheduleSpec, String> {
    let mut out = spec.clone();
    out.cron_string.clear();
    out.calendar.clear();
    out.exclude_calendar.clear();
    for (i, c) in spec.calendar.iter().enumerate() {
        let structured =
            calendar_to_structured(c).map_err(|e| format!("invalid calendar[{i}]: {e}"))?;
        out.structured_calendar.push(structured);
    }
    for s in &spec.cron_string {
        let parsed = parse_cron_string(s).map_err(|e| format!("invalid cron string {s:?}: {e}"))?;
        if let Some(zone) = parsed.timezone {
            if out.timezone_name.is_empty() {
                out.timezone_name = zone;
            } else if out.timezone_name != zone {
                return Err(format!(
                    "cron string {s:?} sets time zone {zone:?} but the spec already uses {:?}",
                    out.timezone_name
                ));
            }
        }
        match parsed.spec {
            CronSpec::Calendar(c) => out.structured_calendar.push(c),
            CronSpec::Interval(iv) => out.interval.push(iv),
        }
    }
    for (i, c) in spec.exclude_calendar.iter().enumerate() {
        let structured =
            calendar_to_structured(c).map_err(|e| format!("invalid exclude_calendar[{i}]: {e}"))?;
        out.exclude_structured_calendar.push(structured);
    }
    CompiledSpec::compile(&out)?;
    Ok(out)
}

/// A canonical spec as DescribeSchedule shows it: in every calendar range an end below the
/// start reads as the start, and a step of 0 as 1 (what they mean), as Temporal describes them.
pub fn described(spec: &ScheduleSpec) -> ScheduleSpec {
    let mut out = spec.clone();
    for calendar in out
        .structured_calendar
        .iter_mut()
        .chain(out.exclude_structured_calendar.iter_mut())
    {
        for ranges in [
            &mut calendar.second,
            &mut calendar.minute,
            &mut calendar.hour,
            &mut calendar.day_of_month,
            &mut calendar.month,
            &mut calendar.year,
            &mut calendar.day_of_week,
        ] {
            for range in ranges.iter_mut() {
                range.end = range.end.max(range.start);
                if range.step == 0 {
                    range.step = 1;
                }
            }
        }
    }
    out
}

/// A stable hash for jitter.
fn fnv1a(seed: &str, nominal_ms: i64) -> u64 {
    crate::stable_hash::fnv1a(seed.bytes().chain([0xff]).chain(nominal_ms.to_le_bytes()))
}

impl CompiledSpec {
    /// Compiles a spec; string forms, if still present, are canonicalized first.
    #[allow(deprecated)] // exclude_calendar
    pub fn compile(canonical: &ScheduleSpec) -> Result<Self, String> {
        if !canonical.cron_string.is_empty()
            || !canonical.calendar.is_empty()
            || !canonical.exclude_calendar.is_empty()
        {
            // canonicalize() leaves no string forms, so this recurses once.
            return Self::compile(&canonicalize(canonical)?);
        }
        let tz = parse_tz(&canonical.timezone_name)?;
        let mut calendars = Vec::new();
        for (i, c) in canonical.structured_calendar.iter().enumerate() {
            calendars.push(
                Calendar::compile(c)
                    .map_err(|e| format!("invalid structured_calendar[{i}]: {e}"))?,
            );
        }
        let mut excludes = Vec::new();
        for (i, c) in canonical.exclude_structured_calendar.iter().enumerate() {
            excludes.push(
                Calendar::compile(c)
                    .map_err(|e| format!("invalid exclude_structured_calendar[{i}]: {e}"))?,
            );
        }
        let mut intervals = Vec::new();
        for (i, iv) in canonical.interval.iter().enumerate() {
            let Some(every) = &iv.interval else {
                return Err(format!("interval[{i}]: interval is required"));
            };
            let (every, _) = duration_field(every, "interval")?;
            if every <= 0 {
                return Err(format!("interval[{i}]: interval must be at least 1 second"));
            }
            let phase = match &iv.phase {
                Some(p) => duration_field(p, "phase")?.0,
                None => 0,
            };
            intervals.push((every, phase));
        }
        let jitter_ms = match &canonical.jitter {
            Some(j) => {
                let (s, n) = duration_field(j, "jitter")?;
                s.saturating_mul(1000)
                    .saturating_add(i64::from(n) / 1_000_000)
            }
            None => 0,
        };
        Ok(Self {
            calendars,
            excludes,
            intervals,
            start_ms: canonical.start_time.as_ref().map(timestamp_ms),
            end_ms: canonical.end_time.as_ref().map(timestamp_ms),
            jitter_ms,
            tz,
        })
    }

    /// The first action strictly after `after_ms` (Unix milliseconds): `(nominal, actual)`,
    /// where `actual` adds the deterministic jitter seeded by `seed`. `None` when the spec
    /// has no more times (end time passed, or nothing matches within the search horizon).
    pub fn next(&self, after_ms: i64, seed: &str) -> Option<(i64, i64)> {
        let nominal = self.next_nominal(after_ms)?;
        if self.jitter_ms <= 0 {
            return Some((nominal, nominal));
        }
        let mut limit = self.jitter_ms;
        if let Some(following) = self.next_nominal(nominal) {
            limit = limit.min(following - nominal);
        }
        let j = if limit > 0 {
            (fnv1a(seed, nominal) % limit as u64) as i64
        } else {
            0
        };
        Some((nominal, nominal + j))
    }

    /// The first nominal time (whole seconds, as Unix ms) strictly after `after_ms` that is
    /// within the bounds and not excluded.
    fn next_nominal(&self, after_ms: i64) -> Option<i64> {
        let mut after = after_ms;
        if let Some(start) = self.start_ms {
            // Times at or after start: strictly after start - 1 ms.
            after = after.max(start.saturating_sub(1));
        }
        let first_sec = after.div_euclid(1000) + 1;
        let horizon = first_sec.saturating_add(SEARCH_HORIZON_SECS);
        let max_year = self.local(first_sec)?.year().saturating_add(SEARCH_YEARS);
        for _ in 0..MAX_EXCLUDED_STEPS {
            let sec = self.raw_next(after, max_year)?;
            let ms = sec.checked_mul(1000)?;
            if let Some(end) = self.end_ms
                && ms > end
            {
                return None;
            }
            match self.exclusion_skip(sec) {
                None => return Some(ms),
                Some(skip_to) => {
                    if skip_to > horizon {
                        return None;
                    }
                    // Continue strictly after skip_to - 1 s, i.e. at or after skip_to.
                    after = skip_to.checked_sub(1)?.checked_mul(1000)?;
                }
            }
        }
        None
    }

    /// Wall-clock time at a Unix second in the spec's zone.
    fn local(&self, sec: i64) -> Option<NaiveDateTime> {
        Some(
            DateTime::from_timestamp(sec, 0)?
                .with_timezone(&self.tz)
                .naive_local(),
        )
    }

    /// Earliest calendar or interval time (Unix seconds) strictly after `after_ms`,
    /// ignoring bounds and exclusions.
    fn raw_next(&self, after_ms: i64, max_year: i32) -> Option<i64> {
        let first_sec = after_ms.div_euclid(1000) + 1;
        let mut best: Option<i64> = None;
        for &(every, phase) in &self.intervals {
            let t = i128::from(first_sec - 1);
            let (every, phase) = (i128::from(every), i128::from(phase));
            let next = ((t - phase).div_euclid(every) + 1) * every + phase;
            if let Ok(next) = i64::try_from(next) {
                best = Some(best.map_or(next, |b| b.min(next)));
            }
        }
        if !self.calendars.is_empty() {
            let from = self.local(first_sec)?;
            for cal in &self.calendars {
                if let Some(t) = self.calendar_next(cal, from, first_sec, max_year)
                    && best.is_none_or(|b| t < b)
                {
                    best = Some(t);
                }
            }
        }
        best
    }

    /// First instant (Unix seconds) `>= first_sec` whose wall-clock time matches `cal`,
    /// starting the wall-clock search at `from` (the local time of `first_sec`). Wall times
    /// in a gap are skipped; ambiguous ones map to their earlier instant. That mapping is
    /// monotonic, so the first accepted candidate is the earliest.
    fn calendar_next(
        &self,
        cal: &Calendar,
        from: NaiveDateTime,
        first_sec: i64,
        max_year: i32,
    ) -> Option<i64> {
        let mut from = from;
        loop {
            let cand = cal.next_at_or_after(from, max_year)?;
            let instant = match self.tz.from_local_datetime(&cand) {
                LocalResult::Single(t) => Some(t.timestamp()),
                LocalResult::Ambiguous(a, b) => Some(a.timestamp().min(b.timestamp())),
                LocalResult::None => None,
            };
            if let Some(t) = instant
                && t >= first_sec
            {
                return Some(t);
            }
            from = cand.checked_add_signed(TimeDelta::seconds(1))?;
        }
    }

    /// `None` when the time at Unix second `sec` is not excluded; otherwise the first Unix
    /// second that may be outside the exclusions (at least `sec + 1`).
    fn exclusion_skip(&self, sec: i64) -> Option<i64> {
        if self.excludes.is_empty() {
            return None;
        }
        let local = self.local(sec)?;
        let mut skip: Option<i64> = None;
        for ex in &self.excludes {
            if ex.matches(&local) {
                let to = self.skip_span(ex.span(), sec, &local);
                skip = Some(skip.map_or(to, |s| s.max(to)));
            }
        }
        skip
    }

    /// The end of the wall-clock span (per `span`, falling back to finer spans when the UTC
    /// offset changes inside it) starting at `local` = wall time of `sec`, as a Unix second.
    fn skip_span(&self, span: Span, sec: i64, local: &NaiveDateTime) -> i64 {
        let spans: &[Span] = match span {
            Span::Day => &[Span::Day, Span::Hour, Span::Minute],
            Span::Hour => &[Span::Hour, Span::Minute],
            Span::Minute => &[Span::Minute],
            Span::Second => &[],
        };
        for &s in spans {
            let end = match s {
                Span::Day => local.date().succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)),
                Span::Hour => local
                    .with_minute(0)
                    .and_then(|t| t.with_second(0))
                    .and_then(|t| t.checked_add_signed(TimeDelta::hours(1))),
                Span::Minute => local
                    .with_second(0)
                    .and_then(|t| t.checked_add_signed(TimeDelta::minutes(1))),
                Span::Second => None,
            };
            let Some(end) = end else { continue };
            let len = (end - *local).num_seconds();
            let to = sec.saturating_add(len);
            // Only skip when the offset is constant over [sec, to): every instant in it then
            // has a wall time inside the span.
            if len >= 1
                && self.local(to - 1) == local.checked_add_signed(TimeDelta::seconds(len - 1))
            {
                return to;
            }
        }
        sec + 1
    }
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
