//! `inrush plan`: a dry run that sends nothing. It walks every planned arrival (the same seeded
//! timeline the run uses) through its flow's compiled steps on an assumed latency, and reports
//! what the run will need: arrivals, concurrent users and open connections over time, requests
//! and messages per second, file descriptors and ephemeral ports, and a verdict on how many
//! generator processes or machines like this one it takes.
//!
//! Layout: [`walk`] follows one user through its flow, [`model`] decides who starts when (open
//! arrivals, closed-phase loops, returning users, the caps), [`per_interval`] adds every user up
//! on the run's own interval boundaries (so plan and run timelines line up point by point), this
//! module judges the result against this machine's limits, [`render`] writes the report,
//! [`kubernetes`] the manifests of a sharded run (`--kubernetes`).

pub mod kubernetes;
pub mod model;
mod per_interval;
mod ports;
pub mod render;
mod sample;
pub mod walk;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::compiled::{Plan, Target};
use crate::os_limits;
use per_interval::PerInterval;
use walk::Assumptions;

pub const SCHEMA: &str = "inrush.plan/1";
pub const FILE: &str = "plan.json";

/// What one generator core sustains, measured by `bench/run.sh` on a 2-core machine (see
/// bench/README.md and the README's "Benchmarks"): 600–1 600 signups/s with five requests each
/// (the WebSocket upgrade counted as one) and schedule lag p99 under 5 ms in the quiet runs after
/// issue 4, taken at ~1 000, i.e. ~5 000 requests/s; and ~30 000 chat messages/s tracked to
/// delivery (29 000–32 000 measured). Conservative: the signup figure includes its three messages
/// per user.
pub const REQUESTS_PER_CORE: f64 = 5_000.0;
pub const MESSAGES_PER_CORE: f64 = 30_000.0;

/// The default assumed latency of one operation.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(10);

/// Intervals shorter than this (slivers at phase ends) are left out of peak rates: one arrival
/// in 10 ms is not a rate of 100/s.
const MIN_RATE_INTERVAL: f64 = 0.5;

/// Everything `inrush plan` reports; `plan.json` is this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub schema: String,
    pub scenario: String,
    pub seed: u64,
    pub target: String,
    /// The latency assumed for every timed operation, ms.
    pub assumed_latency_ms: f64,
    pub duration_s: f64,
    pub drain_s: f64,
    /// Worker threads the run is modelled on (the caps and closed users are split across them).
    #[serde(default)]
    pub workers: u64,
    pub arrivals: Arrivals,
    pub peak: Peaks,
    pub totals: Totals,
    pub resources: Resources,
    /// `max_inflight`: operations in flight at the peak, and whether the cap binds.
    #[serde(default)]
    pub inflight: Inflight,
    pub machine: Machine,
    pub verdict: Verdict,
    /// Per interval of the run (every whole second and phase end), as in a run's timeline.json.
    pub timeline: Vec<Point>,
    /// What the figures leave out (the retries a struggling target would draw) and what the
    /// reader should know (a cap that binds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Set when the plan was too large to walk user by user: it walked 1 in this many users
    /// and scaled the counts back up (the open timeline is then an estimate, not exact).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampled_one_in: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arrivals {
    /// Every arrival the run will count as planned: the open timeline's, the closed phases'
    /// users and the returns (as the run's `arrivals.planned`). Exact when the scenario has no
    /// closed phase and no returns; otherwise the closed and returning parts follow the assumed
    /// latency.
    pub planned: u64,
    /// The open arrival timeline: exact for this seed.
    #[serde(default)]
    pub scheduled: u64,
    /// Users started by closed phases (each iteration is one).
    #[serde(default)]
    pub closed: u64,
    /// Returns started (the run's `arrivals.returned`); dropped returns are in `dropped`.
    #[serde(default)]
    pub returned: u64,
    /// Arrivals and returns a cap is expected to drop.
    #[serde(default)]
    pub dropped: u64,
    #[serde(default)]
    pub dropped_by: DroppedBy,
    /// Open arrivals and closed-phase users per phase (returns apart).
    pub per_phase: indexmap::IndexMap<String, u64>,
    pub peak_per_s: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DroppedBy {
    pub max_users: u64,
    pub max_inflight: u64,
}

/// Timed operations in flight: Little's law on the assumed latency, at the busiest interval.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inflight {
    /// ≈ operations per second × their duration, summed over the run's workers.
    pub peak: f64,
    pub cap: Option<u64>,
    /// The peak reaches the cap: arrivals will be dropped by `max_inflight` (more of them if
    /// the target is slower than the assumed latency).
    pub binds: bool,
}

/// Highest values over the run's intervals (gauges at interval ends, rates per interval).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    pub active_users: u64,
    pub websockets: u64,
    pub http_connections: u64,
    /// WebSockets + HTTP connections.
    pub sockets: u64,
    pub requests_per_s: f64,
    pub messages_per_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// HTTP requests and WebSocket upgrades.
    pub requests: u64,
    pub messages: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    /// Peak descriptors of one generator process: its sockets (twice over when the built-in
    /// target runs in the same process: it holds the server end) plus a fixed base.
    pub descriptors: u64,
    pub descriptors_per_socket: u64,
    pub base_descriptors: u64,
    pub source_addresses: u64,
    /// Ephemeral ports each source address needs at the peak: one per open connection to the
    /// target, plus those the connections it closed hold in TIME_WAIT.
    pub ports_per_source_address: u64,
    /// Of those, the ports held in TIME_WAIT (0 where the kernel reuses them towards this
    /// target, or through a pool).
    #[serde(default)]
    pub time_wait_per_source_address: u64,
    /// HTTP connections the generator closes per second at the peak.
    #[serde(default)]
    pub http_closed_per_s: f64,
    /// Generator CPU cores needed at the peak, from the per-core capacity constants.
    pub cpu_cores: f64,
}

/// The machine `plan` ran on, taken as the model of a generator machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub open_files: Option<os_limits::OpenFiles>,
    pub ephemeral_ports: (u16, u16),
    pub ports_per_address: u64,
    /// `net.ipv4.tcp_tw_reuse` and `tcp_max_tw_buckets` (Linux).
    #[serde(default)]
    pub time_wait: Option<os_limits::TimeWait>,
    /// Whether the kernel reuses ports in TIME_WAIT towards this target (no port is then held
    /// by a closed connection for long).
    #[serde(default)]
    pub time_wait_reused: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Generator processes the open-file limit requires.
    pub processes: u64,
    /// Machines like this one that CPU and ephemeral ports require.
    pub machines: u64,
    /// Why more than one, one line per limit that is exceeded.
    pub reasons: Vec<String>,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub start_s: f64,
    pub end_s: f64,
    /// Users started in the interval: open arrivals, closed-phase users and returns.
    pub arrivals: u64,
    /// Of those, returns.
    #[serde(default)]
    pub returns: u64,
    /// Arrivals and returns a cap drops.
    #[serde(default)]
    pub dropped: u64,
    /// Gauges at the end of the interval.
    pub active_users: u64,
    pub websockets: u64,
    pub http_connections: u64,
    /// HTTP connections the generator closed in the interval (each may hold its source port in
    /// TIME_WAIT for a minute after).
    #[serde(default)]
    pub http_closed: u64,
    pub requests: u64,
    pub messages: u64,
}

impl Point {
    fn seconds(&self) -> f64 {
        (self.end_s - self.start_s).max(1e-9)
    }
}

fn gauge(diff: &[i64], n: usize) -> Vec<u64> {
    let mut level = 0i64;
    diff.iter()
        .take(n)
        .map(|d| {
            level += d;
            level.max(0) as u64
        })
        .collect()
}

/// Estimates what running `plan` takes, assuming each timed operation takes `latency`, on as
/// many worker threads as a run on this machine starts by default.
pub fn estimate(plan: &Plan, latency: Duration) -> Estimate {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    estimate_with_workers(plan, latency, workers as u64)
}

/// [`estimate`] for a run with `workers` worker threads (`inrush run --workers`): the caps and
/// the closed phases' users are split across them as the run splits them.
pub fn estimate_with_workers(plan: &Plan, latency: Duration, workers: u64) -> Estimate {
    estimate_within(plan, latency, workers, sample::WALK_BUDGET)
}

/// [`estimate_with_workers`], walking one by one at most about `budget` users.
fn estimate_within(plan: &Plan, latency: Duration, workers: u64, budget: f64) -> Estimate {
    // As the run: a pool of N connections runs on at most N workers.
    let workers = plan.connections.workers(workers as usize) as u64;
    let duration = plan.duration().as_secs_f64();
    let drain = plan.drain.as_secs_f64();
    let a = Assumptions {
        latency: latency.as_secs_f64()
            + match &plan.target {
                // The built-in target's own added latency is known.
                Target::Builtin(k) => k.latency.as_secs_f64(),
                Target::Url(_) => 0.0,
            },
        stop: duration + crate::swarm::STOP_SLACK.as_secs_f64(),
        drain,
    };
    // The run's interval boundaries, to the end of the drain and a second beyond; for a plan
    // longer than MAX_INTERVALS seconds, every `stride`-th second (and phase ends in between
    // are passed over), so a week-long plan stays as quick to compute and draw as a day's.
    let horizon = duration + drain + 1.0;
    let stride = Duration::from_secs((horizon / MAX_INTERVALS).ceil().max(1.0) as u64);
    let mut ends = Vec::new();
    let mut t = Duration::ZERO;
    while t.as_secs_f64() < horizon {
        let after = if t.is_zero() {
            t
        } else {
            t + stride - Duration::from_secs(1)
        };
        t = crate::schedule::next_boundary(plan, after);
        ends.push(t.as_secs_f64());
    }
    let mut per_interval = PerInterval::new(ends);
    let one_in = sample::one_in(plan, budget);
    let counts = if one_in > 1 {
        let sampled = plan.scaled(1.0 / one_in as f64);
        let counts = model::replay(&sampled, &a, workers, &mut per_interval);
        sample::scale_up(counts, &mut per_interval, one_in)
    } else {
        model::replay(plan, &a, workers, &mut per_interval)
    };
    let n = per_interval.ends.len();
    let users = gauge(&per_interval.users, n);
    let websockets = gauge(&per_interval.websockets, n);
    // A pool bounds the HTTP connections however many users take turns on them (it opens them
    // lazily, so fewer when fewer users are busy).
    let mut http = gauge(&per_interval.http, n);
    if let Some(bound) = plan.connections.bound() {
        http.iter_mut().for_each(|h| *h = (*h).min(bound));
    }
    let mut start = 0.0;
    let timeline: Vec<Point> = (0..n)
        .map(|i| {
            let p = Point {
                start_s: start,
                end_s: per_interval.ends[i],
                arrivals: per_interval.arrivals[i],
                returns: per_interval.returns[i],
                dropped: per_interval.dropped[i],
                active_users: users[i],
                websockets: websockets[i],
                http_connections: http[i],
                http_closed: per_interval.http_closes[i],
                requests: per_interval.requests[i],
                messages: per_interval.messages[i],
            };
            start = per_interval.ends[i];
            p
        })
        .collect();
    let time_wait = os_limits::time_wait();
    let machine = Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        open_files: os_limits::open_files(),
        ephemeral_ports: os_limits::ephemeral_ports(),
        ports_per_address: os_limits::port_count(os_limits::ephemeral_ports()),
        time_wait,
        time_wait_reused: time_wait.is_some_and(|t| t.reused_towards(target_is_loopback(plan))),
    };
    let inflight_peak = (0..n)
        .filter(|&i| timeline[i].seconds() >= MIN_RATE_INTERVAL || n == 1)
        .map(|i| per_interval.busy[i] / timeline[i].seconds())
        .fold(0.0, f64::max);
    let inflight = Inflight {
        peak: (inflight_peak * 100.0).round() / 100.0,
        cap: plan.max_inflight,
        binds: plan.max_inflight.is_some_and(|c| inflight_peak >= c as f64),
    };
    let mut estimate = judge(plan, latency, workers, counts, inflight, timeline, machine);
    if one_in > 1 {
        estimate.sampled_one_in = Some(one_in);
        estimate.notes.insert(
            0,
            format!(
                "sampled: the plan walked 1 in {} users (too many to walk one by one in seconds) and scaled the counts back up: totals within a few per cent, per-second peaks noisier",
                thousands(one_in)
            ),
        );
    }
    estimate
}

/// Whether the target is this machine's loopback (the in-process built-in target is).
fn target_is_loopback(plan: &Plan) -> bool {
    match &plan.target {
        Target::Builtin(_) => true,
        Target::Url(u) => os_limits::is_loopback_host(&u.host),
    }
}

/// Intervals a plan's timeline holds at most (seconds, unless the plan is longer).
const MAX_INTERVALS: f64 = 50_000.0;

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn peak_rate(points: &[Point], value: fn(&Point) -> u64) -> f64 {
    let long = points.iter().any(|p| p.seconds() >= MIN_RATE_INTERVAL);
    points
        .iter()
        .filter(|p| !long || p.seconds() >= MIN_RATE_INTERVAL)
        .map(|p| value(p) as f64 / p.seconds())
        .fold(0.0, f64::max)
}

/// Peaks, resources and the verdict, from the timeline and the machine's limits.
fn judge(
    plan: &Plan,
    latency: Duration,
    workers: u64,
    counts: model::Counts,
    inflight: Inflight,
    timeline: Vec<Point>,
    machine: Machine,
) -> Estimate {
    let max = |f: fn(&Point) -> u64| timeline.iter().map(f).max().unwrap_or(0);
    let peak = Peaks {
        active_users: max(|p| p.active_users),
        websockets: max(|p| p.websockets),
        http_connections: max(|p| p.http_connections),
        sockets: max(|p| p.websockets + p.http_connections),
        requests_per_s: peak_rate(&timeline, |p| p.requests),
        messages_per_s: peak_rate(&timeline, |p| p.messages),
    };
    let in_process = matches!(plan.target, Target::Builtin(_));
    let ports = ports::need(
        &timeline,
        ports::time_wait_holds(
            machine.time_wait,
            target_is_loopback(plan),
            plan.connections.bound().is_some(),
        ),
        machine.time_wait.map_or(u64::MAX, |t| t.max_buckets),
    );
    let per_socket = if in_process { 2 } else { 1 };
    let sources = plan.source_addresses.len().max(1) as u64;
    // CPU at the busiest interval, not the sum of the separate peaks.
    let cpu_cores = timeline
        .iter()
        .filter(|p| p.seconds() >= MIN_RATE_INTERVAL)
        .map(|p| {
            (p.requests as f64 / REQUESTS_PER_CORE + p.messages as f64 / MESSAGES_PER_CORE)
                / p.seconds()
        })
        .fold(0.0, f64::max);
    let resources = Resources {
        descriptors: peak.sockets * per_socket + os_limits::BASE_DESCRIPTORS,
        descriptors_per_socket: per_socket,
        base_descriptors: os_limits::BASE_DESCRIPTORS,
        source_addresses: sources,
        ports_per_source_address: ports.ports.max(peak.sockets).div_ceil(sources),
        time_wait_per_source_address: ports.time_wait.div_ceil(sources),
        http_closed_per_s: peak_rate(&timeline, |p| p.http_closed).round(),
        cpu_cores: (cpu_cores * 100.0).round() / 100.0,
    };
    let verdict = verdict(&resources, &machine, in_process);
    let dropped = counts.dropped_max_users + counts.dropped_max_inflight;
    let notes = notes(plan, &counts, &inflight);
    Estimate {
        schema: SCHEMA.to_string(),
        scenario: plan.name.clone(),
        seed: plan.seed,
        target: match &plan.target {
            Target::Builtin(_) => "builtin".to_string(),
            Target::Url(u) => u.to_string(),
        },
        assumed_latency_ms: latency.as_secs_f64() * 1000.0,
        duration_s: plan.duration().as_secs_f64(),
        drain_s: plan.drain.as_secs_f64(),
        workers,
        arrivals: Arrivals {
            planned: counts.scheduled + counts.closed + counts.returns,
            scheduled: counts.scheduled,
            closed: counts.closed,
            returned: counts.returned,
            dropped,
            dropped_by: DroppedBy {
                max_users: counts.dropped_max_users,
                max_inflight: counts.dropped_max_inflight,
            },
            per_phase: counts.per_phase,
            peak_per_s: peak_rate(&timeline, |p| p.arrivals),
        },
        totals: Totals {
            requests: timeline.iter().map(|p| p.requests).sum(),
            messages: timeline.iter().map(|p| p.messages).sum(),
        },
        peak,
        resources,
        inflight,
        notes,
        sampled_one_in: None,
        machine,
        verdict,
        timeline,
    }
}

/// What the reader of a plan should know beyond its figures: a cap that binds; and what the
/// estimate does not model. Retries and reconnects happen only when the target fails, so the
/// figures are those of a healthy target; say how far a struggling one could push them.
fn notes(plan: &Plan, counts: &model::Counts, inflight: &Inflight) -> Vec<String> {
    let mut notes = Vec::new();
    if !plan.shard.is_whole() {
        notes.push(format!(
            "shard {}: these figures are this shard's (arrivals k with k mod {} = {}, its share \
             of closed users and caps); every shard of the run needs as much",
            plan.shard.label(),
            plan.shard.count,
            plan.shard.index
        ));
    }
    if let Some(cap) = plan.max_users {
        if counts.dropped_max_users > 0 {
            notes.push(format!(
                "max_users = {cap} binds: ~{} arrivals dropped (each worker keeps {} of it)",
                thousands(counts.dropped_max_users),
                thousands(crate::swarm::caps::worker_share(cap, counts.workers))
            ));
        }
    }
    if let Some(cap) = inflight.cap {
        if inflight.binds || counts.dropped_max_inflight > 0 {
            notes.push(format!(
                "max_inflight = {cap} binds: ~{:.0} operations in flight at the peak (operations/s \
                 × latency), ~{} arrivals dropped; a target slower than the assumed latency drops \
                 more",
                inflight.peak,
                thousands(counts.dropped_max_inflight)
            ));
        } else if inflight.peak >= 0.5 * cap as f64 {
            notes.push(format!(
                "max_inflight = {cap}: ~{:.0} operations in flight at the peak; at twice the \
                 assumed latency the cap would bind",
                inflight.peak
            ));
        }
    }
    if let Some(r) = &plan.retry {
        notes.push(format!(
            "requests assume no retries: [run] retry allows up to {} attempts per request, so a \
             target failing with {} can see up to {}x these requests",
            r.attempts,
            r.on.iter().map(|o| o.name()).collect::<Vec<_>>().join("/"),
            r.attempts
        ));
    }
    if let Some(n) = plan.connections.bound() {
        notes.push(format!(
            "HTTP connections: a shared pool of {n} ([run] connections), split over {} workers;              {}",
            counts.workers,
            if inflight.peak > n as f64 {
                format!(
                    "~{:.0} operations in flight at the peak want more, so requests will wait                      for a connection (inside their latency), which the plan does not model",
                    inflight.peak
                )
            } else {
                format!(
                    "~{:.0} operations in flight at the peak fit in it",
                    inflight.peak
                )
            }
        ));
    }
    notes.extend(walk::long_poll_notes(plan));
    if plan.reconnect.is_some() {
        notes.push(
            "WebSocket upgrades assume no dropped sockets: [run] reconnect adds one per drop"
                .to_string(),
        );
    }
    // Whatever the scenario says, the walk never fails a step; the notes above already name
    // the retries and reconnects a scenario asks for.
    notes.push(if plan.retry.is_none() && plan.reconnect.is_none() {
        "not in the plan: retries ([run] retry), reconnects and failed steps; every operation \
         succeeds in the assumed latency"
            .to_string()
    } else {
        "not in the plan: failed steps; every operation succeeds in the assumed latency".to_string()
    });
    notes
}

/// How many generator processes (open files) and machines (CPU, ports) the peak needs.
pub fn verdict(r: &Resources, m: &Machine, in_process: bool) -> Verdict {
    let mut reasons = Vec::new();
    // The run raises the soft limit to the hard one, so the hard limit is what a process gets.
    let limit = m.open_files.map_or(1024, |l| l.hard);
    let processes = os_limits::processes_for_descriptors(r.descriptors, limit);
    if processes > 1 {
        reasons.push(format!(
            "file descriptors: ~{} needed at the peak, the open-file limit is {} per process{}",
            thousands(r.descriptors),
            thousands(limit),
            if in_process {
                " (the in-process built-in target holds the server end of every socket too)"
            } else {
                ""
            }
        ));
    }
    let cpu_machines = (r.cpu_cores / m.cpus.max(1) as f64).ceil().max(1.0) as u64;
    if cpu_machines > 1 {
        reasons.push(format!(
            "CPU: ~{:.1} generator cores needed at the peak ({} requests/s and {} messages/s per \
             core, bench/README.md), this machine has {}",
            r.cpu_cores,
            thousands(REQUESTS_PER_CORE as u64),
            thousands(MESSAGES_PER_CORE as u64),
            m.cpus
        ));
    }
    let sockets = r.ports_per_source_address * r.source_addresses;
    let fast = os_limits::connect_ports(m.ports_per_address);
    let addresses = os_limits::addresses_for_connections(sockets, fast);
    let port_machines = addresses.div_ceil(r.source_addresses.max(1));
    if port_machines > 1 {
        reasons.push(format!(
            "ephemeral ports: ~{} per source address needed{}; of its {} ports ({}-{}) a source \
             address connects quickly from {} (past them every connect searches the rest of the \
             range and the generator falls behind); use {addresses} source addresses ([run] \
             source_addresses) or {port_machines} machines{}",
            thousands(r.ports_per_source_address),
            time_wait_share(r),
            thousands(m.ports_per_address),
            m.ephemeral_ports.0,
            m.ephemeral_ports.1,
            thousands(fast),
            if r.time_wait_per_source_address > 0 {
                ", or set net.ipv4.tcp_tw_reuse = 1 on the generator, or reuse connections \
                 ([run] connections = { pool = N })"
            } else {
                ""
            }
        ));
    }
    let machines = cpu_machines.max(port_machines);
    let text = match (processes, machines) {
        (1, 1) => "one generator process on this machine suffices".to_string(),
        (p, 1) => format!("needs {p} generator processes (this machine's CPU suffices for them)"),
        (p, m) => format!(
            "needs {} generator processes on {m} machines like this one",
            p.max(m)
        ),
    };
    Verdict {
        processes: processes.max(machines),
        machines,
        reasons,
        text,
    }
}

/// `" (8,000 open + 28,000 in TIME_WAIT: …)"` when closed connections hold ports, else empty.
pub(crate) fn time_wait_share(r: &Resources) -> String {
    if r.time_wait_per_source_address == 0 {
        return String::new();
    }
    format!(
        " ({} open + {} in TIME_WAIT: the generator closes ~{}/s HTTP connections and Linux \
         holds each one's port {} s)",
        thousands(
            r.ports_per_source_address
                .saturating_sub(r.time_wait_per_source_address)
        ),
        thousands(r.time_wait_per_source_address),
        thousands(r.http_closed_per_s as u64),
        os_limits::TIME_WAIT_S
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(text: &str) -> Plan {
        crate::compiled::compile(std::path::Path::new("t.toml"), text, Some(5)).expect("valid")
    }

    #[test]
    fn a_sampled_plan_agrees_with_the_walk_of_every_user() {
        // 4 500 users over 60 s, Poisson, some of them chatting: walked one by one, then 1 in 5.
        let plan = compile(
            "name = \"t\"\n[target]\nurl = \"http://127.0.0.1:9\"\n[load]\n\
             phases = [{ name = \"a\", duration = \"30s\", rate = 50 }, { name = \"b\", duration = \"30s\", ramp_to = 150 }]\n\
             [user]\nmessages = 2\ncontacts_known = 1\nstay_online = { constant = \"3s\" }\n",
        );
        let latency = Duration::from_millis(10);
        let exact = estimate_within(&plan, latency, 2, f64::INFINITY);
        let sampled = estimate_within(&plan, latency, 2, 1_000.0);
        assert_eq!(exact.sampled_one_in, None);
        assert_eq!(sampled.sampled_one_in, Some(5));
        assert!(
            sampled.notes[0].starts_with("sampled: "),
            "{:?}",
            sampled.notes
        );
        // Totals: a Poisson count of ~1 000 sampled users is within 4 standard deviations
        // (4·sqrt(1000)/1000 ≈ 13 %) of its mean, and so is the scaled one.
        let near = |a: f64, b: f64, what: &str| {
            assert!((a - b).abs() <= 0.13 * b, "{what}: sampled {a}, exact {b}");
        };
        near(
            sampled.arrivals.planned as f64,
            exact.arrivals.planned as f64,
            "planned",
        );
        near(
            sampled.totals.requests as f64,
            exact.totals.requests as f64,
            "requests",
        );
        near(
            sampled.totals.messages as f64,
            exact.totals.messages as f64,
            "messages",
        );
        // Peak concurrency: ~3 s × 150/s = 450 users, ~75 sampled; wider noise.
        near(
            sampled.peak.active_users as f64,
            exact.peak.active_users as f64,
            "peak users",
        );
        let per_phase: u64 = sampled.arrivals.per_phase.values().sum();
        assert_eq!(per_phase, sampled.arrivals.scheduled);
    }

    #[test]
    fn a_long_plan_keeps_its_timeline_short() {
        // 20 days at 1 user a minute: 1.7 million seconds, drawn as at most MAX_INTERVALS points.
        let plan = compile(
            "name = \"t\"\n[target]\nurl = \"http://127.0.0.1:9\"\n[load]\narrivals = \"uniform\"\n\
             phases = [{ name = \"a\", duration = \"480h\", rate = 0.0166666667 }]\n[user]\nmessages = 0\n",
        );
        let e = estimate(&plan, Duration::from_millis(10));
        assert!(
            e.timeline.len() as f64 <= MAX_INTERVALS + 2.0,
            "{}",
            e.timeline.len()
        );
        assert_eq!(e.arrivals.planned, 28_800);
        let counted: u64 = e.timeline.iter().map(|p| p.arrivals).sum();
        assert_eq!(counted, 28_800, "every arrival falls in some interval");
    }

    #[test]
    fn a_pool_bounds_the_http_connections_and_the_descriptors() {
        // 200 users/s, each polling 20 times at 10 ms: ~40 users at once, each with its own
        // connection; a pool of 8 holds 8 however many users take turns on them.
        let text = |connections: &str| {
            format!(
                "name = \"t\"\n[target]\nurl = \"http://127.0.0.1:9\"\n[load]\narrivals = \"uniform\"\n\
                 phases = [{{ name = \"a\", duration = \"5s\", rate = 200 }}]\n[run]\ndrain = \"0s\"\n\
                 {connections}\n[[flows.f.steps]]\n\
                 loop = {{ times = 20, steps = [ {{ name = \"poll\", http = \"GET /p\" }} ] }}\n"
            )
        };
        let own = estimate_with_workers(&compile(&text("")), Duration::from_millis(10), 2);
        assert!(own.peak.http_connections >= 30, "{:?}", own.peak);
        let pooled = compile(&text("connections = { pool = 8 }"));
        let e = estimate_with_workers(&pooled, Duration::from_millis(10), 2);
        assert_eq!(e.peak.http_connections, 8, "{:?}", e.peak);
        assert_eq!(e.resources.descriptors, 8 + 64);
        assert_eq!(e.totals.requests, own.totals.requests);
        // A pool of 1 runs on one worker.
        let one = compile(&text("connections = { pool = 1 }"));
        assert_eq!(
            estimate_with_workers(&one, Duration::from_millis(10), 2).workers,
            1
        );
    }

    #[test]
    fn a_constant_flow_gives_littles_law() {
        // 100 users/s for 20 s, each online ~2 s (five requests of 10 ms, a 1.95 s stay):
        // Little's law says ~200 concurrent users, one WebSocket each.
        let plan = compile(
            "name = \"t\"\n[target]\nurl = \"http://127.0.0.1:9\"\n[load]\narrivals = \"uniform\"\n\
             phases = [{ name = \"a\", duration = \"20s\", rate = 100 }]\n[user]\nmessages = 0\n\
             contacts_known = 1\nstay_online = { constant = \"1950ms\" }\n[run]\ndrain = \"0s\"\n",
        );
        let e = estimate(&plan, Duration::from_millis(10));
        assert_eq!(e.arrivals.planned, 2000);
        assert!((195..=205).contains(&e.peak.active_users), "{:?}", e.peak);
        // The WebSocket opens after four HTTP steps and the upgrade: 50 ms less than a life.
        assert!((190..=200).contains(&e.peak.websockets), "{:?}", e.peak);
        // HTTP connections live 40 ms: ~4 at any time.
        assert!(e.peak.http_connections <= 6, "{:?}", e.peak);
        // Five requests per user, but none starts after the schedule: the users of the last
        // ~40 ms do not get through all five.
        assert!(
            (9_990..=10_000).contains(&e.totals.requests),
            "{:?}",
            e.totals
        );
        assert!(
            (e.peak.requests_per_s - 500.0).abs() <= 10.0,
            "{:?}",
            e.peak
        );
        assert_eq!(e.resources.descriptors, e.peak.sockets + 64);
        assert_eq!(e.verdict.processes, 1);
        // 90 ms more per operation: each life is 5 × 90 ms longer, so Little's law adds
        // 100/s × 0.45 s = 45 users.
        let slow = estimate(&plan, Duration::from_millis(100));
        let more = slow.peak.active_users as f64 - e.peak.active_users as f64;
        assert!((40.0..=50.0).contains(&more), "{more}");
        assert_eq!(slow.arrivals.planned, e.arrivals.planned);
    }

    #[test]
    fn a_far_region_keeps_users_longer() {
        // Every user 40 ms away: a new connection and its request cost 4 one-way delays, a
        // request on the kept-alive connection 2; register, sms_code, verify, contacts_sync and
        // the upgrade take 4 + 2 + 2 + 2 + 4 = 14 × 40 ms = 560 ms more, so at 100 users/s
        // Little's law adds ~56 concurrent users.
        let text = "name = \"t\"\n[target]\nurl = \"http://127.0.0.1:9\"\n[load]\narrivals = \"uniform\"\n\
                    phases = [{ name = \"a\", duration = \"20s\", rate = 100 }]\n[user]\nmessages = 0\n\
                    contacts_known = 1\nstay_online = { constant = \"1950ms\" }\n[run]\ndrain = \"0s\"\n";
        let near = estimate(&compile(text), Duration::from_millis(10));
        let far_text =
            format!("{text}[[regions]]\nname = \"far\"\nshare = 1\nlatency = \"40ms\"\n");
        let far = estimate(&compile(&far_text), Duration::from_millis(10));
        let more = far.peak.active_users as f64 - near.peak.active_users as f64;
        assert!((51.0..=61.0).contains(&more), "{more}");
    }

    const STEADY: &str = "name = \"t\"\n[target]\nurl = \"http://127.0.0.1:9\"\n[load]\n\
                          arrivals = \"uniform\"\nPHASES\n[user]\nmessages = 0\n\
                          contacts_known = 1\nstay_online = { constant = \"950ms\" }\n\
                          [run]\ndrain = \"0s\"\n";

    #[test]
    fn a_closed_phase_keeps_its_users_back_to_back() {
        // 50 users, each living 5 × 10 ms + 955 ms = 1.005 s, for 10 s after a 1 s ramp: slot
        // s starts at s/50 s and starts ceil((10 - s/50) / 1.005) users before the phase ends:
        // 10 for s ≤ 47, 9 for s = 48, 49; 498 users.
        let text = STEADY.replace("950ms", "955ms").replace(
            "PHASES",
            "phases = [{ name = \"soak\", duration = \"10s\", users = 50, ramp = \"1s\" }]",
        );
        let e = estimate_with_workers(&compile(&text), Duration::from_millis(10), 2);
        assert_eq!(e.peak.active_users, 50);
        assert_eq!(e.arrivals.scheduled, 0);
        assert_eq!(e.arrivals.closed, 498);
        assert_eq!(e.arrivals.planned, 498);
        assert_eq!(e.arrivals.per_phase["soak"], 498);
        // Five requests per life, ~50 lives per second.
        assert!(
            (e.peak.requests_per_s - 250.0).abs() <= 10.0,
            "{:?}",
            e.peak
        );
    }

    #[test]
    fn max_inflight_is_little_s_law_on_the_assumed_latency() {
        // 100 users/s with five 100 ms requests each: 500 operations/s × 0.1 s = 50 in flight.
        let phases = "phases = [{ name = \"a\", duration = \"10s\", rate = 100 }]";
        let free = STEADY.replace("PHASES", &format!("max_inflight = 1000\n{phases}"));
        let e = estimate_with_workers(&compile(&free), Duration::from_millis(100), 1);
        assert!((e.inflight.peak - 50.0).abs() <= 2.0, "{:?}", e.inflight);
        assert!(!e.inflight.binds);
        assert_eq!(e.arrivals.dropped, 0);
        assert!(e.notes.iter().all(|n| !n.contains("max_inflight")));
        // A cap of 20 binds: arrivals that find 20 operations running are dropped, which
        // holds the operations in flight near the cap.
        let tight = free.replace("max_inflight = 1000", "max_inflight = 20");
        let t = estimate_with_workers(&compile(&tight), Duration::from_millis(100), 1);
        assert!(t.inflight.binds, "{:?}", t.inflight);
        assert_eq!(t.arrivals.dropped, t.arrivals.dropped_by.max_inflight);
        assert!(t.arrivals.dropped > 100, "{:?}", t.arrivals);
        assert!(t.inflight.peak <= 25.0, "{:?}", t.inflight);
        assert!(t
            .notes
            .iter()
            .any(|n| n.contains("max_inflight = 20 binds")));
        // Every plan says what it leaves out.
        assert!(e.notes.iter().any(|n| n.contains("retries")));
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(120_278), "120,278");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn the_verdict_counts_processes_and_machines() {
        let m = Machine {
            cpus: 2,
            open_files: Some(os_limits::OpenFiles {
                soft: 1024,
                hard: 20_000,
            }),
            ephemeral_ports: (32768, 60999),
            ports_per_address: 28_232,
            time_wait: None,
            time_wait_reused: false,
        };
        let r = Resources {
            descriptors: 60_064,
            descriptors_per_socket: 2,
            base_descriptors: 64,
            source_addresses: 1,
            ports_per_source_address: 30_000,
            time_wait_per_source_address: 0,
            http_closed_per_s: 0.0,
            cpu_cores: 1.0,
        };
        let v = verdict(&r, &m, true);
        // 60 000 descriptors at 19 936 usable per process: 4 processes; 30 000 ports on one
        // address, which connects quickly from 14 116: 3 addresses or 3 machines.
        assert_eq!(v.machines, 3);
        assert_eq!(v.processes, 4);
        assert_eq!(v.reasons.len(), 2, "{v:?}");
        let small = Resources {
            descriptors: 1_000,
            ports_per_source_address: 500,
            ..r.clone()
        };
        assert_eq!(
            verdict(&small, &m, true).text,
            "one generator process on this machine suffices"
        );
        let busy = Resources {
            cpu_cores: 4.5,
            ..small
        };
        let v = verdict(&busy, &m, false);
        assert_eq!(v.machines, 3);
        assert!(v.reasons[0].starts_with("CPU"), "{v:?}");
    }
}
