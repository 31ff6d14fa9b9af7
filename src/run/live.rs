//! The live outputs a run's command line asks for (`--stream`, `--metrics`, `--hold`): opened
//! before anything is sent, so a path or an address that cannot be used is the user's error
//! (exit 2) and not a run that dies at its first interval.

use std::time::Duration;

use super::LiveOptions;
use crate::error::Error;
use crate::report::live::prometheus::{Endpoint, PrometheusSink};
use crate::report::live::stream::{Destination, StreamSink};
use crate::report::summary::Summary;

pub(super) struct Live {
    stream: Option<StreamSink>,
    /// Whether the stream goes to stdout (the summary table then stays off it).
    pub stream_on_stdout: bool,
    endpoint: Option<Endpoint>,
    hold: Option<Duration>,
}

impl Live {
    pub async fn open(opts: &LiveOptions, quiet: bool) -> Result<Live, Error> {
        let dest = opts.stream.as_deref().map(Destination::parse);
        let stream = dest.as_ref().map(StreamSink::open).transpose()?;
        let endpoint = match &opts.metrics {
            Some(addr) => Some(Endpoint::listen(addr).await?),
            None => None,
        };
        if let (Some(e), false) = (&endpoint, quiet) {
            eprintln!("metrics: http://{}/metrics", e.addr());
        }
        Ok(Live {
            stream,
            stream_on_stdout: matches!(dest, Some(Destination::Stdout)),
            endpoint,
            hold: opts.hold,
        })
    }

    /// The sinks for the run loop (each can be taken once).
    pub fn sinks(&mut self, regions: &[String]) -> (Option<StreamSink>, Option<PrometheusSink>) {
        (
            self.stream.take(),
            self.endpoint.as_ref().map(|e| e.sink(regions.to_vec())),
        )
    }

    /// After the report is written: the verdict on the endpoint, kept up for `--hold` (or until
    /// a signal) so a scraper gets the final values.
    pub async fn after(self, summary: &Summary) {
        let Some(endpoint) = self.endpoint else {
            return;
        };
        endpoint.verdict(summary.verdict.word());
        if let Some(hold) = self.hold {
            tokio::select! {
                _ = tokio::time::sleep(hold) => {}
                _ = super::signals::stop_requested() => {}
            }
        }
    }
}
