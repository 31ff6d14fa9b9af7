//! Kubernetes: the Job's environment contract (deploy/kubernetes/entrypoint.sh) — a pod's
//! completion index becomes `--shard INDEX/INRUSH_SHARDS`, its run directory
//! `$INRUSH_RESULTS/$INRUSH_RUN_ID/shard-INDEX` — run here as the container runs it, with the
//! built binary and a one-second scenario against the in-process target; and the manifests
//! `inrush plan --kubernetes` writes (.ci/run validates them against the API's schemas).

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
