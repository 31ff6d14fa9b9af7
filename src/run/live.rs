//! The live outputs a run's command line asks for (`--stream`, `--metrics`, `--dashboard`,
//! `--hold`): opened before anything is sent, so a path or an address that cannot be used is the
//! user's error (exit 2) and not a run that dies at its first interval.

use std::path::Path;
use std::time::Duration;

use super::LiveOptions;
use crate::compiled::Plan;
use crate::error::Error;
use crate::report::live::dashboard::{Dashboard, PhaseMark, Setup};
use crate::report::live::prometheus::{Endpoint, PrometheusSink};
use crate::report::live::stream::{Destination, StreamSink};
use crate::report::live::IntervalSink;
use crate::report::summary::Summary;

pub(super) struct Live {
    stream: Option<StreamSink>,
    /// Whether the stream goes to stdout (the summary table then stays off it).
    pub stream_on_stdout: bool,
    endpoint: Option<Endpoint>,
    dashboard: Option<Dashboard>,
    hold: Option<Duration>,
}

impl Live {
    pub async fn open(opts: &LiveOptions, plan: &Plan, quiet: bool) -> Result<Live, Error> {
        let dest = opts.stream.as_deref().map(Destination::parse);
        let stream = dest.as_ref().map(StreamSink::open).transpose()?;
        let endpoint = match &opts.metrics {
            Some(addr) => Some(Endpoint::listen(addr).await?),
            None => None,
        };
        let dashboard = match &opts.dashboard {
            Some(addr) => Some(Dashboard::listen(addr, &setup(plan)).await?),
            None => None,
        };
        if !quiet {
            if let Some(e) = &endpoint {
                crate::report::console::eprintln(&format!("metrics: http://{}/metrics", e.addr()));
            }
            if let Some(d) = &dashboard {
                crate::report::console::eprintln(&format!("dashboard: http://{}/", d.addr()));
            }
        }
        Ok(Live {
            stream,
            stream_on_stdout: matches!(dest, Some(Destination::Stdout)),
            endpoint,
            dashboard,
            hold: opts.hold,
        })
    }

    /// The sinks for the run loop (the stream can be taken once).
    pub fn sinks(&mut self, regions: &[String]) -> Vec<Box<dyn IntervalSink>> {
        let mut sinks: Vec<Box<dyn IntervalSink>> = Vec::new();
        if let Some(s) = self.stream.take() {
            sinks.push(Box::new(s));
        }
        if let Some(e) = &self.endpoint {
            let p: PrometheusSink = e.sink(regions.to_vec());
            sinks.push(Box::new(p));
        }
        if let Some(d) = &self.dashboard {
            sinks.push(Box::new(d.sink()));
        }
        sinks
    }

    /// After the report is written: the verdict on the endpoint and the dashboard, kept up for
    /// `--hold` (or until a signal) so a scraper and a browser get the final values.
    pub async fn after(self, summary: &Summary, dir: &Path, interrupt: &super::Interrupt) {
        // A signal that stopped the run does not end the hold: only one after it does.
        let seen = interrupt.count();
        if let Some(endpoint) = &self.endpoint {
            endpoint.verdict(summary.verdict.word());
        }
        if let Some(dashboard) = &self.dashboard {
            dashboard.end(summary, dir);
        }
        let serving = self.endpoint.is_some() || self.dashboard.is_some();
        if let (Some(hold), true) = (self.hold, serving) {
            tokio::select! {
                _ = tokio::time::sleep(hold) => {}
                () = interrupt.beyond(seen) => {}
            }
        }
    }
}

/// What the dashboard shows before the first interval: the scenario, its phases, its thresholds.
fn setup(plan: &Plan) -> Setup {
    Setup {
        scenario: plan.name.clone(),
        duration_s: plan.duration().as_secs_f64(),
        phases: plan
            .phases
            .iter()
            .map(|p| PhaseMark {
                name: p.name.clone(),
                start_s: p.start.as_secs_f64(),
                end_s: p.end().as_secs_f64(),
            })
            .collect(),
        thresholds: plan.thresholds.iter().map(|t| t.expr.clone()).collect(),
    }
}
