//! `--metrics ADDR`: a Prometheus scrape endpoint (`GET /metrics`, text exposition format 0.0.4)
//! served by the run while it goes on, so the generator's numbers sit beside the service's own
//! in Grafana. docs/live.md lists the series and explains the two views of latency:
//!
//! - `inrush_latency_seconds`, a classic histogram over the whole run (fixed buckets, counted
//!   from the run's HdrHistograms): what PromQL's `histogram_quantile` and Grafana heatmaps read,
//!   aggregatable across shards and scrapes, but only as precise as its buckets;
//! - `inrush_latency_interval_seconds{quantile}`, the exact HdrHistogram percentiles of the last
//!   interval (about a second): what the report's charts draw, precise but not aggregatable.
//!
//! The exposition is rendered once per interval on the run's control thread and kept as text; a
//! scrape only copies it (one short lock per interval and per scrape, none per sample).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;

use super::{IntervalSink, IntervalView};
use crate::error::Error;
use crate::metrics::{Counter, ErrorClass, MetricId};

/// Bucket bounds of `inrush_latency_seconds`, seconds: 0.5 ms to 10 s, about 2.5× apart.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How many samples of `h` (microseconds) lie at or below each bound of [`BUCKETS`]: the
/// HdrHistogram buckets whose highest equivalent value is at most the bound (the bucket that
/// straddles a bound counts above it). Each bound is one summing scan of the counts (HdrHistogram
/// vectorizes it), not a walk of its iterator: this runs for every metric at every interval.
fn bucket_counts(h: &Histogram<u64>) -> [u64; BUCKETS.len()] {
    let mut counts = [0u64; BUCKETS.len()];
    let total = h.len();
    for (n, bound) in counts.iter_mut().zip(BUCKETS) {
        let b = (bound * 1e6).round() as u64;
        // The last value whose whole bucket lies at or below the bound.
        let last = if h.highest_equivalent(b) == b {
            b
        } else {
            match h.lowest_equivalent(b).checked_sub(1) {
                Some(v) => v,
                None => continue,
            }
        };
        // quantile_below is an exact count over the total; back to the count.
        *n = (h.quantile_below(last) * total as f64).round() as u64;
    }
    counts
}

/// The last rendered exposition, shared by the sink (writer) and the server (readers).
type Page = Arc<Mutex<String>>;

/// The listening endpoint; serves until dropped (or the run's runtime ends).
pub struct Endpoint {
    page: Page,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    /// Listens on `addr` before the run starts: an address that cannot be bound is the user's
    /// error (exit 2), found before anything is sent.
    pub async fn listen(addr: &str) -> Result<Endpoint, Error> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Usage(format!("--metrics {addr}: cannot listen: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Usage(format!("--metrics {addr}: {e}")))?;
        let page: Page = Arc::new(Mutex::new(String::new()));
        let router = axum::Router::new()
            .route("/metrics", axum::routing::get(scrape))
            .route(
                "/",
                axum::routing::get(|| async { "inrush: Prometheus metrics at /metrics\n" }),
            )
            .with_state(page.clone());
        let server = tokio::spawn(async move {
            // A failing accept loop ends the endpoint, never the run.
            let _ = axum::serve(listener, router).await;
        });
        Ok(Endpoint { page, addr, server })
    }

    /// The address it listens on (the port the OS chose for `:0`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The sink that renders each interval into the page; `regions` in the recorders' order.
    pub fn sink(&self, regions: Vec<String>) -> PrometheusSink {
        PrometheusSink {
            page: self.page.clone(),
            regions,
            by_region: BTreeMap::new(),
        }
    }

    /// Appends the run's verdict once it is known (scraped while `--hold` keeps the endpoint up).
    pub fn verdict(&self, verdict: &str) {
        let mut page = lock(&self.page);
        let _ = write!(
            page,
            "# HELP inrush_run_verdict The run's verdict, once it has ended.\n\
             # TYPE inrush_run_verdict gauge\n\
             inrush_run_verdict{{verdict=\"{}\"}} 1\n",
            escape(verdict)
        );
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A poisoned lock only means a panic elsewhere while rendering; the text is still text.
fn lock(page: &Page) -> std::sync::MutexGuard<'_, String> {
    page.lock().unwrap_or_else(|p| p.into_inner())
}

async fn scrape(
    axum::extract::State(page): axum::extract::State<Page>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        lock(&page).clone(),
    )
}

pub struct PrometheusSink {
    page: Page,
    regions: Vec<String>,
    /// Operations and errors per (region, metric) so far: the view's totals are not per region.
    by_region: BTreeMap<(usize, String), (u64, u64)>,
}

impl IntervalSink for PrometheusSink {
    fn interval(&mut self, view: &IntervalView<'_>) {
        for (i, rec) in view.interval.regions.iter().enumerate() {
            for (m, name) in view.catalog.all() {
                if m.index() >= rec.metrics.len() {
                    continue;
                }
                let r = rec.metric(m);
                if r.count() > 0 {
                    let e = self.by_region.entry((i, name.to_string())).or_default();
                    e.0 += r.count();
                    e.1 += r.error_count();
                }
            }
        }
        let text = render(view, &self.regions, &self.by_region);
        *lock(&self.page) = text;
    }

    fn finish(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `# HELP` and `# TYPE` lines of a family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn render(
    view: &IntervalView<'_>,
    regions: &[String],
    by_region: &BTreeMap<(usize, String), (u64, u64)>,
) -> String {
    let (iv, totals) = (view.interval, view.totals);
    let mut o = String::with_capacity(8 * 1024);
    let metrics: Vec<(MetricId, &str)> = view
        .catalog
        .all()
        .filter(|(m, _)| m.index() < totals.metrics.len())
        .collect();

    family(
        &mut o,
        "inrush_operations_total",
        "counter",
        "Operations completed, successful and failed, by metric.",
    );
    for (m, name) in &metrics {
        let n = totals.metric(*m).count();
        if n > 0 {
            let _ = writeln!(
                o,
                "inrush_operations_total{{metric=\"{}\"}} {n}",
                escape(name)
            );
        }
    }
    family(
        &mut o,
        "inrush_errors_total",
        "counter",
        "Failed operations, by metric and error class.",
    );
    for (m, name) in &metrics {
        let r = totals.metric(*m);
        for class in ErrorClass::ALL {
            let n = r.errors[class as usize];
            if n > 0 {
                let _ = writeln!(
                    o,
                    "inrush_errors_total{{metric=\"{}\",class=\"{}\"}} {n}",
                    escape(name),
                    class.name()
                );
            }
        }
    }
    family(
        &mut o,
        "inrush_retries_total",
        "counter",
        "Attempts tried again, by metric (not operations).",
    );
    for (m, name) in &metrics {
        let n = totals.metric(*m).retry_count();
        if n > 0 {
            let _ = writeln!(o, "inrush_retries_total{{metric=\"{}\"}} {n}", escape(name));
        }
    }
    family(
        &mut o,
        "inrush_bytes_total",
        "counter",
        "Bytes written (sent) and read (received) by the users, above TLS, by metric.",
    );
    for (m, name) in &metrics {
        let r = totals.metric(*m);
        for (direction, n) in [("sent", r.bytes_sent), ("received", r.bytes_received)] {
            if n > 0 {
                let _ = writeln!(
                    o,
                    "inrush_bytes_total{{metric=\"{}\",direction=\"{direction}\"}} {n}",
                    escape(name)
                );
            }
        }
    }
    family(
        &mut o,
        "inrush_checks_total",
        "counter",
        "Evaluations of the flows' checks (expect conditions), by result.",
    );
    for (k, result) in ["passed", "failed"].iter().enumerate() {
        let n: u64 = totals.checks.iter().map(|c| c[k]).sum();
        let _ = writeln!(o, "inrush_checks_total{{result=\"{result}\"}} {n}");
    }
    if !regions.is_empty() {
        family(
            &mut o,
            "inrush_region_operations_total",
            "counter",
            "Operations completed by the users of a region, by metric.",
        );
        for ((i, name), (n, _)) in by_region {
            let _ = writeln!(
                o,
                "inrush_region_operations_total{{region=\"{}\",metric=\"{}\"}} {n}",
                escape(&regions[*i]),
                escape(name)
            );
        }
        family(
            &mut o,
            "inrush_region_errors_total",
            "counter",
            "Failed operations of the users of a region, by metric.",
        );
        for ((i, name), (_, e)) in by_region {
            let _ = writeln!(
                o,
                "inrush_region_errors_total{{region=\"{}\",metric=\"{}\"}} {e}",
                escape(&regions[*i]),
                escape(name)
            );
        }
    }

    family(
        &mut o,
        "inrush_arrivals_total",
        "counter",
        "Planned arrivals and their fate: started, or dropped (by reason).",
    );
    for (label, c) in [
        ("planned", Counter::ArrivalsPlanned),
        ("started", Counter::ArrivalsStarted),
        ("dropped", Counter::ArrivalsDropped),
    ] {
        let _ = writeln!(
            o,
            "inrush_arrivals_total{{outcome=\"{label}\"}} {}",
            totals.counter(c)
        );
    }
    family(
        &mut o,
        "inrush_arrivals_dropped_total",
        "counter",
        "Dropped arrivals by reason.",
    );
    for (label, c) in [
        ("max_users", Counter::DroppedMaxUsers),
        ("max_inflight", Counter::DroppedMaxInflight),
        ("behind_schedule", Counter::DroppedBehindSchedule),
    ] {
        let _ = writeln!(
            o,
            "inrush_arrivals_dropped_total{{reason=\"{label}\"}} {}",
            totals.counter(c)
        );
    }
    family(
        &mut o,
        "inrush_users_ended_total",
        "counter",
        "Started users whose flow has ended, by how.",
    );
    for (label, n) in [
        ("completed", totals.users.completed),
        ("failed", totals.users.failed),
        ("cut_off", totals.users.cut_off),
    ] {
        let _ = writeln!(o, "inrush_users_ended_total{{outcome=\"{label}\"}} {n}");
    }
    family(
        &mut o,
        "inrush_messages_total",
        "counter",
        "Tracked messages: sent, acked, delivered, duplicated, reordered.",
    );
    for (label, c) in [
        ("sent", Counter::MessagesSent),
        ("acked", Counter::MessagesAcked),
        ("delivered", Counter::MessagesDelivered),
        ("duplicated", Counter::MessagesDuplicated),
        ("reordered", Counter::MessagesReordered),
    ] {
        let _ = writeln!(
            o,
            "inrush_messages_total{{kind=\"{label}\"}} {}",
            totals.counter(c)
        );
    }

    family(
        &mut o,
        "inrush_active_users",
        "gauge",
        "Users alive at the end of the last interval.",
    );
    let _ = writeln!(o, "inrush_active_users {}", iv.active_users);
    family(
        &mut o,
        "inrush_open_connections",
        "gauge",
        "Open connections at the end of the last interval.",
    );
    let _ = writeln!(
        o,
        "inrush_open_connections{{kind=\"websocket\"}} {}\ninrush_open_connections{{kind=\"http\"}} {}",
        iv.open_websockets, iv.open_http
    );
    family(
        &mut o,
        "inrush_worker_cpu_max",
        "gauge",
        "The busiest generator worker's CPU share in the last interval (0 to 1).",
    );
    let _ = writeln!(o, "inrush_worker_cpu_max {:.3}", iv.worker_cpu_max);
    family(
        &mut o,
        "inrush_phase",
        "gauge",
        "The schedule's phase of the last interval (\"drain\" after the schedule).",
    );
    let _ = writeln!(o, "inrush_phase{{phase=\"{}\"}} 1", escape(view.phase));
    family(
        &mut o,
        "inrush_elapsed_seconds",
        "gauge",
        "End of the last interval, seconds from the schedule's start.",
    );
    let _ = writeln!(o, "inrush_elapsed_seconds {:.3}", iv.end.as_secs_f64());

    family(
        &mut o,
        "inrush_latency_seconds",
        "histogram",
        "Latency of successful operations from their intended start over the run so far \
         (schedule_lag and loop_lag: the generator's own delays).",
    );
    for (m, name) in &metrics {
        let h = &totals.metric(*m).latency;
        if h.is_empty() {
            continue;
        }
        let name = escape(name);
        let counts = bucket_counts(h);
        for (bound, n) in BUCKETS.iter().zip(counts) {
            let _ = writeln!(
                o,
                "inrush_latency_seconds_bucket{{metric=\"{name}\",le=\"{bound}\"}} {n}"
            );
        }
        let _ = writeln!(
            o,
            "inrush_latency_seconds_bucket{{metric=\"{name}\",le=\"+Inf\"}} {}\n\
             inrush_latency_seconds_sum{{metric=\"{name}\"}} {:.6}\n\
             inrush_latency_seconds_count{{metric=\"{name}\"}} {}",
            h.len(),
            view.total_latency(*m).1,
            h.len()
        );
    }
    family(
        &mut o,
        "inrush_latency_interval_seconds",
        "gauge",
        "Exact HdrHistogram percentiles of the last interval's successful operations.",
    );
    for (m, name) in &metrics {
        if m.index() >= iv.recorder.metrics.len() {
            continue;
        }
        // The interval's statistics as every live output reads them (computed once).
        let Some(l) = view.interval_latency(*m) else {
            continue;
        };
        let name = escape(name);
        for (q, ms) in [
            ("0.5", l.p50),
            ("0.9", l.p90),
            ("0.95", l.p95),
            ("0.99", l.p99),
            ("0.999", l.p999),
            ("1", l.max),
        ] {
            // Whole microseconds, as the histogram holds them, in seconds.
            let us = (ms * 1000.0).round();
            let _ = writeln!(
                o,
                "inrush_latency_interval_seconds{{metric=\"{name}\",quantile=\"{q}\"}} {}",
                us / 1e6
            );
        }
    }
    o
}

#[cfg(test)]
mod bucket_tests {
    use super::*;

    /// The walk the scan replaces: every recorded bucket, counted at each bound at or above its
    /// highest equivalent value.
    fn walked(h: &Histogram<u64>) -> [u64; BUCKETS.len()] {
        let mut counts = [0u64; BUCKETS.len()];
        for v in h.iter_recorded() {
            for (k, bound) in BUCKETS.iter().enumerate() {
                if v.value_iterated_to() <= (bound * 1e6).round() as u64 {
                    counts[k] += v.count_at_value();
                }
            }
        }
        counts
    }

    #[test]
    fn bucket_counts_by_scan_equal_the_walk_of_every_recorded_bucket() {
        let mut h = crate::metrics::recorder::new_histogram();
        assert_eq!(bucket_counts(&h), [0; BUCKETS.len()]);
        // Values on, just under and just over every bound, and a spread from 1 µs to 20 s.
        for bound in BUCKETS {
            let b = (bound * 1e6).round() as u64;
            for v in [b - 1, b, b + 1, b + b / 100] {
                h.saturating_record_n(v, 3);
            }
        }
        let mut v = 1u64;
        while v < 20_000_000 {
            h.saturating_record(v);
            v = v * 9 / 8 + 1;
        }
        assert_eq!(bucket_counts(&h), walked(&h));
    }
}
