//! The standard Prometheus process metrics (`process_*`, as every Prometheus client library
//! names them), read from `/proc/self` at scrape time; absent where there is no `/proc`.

use std::fmt::Write as _;
use std::sync::OnceLock;

/// The kernel's clock ticks per second, which `/proc/self/stat` counts CPU time in (100 on
/// every Linux that Durin targets; `sysconf(_SC_CLK_TCK)` would need libc).
const TICKS_PER_SECOND: f64 = 100.0;
const PAGE_SIZE: u64 = 4096;

/// When this process started, in seconds since the epoch (taken when metrics are first used).
fn start_time() -> f64 {
    static START: OnceLock<f64> = OnceLock::new();
    *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default()
    })
}

/// Marks the process start (call once at start-up, so `process_start_time_seconds` is right).
pub fn mark_start() {
    start_time();
}

pub fn render(out: &mut String) {
    let mut gauge = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    gauge(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since the Unix epoch, in seconds.",
        start_time(),
    );
    // Fields after the command name (which may hold spaces) in /proc/self/stat: utime and
    // stime are the 12th and 13th, vsize the 21st, rss (pages) the 22nd.
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some((_, rest)) = stat.rsplit_once(')')
    {
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        gauge(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent, in seconds.",
            (field(11) + field(12)) as f64 / TICKS_PER_SECOND,
        );
        gauge(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            field(20) as f64,
        );
        gauge(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            (field(21) * PAGE_SIZE) as f64,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        gauge(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds.count() as f64,
        );
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits")
        && let Some(line) = limits.lines().find(|l| l.starts_with("Max open files"))
        && let Some(soft) = line
            .split_whitespace()
            .nth(3)
            .and_then(|v| v.parse::<f64>().ok())
    {
        gauge(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            soft,
        );
    }
}
