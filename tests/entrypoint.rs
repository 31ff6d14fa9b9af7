//! The Kubernetes Job's environment contract (deploy/kubernetes/entrypoint.sh): a pod's
//! completion index becomes `--shard INDEX/INRUSH_SHARDS`, its run directory
//! `$INRUSH_RESULTS/$INRUSH_RUN_ID/shard-INDEX`. The script runs here as the container runs it,
//! with the built binary and a one-second scenario against the in-process target.

mod common;

use std::process::Command;

use common::{Scenario, Scratch};

fn entrypoint(scratch: &Scratch, env: &[(&str, &str)]) -> std::process::Output {
    let scenario = scratch.scenario(
        "pod",
        Scenario::new("pod", 4).with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "1s", rate = 6 } ]
[user]
messages = 0
stay_online = { constant = "0s" }
"#,
        ),
    );
    let mut c = Command::new("sh");
    c.arg("deploy/kubernetes/entrypoint.sh")
        .args(["--quiet", "--accept-overload", "--workers", "1"])
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("INRUSH_SHARDS")
        .env("INRUSH_BIN", env!("CARGO_BIN_EXE_inrush"))
        .env("INRUSH_SCENARIO", &scenario)
        .env("INRUSH_RESULTS", scratch.dir.path())
        .env("INRUSH_RUN_ID", "rehearsal");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("sh runs")
}

#[test]
fn the_completion_index_is_the_shard() {
    let scratch = Scratch::new();
    let o = entrypoint(
        &scratch,
        &[("JOB_COMPLETION_INDEX", "2"), ("INRUSH_SHARDS", "3")],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dir = scratch.dir.path().join("rehearsal").join("shard-2");
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("the shard's summary");
    let s: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(s["shard"]["index"], 2);
    assert_eq!(s["shard"]["count"], 3);
    // 6 evenly spaced arrivals: indexes 2 and 5 are shard 2's.
    assert_eq!(s["arrivals"]["planned"], 2);
    // A retried pod rewrites its own directory (--force).
    let again = entrypoint(
        &scratch,
        &[("JOB_COMPLETION_INDEX", "2"), ("INRUSH_SHARDS", "3")],
    );
    assert_eq!(again.status.code(), Some(0));
}

#[test]
fn outside_an_indexed_job_it_says_what_is_missing() {
    let scratch = Scratch::new();
    let o = entrypoint(&scratch, &[("INRUSH_SHARDS", "3")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("JOB_COMPLETION_INDEX"));
    let o = entrypoint(&scratch, &[("JOB_COMPLETION_INDEX", "0")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("INRUSH_SHARDS"));
    // An index the count does not allow is inrush's own refusal.
    let o = entrypoint(
        &scratch,
        &[("JOB_COMPLETION_INDEX", "3"), ("INRUSH_SHARDS", "3")],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a shard"));
}
