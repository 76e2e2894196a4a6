//! The run's report: figures against their baselines and targets, latency
//! percentiles per operation, throughput over time, errors by kind, the gateway's
//! memory and CPU; printed as a table and written as JSON and as an HTML page with SVG
//! plots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::stats::{OpSummary, Stats};

/// One headline figure.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// What was measured.
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// The same measurement on the bare baseline, in this run.
    pub baseline: Option<f64>,
    /// value / baseline.
    pub ratio: Option<f64>,
    /// The goal, in words (for example `ratio ≥ 0.8`).
    pub target: Option<String>,
    /// Whether the goal was met.
    pub met: Option<bool>,
}

/// A goal for a figure.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// No goal.
    None,
    /// value / baseline must be at least this.
    RatioAtLeast(f64),
    /// value / baseline must be at most this (a cost against an undisturbed run).
    RatioAtMost(f64),
    /// The value must be at most this.
    AtMost(f64),
    /// The value must be exactly this.
    Equals(f64),
}

impl Figure {
    /// A figure with an optional baseline and a goal.
    pub fn new(name: &str, value: f64, unit: &str, baseline: Option<f64>, target: Target) -> Self {
        let ratio = baseline.filter(|b| *b > 0.0).map(|b| value / b);
        let (target, met) = match target {
            Target::None => (None, None),
            Target::RatioAtLeast(r) => (Some(format!("ratio ≥ {r}")), ratio.map(|x| x >= r)),
            Target::RatioAtMost(r) => (Some(format!("ratio ≤ {r}")), ratio.map(|x| x <= r)),
            Target::AtMost(m) => (Some(format!("≤ {m} {unit}")), Some(value <= m)),
            Target::Equals(e) => (Some(format!("= {e}")), Some(value == e)),
        };
        Self {
            name: name.to_owned(),
            value,
            unit: unit.to_owned(),
            baseline,
            ratio,
            target,
            met,
        }
    }
}

/// The gateway's memory and CPU at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct ResourcePoint {
    /// Seconds since the run started.
    pub t_secs: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// CPU since the previous point, percent of one core.
    pub cpu_percent: f64,
}

/// Everything a run found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The scenario.
    pub scenario: String,
    /// Simulated devices.
    pub devices: usize,
    /// Requested duration of the steady phase, seconds.
    pub duration_secs: f64,
    /// Cores on this machine (harness and gateway share them).
    pub cores: usize,
    /// Headline figures.
    pub figures: Vec<Figure>,
    /// Latency per operation.
    pub operations: Vec<OpSummary>,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Completions per second per operation.
    pub throughput: BTreeMap<u64, BTreeMap<String, u64>>,
    /// The gateway's memory and CPU over time.
    pub gateway: Vec<ResourcePoint>,
    /// Problems that fail the run (lost or duplicated data, devices that could not
    /// connect); empty when it passed.
    pub failures: Vec<String>,
}

impl Report {
    /// The report of a run of `scenario`: its figures, and the latencies, errors and
    /// throughput `stats` gathered, on this machine's cores.
    pub fn of_run(
        scenario: &str,
        devices: usize,
        duration_secs: f64,
        stats: &Stats,
        figures: Vec<Figure>,
        gateway: Vec<ResourcePoint>,
        failures: Vec<String>,
    ) -> Self {
        Self {
            scenario: scenario.to_owned(),
            devices,
            duration_secs,
            cores: crate::machine::cores(),
            figures,
            operations: stats.summaries(),
            errors: stats.errors(),
            throughput: stats.throughput(),
            gateway,
            failures,
        }
    }

    /// True when nothing failed the run.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "scenario {}: {} devices, {:.0} s, {} cores",
            self.scenario, self.devices, self.duration_secs, self.cores
        );
        let _ = writeln!(
            out,
            "\n{:<52} {:>14} {:>12} {:>14} {:>8}  {:<16} met",
            "figure", "value", "unit", "baseline", "ratio", "target"
        );
        for f in &self.figures {
            let _ = writeln!(
                out,
                "{:<52} {:>14} {:>12} {:>14} {:>8}  {:<16} {}",
                f.name,
                num(f.value),
                f.unit,
                f.baseline.map(num).unwrap_or_else(|| "-".into()),
                f.ratio
                    .map(|r| format!("{r:.2}"))
                    .unwrap_or_else(|| "-".into()),
                f.target.clone().unwrap_or_else(|| "-".into()),
                match f.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                }
            );
        }
        let _ = writeln!(
            out,
            "\n{:<24} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "operation (ms)", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        for o in &self.operations {
            let _ = writeln!(
                out,
                "{:<24} {:>9} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                o.op, o.count, o.p50_ms, o.p90_ms, o.p99_ms, o.p999_ms, o.max_ms
            );
        }
        if !self.errors.is_empty() {
            let _ = writeln!(out, "\nerrors:");
            for (kind, n) in &self.errors {
                let _ = writeln!(out, "  {n:>8}  {kind}");
            }
        }
        let _ = writeln!(
            out,
            "\nresult: {}",
            if self.passed() {
                "PASSED".to_owned()
            } else {
                format!("FAILED: {}", self.failures.join("; "))
            }
        );
        out
    }

    /// Writes `report.json` and `report.html` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(dir.join("report.json"), json)?;
        std::fs::write(dir.join("report.html"), self.html())?;
        Ok(())
    }

    /// A self-contained page: the tables, and SVG plots of throughput and of the
    /// gateway's memory and CPU.
    pub fn html(&self) -> String {
        let mut ops: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for (sec, per_op) in &self.throughput {
            for (op, n) in per_op {
                ops.entry(op.as_str())
                    .or_default()
                    .push((*sec as f64, *n as f64));
            }
        }
        let throughput: Vec<(&str, Vec<(f64, f64)>)> = ops.into_iter().collect();
        let rss = vec![(
            "RSS (MiB)",
            self.gateway
                .iter()
                .map(|p| (p.t_secs, p.rss_bytes as f64 / 1_048_576.0))
                .collect::<Vec<_>>(),
        )];
        let cpu = vec![(
            "CPU (% of a core)",
            self.gateway
                .iter()
                .map(|p| (p.t_secs, p.cpu_percent))
                .collect::<Vec<_>>(),
        )];
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>fieldsync loadtest: {scenario}</title>\
             <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
             td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{background:#eee}}\
             .no{{color:#b00;font-weight:bold}}</style></head><body>\
             <h1>fieldsync loadtest: {scenario}</h1><p>{devices} devices, {dur:.0} s, {cores} cores. Result: <b>{result}</b></p>\
             <pre>{table}</pre><h2>Throughput (completions per second)</h2>{t}\
             <h2>Gateway memory</h2>{m}<h2>Gateway CPU</h2>{c}</body></html>",
            scenario = esc(&self.scenario),
            devices = self.devices,
            dur = self.duration_secs,
            cores = self.cores,
            result = if self.passed() { "passed" } else { "FAILED" },
            table = esc(&self.table()),
            t = line_chart(&throughput, "seconds", "per second"),
            m = line_chart(&rss, "seconds", "MiB"),
            c = line_chart(&cpu, "seconds", "%"),
        )
    }
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// An SVG line chart of several series sharing both axes.
pub fn line_chart(series: &[(&str, Vec<(f64, f64)>)], x_label: &str, y_label: &str) -> String {
    const W: f64 = 720.0;
    const H: f64 = 260.0;
    const PAD: f64 = 48.0;
    let points = series.iter().flat_map(|(_, s)| s.iter());
    let (mut x_max, mut y_max) = (1e-9_f64, 1e-9_f64);
    for (x, y) in points {
        x_max = x_max.max(*x);
        y_max = y_max.max(*y);
    }
    let sx = |x: f64| PAD + x / x_max * (W - 2.0 * PAD);
    let sy = |y: f64| H - PAD - y / y_max * (H - 2.0 * PAD);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" role=\"img\">\
         <line x1=\"{PAD}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#333\"/>\
         <line x1=\"{PAD}\" y1=\"{PAD}\" x2=\"{PAD}\" y2=\"{b}\" stroke=\"#333\"/>\
         <text x=\"{r}\" y=\"{lb}\" text-anchor=\"end\" font-size=\"11\">{x_label} (max {xm:.0})</text>\
         <text x=\"4\" y=\"{t}\" font-size=\"11\">{y_label} (max {ym:.1})</text>",
        b = H - PAD,
        r = W - PAD,
        lb = H - 12.0,
        t = PAD - 8.0,
        xm = x_max,
        ym = y_max,
    );
    for (i, (name, s)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let pts: Vec<String> = s
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <text x=\"{:.0}\" y=\"{:.0}\" font-size=\"11\" fill=\"{colour}\">{}</text>",
            pts.join(" "),
            W - PAD - 160.0,
            PAD + 14.0 * i as f64,
            esc(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_compare_against_baseline_and_target() {
        let f = Figure::new(
            "handshakes",
            900.0,
            "/s",
            Some(1000.0),
            Target::RatioAtLeast(0.8),
        );
        assert_eq!(f.ratio, Some(0.9));
        assert_eq!(f.met, Some(true));
        let f = Figure::new(
            "handshakes",
            700.0,
            "/s",
            Some(1000.0),
            Target::RatioAtLeast(0.8),
        );
        assert_eq!(f.met, Some(false));
        let f = Figure::new(
            "idle memory",
            40_000.0,
            "B",
            Some(20_000.0),
            Target::AtMost(32_768.0),
        );
        assert_eq!(f.met, Some(false));
        assert_eq!(f.ratio, Some(2.0));
        let f = Figure::new("lost", 0.0, "records", None, Target::Equals(0.0));
        assert_eq!(f.met, Some(true));
        let f = Figure::new("p99", 30.0, "ms", Some(10.0), Target::RatioAtMost(2.0));
        assert_eq!(f.met, Some(false));
        let f = Figure::new("p99", 15.0, "ms", Some(10.0), Target::RatioAtMost(2.0));
        assert_eq!(f.met, Some(true));
    }

    #[test]
    fn the_page_holds_the_tables_and_one_svg_per_plot() {
        let report = Report {
            scenario: "connect-storm".into(),
            devices: 2,
            duration_secs: 1.0,
            cores: 2,
            figures: vec![Figure::new("x<y", 1.0, "u", None, Target::None)],
            operations: vec![],
            errors: BTreeMap::from([("handshake: refused".to_owned(), 1)]),
            throughput: BTreeMap::from([(0, BTreeMap::from([("hello".to_owned(), 2)]))]),
            gateway: vec![ResourcePoint {
                t_secs: 0.0,
                rss_bytes: 1 << 20,
                cpu_percent: 5.0,
            }],
            failures: vec!["1 device could not connect".into()],
        };
        let page = report.html();
        assert_eq!(page.matches("<svg").count(), 3);
        assert!(page.contains("x&lt;y"));
        assert!(page.contains("FAILED"));
        assert!(!report.passed());
        assert!(report.table().contains("handshake: refused"));
    }
}
