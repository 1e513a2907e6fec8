//! Compiled structured calendars: one bit set per field, matching local wall-clock times and
//! searching forward for the next matching wall-clock second without stepping second by
//! second (whole years, months, days, hours and minutes that cannot match are skipped).

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use crate::proto::api::schedule::v1::{Range, StructuredCalendarSpec};

const ALL_60: u64 = (1u64 << 60) - 1;
const ALL_24: u64 = (1u64 << 24) - 1;
/// Days 1..=31.
const ALL_DAYS: u64 = ((1u64 << 32) - 1) & !1;
/// Months 1..=12.
const ALL_MONTHS: u64 = ((1u64 << 13) - 1) & !1;
/// Weekdays 0..=6 (0 is Sunday).
const ALL_WEEKDAYS: u64 = (1u64 << 7) - 1;

/// The coarsest span of wall-clock time that a calendar matches completely once it matches
/// one second of it (its finer fields match every value). Lets exclusions skip ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    Second,
    Minute,
    Hour,
    Day,
}

/// A year range, normalized: `start <= end`, `step >= 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct YearRange {
    start: i64,
    end: i64,
    step: i64,
}

/// A `StructuredCalendarSpec` ready for matching.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    second: u64,
    minute: u64,
    hour: u64,
    day_of_month: u64,
    month: u64,
    day_of_week: u64,
    /// Empty: every year.
    years: Vec<YearRange>,
}

/// `(start, end, step)` of a range with Temporal's defaults applied: `end < start` means
/// `end = start`, step 0 means 1; a negative step is an error.
fn normalize(r: &Range, field: &str) -> Result<(i64, i64, i64), String> {
    if r.step < 0 {
        return Err(format!(
            "{field}: range step must not be negative (got {})",
            r.step
        ));
    }
    let start = i64::from(r.start);
    let end = i64::from(r.end).max(start);
    let step = i64::from(r.step).max(1);
    Ok((start, end, step))
}

/// The bit set of the values `lo..=hi` that the ranges cover (values outside are ignored);
/// `default` when there are no ranges.
fn mask(ranges: &[Range], lo: i64, hi: i64, default: u64, field: &str) -> Result<u64, String> {
    if ranges.is_empty() {
        return Ok(default);
    }
    let mut bits = 0u64;
    for r in ranges {
        let (mut v, end, step) = normalize(r, field)?;
        if v < lo {
            // First value of the progression that is >= lo.
            v += (lo - v + step - 1) / step * step;
        }
        let last = end.min(hi);
        while v <= last {
            bits |= 1u64 << v;
            v += step;
        }
    }
    Ok(bits)
}

/// The set bits of `mask` within `lo..=hi`, ascending.
fn bits_in(mask: u64, lo: u32, hi: u32) -> impl Iterator<Item = u32> {
    let window = if lo > hi || lo > 63 {
        0
    } else {
        let upper = if hi >= 63 {
            u64::MAX
        } else {
            (1u64 << (hi + 1)) - 1
        };
        upper & !((1u64 << lo) - 1)
    };
    let mut m = mask & window;
    std::iter::from_fn(move || {
        if m == 0 {
            None
        } else {
            let b = m.trailing_zeros();
            m &= m - 1;
            Some(b)
        }
    })
}

fn has(mask: u64, v: u32) -> bool {
    v < 64 && mask & (1u64 << v) != 0
}

pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            if leap { 29 } else { 28 }
        }
    }
}

impl Calendar {
    /// Compiles a structured calendar. Empty `second`/`minute`/`hour` mean 0; empty
    /// `day_of_month`/`month`/`day_of_week`/`year` mean every value. Day of week 7 is Sunday.
    pub fn compile(spec: &StructuredCalendarSpec) -> Result<Self, String> {
        let second = mask(&spec.second, 0, 59, 1, "second")?;
        let minute = mask(&spec.minute, 0, 59, 1, "minute")?;
        let hour = mask(&spec.hour, 0, 23, 1, "hour")?;
        let day_of_month = mask(&spec.day_of_month, 1, 31, ALL_DAYS, "day_of_month")?;
        let month = mask(&spec.month, 1, 12, ALL_MONTHS, "month")?;
        let mut day_of_week = mask(&spec.day_of_week, 0, 7, ALL_WEEKDAYS, "day_of_week")?;
        if day_of_week & (1 << 7) != 0 {
            day_of_week = (day_of_week & ALL_WEEKDAYS) | 1;
        }
        let years = spec
            .year
            .iter()
            .map(|r| normalize(r, "year").map(|(start, end, step)| YearRange { start, end, step }))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            second,
            minute,
            hour,
            day_of_month,
            month,
            day_of_week,
            years,
        })
    }

    fn year_matches(&self, year: i32) -> bool {
        let y = i64::from(year);
        self.years.is_empty()
            || self
                .years
                .iter()
                .any(|r| y >= r.start && y <= r.end && (y - r.start) % r.step == 0)
    }

    fn date_matches(&self, date: NaiveDate) -> bool {
        has(self.day_of_month, date.day())
            && has(self.day_of_week, date.weekday().num_days_from_sunday())
    }

    /// Whether the wall-clock time matches every field.
    pub fn matches(&self, t: &NaiveDateTime) -> bool {
        self.year_matches(t.year())
            && has(self.month, t.month())
            && self.date_matches(t.date())
            && has(self.hour, t.hour())
            && has(self.minute, t.minute())
            && has(self.second, t.second())
    }

    /// See [`Span`].
    pub fn span(&self) -> Span {
        if self.second != ALL_60 {
            Span::Second
        } else if self.minute != ALL_60 {
            Span::Minute
        } else if self.hour != ALL_24 {
            Span::Hour
        } else {
            Span::Day
        }
    }

    /// The first matching wall-clock second at or after `from` (sub-second part ignored),
    /// searching no further than the end of `max_year`.
    pub fn next_at_or_after(&self, from: NaiveDateTime, max_year: i32) -> Option<NaiveDateTime> {
        let (fy, fmo, fd) = (from.year(), from.month(), from.day());
        let (fh, fmi, fs) = (from.hour(), from.minute(), from.second());
        let mut first = true;
        let mut y = fy;
        while y <= max_year {
            if self.year_matches(y) {
                for mo in bits_in(self.month, if first { fmo } else { 1 }, 12) {
                    let first_mo = first && mo == fmo;
                    let dim = days_in_month(y, mo);
                    for d in bits_in(self.day_of_month, if first_mo { fd } else { 1 }, dim) {
                        let Some(date) = NaiveDate::from_ymd_opt(y, mo, d) else {
                            continue;
                        };
                        if !has(self.day_of_week, date.weekday().num_days_from_sunday()) {
                            continue;
                        }
                        let first_d = first_mo && d == fd;
                        for h in bits_in(self.hour, if first_d { fh } else { 0 }, 23) {
                            let first_h = first_d && h == fh;
                            for mi in bits_in(self.minute, if first_h { fmi } else { 0 }, 59) {
                                let first_mi = first_h && mi == fmi;
                                let s0 = if first_mi { fs } else { 0 };
                                if let Some(s) = bits_in(self.second, s0, 59).next() {
                                    return date.and_hms_opt(h, mi, s);
                                }
                            }
                        }
                    }
                }
            }
            first = false;
            y = y.checked_add(1)?;
        }
        None
    }
}
