//! Live progress while a run goes on: a bar on a terminal, a plain line every few seconds
//! otherwise (CI logs), both on stderr so stdout keeps only the summary.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// What the progress line shows, computed by the run loop once per interval.
pub struct Status<'a> {
    pub phase: &'a str,
    pub elapsed: Duration,
    pub arrivals_per_s: f64,
    pub active_users: u64,
    pub open_connections: u64,
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
            "{} · {:.0} arrivals/s · {} users · {} sockets · {} · {} errors",
            s.phase,
            s.arrivals_per_s,
            s.active_users,
            s.open_connections,
            p99.join(" · "),
            s.errors
        )
    }

    pub fn update(&mut self, s: &Status) {
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

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
