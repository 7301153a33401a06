//! Two reports of one step side by side (`ratecast-bench compare`): ratecast's
//! figures as ratios of the baseline's from the same ladder run, so a result reads
//! "costs 1.3 × the baseline's CPU per message" whatever the machine's mood.
//!
//! Only the figures the targets are about are compared: memory per connection,
//! CPU per delivered message, the steady-state fan-out tail, the storm's time to
//! history and how much memory stays after the clients left. A figure a run did
//! not measure (no server pid, an idle run without messages) is shown as `-` and
//! has no ratio.

use std::fmt::Write as _;

use super::report::Report;

/// One compared figure: both runs' values and how they are shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub measure: &'static str,
    pub ratecast: Cell,
    pub baseline: Cell,
}

/// One run's value of a figure: the number the ratio uses and its rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub value: Option<f64>,
    pub text: String,
}

impl Cell {
    fn new(value: Option<f64>, decimals: usize) -> Self {
        Self {
            value,
            text: value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}")),
        }
    }
}

impl Row {
    /// ratecast / baseline, when both are measured and the baseline's is positive.
    pub fn ratio(&self) -> Option<f64> {
        ratio(self.ratecast.value, self.baseline.value)
    }
}

/// `ours / theirs`; none when either is missing or not finite, or `theirs` is
/// not positive (a ratio of nothing says nothing).
pub fn ratio(ours: Option<f64>, theirs: Option<f64>) -> Option<f64> {
    match (ours, theirs) {
        (Some(a), Some(b)) if a.is_finite() && b.is_finite() && b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The share (%) of the peak above idle still held after every client closed:
/// 0 % = memory went back to idle, 100 % = it stayed at the peak.
pub fn retained_percent(idle_kb: u64, peak_kb: u64, after_close_kb: u64) -> Option<f64> {
    let above_idle = peak_kb.checked_sub(idle_kb).filter(|&kb| kb > 0)?;
    Some(100.0 * after_close_kb.saturating_sub(idle_kb) as f64 / above_idle as f64)
}

/// A compared figure: its name and how to read it from a report.
type Figure = (&'static str, fn(&Report) -> Cell);

/// The compared figures of `ratecast` and `baseline`.
pub fn rows(ratecast: &Report, baseline: &Report) -> Vec<Row> {
    let figures: [Figure; 5] = [
        ("memory per connection above idle (KB)", |r| {
            Cell::new(r.server.as_ref().map(|s| s.kb_per_connection), 1)
        }),
        ("server CPU per delivered message, hold (µs)", |r| {
            let measured = r.delivery.hold_messages > 0;
            let value = r.server.as_ref().filter(|_| measured);
            Cell::new(value.map(|s| s.cpu_us_per_message), 2)
        }),
        ("fan-out delay p99, hold (ms)", |r| {
            let d = &r.fanout_delay;
            Cell::new((d.count > 0).then_some(d.p99_ms), 1)
        }),
        ("time to history p99, storm (ms)", |r| {
            let t = &r.time_to_history;
            Cell::new((t.count > 0).then_some(t.p99_ms), 1)
        }),
        ("RSS after close, % of the peak above idle", |r| {
            let Some(s) = &r.server else {
                return Cell::new(None, 0);
            };
            let value = retained_percent(s.idle_rss_kb, s.peak_rss_kb, s.rss_after_close_kb);
            let mb = |kb: u64| kb as f64 / 1024.0;
            Cell {
                value,
                text: format!(
                    "{} ({:.0} → {:.0} → {:.0} MB)",
                    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} %")),
                    mb(s.idle_rss_kb),
                    mb(s.peak_rss_kb),
                    mb(s.rss_after_close_kb)
                ),
            }
        }),
    ];
    figures
        .into_iter()
        .map(|(measure, cell)| Row {
            measure,
            ratecast: cell(ratecast),
            baseline: cell(baseline),
        })
        .collect()
}

/// The comparison as a small markdown table (ratio = first / second).
pub fn render(ratecast: &Report, baseline: &Report) -> String {
    let mut out = format!(
        "| {} clients{} | {} | {} | ratio |\n|---|---|---|---|\n",
        ratecast.clients,
        if ratecast.idle { ", idle" } else { "" },
        ratecast.label,
        baseline.label
    );
    for row in rows(ratecast, baseline) {
        let ratio = row
            .ratio()
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            row.measure, row.ratecast.text, row.baseline.text, ratio
        );
    }
    if ratecast.clients != baseline.clients || ratecast.idle != baseline.idle {
        let _ = writeln!(
            out,
            "\nwarning: the runs differ ({} clients{} against {} clients{}): the ratios compare unlike steps",
            ratecast.clients,
            if ratecast.idle { ", idle" } else { "" },
            baseline.clients,
            if baseline.idle { ", idle" } else { "" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        latency::LatencySummary,
        report::{ConnectReport, DeliveryReport, GeneratorReport, ServerReport},
        verdict::Verdict,
    };

    fn report(label: &str, kb_per_conn: f64, us_per_msg: f64, fanout_p99: f64) -> Report {
        let summary = |p99_ms| LatencySummary {
            count: 10,
            p50_ms: 1.0,
            p99_ms,
            max_ms: p99_ms,
        };
        Report {
            label: label.into(),
            url: "ws://127.0.0.1:1/".into(),
            started_unix: 0,
            clients: 1000,
            ramp_per_sec: 1000.0,
            source_ips: 64,
            connect: ConnectReport::default(),
            time_to_history: summary(4.0),
            fanout_delay: summary(fanout_p99),
            fanout_delay_ramp: summary(1.0),
            point_age: summary(500.0),
            delivery: DeliveryReport {
                hold_messages: 60_000,
                ..DeliveryReport::default()
            },
            verdict: Verdict::default(),
            server: Some(ServerReport {
                idle_rss_kb: 10 * 1024,
                peak_rss_kb: 110 * 1024,
                rss_after_close_kb: 60 * 1024,
                kb_per_connection: kb_per_conn,
                cpu_us_per_message: us_per_msg,
                ..ServerReport::default()
            }),
            generator: GeneratorReport::default(),
            machine: Default::default(),
            errors: Default::default(),
            idle: false,
            backlog: None,
        }
    }

    #[test]
    fn a_ratio_is_ours_over_theirs_and_none_without_a_positive_baseline() {
        assert_eq!(ratio(Some(15.0), Some(10.0)), Some(1.5));
        assert_eq!(ratio(Some(0.0), Some(4.0)), Some(0.0));
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(None, Some(1.0)), None);
        assert_eq!(ratio(Some(1.0), None), None);
        assert_eq!(ratio(Some(f64::NAN), Some(1.0)), None);
    }

    #[test]
    fn retained_memory_is_the_share_of_the_peak_above_idle() {
        assert_eq!(retained_percent(10, 110, 60), Some(50.0));
        assert_eq!(retained_percent(10, 110, 110), Some(100.0));
        assert_eq!(
            retained_percent(10, 110, 5),
            Some(0.0),
            "below idle is all returned"
        );
        assert_eq!(retained_percent(10, 10, 10), None, "no peak above idle");
    }

    #[test]
    fn each_figure_of_ratecast_is_divided_by_the_baselines() {
        let ratecast = report("ratecast-1000", 140.0, 13.0, 20.0);
        let baseline = report("baseline-1000", 128.0, 10.0, 40.0);
        let ratios: Vec<Option<f64>> = rows(&ratecast, &baseline).iter().map(Row::ratio).collect();
        assert_eq!(
            ratios,
            vec![
                Some(140.0 / 128.0),
                Some(1.3),
                Some(0.5),
                Some(1.0),
                Some(1.0)
            ]
        );
        let table = render(&ratecast, &baseline);
        assert!(
            table.starts_with("| 1000 clients | ratecast-1000 | baseline-1000 | ratio |"),
            "{table}"
        );
        assert!(
            table
                .contains("| server CPU per delivered message, hold (µs) | 13.00 | 10.00 | 1.30 |"),
            "{table}"
        );
        assert!(table.contains("| 50.0 % (10 → 110 → 60 MB) |"), "{table}");
        assert!(!table.contains("warning"), "{table}");
    }

    #[test]
    fn figures_an_idle_run_did_not_measure_have_no_ratio() {
        let mut ratecast = report("ratecast-1000-idle", 40.0, 0.0, 0.0);
        let mut baseline = report("baseline-1000-idle", 20.0, 0.0, 0.0);
        for idle in [&mut ratecast, &mut baseline] {
            idle.idle = true;
            idle.delivery.hold_messages = 0;
            idle.fanout_delay = LatencySummary::default();
            idle.time_to_history = LatencySummary::default();
        }
        let ratios: Vec<Option<f64>> = rows(&ratecast, &baseline).iter().map(Row::ratio).collect();
        assert_eq!(ratios, vec![Some(2.0), None, None, None, Some(1.0)]);
        assert!(render(&ratecast, &baseline).contains("| 1000 clients, idle |"));
        baseline.clients = 5000;
        assert!(render(&ratecast, &baseline).contains("warning: the runs differ"));
    }
}
