//! The warnings a finished run's summary carries: the generator fell behind, was saturated,
//! dropped arrivals, or the machine was busy.

use super::summary::{Summary, WorkerCpu, LAG_WARN_MS, UNVERIFIED_TLS, WORKER_BUSY};

/// Warnings a reader must not miss: the generator fell behind, arrivals were dropped.
/// The shortest run whose CPU per second of wall time can say the machine was saturated.
const MIN_SATURATION_S: f64 = 1.0;

pub fn warnings(s: &Summary) -> Vec<String> {
    let mut w = Vec::new();
    if s.tls.as_ref().is_some_and(|t| !t.verified) {
        w.push(UNVERIFIED_TLS.to_string());
    }
    if let Some(lag) = s.arrivals.schedule_lag_ms {
        if lag.p99 > LAG_WARN_MS {
            w.push(format!(
                "the generator (not the target) fell behind its schedule: schedule lag p99 {:.1} ms \
                 (max {:.1} ms). Latencies still count from the intended start, but {}; give the \
                 generator more CPU (--workers, more generator processes or machines, see \
                 `inrush plan`) before trusting the load level{}",
                lag.p99,
                lag.max,
                match s.arrivals.dropped_by.behind_schedule {
                    0 => "operations reached the target later (and more bunched) than planned"
                        .to_string(),
                    n => format!("the target received less load than planned ({n} arrivals never started)"),
                },
                // Late timers on idle workers point at the machine, not at inrush's own load.
                match s.generator.worker_cpu_max {
                    Some(c) if c.max < 0.5 => format!(
                        ". Its worker threads were never busy (at most {:.0} % of a core), so \
                         other processes on this machine likely held the CPU",
                        c.max * 100.0
                    ),
                    _ => String::new(),
                }
            ));
        }
    }
    if let Some(cpu) = s.generator.worker_cpu_max.filter(WorkerCpu::saturated) {
        w.push(format!(
            "the generator (not the target) was saturated: its busiest worker thread was over \
             {:.0} % busy in {} of {} intervals (p90 {:.0} %, max {:.0} %). Users waited for the \
             generator's CPU, so latencies and schedule lag include that wait{}; use more \
             --workers, more generator processes or machines (see `inrush plan`) before reading \
             these latencies as the target's",
            WORKER_BUSY * 100.0,
            cpu.saturated_intervals,
            cpu.intervals,
            cpu.p90 * 100.0,
            cpu.max * 100.0,
            match s.arrivals.dropped_by.behind_schedule {
                0 => String::new(),
                n => format!(
                    " and the target saw less load than planned ({n} arrivals never started)"
                ),
            }
        ));
    }
    if s.arrivals.dropped > 0 {
        let by = s.arrivals.dropped_by;
        w.push(format!(
            "{} of {} planned arrivals were dropped ({} by the max_users cap, {} by the max_inflight cap, {} because the generator could not start them before their deadline)",
            s.arrivals.dropped, s.arrivals.planned, by.max_users, by.max_inflight, by.behind_schedule
        ));
    }
    // On the machine the run was on (not the one a report is rebuilt on), and over a run long
    // enough for an average to mean something: the start-up's CPU over a run that ended at once
    // (its target unreachable) read as millions of cores.
    let cores = s.generator.host.cpus as f64;
    if s.generator.workers > 0 && cores > 0.0 && s.duration_s >= MIN_SATURATION_S {
        let busy = s.generator.cpu_seconds / s.duration_s;
        if busy > 0.9 * cores {
            w.push(format!(
                "inrush used {busy:.1} of {cores} CPU cores on average{}: the machine was saturated, \
                 so measured latencies may include time the generator spent waiting for CPU",
                if s.generator.target_in_process { " (including the in-process built-in target)" } else { "" }
            ));
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A summary of a run `duration_s` long that used `cpu_seconds` on a host of `cpus`.
    fn run(duration_s: f64, cpu_seconds: f64, cpus: usize) -> Summary {
        let text = serde_json::json!({
            "schema": "inrush.summary/1", "scenario": "s", "description": "", "seed": 1,
            "target": "builtin", "inrush_version": "0", "started_at": "",
            "duration_s": duration_s, "verdict": "passed", "metrics": {},
            "messages": {"sent": 0, "acked": 0, "delivered": 0, "duplicated": 0,
                "delivery_latency_ms": null},
            "contacts": {"expected": 0, "missing": 0},
            "arrivals": {"planned": 0, "started": 0, "dropped": 0, "schedule_lag_ms": null},
            "phases": {}, "thresholds": [],
            "generator": {"workers": 2, "cpu_seconds": cpu_seconds, "peak_rss_mb": 1.0,
                "target_in_process": false,
                "host": {"hostname": "h", "cpu_model": "c", "cpus": cpus, "memory_gib": 1.0}},
            "warnings": []
        });
        serde_json::from_value(text).expect("a summary")
    }

    fn saturated(s: &Summary) -> Option<String> {
        warnings(s).into_iter().find(|w| w.contains("saturated"))
    }

    #[test]
    fn saturation_is_judged_on_the_runs_own_host_over_a_real_run() {
        // 19 CPU-s in 10 s is 1.9 cores: over 90 % of 2, under 90 % of 4.
        let two = saturated(&run(10.0, 19.0, 2)).expect("saturated on 2 cores");
        assert!(two.contains("1.9 of 2 CPU cores"), "{two}");
        assert_eq!(saturated(&run(10.0, 19.0, 4)), None);
        // A run that ended at once (its target unreachable): its start-up is no average.
        assert_eq!(saturated(&run(0.0, 0.007, 2)), None);
        assert_eq!(saturated(&run(0.2, 0.5, 2)), None);
    }
}
