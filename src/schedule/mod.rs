//! Schedules: when actions happen (`spec`: calendars, cron strings, intervals, time zones,
//! jitter). The engine keeps schedule state and starts the workflows (`engine::schedules`).

pub mod calendar;
pub mod cron;
pub mod spec;
