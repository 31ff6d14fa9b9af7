//! The warnings a finished run's summary carries: the generator fell behind, was saturated,
//! dropped arrivals, or the machine was busy.

use super::summary::{Summary, WorkerCpu, LAG_WARN_MS, UNVERIFIED_TLS, WORKER_BUSY};

/// Warnings a reader must not miss: the generator fell behind, arrivals were dropped.
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
    if s.generator.workers > 0 {
        let busy = s.generator.cpu_seconds / s.duration_s.max(1e-9);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
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
