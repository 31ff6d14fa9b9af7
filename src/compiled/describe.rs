//! `inrush validate`'s description of a valid plan.

use std::fmt::Write;

use super::{Plan, Target};

/// A short human description of a valid plan, printed by `inrush validate`.
pub fn describe(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}: valid", plan.source.display());
    for o in &plan.overrides {
        let _ = writeln!(out, "  from the command line: {o}");
    }
    if !plan.shard.is_whole() {
        let _ = writeln!(
            out,
            "  shard {}: open arrivals k with k mod {} = {}, about 1/{} of every phase below; \
             closed users and caps are this shard's share",
            plan.shard.label(),
            plan.shard.count,
            plan.shard.index,
            plan.shard.count
        );
    }
    let total = scenario_and_phases(plan, &mut out);
    let caps: Vec<String> = [
        ("max_users", plan.max_users),
        ("max_inflight", plan.max_inflight),
    ]
    .iter()
    .filter_map(|(n, c)| c.map(|c| format!("{n} {c}")))
    .collect();
    if !caps.is_empty() {
        let _ = writeln!(
            out,
            "  caps: {} (arrivals beyond them are dropped and counted)",
            caps.join(", ")
        );
    }
    for r in &plan.regions.list {
        let _ = writeln!(
            out,
            "  region {:<11} {:>6.1}%  +{:?} ± {:?} one way  ~{:.0} users",
            r.name,
            r.share * 100.0,
            r.latency,
            r.jitter,
            total * r.share
        );
    }
    cohorts(plan, &mut out);
    if let Some(r) = &plan.retry {
        let _ = writeln!(out, "  retry: {}", r.describe());
    }
    if let Some(r) = &plan.reconnect {
        let _ = writeln!(out, "  reconnect: {}", r.describe());
    }
    if !plan.source_addresses.is_empty() {
        let list: Vec<String> = plan
            .source_addresses
            .iter()
            .map(|a| a.to_string())
            .collect();
        let _ = writeln!(out, "  source addresses: {}", list.join(", "));
    }
    if let Some(n) = plan.connections.bound() {
        let _ = writeln!(
            out,
            "  connections: HTTP requests share a pool of {n} kept-alive connections (split over \
             the workers; a wait for one is inside the request's latency)"
        );
    }
    let metrics: Vec<&str> = plan.catalog.reported().map(|(_, n)| n).collect();
    let _ = writeln!(out, "  metrics: {}", metrics.join(", "));
    let o = &plan.overload;
    let _ = writeln!(
        out,
        "  inconclusive (exit 4) beyond: schedule lag p99 {} ms, loop lag p99 {} ms, {} % of arrivals dropped behind schedule{}",
        o.schedule_lag_p99_ms,
        o.loop_lag_p99_ms,
        (o.behind_schedule * 1e6).round() / 1e4,
        plan.max_start_lag.map_or(String::new(), |d| format!(
            "; an arrival not started {} ms after its intended time is dropped",
            d.as_secs_f64() * 1000.0
        ))
    );
    out
}

/// Whom an `https://` target's certificate must come from, and the client certificate.
fn tls_trust(tls: &crate::clients::tls::TlsOptions) -> String {
    let trust = match (&tls.ca, tls.insecure) {
        (_, true) => "certificates NOT verified".to_string(),
        (Some(ca), false) => format!("trusting the CAs of {}", ca.display()),
        (None, false) => "trusting the system's CAs".to_string(),
    };
    match &tls.client_cert {
        Some((cert, _)) => format!("{trust}, client certificate {}", cert.display()),
        None => trust,
    }
}

/// The target, the phases (their shape and volume) and the total; returns the expected number
/// of open arrivals.
fn scenario_and_phases(plan: &Plan, out: &mut String) -> f64 {
    let target = match &plan.target {
        Target::Builtin(_) => "built-in messenger (started in-process)".to_string(),
        Target::Url(u) if u.tls => format!("{u} ({})", tls_trust(&plan.tls)),
        Target::Url(u) => u.to_string(),
    };
    let _ = writeln!(
        out,
        "scenario {} · seed {} · target {target}",
        plan.name, plan.seed
    );
    let mut total = 0.0;
    for p in &plan.phases {
        let expected = p.mass();
        total += expected;
        let (rate, volume) = match p.closed() {
            Some(closed) => closed.describe(plan.shard),
            None => p.load.shape().describe_columns(expected),
        };
        let _ = writeln!(
            out,
            "  phase {:<12} {:>7.1}s  {rate:<24} {volume}",
            p.name,
            p.duration.as_secs_f64()
        );
    }
    let _ = writeln!(
        out,
        "  total {:.1}s + drain {:.1}s · ~{total:.0} users ({:?} arrivals){}",
        plan.duration().as_secs_f64(),
        plan.drain.as_secs_f64(),
        plan.arrivals,
        if plan.phases.iter().any(|p| p.closed().is_some()) {
            " plus the closed phases' looping users"
        } else {
            ""
        }
    );
    if let Some(d) = plan.delivery_deadline {
        let _ = writeln!(
            out,
            "  a message not delivered {:.1}s after its intended send is lost",
            d.as_secs_f64()
        );
    }
    total
}

/// Who runs what: every cohort's share and flow, and who comes back.
fn cohorts(plan: &Plan, out: &mut String) {
    let set = &plan.flows;
    let total: f64 = set.cohorts.iter().map(|c| c.share).sum();
    for c in &set.cohorts {
        // Cohorts name only compiled flows; one that does not is left out rather than panic.
        let Some(flow) = set.flows.get(c.flow) else {
            debug_assert!(
                false,
                "cohort {} names flow {} of {}",
                c.name,
                c.flow,
                set.flows.len()
            );
            continue;
        };
        let _ = writeln!(
            out,
            "  cohort {} ({:.0}%) runs flow {} ({} steps)",
            c.name,
            100.0 * c.share / total,
            flow.name,
            flow.steps.len()
        );
        if let Some(r) = &c.returns {
            let _ = writeln!(
                out,
                "    {:.0}% of those who leave come back later and run flow {}",
                100.0 * r.share,
                set.flows.get(r.flow).map_or("?", |f| f.name.as_str())
            );
        }
    }
}
