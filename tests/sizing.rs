//! Absurd loads (issue 12): what one generator cannot hold is refused before anything is sent
//! (exit 2, saying why), or capped and counted; never an out-of-memory abort with no report.

mod common;

use std::process::Command;

use common::Scratch;

fn inrush() -> Command {
    Command::new(env!("CARGO_BIN_EXE_inrush"))
}

#[test]
fn a_closed_phase_beyond_the_memory_budget_is_refused_before_the_run() {
    let scratch = Scratch::new();
    let path = scratch.scenario(
        "huge",
        "name = \"huge\"\n[target]\nbuiltin = {}\n[load]\nphases = [ { name = \"soak\", duration = \"10s\", users = 10000000 } ]\n",
    );
    // validate checks the file, not this machine: the scenario is well formed.
    let out = inrush()
        .args(["validate", &path.display().to_string()])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let dir = scratch.out("never");
    let out = inrush()
        .args(["run", &path.display().to_string(), "--quiet"])
        .args([
            "--memory-budget",
            "1GiB",
            "--out",
            &dir.display().to_string(),
        ])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // 10 M users × 64 KiB = 610.4 GiB against the 1 GiB given.
    assert!(
        stderr.contains("phase `soak` keeps 10000000 users")
            && stderr.contains("610.4 GiB")
            && stderr.contains("1.0 GiB"),
        "{stderr}"
    );
    assert!(!dir.exists(), "nothing was run, so no run directory");
}

#[test]
fn a_load_profile_longer_than_the_limit_is_a_scenario_error_with_its_position() {
    let scratch = Scratch::new();
    let path = scratch.scenario(
        "long",
        "name = \"long\"\n[target]\nbuiltin = {}\n[load]\nphases = [ { name = \"p\", duration = \"100000h\", rate = 1 } ]\n",
    );
    let out = inrush()
        .args(["validate", &path.display().to_string()])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:5:10:", path.display())) && stderr.contains("~115 days"),
        "{stderr}"
    );
}

#[test]
fn without_max_users_an_open_run_keeps_to_its_memory_budget_and_counts_the_rest() {
    // 400 arrivals in a second, each user staying online 3 s; a 1 MiB budget holds 16 users
    // at 64 KiB each, so at most 16 start within the second and every other arrival is
    // dropped by the cap, counted, and explained.
    let scratch = Scratch::new();
    let path = scratch.scenario(
        "capped",
        "name = \"capped\"\nseed = 3\n[target]\nbuiltin = {}\n[load]\narrivals = \"uniform\"\n\
         phases = [ { name = \"p\", duration = \"1s\", rate = 400 } ]\n\
         [user]\nmessages = 0\ncontacts_known = 0\ncontacts_unknown = 0\nstay_online = { constant = \"3s\" }\n\
         [run]\ndrain = \"0s\"\n",
    );
    let dir = scratch.out("capped-run");
    let out = inrush()
        .args([
            "run",
            &path.display().to_string(),
            "--quiet",
            "--workers",
            "1",
        ])
        .args([
            "--memory-budget",
            "1MiB",
            "--out",
            &dir.display().to_string(),
        ])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(2), "{stderr}");
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("a report");
    let summary: serde_json::Value = serde_json::from_str(&text).expect("json");
    let arrivals = &summary["arrivals"];
    let n = |v: &serde_json::Value| v.as_u64().expect("a count");
    assert_eq!(n(&arrivals["planned"]), 400);
    assert!(n(&arrivals["started"]) <= 16, "{arrivals}");
    assert!(n(&arrivals["dropped_by"]["max_users"]) >= 300, "{arrivals}");
    assert_eq!(
        n(&arrivals["planned"]),
        n(&arrivals["started"]) + n(&arrivals["dropped"]),
        "{arrivals}"
    );
    let warnings = summary["warnings"].to_string();
    assert!(
        warnings.contains("memory budget") && warnings.contains("16 users were active"),
        "{warnings}"
    );
}
