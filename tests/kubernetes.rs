//! Kubernetes: the Job's environment contract (deploy/kubernetes/entrypoint.sh) — a pod's
//! completion index becomes `--shard INDEX/INRUSH_SHARDS`, its run directory
//! `$INRUSH_RESULTS/$INRUSH_RUN_ID/shard-INDEX` — run here as the container runs it, with the
//! built binary and a one-second scenario against the in-process target; and the manifests
//! `inrush plan --kubernetes` writes (.ci/run validates them against the API's schemas).

mod common;

use std::process::Command;

use common::{Scenario, Scratch};

fn entrypoint(scratch: &Scratch, env: &[(&str, &str)]) -> std::process::Output {
    entrypoint_with(scratch, env, &[])
        .output()
        .expect("sh runs")
}

/// The pod's command as the container runs it, with `args` as the Job's further `run` flags.
fn entrypoint_with(scratch: &Scratch, env: &[(&str, &str)], args: &[&str]) -> Command {
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
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c
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

/// A shard that ran to its end is a completed pod whatever its own verdict: Kubernetes would
/// retry a failed one, sending its load again. The merge gates the run.
#[test]
fn a_shard_that_fails_its_own_threshold_is_a_completed_pod() {
    let scratch = Scratch::new();
    let shard = [("JOB_COMPLETION_INDEX", "0"), ("INRUSH_SHARDS", "2")];
    let o = entrypoint_with(
        &scratch,
        &shard,
        &["--threshold", "arrivals.planned >= 200"],
    )
    .output()
    .expect("sh runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("inrush exited 1"), "{err}");
    let dir = scratch.dir.path().join("rehearsal").join("shard-0");
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("the shard's summary");
    let s: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(s["verdict"], "failed");
}

/// The pod's TERM reaches inrush through the script: the run is interrupted and writes its
/// report (exit 3), as inrush does as the container's first process.
#[test]
fn the_pods_term_interrupts_the_run_with_its_report() {
    let scratch = Scratch::new();
    let shard = [("JOB_COMPLETION_INDEX", "1"), ("INRUSH_SHARDS", "2")];
    // The one-second scenario stretched to a minute: the signal comes long before its end.
    let child = entrypoint_with(&scratch, &shard, &["--time-scale", "60"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sh starts");
    let dir = scratch.dir.path().join("rehearsal").join("shard-1");
    // Signalled once the run is under way (its directory made), within a bound.
    let began = std::time::Instant::now();
    while !dir.exists() && began.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let o = child.wait_with_output().expect("sh ends");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        began.elapsed() < std::time::Duration::from_secs(50),
        "ended by the signal, not the schedule"
    );
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("the shard's summary");
    let s: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(s["verdict"], "interrupted");
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

#[test]
fn plan_writes_manifests_for_as_many_shards_as_its_verdict_needs() {
    let scratch = Scratch::new();
    let out = scratch.out("plan");
    // The quickstart at 100 times its rates: more sockets than one process's open files hold.
    let o = Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args([
            "plan",
            "scenarios/quickstart.toml",
            "--rate-scale",
            "100",
            "--kubernetes",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("plan runs");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).expect("plan.json"))
            .expect("JSON");
    let v = &plan["verdict"];
    let n = v["processes"]
        .as_u64()
        .max(v["machines"].as_u64())
        .expect("a verdict");
    assert!(n > 1, "{v}");
    let jobs = std::fs::read_to_string(out.join("kubernetes/shards.yaml")).expect("shards.yaml");
    for want in [
        format!("completions: {n}"),
        format!("parallelism: {n}"),
        format!("- name: INRUSH_SHARDS\n              value: \"{n}\""),
        // Every pod runs what was planned: the file's seed and the scale.
        r#"args: ["--quiet","--seed","2021","--rate-scale","100"]"#.to_string(),
        "completionMode: Indexed".to_string(),
        "    name = \"quickstart\"".to_string(),
    ] {
        assert!(jobs.contains(&want), "{want} in:\n{jobs}");
    }
    let merge = std::fs::read_to_string(out.join("kubernetes/merge-job.yaml")).expect("merge");
    assert!(merge.contains("inrush merge"));
    // --kubernetes plans every shard: a --shard with it is a usage error.
    let o = Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args([
            "plan",
            "scenarios/quickstart.toml",
            "--kubernetes",
            "--shard",
            "0/2",
        ])
        .arg("--out")
        .arg(scratch.out("refused"))
        .output()
        .expect("plan runs");
    assert_eq!(o.status.code(), Some(2));
}
