//! The summary of a run, built from the collector's totals and the plan: the whole run, each
//! phase, each region, and the generator's own figures.

use std::time::{Duration, SystemTime};

use super::LEAD;
use crate::compiled::{Plan, Target};
use crate::metrics::collector::Collector;
use crate::metrics::{Counter, MetricId};
use crate::report::summary::{self, Summary, Verdict};
use crate::swarm::Registry;

/// The summary of the run so far (`check_abort` builds one per interval) or at its end; the
/// thresholds and the verdict are left to the caller.
pub(super) fn build_summary(
    plan: &Plan,
    c: &Collector,
    registry: &Registry,
    started_at: SystemTime,
    target: String,
    workers: usize,
) -> Summary {
    let duration_s = c.last_end_s;
    // Rates are per second of load: the drain after the last phase adds completions, not load.
    let load_s = duration_s.min(plan.duration().as_secs_f64());
    let undelivered = registry.delivery();
    let (cpu_seconds, peak_rss_mb) = crate::resource_usage::process_cpu_and_peak_rss();
    let mut s = Summary {
        schema: summary::SCHEMA.to_string(),
        scenario: plan.name.clone(),
        description: plan.description.clone(),
        seed: plan.seed,
        target,
        tls: tls_of(plan, c),
        inrush_version: env!("CARGO_PKG_VERSION").to_string(),
        overrides: plan.overrides.clone(),
        started_at: humantime::format_rfc3339_millis(started_at + LEAD).to_string(),
        duration_s,
        drain_s: (duration_s - load_s).max(0.0),
        verdict: Verdict::Passed,
        aborted: None,
        metrics: summary::metrics_of(&c.totals, &plan.catalog, load_s),
        messages: summary::messages_of(&c.totals, Some(undelivered)),
        contacts: summary::contacts_of(&c.totals),
        arrivals: summary::arrivals_of(&c.totals),
        counts: summary::counts_of(&c.totals, &plan.catalog),
        checks: summary::Checks::of(&c.totals, &plan.catalog),
        bytes_sent: c.totals.counter(Counter::BytesSent),
        bytes_received: c.totals.counter(Counter::BytesReceived),
        peak_connections: c.peak_connections,
        retries: summary::Retries::default(),
        phases: phase_summaries(plan, c, duration_s),
        regions: region_summaries(plan, c, load_s),
        thresholds: Vec::new(),
        measurement: summary::Measurement {
            limits: plan.overload,
            ..Default::default()
        },
        generator: summary::Generator {
            workers,
            cpu_seconds: (cpu_seconds * 1000.0).round() / 1000.0,
            peak_rss_mb: (peak_rss_mb * 10.0).round() / 10.0,
            target_in_process: matches!(plan.target, Target::Builtin(_)),
            host: crate::resource_usage::Host::current(),
            worker_cpu_max: summary::WorkerCpu::of_shares(
                c.cpu_shares
                    .iter()
                    .map(|&(d, s)| (f64::from(d), f64::from(s))),
            ),
            loop_lag_ms: summary::Latency::of(&c.totals.metric(MetricId::LOOP_LAG).latency),
        },
        warnings: Vec::new(),
        shard: plan.shard,
        scenario_fingerprint: plan.fingerprint.clone(),
        start: None,
        shards: Vec::new(),
    };
    s.retries = summary::Retries::of(&s.metrics);
    s.warnings = summary::warnings(&s);
    s
}

/// The run's TLS figures, when its target was `https://`.
fn tls_of(plan: &Plan, c: &Collector) -> Option<summary::TlsSummary> {
    // The file's target may be https:// and `--target` plain: its TLS settings went unused.
    if !plan.target.speaks_tls() {
        return None;
    }
    let (metric, resumed) = plan.catalog.tls()?;
    Some(summary::TlsSummary {
        verified: !plan.tls.insecure,
        client_certificate: plan.tls.client_cert.is_some(),
        handshakes: c.totals.metric(metric).latency.len(),
        resumed: c.totals.named(resumed),
    })
}

fn phase_summaries(
    plan: &Plan,
    c: &Collector,
    duration_s: f64,
) -> indexmap::IndexMap<String, summary::Phase> {
    plan.phases
        .iter()
        .zip(&c.phases)
        .map(|(p, r)| {
            // The last phase also holds the drain that follows it (its operations, not its
            // seconds: rates are per second of the phase's load, cut short by an early stop).
            let end_s = if p.end() == plan.duration() {
                duration_s.max(p.end().as_secs_f64())
            } else {
                p.end().as_secs_f64()
            };
            let seconds = p.end().as_secs_f64().min(duration_s) - p.start.as_secs_f64();
            (
                p.name.clone(),
                summary::Phase {
                    start_s: p.start.as_secs_f64(),
                    end_s,
                    metrics: summary::metrics_of(r, &plan.catalog, seconds),
                    messages: summary::messages_of(r, None),
                    contacts: summary::contacts_of(r),
                    arrivals: summary::arrivals_of(r),
                },
            )
        })
        .collect()
}

fn region_summaries(
    plan: &Plan,
    c: &Collector,
    load_s: f64,
) -> indexmap::IndexMap<String, summary::Region> {
    plan.regions
        .list
        .iter()
        .zip(&c.regions)
        .map(|(region, r)| {
            let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1000.0;
            (
                region.name.clone(),
                summary::Region {
                    share: region.share,
                    latency_ms: ms(region.latency),
                    jitter_ms: ms(region.jitter),
                    // Distinct users: a returning user's later visits are started arrivals too.
                    users: r
                        .counter(Counter::ArrivalsStarted)
                        .saturating_sub(r.counter(Counter::UsersReturned)),
                    metrics: summary::metrics_of(r, &plan.catalog, load_s),
                    messages: summary::messages_of(r, None),
                    contacts: summary::contacts_of(r),
                    arrivals: summary::arrivals_of(r),
                },
            )
        })
        .collect()
}

/// Users who started and ended with no outcome: each started user ends completed, failed or cut
/// off, unless its task panicked (a bug of inrush's, whose message went to stderr; the worker
/// still ends, see `worker::Active`). Said, not hidden, since the counts are short by them.
/// Asked at the run's end only, not in `report::warnings`: the summary built per interval for
/// the abort check counts users still in flight, who have no outcome yet.
pub(super) fn unaccounted(a: &crate::report::summary::Arrivals) -> Option<String> {
    let ended = a.completed + a.failed + a.cut_off;
    (a.started > ended).then(|| {
        format!(
            "{} of {} started users ended with no outcome (neither completed, failed nor cut off): \
             inrush failed inside their flow (a panic, printed on stderr), so the run's counts \
             are short by what they would have done. This is a bug of inrush's; please report it \
             with that message",
            a.started - ended,
            a.started
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_who_ended_with_no_outcome_are_said() {
        let mut a = summary::Arrivals {
            started: 10,
            completed: 6,
            failed: 2,
            cut_off: 2,
            ..Default::default()
        };
        assert_eq!(unaccounted(&a), None);
        a.cut_off = 1;
        let said = unaccounted(&a).expect("one user unaccounted");
        assert!(said.starts_with("1 of 10 started users"), "{said}");
    }
}
