//! `inrush plan`'s outputs: the terminal report, `plan.json` and the chart `plan.png`/`.svg`.

use std::fmt::Write;
use std::path::Path;

use super::{thousands, Estimate, FILE};
use crate::error::Error;
use crate::metrics::timeline::PhaseSpan;
use crate::report::chart::{self, LinePanel};

/// The terminal report.
pub fn text(e: &Estimate) -> String {
    let mut o = String::new();
    scenario_and_arrivals(e, &mut o);
    peaks(e, &mut o);
    resources(e, &mut o);
    let _ = writeln!(o);
    for note in &e.notes {
        let _ = writeln!(o, "note: {note}");
    }
    let _ = writeln!(o, "verdict: {}", e.verdict.text);
    for reason in &e.verdict.reasons {
        let _ = writeln!(o, "  - {reason}");
    }
    o
}

/// The scenario line, the assumed latency, and who arrives (planned, closed, returns, drops).
fn scenario_and_arrivals(e: &Estimate, o: &mut String) {
    let _ = writeln!(
        o,
        "plan: {} · seed {} · {} · {:.1}s + drain {:.1}s · {} worker(s) · nothing is sent",
        e.scenario, e.seed, e.target, e.duration_s, e.drain_s, e.workers
    );
    let _ = writeln!(
        o,
        "assumed latency per operation: {} ms (--latency)",
        e.assumed_latency_ms
    );
    let _ = writeln!(o);
    let phases: Vec<String> = e
        .arrivals
        .per_phase
        .iter()
        .map(|(n, c)| format!("{n} {}", thousands(*c)))
        .collect();
    let a = &e.arrivals;
    let _ = writeln!(
        o,
        "arrivals          {} planned ({}), peak {:.0}/s  [{}]",
        thousands(a.scheduled),
        match e.sampled_one_in {
            None => "exact for this seed".to_string(),
            Some(k) => format!("~, sampled 1 in {}", thousands(k)),
        },
        a.peak_per_s,
        phases.join(", ")
    );
    if a.closed > 0 {
        let _ = writeln!(
            o,
            "closed phases     ~{} users started by the loops (a new one as each leaves)",
            thousands(a.closed)
        );
    }
    if a.returned > 0 {
        let _ = writeln!(
            o,
            "returns           ~{} users come back (arrivals.returned)",
            thousands(a.returned)
        );
    }
    if a.dropped > 0 {
        let _ = writeln!(
            o,
            "dropped by caps   ~{} (max_users {}, max_inflight {})",
            thousands(a.dropped),
            thousands(a.dropped_by.max_users),
            thousands(a.dropped_by.max_inflight)
        );
    }
}

/// Peak users, connections, requests and messages.
fn peaks(e: &Estimate, o: &mut String) {
    let _ = writeln!(
        o,
        "concurrent users  peak {}",
        thousands(e.peak.active_users)
    );
    let _ = writeln!(
        o,
        "connections       peak {} sockets: {} WebSockets, {} HTTP",
        thousands(e.peak.sockets),
        thousands(e.peak.websockets),
        thousands(e.peak.http_connections)
    );
    let _ = writeln!(
        o,
        "requests          {} in all, peak {:.0}/s (HTTP requests and WebSocket upgrades)",
        thousands(e.totals.requests),
        e.peak.requests_per_s
    );
    let _ = writeln!(
        o,
        "messages          {} in all, peak {:.0}/s",
        thousands(e.totals.messages),
        e.peak.messages_per_s
    );
}

/// What the generator machine needs: descriptors, source ports, CPU, operations in flight.
fn resources(e: &Estimate, o: &mut String) {
    let r = &e.resources;
    let m = &e.machine;
    let limit = m.open_files.map_or("unknown".to_string(), |l| {
        format!("soft {}, hard {}", thousands(l.soft), thousands(l.hard))
    });
    let _ = writeln!(
        o,
        "file descriptors  ~{} at the peak ({} per socket + {}); open-file limit {limit}",
        thousands(r.descriptors),
        r.descriptors_per_socket,
        r.base_descriptors
    );
    let _ = writeln!(
        o,
        "source ports      ~{} per source address{} × {} address(es); {} ephemeral ports ({}-{}), \
         connects slow down past {}{}",
        thousands(r.ports_per_source_address),
        super::time_wait_share(r),
        r.source_addresses,
        thousands(m.ports_per_address),
        m.ephemeral_ports.0,
        m.ephemeral_ports.1,
        thousands(crate::os_limits::connect_ports(m.ports_per_address)),
        if m.time_wait_reused && r.http_closed_per_s > 0.0 {
            "; TIME_WAIT reused towards this target (tcp_tw_reuse)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        o,
        "generator CPU     ~{:.2} cores at the peak; this machine has {}",
        r.cpu_cores, m.cpus
    );
    if let Some(cap) = e.inflight.cap {
        let _ = writeln!(
            o,
            "in flight         ~{:.1} operations at the peak (operations/s × latency); max_inflight {}",
            e.inflight.peak,
            thousands(cap)
        );
    }
}

/// Writes `plan.json`, `plan.png` and `plan.svg` into `dir`.
pub fn write(dir: &Path, e: &Estimate, phases: &[PhaseSpan]) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|err| Error::output("cannot create", dir, err))?;
    let path = dir.join(FILE);
    let json = serde_json::to_vec_pretty(e)
        .map_err(|err| Error::Run(format!("cannot encode the plan: {err}")))?;
    std::fs::write(&path, json).map_err(|err| Error::io("cannot write", &path, err))?;
    // Gauges at interval ends, rates at interval middles, as in a run's users chart.
    let gauge = |f: fn(&super::Point) -> u64| -> Vec<(f64, f64)> {
        e.timeline.iter().map(|p| (p.end_s, f(p) as f64)).collect()
    };
    let rate = |f: fn(&super::Point) -> u64| -> Vec<(f64, f64)> {
        e.timeline
            .iter()
            .map(|p| ((p.start_s + p.end_s) / 2.0, f(p) as f64 / p.seconds()))
            .collect()
    };
    let panels = [
        LinePanel {
            title: match e.sampled_one_in {
                None => "Arrivals per second (open arrivals exact for this seed; closed users, returns)"
                    .to_string(),
                Some(k) => format!(
                    "Arrivals per second (sampled 1 in {}: per-second noise; closed users, returns)",
                    thousands(k)
                ),
            },
            y_label: "arrivals/s".to_string(),
            lines: vec![
                ("arrivals/s".to_string(), rate(|p| p.arrivals)),
                ("returns/s".to_string(), rate(|p| p.returns)),
                ("dropped/s".to_string(), rate(|p| p.dropped)),
            ],
        },
        LinePanel {
            title: "Concurrent users and open connections (expected)".to_string(),
            y_label: "count".to_string(),
            lines: vec![
                ("active users".to_string(), gauge(|p| p.active_users)),
                ("WebSockets".to_string(), gauge(|p| p.websockets)),
                (
                    "HTTP connections".to_string(),
                    gauge(|p| p.http_connections),
                ),
            ],
        },
        LinePanel {
            title: "Requests and messages per second (expected)".to_string(),
            y_label: "per second".to_string(),
            lines: vec![
                ("requests/s".to_string(), rate(|p| p.requests)),
                ("messages/s".to_string(), rate(|p| p.messages)),
            ],
        },
    ];
    let title = format!(
        "Plan: {} — assumed {} ms per operation; {}",
        e.scenario, e.assumed_latency_ms, e.verdict.text
    );
    chart::render_lines(dir, "plan", &title, phases, &panels)
        .map_err(|err| Error::Run(format!("cannot draw the plan chart: {err}")))?;
    Ok(())
}
