//! Results: the figures of each run, medians over repetitions, the Durin/Temporal ratios, and
//! the text / Markdown / JSON renderings.

use std::collections::BTreeMap;

use serde::Serialize;

/// Which direction of a figure is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Better {
    Higher,
    Lower,
    /// Context only (e.g. the load generator's own CPU).
    Info,
}

impl Better {
    fn label(self) -> &'static str {
        match self {
            Better::Higher => "higher",
            Better::Lower => "lower",
            Better::Info => "info",
        }
    }
}

pub struct FigureDef {
    pub key: &'static str,
    pub label: &'static str,
    pub better: Better,
}

const fn fig(key: &'static str, label: &'static str, better: Better) -> FigureDef {
    FigureDef { key, label, better }
}

/// Every figure, in table order.
pub const FIGURES: &[FigureDef] = &[
    fig(
        "startup_ms",
        "start-up to first answered RPC (ms)",
        Better::Lower,
    ),
    fig("idle_rss_mib", "idle RSS (MiB)", Better::Lower),
    fig("wf_per_sec", "throughput (workflows/s)", Better::Higher),
    fig("p50_ms", "start->result latency p50 (ms)", Better::Lower),
    fig("p99_ms", "start->result latency p99 (ms)", Better::Lower),
    fig(
        "server_cpu_per_1k",
        "server CPU s per 1,000 wf",
        Better::Lower,
    ),
    fig("peak_rss_mib", "server peak RSS (MiB)", Better::Lower),
    fig("disk_bytes_per_wf", "disk bytes per wf", Better::Lower),
    fig(
        "start_window_s",
        "time to start all timers (s)",
        Better::Lower,
    ),
    fig(
        "timer_fire_late_p50_ms",
        "timer fire lateness p50, server events (ms)",
        Better::Lower,
    ),
    fig(
        "timer_fire_late_p99_ms",
        "timer fire lateness p99, server events (ms)",
        Better::Lower,
    ),
    fig(
        "timer_fire_late_max_ms",
        "timer fire lateness max, server events (ms)",
        Better::Lower,
    ),
    fig(
        "timers_fired_over_1s",
        "timers fired > 1 s late, server events",
        Better::Lower,
    ),
    fig(
        "timer_histories",
        "histories checked for the server events",
        Better::Info,
    ),
    fig(
        "timer_late_p50_ms",
        "timer lateness seen by the workflow p50 (ms)",
        Better::Lower,
    ),
    fig(
        "timer_late_p99_ms",
        "timer lateness seen by the workflow p99 (ms)",
        Better::Lower,
    ),
    fig(
        "timer_late_max_ms",
        "timer lateness seen by the workflow max (ms)",
        Better::Lower,
    ),
    fig(
        "timers_late_over_1s",
        "timers > 1 s late, seen by the workflow",
        Better::Lower,
    ),
    fig("server_cpu_cores", "server CPU (cores busy)", Better::Info),
    fig(
        "bench_cpu_cores",
        "bench CPU: load gen + worker (cores)",
        Better::Info,
    ),
    fig(
        "other_cpu_cores",
        "other processes' CPU (cores): noise",
        Better::Info,
    ),
];

fn def(key: &str) -> Option<&'static FigureDef> {
    FIGURES.iter().find(|f| f.key == key)
}

/// One workload on one server in one repetition.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WorkloadRun {
    pub workload: String,
    pub ok: bool,
    pub error: Option<String>,
    pub requested: u64,
    pub completed: u64,
    pub failed: u64,
    pub wall_secs: f64,
    pub figures: BTreeMap<String, f64>,
    pub notes: Vec<String>,
}

/// One server in one repetition: start-up, idle memory and its workloads.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerRun {
    pub server: String,
    pub rep: u32,
    pub error: Option<String>,
    pub startup_ms: Option<f64>,
    pub idle_rss_mib: Option<f64>,
    pub final_disk_bytes: Option<u64>,
    pub workloads: Vec<WorkloadRun>,
}

/// One row of the summary table.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub workload: String,
    pub figure: String,
    pub label: String,
    pub better: Better,
    /// Median over the successful repetitions, per server (`None`: no successful run).
    pub medians: BTreeMap<String, Option<f64>>,
    /// Successful / all repetitions, per server.
    pub ok_runs: BTreeMap<String, (usize, usize)>,
    /// durin / temporal.
    pub ratio: Option<f64>,
    /// How many times better Durin is (> 1: Durin better), for Higher/Lower figures.
    pub durin_advantage: Option<f64>,
}

pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Nearest-rank percentile (`p` in 0..=1) of unsorted values.
pub fn percentile(xs: &[f64], p: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (p * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// Figures of the pseudo-workload `server` (start-up and idle RSS) of a server run.
fn server_figures(run: &ServerRun) -> WorkloadRun {
    let mut figures = BTreeMap::new();
    if let Some(v) = run.startup_ms {
        figures.insert("startup_ms".to_string(), v);
    }
    if let Some(v) = run.idle_rss_mib {
        figures.insert("idle_rss_mib".to_string(), v);
    }
    WorkloadRun {
        workload: "server".into(),
        ok: run.error.is_none() || !figures.is_empty(),
        error: run.error.clone(),
        figures,
        ..Default::default()
    }
}

/// Medians per workload, figure and server, and the Durin/Temporal ratios.
pub fn summarize(runs: &[ServerRun], workload_order: &[String]) -> Vec<Row> {
    let mut order = vec!["server".to_string()];
    order.extend(workload_order.iter().cloned());
    let servers: Vec<String> = {
        let mut s: Vec<String> = runs.iter().map(|r| r.server.clone()).collect();
        s.sort();
        s.dedup();
        s
    };
    let mut rows = Vec::new();
    for workload in &order {
        // (server) -> the runs of this workload
        let mut per_server: BTreeMap<String, Vec<WorkloadRun>> = BTreeMap::new();
        for run in runs {
            let w = if workload == "server" {
                Some(server_figures(run))
            } else {
                run.workloads
                    .iter()
                    .find(|w| &w.workload == workload)
                    .cloned()
            };
            if let Some(w) = w {
                per_server.entry(run.server.clone()).or_default().push(w);
            }
        }
        if per_server.is_empty() {
            continue;
        }
        for fdef in FIGURES {
            let present = per_server
                .values()
                .flatten()
                .any(|w| w.figures.contains_key(fdef.key));
            if !present {
                continue;
            }
            let mut medians = BTreeMap::new();
            let mut ok_runs = BTreeMap::new();
            for server in &servers {
                let ws = per_server.get(server).cloned().unwrap_or_default();
                let ok: Vec<f64> = ws
                    .iter()
                    .filter(|w| w.ok)
                    .filter_map(|w| w.figures.get(fdef.key).copied())
                    .collect();
                ok_runs.insert(
                    server.clone(),
                    (ws.iter().filter(|w| w.ok).count(), ws.len()),
                );
                medians.insert(server.clone(), median(&ok));
            }
            let d = medians.get("durin").copied().flatten();
            let t = medians.get("temporal").copied().flatten();
            let ratio = match (d, t) {
                (Some(d), Some(t)) if t != 0.0 => Some(d / t),
                _ => None,
            };
            let durin_advantage = match (fdef.better, d, t) {
                (Better::Higher, Some(d), Some(t)) if t != 0.0 => Some(d / t),
                (Better::Lower, Some(d), Some(t)) if d != 0.0 => Some(t / d),
                _ => None,
            };
            rows.push(Row {
                workload: workload.clone(),
                figure: fdef.key.to_string(),
                label: fdef.label.to_string(),
                better: fdef.better,
                medians,
                ok_runs,
                ratio,
                durin_advantage,
            });
        }
    }
    rows
}

/// A number with as many decimals as its size deserves.
pub fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a == 0.0 {
        "0".to_string()
    } else {
        format!("{x:.3}")
    }
}

fn cell(row: &Row, server: &str) -> String {
    let (ok, all) = row.ok_runs.get(server).copied().unwrap_or((0, 0));
    if all == 0 {
        return "-".into();
    }
    match row.medians.get(server).copied().flatten() {
        Some(v) if ok == all => fmt_num(v),
        Some(v) => format!("{} ({ok}/{all} ok)", fmt_num(v)),
        None if ok == 0 => "FAILED".into(),
        None => "-".into(),
    }
}

fn table_cells(rows: &[Row]) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let header = vec![
        "workload",
        "figure",
        "better",
        "durin",
        "temporal",
        "durin/temporal",
        "durin advantage",
    ];
    let body = rows
        .iter()
        .map(|r| {
            vec![
                r.workload.clone(),
                r.label.clone(),
                r.better.label().to_string(),
                cell(r, "durin"),
                cell(r, "temporal"),
                r.ratio.map(fmt_num).unwrap_or_else(|| "-".into()),
                r.durin_advantage
                    .map(|a| format!("{}x", fmt_num(a)))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    (header, body)
}

/// The summary as an aligned plain-text table.
pub fn text_table(rows: &[Row]) -> String {
    let (header, body) = table_cells(rows);
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in &body {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = widths[i].saturating_sub(c.chars().count());
                if i >= 3 {
                    format!("{}{c}", " ".repeat(pad))
                } else {
                    format!("{c}{}", " ".repeat(pad))
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = String::new();
    out.push_str(&line(header.iter().map(|s| s.to_string()).collect()));
    out.push('\n');
    out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
    out.push('\n');
    let mut last = String::new();
    for (r, cells) in rows.iter().zip(body) {
        if !last.is_empty() && r.workload != last {
            out.push('\n');
        }
        last = r.workload.clone();
        out.push_str(&line(cells));
        out.push('\n');
    }
    out
}

/// The summary as a Markdown table.
pub fn markdown_table(rows: &[Row]) -> String {
    let (header, body) = table_cells(rows);
    let mut out = format!("| {} |\n", header.join(" | "));
    out.push_str(&format!(
        "|{}\n",
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i >= 3 { "---:|" } else { "---|" })
            .collect::<String>()
    ));
    for cells in body {
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

/// Every failed run, one line each.
pub fn failures(runs: &[ServerRun]) -> Vec<String> {
    let mut out = Vec::new();
    for r in runs {
        if let Some(e) = &r.error {
            out.push(format!(
                "rep {} {}: server: {}",
                r.rep,
                r.server,
                one_line(e)
            ));
        }
        for w in &r.workloads {
            if !w.ok {
                out.push(format!(
                    "rep {} {} {}: {} of {} completed: {}",
                    r.rep,
                    r.server,
                    w.workload,
                    w.completed,
                    w.requested,
                    one_line(w.error.as_deref().unwrap_or("failed"))
                ));
            }
        }
    }
    out
}

/// Notes the workloads recorded (e.g. timers that were not all asleep at once).
pub fn notes(runs: &[ServerRun]) -> Vec<String> {
    runs.iter()
        .flat_map(|r| {
            r.workloads.iter().flat_map(move |w| {
                w.notes
                    .iter()
                    .map(move |n| format!("rep {} {} {}: {n}", r.rep, r.server, w.workload))
            })
        })
        .collect()
}

fn one_line(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 400 {
        format!("{}...", s.chars().take(400).collect::<String>())
    } else {
        s
    }
}

/// Whether `key` is a known figure (used to keep workloads honest).
pub fn is_known(key: &str) -> bool {
    def(key).is_some()
}
