//! Live progress while a run goes on: a bar on a terminal, a plain line every few seconds
//! otherwise (CI logs), both on stderr so stdout keeps only the summary.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::{IntervalSink, IntervalView};
use crate::error::Error;
use crate::metrics::{Counter, MetricId};

/// What the progress line shows, computed once per interval.
pub struct Status<'a> {
    pub phase: &'a str,
    pub elapsed: Duration,
    pub arrivals_per_s: f64,
    pub active_users: u64,
    pub open_websockets: u64,
    pub open_http: u64,
    pub errors: u64,
    /// (metric, p99 so far in ms) for the few metrics worth watching.
    pub p99: Vec<(&'a str, f64)>,
}

pub struct Progress {
    bar: Option<ProgressBar>,
    total: Duration,
    last_line: Option<Instant>,
    every: Duration,
    quiet: bool,
}

impl Progress {
    pub fn new(total: Duration, quiet: bool) -> Self {
        let tty = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let bar = (tty && !quiet).then(|| {
            let bar = ProgressBar::new(total.as_secs().max(1));
            let style = ProgressStyle::with_template("{bar:30.cyan/blue} {pos:>4}/{len}s {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Progress {
            bar,
            total,
            last_line: None,
            every: Duration::from_secs(5),
            quiet,
        }
    }

    fn line(s: &Status) -> String {
        let p99: Vec<String> = s
            .p99
            .iter()
            .map(|(m, v)| format!("{m} p99 {v:.1}ms"))
            .collect();
        format!(
            "{} · {:.0} arrivals/s · {} users · {} WebSockets · {} HTTP · {} · {} errors",
            s.phase,
            s.arrivals_per_s,
            s.active_users,
            s.open_websockets,
            s.open_http,
            p99.join(" · "),
            s.errors
        )
    }

    fn update(&mut self, s: &Status) {
        if self.quiet {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_position(s.elapsed.as_secs().min(self.total.as_secs()));
            bar.set_message(Self::line(s));
            return;
        }
        let now = Instant::now();
        if self.last_line.is_none_or(|t| now - t >= self.every) {
            self.last_line = Some(now);
            let mut err = std::io::stderr().lock();
            let _ = writeln!(
                err,
                "[{:>5.1}s/{:.0}s] {}",
                s.elapsed.as_secs_f64(),
                self.total.as_secs_f64(),
                Self::line(s)
            );
        }
    }
}

impl IntervalSink for Progress {
    fn interval(&mut self, view: &IntervalView<'_>) {
        self.update(&status(view));
    }

    fn finish(&mut self) -> Result<(), Error> {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        Ok(())
    }
}

fn status<'a>(view: &IntervalView<'a>) -> Status<'a> {
    let (iv, totals, catalog) = (view.interval, view.totals, view.catalog);
    let seconds = iv.end.saturating_sub(iv.start).as_secs_f64().max(1e-3);
    // The first step (what every arriving user feels first) and message delivery.
    let first_step = MetricId(MetricId::FIRST_STEP);
    let p99 = [first_step, MetricId::MESSAGE_DELIVERY]
        .into_iter()
        .filter(|m| m.index() < totals.metrics.len() && !totals.metric(*m).latency.is_empty())
        .map(|m| {
            (
                catalog.name(m),
                totals.metric(m).latency.value_at_quantile(0.99) as f64 / 1000.0,
            )
        })
        .collect();
    Status {
        phase: view.phase,
        elapsed: iv.end,
        arrivals_per_s: iv.recorder.counter(Counter::ArrivalsStarted) as f64 / seconds,
        active_users: iv.active_users,
        open_websockets: iv.open_websockets,
        open_http: iv.open_http,
        errors: totals.metrics.iter().map(|m| m.error_count()).sum(),
        p99,
    }
}
