//! What one generator process can hold, checked before a run starts, so that an absurd load
//! is refused with a reason (exit 2) or capped and counted, never an out-of-memory abort
//! halfway through with no report.
//!
//! The figure is a memory budget (default: half of the memory available when the run starts;
//! `run --memory-budget` sets it) divided by a planning figure per active user. A closed phase
//! keeps its users by construction, so one that cannot fit is refused; so is a `max_users`
//! above what fits. Without `max_users`, an open run is capped at what fits: arrivals beyond it
//! are dropped and counted (as k6's arrival-rate executors drop iterations past `maxVUs`), so
//! a rate the generator cannot serve fills the drop counters, not the memory.

use super::Plan;
use crate::error::Error;

/// Planning figure for one active user's generator memory: its task, flow state, HTTP
/// connection buffers and WebSocket. An idle connected user measures 6–8 KiB (bench/README.md);
/// a user mid-request holds read and write buffers on top. Eight times the idle figure keeps
/// the default cap well inside the budget whatever the flow does.
pub const BYTES_PER_USER: u64 = 64 * 1024;

/// The default memory budget: half of what the machine has available now (the other half for
/// the kernel's socket buffers, an in-process target and everything else on the machine).
pub fn default_budget() -> Option<u64> {
    crate::os_limits::memory_available().map(|b| b / 2)
}

/// How [`fit`] sized the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// The users the budget holds.
    pub users: u64,
    /// Set when the scenario had no `max_users`: the cap the run now has.
    pub default_cap: Option<u64>,
}

/// Checks `plan` against a memory `budget` (bytes) and caps its users when it sets no cap.
pub fn fit(plan: &mut Plan, budget: u64) -> Result<Fitted, Error> {
    let users = (budget / BYTES_PER_USER).max(1);
    let too_many = |what: String, n: u64| {
        Error::Usage(format!(
            "{what} {} users active; at {} KiB each (the planning figure per active user) that \
             needs {}, over this generator's memory budget of {} (--memory-budget; default half \
             of the memory available). Split the load over several generator processes or \
             machines (`inrush plan` says how many) or raise --memory-budget",
            n,
            BYTES_PER_USER / 1024,
            bytes(n.saturating_mul(BYTES_PER_USER)),
            bytes(budget),
        ))
    };
    for phase in &plan.phases {
        if let Some(c) = phase.closed() {
            // A shard keeps its share of the phase's users (`--shard`).
            let kept = plan.shard.share(c.users);
            if kept > users {
                return Err(too_many(format!("phase `{}` keeps", phase.name), kept));
            }
        }
    }
    match plan.max_users {
        Some(cap) if cap > users => Err(too_many("max_users allows".to_string(), cap)),
        Some(_) => Ok(Fitted {
            users,
            default_cap: None,
        }),
        None => {
            plan.max_users = Some(users);
            Ok(Fitted {
                users,
                default_cap: Some(users),
            })
        }
    }
}

/// `1.5 GiB`, `640 MiB`.
pub fn bytes(n: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let n = n as f64;
    if n >= GIB {
        format!("{:.1} GiB", n / GIB)
    } else {
        format!("{:.0} MiB", n / MIB)
    }
}

/// Reads `8GiB`, `512MiB`, `2G`, `1500M` (binary units; a bare number is bytes).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size: expected e.g. 8GiB or 512MiB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1u64,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}`: use KiB, MiB, GiB or TiB"
            ))
        }
    };
    let bytes = value * scale as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("`{text}` is not a usable size"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(load: &str) -> Plan {
        let text =
            format!("name = \"t\"\n[target]\nurl = \"http://127.0.0.1:9\"\n[load]\n{load}\n");
        super::super::compile(std::path::Path::new("t.toml"), &text, Some(1)).expect("valid")
    }

    #[test]
    fn an_open_run_without_a_cap_gets_the_one_its_budget_holds() {
        let mut p = plan("phases = [{ name = \"a\", duration = \"1h\", rate = 10000000 }]");
        let f = fit(&mut p, 64 << 20).expect("an open run always fits: it is capped");
        assert_eq!(f.users, 1024);
        assert_eq!(f.default_cap, Some(1024));
        assert_eq!(p.max_users, Some(1024));
    }

    #[test]
    fn a_cap_the_scenario_sets_is_kept_when_it_fits_and_refused_when_not() {
        let mut p =
            plan("max_users = 500\nphases = [{ name = \"a\", duration = \"1s\", rate = 1 }]");
        assert_eq!(
            fit(&mut p, 64 << 20).ok().map(|f| f.default_cap),
            Some(None)
        );
        assert_eq!(p.max_users, Some(500));
        let mut p =
            plan("max_users = 5000\nphases = [{ name = \"a\", duration = \"1s\", rate = 1 }]");
        let e = fit(&mut p, 64 << 20).expect_err("5 000 users need 312 MiB");
        assert!(e.is_usage());
        assert!(e.to_string().contains("max_users allows 5000 users"), "{e}");
        assert!(e.to_string().contains("312 MiB"), "{e}");
    }

    #[test]
    fn a_closed_phase_that_cannot_fit_is_refused_with_its_name() {
        let mut p = plan("phases = [{ name = \"soak\", duration = \"10s\", users = 10000000 }]");
        let e = fit(&mut p, 8 << 30).expect_err("10 M users need 610 GiB");
        assert!(e.is_usage());
        let text = e.to_string();
        assert!(text.contains("phase `soak` keeps 10000000 users"), "{text}");
        assert!(
            text.contains("610.4 GiB") && text.contains("8.0 GiB"),
            "{text}"
        );
    }

    #[test]
    fn sizes_read_binary_units() {
        assert_eq!(parse_bytes("8GiB"), Ok(8 << 30));
        assert_eq!(parse_bytes("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5g"), Ok(3 << 29));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("1e400").is_err());
    }
}
