//! Parsing the string forms of a schedule spec into structured ones: cron strings
//! (5, 6 or 7 fields, `@` descriptors, `@every`, `CRON_TZ=`/`TZ=` prefixes, `#` comments)
//! and string-form `CalendarSpec`s, the way Temporal's server compiles them.

use crate::proto::api::schedule::v1::{CalendarSpec, IntervalSpec, Range, StructuredCalendarSpec};

/// What one cron string compiles to.
#[derive(Clone, Debug, PartialEq)]
pub enum CronSpec {
    Calendar(StructuredCalendarSpec),
    Interval(IntervalSpec),
}

/// A parsed cron string: the spec and the time zone of its `CRON_TZ=`/`TZ=` prefix.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedCron {
    pub spec: CronSpec,
    pub timezone: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
    Year,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day_of_month",
            Field::Month => "month",
            Field::DayOfWeek => "day_of_week",
            Field::Year => "year",
        }
    }

    /// The range `*` stands for.
    fn bounds(self) -> (i32, i32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 6),
            Field::Year => (2000, 2100),
        }
    }

    /// The largest value accepted (7 is also Sunday).
    fn max_value(self) -> i32 {
        match self {
            Field::DayOfWeek => 7,
            _ => self.bounds().1,
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &MONTHS,
            Field::DayOfWeek => &WEEKDAYS,
            _ => &[],
        }
    }

    /// Index of the first name (what `names()[0]` means).
    fn name_base(self) -> i32 {
        match self {
            Field::Month => 1,
            _ => 0,
        }
    }

    fn value(self, s: &str) -> Result<i32, String> {
        let v = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse::<i32>()
                .map_err(|_| format!("{}: value {s:?} is out of range", self.name()))?
        } else {
            let lower = s.to_ascii_lowercase();
            let pos = if lower.len() >= 3 {
                self.names().iter().position(|n| n.starts_with(&lower))
            } else {
                None
            };
            match pos {
                Some(i) => i as i32 + self.name_base(),
                None => return Err(format!("{}: invalid value {s:?}", self.name())),
            }
        };
        let (lo, _) = self.bounds();
        if v < lo || v > self.max_value() {
            return Err(format!(
                "{}: value {v} is out of range {lo}-{}",
                self.name(),
                self.max_value()
            ));
        }
        Ok(v)
    }
}

fn range(start: i32, end: i32, step: i32) -> Range {
    Range { start, end, step }
}

/// Parses one field (`*`, `?`, `N`, `N-M`, `*/S`, `N/S`, `N-M/S`, comma lists) into ranges.
/// `*` gives the field's full range with step 1, a single value `N` gives `{start: N}`.
/// A year `*` gives no ranges (every year). Day of week 7 becomes 0.
fn parse_field(s: &str, field: Field) -> Result<Vec<Range>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err(format!("{}: empty field", field.name()));
    }
    let (lo, hi) = field.bounds();
    let mut out = Vec::new();
    for item in s.split(',') {
        let item = item.trim();
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => {
                let step = if !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit()) {
                    step.parse::<i32>().ok()
                } else {
                    None
                };
                match step {
                    Some(step) if step >= 1 => (base, Some(step)),
                    _ => {
                        return Err(format!(
                            "{}: invalid step in {item:?} (must be a positive integer)",
                            field.name()
                        ));
                    }
                }
            }
            None => (item, None),
        };
        if base == "*" || base == "?" {
            if field == Field::Year && step.is_none() {
                // Every year: no ranges at all.
                if s.split(',').count() == 1 {
                    return Ok(Vec::new());
                }
            }
            out.push(range(lo, hi, step.unwrap_or(1)));
            continue;
        }
        let (start, end) = match base.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (field.value(a.trim())?, field.value(b.trim())?);
                if b < a {
                    return Err(format!(
                        "{}: range {item:?} ends before it starts",
                        field.name()
                    ));
                }
                (a, b)
            }
            None => {
                let v = field.value(base.trim())?;
                match step {
                    // `N/S`: from N to the end of the field.
                    Some(_) => (v, hi.max(v)),
                    None => (v, v),
                }
            }
        };
        if field == Field::DayOfWeek && end == 7 {
            let step = step.unwrap_or(1);
            if start <= 6 {
                out.push(range(start, 6, step));
            }
            // Sunday as 7 is in the progression: add it as 0 unless already covered.
            if (7 - start) % step == 0 && start != 0 {
                out.push(range(0, 0, 0));
            }
            continue;
        }
        if start == end && step.is_none() {
            out.push(range(start, 0, 0));
        } else {
            out.push(range(start, end, step.unwrap_or(1)));
        }
    }
    Ok(out)
}

/// Go-style duration with an additional `d` (24 h) unit, in milliseconds.
fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    match s.find('d') {
        Some(i) => {
            let days = &s[..i];
            if days.is_empty() || !days.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return None;
            }
            let days: f64 = days.parse().ok()?;
            let rest = &s[i + 1..];
            let rest_ms = if rest.is_empty() {
                0
            } else {
                crate::go_duration::parse_millis(rest)?
            };
            let total = days * 86_400_000.0 + rest_ms as f64;
            if !total.is_finite() || total > i64::MAX as f64 / 2.0 {
                return None;
            }
            Some(total as i64)
        }
        None => crate::go_duration::parse_millis(s),
    }
}

fn duration_from_ms(ms: i64) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

fn parse_every(arg: &str) -> Result<IntervalSpec, String> {
    let (every, phase) = match arg.split_once('/') {
        Some((e, p)) => (e, Some(p)),
        None => (arg, None),
    };
    let every_ms = parse_duration_ms(every).ok_or_else(|| format!("invalid duration {every:?}"))?;
    if every_ms < 1000 {
        return Err(format!("@every interval {every:?} must be at least 1s"));
    }
    let phase = match phase {
        Some(p) => {
            let ms = parse_duration_ms(p).ok_or_else(|| format!("invalid duration {p:?}"))?;
            Some(duration_from_ms(ms))
        }
        None => None,
    };
    Ok(IntervalSpec {
        interval: Some(duration_from_ms(every_ms)),
        phase,
    })
}

fn structured_from_fields(
    fields: [&str; 7],
    comment: String,
) -> Result<StructuredCalendarSpec, String> {
    let [second, minute, hour, dom, month, dow, year] = fields;
    Ok(StructuredCalendarSpec {
        second: parse_field(second, Field::Second)?,
        minute: parse_field(minute, Field::Minute)?,
        hour: parse_field(hour, Field::Hour)?,
        day_of_month: parse_field(dom, Field::DayOfMonth)?,
        month: parse_field(month, Field::Month)?,
        year: parse_field(year, Field::Year)?,
        day_of_week: parse_field(dow, Field::DayOfWeek)?,
        comment,
    })
}

/// Parses a cron string (see the module docs).
pub fn parse_cron_string(s: &str) -> Result<ParsedCron, String> {
    let (body, comment) = match s.split_once('#') {
        Some((body, comment)) => (body, comment.trim().to_string()),
        None => (s, String::new()),
    };
    let mut tokens: Vec<&str> = body.split_whitespace().collect();
    let mut timezone = None;
    if let Some(first) = tokens.first() {
        let zone = first
            .strip_prefix("CRON_TZ=")
            .or_else(|| first.strip_prefix("TZ="));
        if let Some(zone) = zone {
            if zone.is_empty() {
                return Err("empty time zone in TZ= prefix".to_string());
            }
            timezone = Some(zone.to_string());
            tokens.remove(0);
        }
    }
    let Some(first) = tokens.first() else {
        return Err("empty cron string".to_string());
    };
    if let Some(descriptor) = first.strip_prefix('@') {
        let descriptor = descriptor.to_ascii_lowercase();
        if descriptor == "every" {
            if tokens.len() != 2 {
                return Err("@every takes exactly one argument: <interval>[/<phase>]".to_string());
            }
            return Ok(ParsedCron {
                spec: CronSpec::Interval(parse_every(tokens[1])?),
                timezone,
            });
        }
        if tokens.len() != 1 {
            return Err(format!("unexpected fields after @{descriptor}"));
        }
        // second minute hour day_of_month month day_of_week year
        let fields = match descriptor.as_str() {
            "yearly" | "annually" => ["0", "0", "0", "1", "1", "*", "*"],
            "monthly" => ["0", "0", "0", "1", "*", "*", "*"],
            "weekly" => ["0", "0", "0", "*", "*", "0", "*"],
            "daily" | "midnight" => ["0", "0", "0", "*", "*", "*", "*"],
            "hourly" => ["0", "0", "*", "*", "*", "*", "*"],
            _ => return Err(format!("unknown descriptor @{descriptor}")),
        };
        return Ok(ParsedCron {
            spec: CronSpec::Calendar(structured_from_fields(fields, comment)?),
            timezone,
        });
    }
    let fields = match tokens.as_slice() {
        [mi, h, dom, mo, dow] => ["0", mi, h, dom, mo, dow, "*"],
        [mi, h, dom, mo, dow, y] => ["0", mi, h, dom, mo, dow, y],
        [s, mi, h, dom, mo, dow, y] => [*s, *mi, *h, *dom, *mo, *dow, *y],
        other => {
            return Err(format!("expected 5, 6 or 7 fields, got {}", other.len()));
        }
    };
    Ok(ParsedCron {
        spec: CronSpec::Calendar(structured_from_fields(fields, comment)?),
        timezone,
    })
}

/// Compiles a string-form `CalendarSpec`. Empty fields take their defaults: second, minute
/// and hour `0`; day_of_month, month, year and day_of_week `*`.
pub fn calendar_to_structured(c: &CalendarSpec) -> Result<StructuredCalendarSpec, String> {
    fn or<'a>(s: &'a str, default: &'a str) -> &'a str {
        if s.trim().is_empty() { default } else { s }
    }
    structured_from_fields(
        [
            or(&c.second, "0"),
            or(&c.minute, "0"),
            or(&c.hour, "0"),
            or(&c.day_of_month, "*"),
            or(&c.month, "*"),
            or(&c.day_of_week, "*"),
            or(&c.year, "*"),
        ],
        c.comment.clone(),
    )
}
