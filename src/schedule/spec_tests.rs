//! Known-date tests of schedule specs: cron, calendars, intervals, time zones and DST,
//! exclusions, bounds, jitter, and bad input.
use super::*;
use crate::proto::api::schedule::v1::{CalendarSpec, IntervalSpec, Range, StructuredCalendarSpec};
use chrono::Utc;

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
        .single()
        .expect("valid test date")
        .timestamp_millis()
}

fn in_zone(zone: &str, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    let tz: Tz = zone.parse().expect("zone");
    tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .earliest()
        .expect("valid local time")
        .timestamp_millis()
}

fn cron_spec(crons: &[&str]) -> ScheduleSpec {
    ScheduleSpec {
        cron_string: crons.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn compile(spec: &ScheduleSpec) -> CompiledSpec {
    let canonical = canonicalize(spec).expect("canonicalize");
    CompiledSpec::compile(&canonical).expect("compile")
}

/// The next `n` nominal times after `after`.
fn times(spec: &CompiledSpec, after: i64, n: usize) -> Vec<i64> {
    let mut out = Vec::new();
    let mut t = after;
    for _ in 0..n {
        match spec.next(t, "") {
            Some((nominal, _)) => {
                out.push(nominal);
                t = nominal;
            }
            None => break,
        }
    }
    out
}

fn r(start: i32, end: i32, step: i32) -> Range {
    Range { start, end, step }
}

fn dur(seconds: i64) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration { seconds, nanos: 0 }
}

fn ts(ms: i64) -> prost_wkt_types::Timestamp {
    prost_wkt_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

#[test]
fn cron_weekdays_at_noon() {
    let spec = compile(&cron_spec(&["0 12 * * MON-FRI"]));
    // 2026-01-02 is a Friday.
    let got = times(&spec, utc(2026, 1, 2, 12, 0, 0), 3);
    assert_eq!(
        got,
        vec![
            utc(2026, 1, 5, 12, 0, 0),
            utc(2026, 1, 6, 12, 0, 0),
            utc(2026, 1, 7, 12, 0, 0)
        ]
    );
    // Strictly after: one millisecond before noon gives noon.
    let friday_noon = utc(2026, 1, 2, 12, 0, 0);
    assert_eq!(
        spec.next(friday_noon - 1, "s"),
        Some((friday_noon, friday_noon))
    );
}

#[test]
fn cron_every_fifteen_minutes() {
    let spec = compile(&cron_spec(&["*/15 * * * *"]));
    let got = times(&spec, utc(2026, 12, 31, 23, 31, 7), 3);
    assert_eq!(
        got,
        vec![
            utc(2026, 12, 31, 23, 45, 0),
            utc(2027, 1, 1, 0, 0, 0),
            utc(2027, 1, 1, 0, 15, 0)
        ]
    );
}

#[test]
fn cron_seven_fields_with_seconds_and_year() {
    let spec = compile(&cron_spec(&["*/20 30 8 * * * 2027"]));
    let got = times(&spec, utc(2026, 6, 1, 0, 0, 0), 4);
    assert_eq!(
        got,
        vec![
            utc(2027, 1, 1, 8, 30, 0),
            utc(2027, 1, 1, 8, 30, 20),
            utc(2027, 1, 1, 8, 30, 40),
            utc(2027, 1, 2, 8, 30, 0)
        ]
    );
    // After the last second of 2027 there is nothing.
    assert_eq!(spec.next(utc(2027, 12, 31, 8, 30, 40), ""), None);
}

#[test]
fn cron_six_fields_year_and_names() {
    let spec = compile(&cron_spec(&["0 0 29 feb ? 2028"]));
    assert_eq!(
        times(&spec, utc(2026, 1, 1, 0, 0, 0), 2),
        vec![utc(2028, 2, 29, 0, 0, 0)]
    );
    // Day of week 7 is Sunday; 2026-01-04 is a Sunday.
    let spec = compile(&cron_spec(&["0 6 * * 7"]));
    assert_eq!(
        times(&spec, utc(2026, 1, 1, 0, 0, 0), 1),
        vec![utc(2026, 1, 4, 6, 0, 0)]
    );
}

#[test]
fn cron_descriptors() {
    let start = utc(2026, 3, 15, 10, 20, 30); // a Sunday
    let cases = [
        ("@yearly", utc(2027, 1, 1, 0, 0, 0)),
        ("@annually", utc(2027, 1, 1, 0, 0, 0)),
        ("@monthly", utc(2026, 4, 1, 0, 0, 0)),
        ("@weekly", utc(2026, 3, 22, 0, 0, 0)),
        ("@daily", utc(2026, 3, 16, 0, 0, 0)),
        ("@midnight", utc(2026, 3, 16, 0, 0, 0)),
        ("@hourly", utc(2026, 3, 15, 11, 0, 0)),
    ];
    for (cron, want) in cases {
        let spec = compile(&cron_spec(&[cron]));
        assert_eq!(spec.next(start, "").map(|t| t.0), Some(want), "{cron}");
    }
}

#[test]
fn cron_every_descriptor() {
    let spec = compile(&cron_spec(&["@every 90s"]));
    // Multiples of 90 s since the epoch.
    let after = utc(2026, 1, 1, 0, 0, 0); // divisible by 90 s
    assert_eq!(
        times(&spec, after, 2),
        vec![after + 90_000, after + 180_000]
    );

    let canonical =
        canonicalize(&cron_spec(&["@every 1h/15m # quarter past"])).expect("canonicalize");
    assert!(canonical.structured_calendar.is_empty());
    assert_eq!(canonical.interval.len(), 1);
    assert_eq!(canonical.interval[0].interval, Some(dur(3600)));
    assert_eq!(canonical.interval[0].phase, Some(dur(900)));
    let spec = CompiledSpec::compile(&canonical).expect("compile");
    assert_eq!(
        times(&spec, utc(2026, 1, 1, 10, 15, 0), 2),
        vec![utc(2026, 1, 1, 11, 15, 0), utc(2026, 1, 1, 12, 15, 0)]
    );
}

#[test]
fn cron_tz_follows_daylight_saving() {
    let canonical = canonicalize(&cron_spec(&["CRON_TZ=America/New_York 0 9 * * *"])).expect("ok");
    assert_eq!(canonical.timezone_name, "America/New_York");
    assert!(canonical.cron_string.is_empty());
    let spec = CompiledSpec::compile(&canonical).expect("compile");
    // Winter (EST, UTC-5): 14:00 UTC; summer (EDT, UTC-4): 13:00 UTC.
    assert_eq!(
        spec.next(utc(2026, 1, 15, 0, 0, 0), "").map(|t| t.0),
        Some(utc(2026, 1, 15, 14, 0, 0))
    );
    assert_eq!(
        spec.next(utc(2026, 7, 15, 0, 0, 0), "").map(|t| t.0),
        Some(utc(2026, 7, 15, 13, 0, 0))
    );
    // TZ= works too, and a conflicting zone in the spec is an error.
    let spec = compile(&cron_spec(&["TZ=Europe/Berlin 0 9 * * *"]));
    assert_eq!(
        spec.next(utc(2026, 1, 15, 0, 0, 0), "").map(|t| t.0),
        Some(utc(2026, 1, 15, 8, 0, 0))
    );
    let mut conflicting = cron_spec(&["TZ=Europe/Berlin 0 9 * * *"]);
    conflicting.timezone_name = "America/New_York".into();
    assert!(canonicalize(&conflicting).is_err());
}

#[test]
fn dst_gap_is_skipped() {
    // 2026-03-08 02:30 does not exist in New York (clocks jump 02:00 -> 03:00).
    let mut s = cron_spec(&["30 2 * * *"]);
    s.timezone_name = "America/New_York".into();
    let spec = compile(&s);
    let got = times(&spec, in_zone("America/New_York", 2026, 3, 7, 3, 0), 2);
    assert_eq!(
        got,
        vec![
            in_zone("America/New_York", 2026, 3, 9, 2, 30),
            in_zone("America/New_York", 2026, 3, 10, 2, 30)
        ]
    );
    assert_eq!(got[0], utc(2026, 3, 9, 6, 30, 0));
    // A calendar that fires every minute skips the whole missing hour.
    let mut s = cron_spec(&["* * 8 3 *"]);
    s.timezone_name = "America/New_York".into();
    let spec = compile(&s);
    let before_gap = utc(2026, 3, 8, 6, 59, 0); // 01:59 EST
    assert_eq!(
        spec.next(before_gap, "").map(|t| t.0),
        Some(utc(2026, 3, 8, 7, 0, 0)) // 03:00 EDT
    );
}

#[test]
fn dst_overlap_happens_once() {
    // 2026-11-01 01:30 happens twice in New York (EDT then EST); it fires once, at the
    // earlier instant (05:30 UTC), and the next firing is the following day.
    let mut s = cron_spec(&["30 1 * * *"]);
    s.timezone_name = "America/New_York".into();
    let spec = compile(&s);
    let got = times(&spec, utc(2026, 11, 1, 0, 0, 0), 2);
    assert_eq!(
        got,
        vec![utc(2026, 11, 1, 5, 30, 0), utc(2026, 11, 2, 6, 30, 0)]
    );
    // Asking from inside the repeated hour (01:10 EST) does not fire 01:30 again.
    assert_eq!(
        spec.next(utc(2026, 11, 1, 6, 10, 0), "").map(|t| t.0),
        Some(utc(2026, 11, 2, 6, 30, 0))
    );
}

#[test]
fn every_second_cron_in_repeated_hour() {
    // From inside the second 01:xx (EST) every wall time has already happened (in EDT),
    // so the next firing is 02:00 EST.
    let mut s = cron_spec(&["* * * * * * *"]);
    s.timezone_name = "America/New_York".into();
    let spec = compile(&s);
    assert_eq!(
        spec.next(utc(2026, 11, 1, 6, 10, 0), "").map(|t| t.0),
        Some(utc(2026, 11, 1, 7, 0, 0))
    );
    assert_eq!(
        spec.next(utc(2026, 11, 1, 5, 10, 0), "").map(|t| t.0),
        Some(utc(2026, 11, 1, 5, 10, 1))
    );
}

#[test]
fn excluding_everything_gives_none() {
    let mut s = cron_spec(&["* * * * * * *"]);
    s.exclude_structured_calendar = vec![all_day(Vec::new())];
    let spec = compile(&s);
    assert_eq!(spec.next(utc(2026, 1, 1, 0, 0, 0), ""), None);
}

#[test]
fn interval_with_phase() {
    let spec = compile(&ScheduleSpec {
        interval: vec![IntervalSpec {
            interval: Some(dur(3600)),
            phase: Some(dur(19 * 60)),
        }],
        ..Default::default()
    });
    assert_eq!(
        times(&spec, utc(2026, 5, 5, 10, 19, 0), 2),
        vec![utc(2026, 5, 5, 11, 19, 0), utc(2026, 5, 5, 12, 19, 0)]
    );
    assert_eq!(
        spec.next(utc(2026, 5, 5, 10, 18, 59) + 999, "")
            .map(|t| t.0),
        Some(utc(2026, 5, 5, 10, 19, 0))
    );
    // 28 days, phase 3d 5h 23m: the proto's documented example.
    let spec = compile(&ScheduleSpec {
        interval: vec![IntervalSpec {
            interval: Some(dur(28 * 86400)),
            phase: Some(dur(3 * 86400 + 5 * 3600 + 23 * 60)),
        }],
        ..Default::default()
    });
    assert_eq!(
        spec.next(utc(2022, 2, 19, 0, 0, 0), "").map(|t| t.0),
        Some(utc(2022, 2, 20, 5, 23, 0))
    );
    // One-second interval: every whole second.
    let spec = compile(&ScheduleSpec {
        interval: vec![IntervalSpec {
            interval: Some(dur(1)),
            phase: None,
        }],
        ..Default::default()
    });
    let t = utc(2026, 1, 1, 0, 0, 0);
    assert_eq!(spec.next(t + 1, "").map(|t| t.0), Some(t + 1000));
}

fn all_day(dow: Vec<Range>) -> StructuredCalendarSpec {
    StructuredCalendarSpec {
        second: vec![r(0, 59, 1)],
        minute: vec![r(0, 59, 1)],
        hour: vec![r(0, 23, 1)],
        day_of_week: dow,
        ..Default::default()
    }
}

#[test]
#[allow(deprecated)]
fn exclusions_skip_matching_times() {
    let mut s = cron_spec(&["0 12 * * *"]);
    s.exclude_structured_calendar = vec![all_day(vec![r(0, 0, 0)])]; // Sundays
    let spec = compile(&s);
    // 2026-01-03 is a Saturday: next is Monday, not Sunday.
    assert_eq!(
        times(&spec, utc(2026, 1, 3, 12, 0, 0), 2),
        vec![utc(2026, 1, 5, 12, 0, 0), utc(2026, 1, 6, 12, 0, 0)]
    );
    // String-form exclusion: weekends, for an every-second interval (skips whole days).
    let s = ScheduleSpec {
        interval: vec![IntervalSpec {
            interval: Some(dur(1)),
            phase: None,
        }],
        exclude_calendar: vec![CalendarSpec {
            second: "*".into(),
            minute: "*".into(),
            hour: "*".into(),
            day_of_week: "sat,sun".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let canonical = canonicalize(&s).expect("canonicalize");
    assert!(canonical.exclude_calendar.is_empty());
    assert_eq!(canonical.exclude_structured_calendar.len(), 1);
    let spec = CompiledSpec::compile(&canonical).expect("compile");
    assert_eq!(
        spec.next(utc(2026, 1, 2, 23, 59, 59), "").map(|t| t.0),
        Some(utc(2026, 1, 5, 0, 0, 0))
    );
    // Default string fields exclude only midnight.
    let s = ScheduleSpec {
        cron_string: vec!["0 * * * *".into()],
        exclude_calendar: vec![CalendarSpec::default()],
        ..Default::default()
    };
    let spec = compile(&s);
    assert_eq!(
        spec.next(utc(2026, 1, 1, 23, 0, 0), "").map(|t| t.0),
        Some(utc(2026, 1, 2, 1, 0, 0))
    );
}

#[test]
fn start_and_end_bounds() {
    let mut s = cron_spec(&["0 * * * *"]);
    s.start_time = Some(ts(utc(2026, 1, 1, 5, 0, 0)));
    s.end_time = Some(ts(utc(2026, 1, 1, 7, 0, 0)));
    let spec = compile(&s);
    assert_eq!(
        times(&spec, utc(2025, 1, 1, 0, 0, 0), 10),
        vec![
            utc(2026, 1, 1, 5, 0, 0),
            utc(2026, 1, 1, 6, 0, 0),
            utc(2026, 1, 1, 7, 0, 0)
        ]
    );
    // A start between firings rounds up to the next one.
    s.start_time = Some(ts(utc(2026, 1, 1, 5, 0, 0) + 1));
    let spec = compile(&s);
    assert_eq!(
        spec.next(0, "").map(|t| t.0),
        Some(utc(2026, 1, 1, 6, 0, 0))
    );
}

#[test]
fn jitter_is_deterministic_and_bounded() {
    let mut s = cron_spec(&["*/10 * * * *"]);
    s.jitter = Some(dur(3600)); // more than the 10-minute spacing: capped
    let spec = compile(&s);
    let after = utc(2026, 4, 1, 0, 0, 0);
    let mut distinct = std::collections::HashSet::new();
    for seed in ["a", "b", "c", "d", "e"] {
        let (nominal, actual) = spec.next(after, seed).expect("next");
        assert_eq!(nominal, utc(2026, 4, 1, 0, 10, 0));
        assert_eq!(spec.next(after, seed), Some((nominal, actual)));
        assert!(actual >= nominal && actual < utc(2026, 4, 1, 0, 20, 0));
        distinct.insert(actual);
    }
    assert!(distinct.len() > 1, "seeds should spread the jitter");

    s.jitter = Some(dur(30));
    let spec = compile(&s);
    let (nominal, actual) = spec.next(after, "wf").expect("next");
    assert!(actual >= nominal && actual < nominal + 30_000);
    // Without jitter, actual is nominal.
    let spec = compile(&cron_spec(&["*/10 * * * *"]));
    let (nominal, actual) = spec.next(after, "wf").expect("next");
    assert_eq!(nominal, actual);
}

#[test]
fn invalid_inputs_are_errors() {
    for cron in [
        "61 * * * *",
        "* * * *",
        "* * * * * * * *",
        "*/0 * * * *",
        "5-1 * * * *",
        "0 0 * foo *",
        "0 0 32 * *",
        "0 24 * * *",
        "",
        "CRON_TZ=",
        "@fortnightly",
        "@every",
        "@every 0s",
        "@every banana",
        "@daily extra",
        "1,,2 * * * *",
        "x-y * * * *",
    ] {
        let result = canonicalize(&cron_spec(&[cron]));
        assert!(result.is_err(), "{cron:?} should be rejected: {result:?}");
    }
    let mut s = cron_spec(&["0 0 * * *"]);
    s.timezone_name = "Mars/Olympus_Mons".into();
    assert!(canonicalize(&s).is_err());
    assert!(CompiledSpec::compile(&s).is_err());
    assert!(canonicalize(&cron_spec(&["CRON_TZ=Nowhere/Atlantis 0 0 * * *"])).is_err());

    let zero = ScheduleSpec {
        interval: vec![IntervalSpec {
            interval: Some(dur(0)),
            phase: None,
        }],
        ..Default::default()
    };
    assert!(CompiledSpec::compile(&zero).is_err());
    let missing = ScheduleSpec {
        interval: vec![IntervalSpec::default()],
        ..Default::default()
    };
    assert!(CompiledSpec::compile(&missing).is_err());
    let negative_step = ScheduleSpec {
        structured_calendar: vec![StructuredCalendarSpec {
            hour: vec![r(0, 23, -1)],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(CompiledSpec::compile(&negative_step).is_err());
    let bad_calendar = ScheduleSpec {
        calendar: vec![CalendarSpec {
            hour: "25".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(canonicalize(&bad_calendar).is_err());
}

#[test]
fn canonicalize_compiles_cron_strings() {
    let canonical = canonicalize(&cron_spec(&["5,9 */2 * * MON-FRI # work hours"])).expect("ok");
    assert!(canonical.cron_string.is_empty());
    assert_eq!(canonical.structured_calendar.len(), 1);
    let c = &canonical.structured_calendar[0];
    assert_eq!(c.second, vec![r(0, 0, 0)]);
    assert_eq!(c.minute, vec![r(5, 0, 0), r(9, 0, 0)]);
    assert_eq!(c.hour, vec![r(0, 23, 2)]);
    assert_eq!(c.day_of_month, vec![r(1, 31, 1)]);
    assert_eq!(c.month, vec![r(1, 12, 1)]);
    assert_eq!(c.day_of_week, vec![r(1, 5, 1)]);
    assert!(c.year.is_empty());
    assert_eq!(c.comment, "work hours");

    let c = &canonicalize(&cron_spec(&["* * * * 5-7"]))
        .expect("ok")
        .structured_calendar[0];
    assert_eq!(c.minute, vec![r(0, 59, 1)]);
    assert_eq!(c.day_of_week, vec![r(5, 6, 1), r(0, 0, 0)]);

    // String calendars: defaults for empty fields.
    let canonical = canonicalize(&ScheduleSpec {
        calendar: vec![CalendarSpec {
            hour: "9-17/4".into(),
            month: "Jan,dec".into(),
            ..Default::default()
        }],
        ..Default::default()
    })
    .expect("ok");
    assert!(canonical.calendar.is_empty());
    let c = &canonical.structured_calendar[0];
    assert_eq!(c.second, vec![r(0, 0, 0)]);
    assert_eq!(c.minute, vec![r(0, 0, 0)]);
    assert_eq!(c.hour, vec![r(9, 17, 4)]);
    assert_eq!(c.month, vec![r(1, 0, 0), r(12, 0, 0)]);
    assert_eq!(c.day_of_week, vec![r(0, 6, 1)]);
    let spec = CompiledSpec::compile(&canonical).expect("compile");
    assert_eq!(
        times(&spec, utc(2026, 1, 31, 12, 0, 0), 3),
        vec![
            utc(2026, 1, 31, 13, 0, 0),
            utc(2026, 1, 31, 17, 0, 0),
            utc(2026, 12, 1, 9, 0, 0)
        ]
    );
}

#[test]
fn structured_defaults_and_day_matching() {
    // Empty hour/minute/second mean 0; both day_of_month and day_of_week must match:
    // Friday the 13th.
    let spec = compile(&ScheduleSpec {
        structured_calendar: vec![StructuredCalendarSpec {
            day_of_month: vec![r(13, 0, 0)],
            day_of_week: vec![r(5, 0, 0)],
            ..Default::default()
        }],
        ..Default::default()
    });
    let got = times(&spec, utc(2026, 1, 1, 0, 0, 0), 2);
    assert_eq!(
        got,
        vec![utc(2026, 2, 13, 0, 0, 0), utc(2026, 3, 13, 0, 0, 0)]
    );
    for t in got {
        let d = DateTime::from_timestamp_millis(t).expect("t").date_naive();
        assert_eq!(d.weekday().num_days_from_sunday(), 5);
    }
    // Nothing ever matches (February 30th): None, quickly.
    let spec = compile(&cron_spec(&["0 0 30 2 *"]));
    assert_eq!(spec.next(utc(2026, 1, 1, 0, 0, 0), ""), None);
    // Union of several calendars and an interval picks the earliest.
    let mut s = cron_spec(&["0 10 * * *", "0 8 * * *"]);
    s.interval = vec![IntervalSpec {
        interval: Some(dur(86400)),
        phase: Some(dur(9 * 3600)),
    }];
    let spec = compile(&s);
    assert_eq!(
        times(&spec, utc(2026, 1, 1, 0, 0, 0), 3),
        vec![
            utc(2026, 1, 1, 8, 0, 0),
            utc(2026, 1, 1, 9, 0, 0),
            utc(2026, 1, 1, 10, 0, 0)
        ]
    );
}
