//! Counts summed over shards: every counter of a `Summary` (the whole run, each phase, each
//! region). Latencies are left out here: they are rebuilt from the merged `latency.hlog`, as
//! `inrush report` rebuilds them, so no percentile is ever averaged.

use std::collections::BTreeMap;

use indexmap::IndexMap;

use crate::report::summary::{
    Arrivals, Checks, Contacts, Messages, MetricSummary, Phase, Region, Summary,
};

/// Adds `b`'s counts into `a` (a summary of the same scenario: the same metrics, phases and
/// regions, in the same order).
pub fn add(a: &mut Summary, b: &Summary) {
    add_metrics(&mut a.metrics, &b.metrics);
    add_messages(&mut a.messages, &b.messages);
    add_contacts(&mut a.contacts, &b.contacts);
    add_arrivals(&mut a.arrivals, &b.arrivals);
    add_counts(&mut a.counts, &b.counts);
    add_checks(&mut a.checks, &b.checks);
    a.bytes_sent += b.bytes_sent;
    a.bytes_received += b.bytes_received;
    if let (Some(x), Some(y)) = (&mut a.tls, &b.tls) {
        x.handshakes += y.handshakes;
        x.resumed += y.resumed;
    }
    merge_keyed(&mut a.phases, &b.phases, add_phase);
    merge_keyed(&mut a.regions, &b.regions, add_region);
    let (g, h) = (&mut a.generator, &b.generator);
    g.workers += h.workers;
    g.cpu_seconds = crate::decimals::round(g.cpu_seconds + h.cpu_seconds, 3);
    // Each shard is its own process: the figure that matters is the largest one's.
    g.peak_rss_mb = g.peak_rss_mb.max(h.peak_rss_mb);
    g.target_in_process |= h.target_in_process;
    if h.worker_cpu_max
        .is_some_and(|w| g.worker_cpu_max.is_none_or(|v| w.max > v.max))
    {
        g.worker_cpu_max = h.worker_cpu_max;
    }
}

/// `a[k] += b[k]` for every key of `b`; a key only `b` has is taken as it is.
fn merge_keyed<T: Clone>(
    a: &mut IndexMap<String, T>,
    b: &IndexMap<String, T>,
    add: impl Fn(&mut T, &T),
) {
    for (k, v) in b {
        match a.get_mut(k) {
            Some(x) => add(x, v),
            None => {
                a.insert(k.clone(), v.clone());
            }
        }
    }
}

fn add_map(a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_default() += v;
    }
}

fn add_counts(a: &mut IndexMap<String, u64>, b: &IndexMap<String, u64>) {
    for (k, v) in b {
        *a.entry(k.clone()).or_default() += v;
    }
}

fn add_metrics(a: &mut IndexMap<String, MetricSummary>, b: &IndexMap<String, MetricSummary>) {
    merge_keyed(a, b, add_metric);
}

fn add_metric(a: &mut MetricSummary, b: &MetricSummary) {
    a.count += b.count;
    a.errors += b.errors;
    add_map(&mut a.errors_by_class, &b.errors_by_class);
    for (class, example) in &b.error_examples {
        a.error_examples
            .entry(class.clone())
            .or_insert_with(|| example.clone());
    }
    // Every shard's rate is over the same seconds of load (the scenario's phases).
    a.rate_per_s = crate::decimals::round(a.rate_per_s + b.rate_per_s, 3);
    a.retries += b.retries;
    add_map(&mut a.retries_by_reason, &b.retries_by_reason);
    a.reconnects += b.reconnects;
    a.attempts += b.attempts;
    a.frames_sent += b.frames_sent;
    a.frames_received += b.frames_received;
    a.bytes_sent += b.bytes_sent;
    a.bytes_received += b.bytes_received;
}

fn add_option(a: &mut Option<u64>, b: Option<u64>) {
    if let Some(y) = b {
        *a = Some(a.unwrap_or(0) + y);
    }
}

fn add_messages(a: &mut Messages, b: &Messages) {
    a.sent += b.sent;
    a.acked += b.acked;
    a.delivered += b.delivered;
    add_option(&mut a.pending, b.pending);
    add_option(&mut a.lost, b.lost);
    a.late += b.late;
    a.skipped += b.skipped;
    a.duplicated += b.duplicated;
    a.reordered += b.reordered;
}

fn add_contacts(a: &mut Contacts, b: &Contacts) {
    a.expected += b.expected;
    a.missing += b.missing;
}

fn add_arrivals(a: &mut Arrivals, b: &Arrivals) {
    a.planned += b.planned;
    a.started += b.started;
    a.dropped += b.dropped;
    a.dropped_by.max_users += b.dropped_by.max_users;
    a.dropped_by.max_inflight += b.dropped_by.max_inflight;
    a.dropped_by.behind_schedule += b.dropped_by.behind_schedule;
    a.returned += b.returned;
    a.completed += b.completed;
    a.failed += b.failed;
    a.cut_off += b.cut_off;
    add_map(&mut a.cut_off_in, &b.cut_off_in);
}

fn add_checks(a: &mut Checks, b: &Checks) {
    a.passed += b.passed;
    a.failed += b.failed;
    for c in &b.by_check {
        match a.by_check.iter_mut().find(|x| x.name == c.name) {
            Some(x) => {
                x.passed += c.passed;
                x.failed += c.failed;
            }
            None => a.by_check.push(c.clone()),
        }
    }
    let evaluated = a.passed + a.failed;
    a.rate = (evaluated > 0).then(|| a.passed as f64 / evaluated as f64);
}

fn add_phase(a: &mut Phase, b: &Phase) {
    add_metrics(&mut a.metrics, &b.metrics);
    add_messages(&mut a.messages, &b.messages);
    add_contacts(&mut a.contacts, &b.contacts);
    add_arrivals(&mut a.arrivals, &b.arrivals);
}

fn add_region(a: &mut Region, b: &Region) {
    a.users += b.users;
    add_metrics(&mut a.metrics, &b.metrics);
    add_messages(&mut a.messages, &b.messages);
    add_contacts(&mut a.contacts, &b.contacts);
    add_arrivals(&mut a.arrivals, &b.arrivals);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shard's summary: `n` registers (`errors` of them timeouts), `passed` checks passed.
    fn shard(n: u64, errors: u64, passed: u64, lost: Option<u64>) -> Summary {
        let metric = serde_json::json!({"count": n, "errors": errors,
            "errors_by_class": {"timeout": errors}, "rate_per_s": n as f64 / 10.0,
            "latency_ms": null, "service_time_ms": null, "retries": 1,
            "retries_by_reason": {"429": 1}});
        let arrivals = serde_json::json!({"planned": n, "started": n, "dropped": 0,
            "dropped_by": {"max_users": 0, "max_inflight": 0, "behind_schedule": 0},
            "completed": n, "cut_off_in": {"step 2": 1}, "schedule_lag_ms": null});
        let messages = serde_json::json!({"sent": 2 * n, "acked": 2 * n, "delivered": 2 * n,
            "lost": lost, "duplicated": 0, "delivery_latency_ms": null});
        let contacts = serde_json::json!({"expected": 3, "missing": 0});
        serde_json::from_value(serde_json::json!({
            "schema": "inrush.summary/1", "scenario": "s", "description": "", "seed": 1,
            "target": "builtin", "inrush_version": "0", "started_at": "", "duration_s": 10.0,
            "verdict": "passed", "metrics": {"register": metric.clone()},
            "messages": messages.clone(), "contacts": contacts.clone(),
            "arrivals": arrivals.clone(), "counts": {"presence": n},
            "checks": {"passed": passed, "failed": 1, "rate": null,
                "by_check": [{"name": "register status == 202", "passed": passed, "failed": 1}]},
            "phases": {"only": {"start_s": 0.0, "end_s": 10.0, "metrics": {"register": metric},
                "messages": messages, "contacts": contacts, "arrivals": arrivals}},
            "thresholds": [],
            "generator": {"workers": 1, "cpu_seconds": 0.5, "peak_rss_mb": 20.0 + n as f64,
                "target_in_process": false,
                "host": {"hostname": "h", "cpu_model": "c", "cpus": 1, "memory_gib": 1.0}},
            "warnings": []
        }))
        .expect("a summary")
    }

    #[test]
    fn every_count_is_the_sum_of_the_shards() {
        let mut a = shard(10, 1, 9, Some(0));
        add(&mut a, &shard(7, 2, 5, None));
        add(&mut a, &shard(5, 0, 5, Some(2)));
        let r = &a.metrics["register"];
        assert_eq!(
            (r.count, r.errors, r.errors_by_class["timeout"]),
            (22, 3, 3)
        );
        assert_eq!((r.retries, r.retries_by_reason["429"]), (3, 3));
        assert!((r.rate_per_s - 2.2).abs() < 1e-9);
        assert_eq!(a.phases["only"].metrics["register"].count, 22);
        assert_eq!(a.phases["only"].arrivals.planned, 22);
        assert_eq!(
            (
                a.arrivals.planned,
                a.arrivals.completed,
                a.arrivals.cut_off_in["step 2"]
            ),
            (22, 22, 3)
        );
        assert_eq!((a.messages.sent, a.messages.lost), (44, Some(2)));
        assert_eq!((a.contacts.expected, a.counts["presence"]), (9, 22));
        assert_eq!((a.checks.passed, a.checks.failed), (19, 3));
        assert_eq!(a.checks.by_check[0].passed, 19);
        assert!(a
            .checks
            .rate
            .is_some_and(|r| (r - 19.0 / 22.0).abs() < 1e-9));
        assert_eq!(a.generator.workers, 3);
        assert!((a.generator.cpu_seconds - 1.5).abs() < 1e-9);
        assert_eq!(a.generator.peak_rss_mb, 30.0, "the largest process");
    }
}
