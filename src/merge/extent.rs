//! The merged run's extent on its one time axis: how long it ran, how much of that was the
//! drain, where each phase starts and ends. Every shard counts, moved by its start offset (its
//! time zero after the earliest shard's): the last to finish sets the end, the first to begin a
//! phase sets its start. Shard 0 alone may have drained less than the others, or started later.

use crate::metrics::timeline::{PhaseSpan, Timeline};
use crate::report::summary::Summary;

/// Sets `merged`'s duration, drain and phase spans from `shards`, each a summary with its start
/// offset in seconds; `timeline_end` is where the merged timeline's last interval ends.
pub fn set(merged: &mut Summary, shards: &[(&Summary, f64)], timeline_end: f64) {
    let latest = |at: &dyn Fn(&Summary) -> f64| {
        shards
            .iter()
            .map(|(s, offset)| offset + at(s))
            .fold(0.0, f64::max)
    };
    merged.duration_s = crate::decimals::round(latest(&|s| s.duration_s), 3).max(timeline_end);
    // The load ends when the last shard's does; what follows it, to the run's end, is the drain.
    let load_end = latest(&|s| s.duration_s - s.drain_s);
    merged.drain_s = crate::decimals::round((merged.duration_s - load_end).max(0.0), 3);
    let last = merged.phases.len().checked_sub(1);
    for (i, (name, phase)) in merged.phases.iter_mut().enumerate() {
        let spans = shards.iter().filter_map(|(s, offset)| {
            let p = s.phases.get(name)?;
            Some((offset + p.start_s, offset + p.end_s))
        });
        if let Some((start, end)) = hull(spans) {
            (phase.start_s, phase.end_s) = (
                crate::decimals::round(start, 6),
                crate::decimals::round(end, 6),
            );
        }
        // As in a run: the last phase holds the drain that follows it.
        if Some(i) == last {
            phase.end_s = phase.end_s.max(merged.duration_s);
        }
    }
}

/// The merged timeline's phase spans (the load profile's, which the charts shade), in the
/// first shard's order, each from the earliest start to the latest end among `timelines` (each
/// with its start offset in seconds).
pub fn phase_spans(timelines: &[(&Timeline, f64)]) -> Vec<PhaseSpan> {
    let Some((first, _)) = timelines.first() else {
        return Vec::new();
    };
    first
        .phases
        .iter()
        .map(|span| {
            let spans = timelines.iter().filter_map(|(t, offset)| {
                let p = t.phases.iter().find(|p| p.name == span.name)?;
                Some((offset + p.start_s, offset + p.end_s))
            });
            let (start, end) = hull(spans).unwrap_or((span.start_s, span.end_s));
            PhaseSpan {
                name: span.name.clone(),
                start_s: crate::decimals::round(start, 6),
                end_s: crate::decimals::round(end, 6),
            }
        })
        .collect()
}

/// The earliest start and the latest end of `spans`.
fn hull(spans: impl Iterator<Item = (f64, f64)>) -> Option<(f64, f64)> {
    spans.fold(None, |acc, (start, end)| match acc {
        None => Some((start, end)),
        Some((a, b)) => Some((f64::min(a, start), f64::max(b, end))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shard of a one-phase scenario (`p`, 6 s) that ran `duration_s`, drained `drain_s`.
    fn shard(duration_s: f64, drain_s: f64) -> Summary {
        let none = serde_json::json!({});
        let arrivals = serde_json::json!({"planned": 0, "started": 0, "dropped": 0,
            "schedule_lag_ms": null});
        let messages = serde_json::json!({"sent": 0, "acked": 0, "delivered": 0,
            "duplicated": 0, "delivery_latency_ms": null});
        let contacts = serde_json::json!({"expected": 0, "missing": 0});
        serde_json::from_value(serde_json::json!({
            "schema": "inrush.summary/1", "scenario": "s", "description": "", "seed": 1,
            "target": "builtin", "inrush_version": "0", "started_at": "",
            "duration_s": duration_s, "drain_s": drain_s, "verdict": "passed", "metrics": none,
            "messages": messages, "contacts": contacts, "arrivals": arrivals,
            "phases": {"p": {"start_s": 0.0, "end_s": duration_s.max(6.0), "metrics": none,
                "messages": messages, "contacts": contacts, "arrivals": arrivals}},
            "thresholds": [],
            "generator": {"workers": 1, "cpu_seconds": 0.5, "peak_rss_mb": 20.0,
                "target_in_process": true,
                "host": {"hostname": "h", "cpu_model": "c", "cpus": 1, "memory_gib": 1.0}},
            "warnings": []
        }))
        .expect("a summary")
    }

    #[test]
    fn the_run_ends_and_drains_as_its_last_shard_does() {
        // The audit's case: shard 0 had nothing left in flight 0.108 s after the 6 s of load,
        // shard 1 (started 4 ms later) drained 1.01 s.
        let (early, late) = (shard(6.108, 0.108), shard(7.01, 1.01));
        let mut merged = early.clone();
        set(&mut merged, &[(&early, 0.0), (&late, 0.004)], 6.0);
        assert_eq!((merged.duration_s, merged.drain_s), (7.014, 1.01));
        let p = &merged.phases["p"];
        assert_eq!((p.start_s, p.end_s), (0.0, 7.014));
        // Whichever shard is given first.
        let mut merged = late.clone();
        set(&mut merged, &[(&late, 0.004), (&early, 0.0)], 6.0);
        assert_eq!((merged.duration_s, merged.drain_s), (7.014, 1.01));
        // A shard that started later moves the phase's start only if it is the earliest.
        let mut alone = late.clone();
        set(&mut alone, &[(&late, 0.25)], 0.0);
        assert_eq!(alone.phases["p"].start_s, 0.25);
        // The merged timeline's last interval, if it ends later, is the run's end.
        let mut merged = early.clone();
        set(&mut merged, &[(&early, 0.0), (&late, 0.004)], 8.0);
        assert_eq!((merged.duration_s, merged.drain_s), (8.0, 1.996));
        assert_eq!(merged.phases["p"].end_s, 8.0);
    }

    #[test]
    fn the_timelines_phases_span_every_shards() {
        let span = |name: &str, start_s: f64, end_s: f64| PhaseSpan {
            name: name.into(),
            start_s,
            end_s,
        };
        let timeline = |phases| Timeline {
            points: Vec::new(),
            phases,
        };
        let a = timeline(vec![span("a", 0.0, 2.0), span("b", 2.0, 6.0)]);
        let b = timeline(vec![span("a", 0.0, 2.0), span("b", 2.0, 6.0)]);
        let spans = phase_spans(&[(&b, 0.03), (&a, 0.0)]);
        assert_eq!(spans, vec![span("a", 0.0, 2.03), span("b", 2.0, 6.03)]);
    }
}
