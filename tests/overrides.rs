//! What the command line changes in a scenario (README, "Commands"): `--duration` /
//! `--time-scale` stretch the load profile, `--rate-scale` thins or thickens it, `-e KEY=VAL`
//! feeds `env.*`, and every flag has an `INRUSH_*` variable below it (flag, then variable,
//! then the file). Counts follow from uniform arrivals: a phase of d seconds at r/s brings
//! exactly r·d users.

mod common;

use std::process::{Command, Output};

use common::{Scenario, Scratch};
use inrush::report::summary::Summary;

/// 20/s for 4 s, then 40/s for 4 s: 240 arrivals in 8 s. Each user sends a token it takes
/// from the environment.
fn scenario() -> Scenario {
    Scenario::new("overrides", 7).with(
        r#"
[load]
arrivals = "uniform"
phases = [
  { name = "calm", duration = "4s", rate = 20 },
  { name = "surge", duration = "4s", rate = 40 },
]

[[flows.f.steps]]
name = "health"
http = "GET /healthz"
headers = { x-token = "{{ env.INRUSH_TEST_TOKEN }}" }
expect.status = 200
"#,
    )
}

/// Runs inrush with a clean `INRUSH_*` environment plus `vars`.
fn inrush(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inrush"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("INRUSH_")) {
        cmd.env_remove(k);
    }
    cmd.args(args)
        .envs(vars.iter().copied())
        .output()
        .expect("inrush runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn env_values_come_from_the_flag_and_say_how_to_give_them_when_missing() {
    let scratch = Scratch::new();
    let file = scratch.scenario("overrides", scenario());
    let file = file.to_str().expect("utf-8 path");
    let out = inrush(&["validate", file], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let said = text(&out.stderr);
    assert!(
        said.contains("`INRUSH_TEST_TOKEN` is not set") && said.contains("-e INRUSH_TEST_TOKEN="),
        "{said}"
    );
    let out = inrush(&["validate", file, "-e", "INRUSH_TEST_TOKEN=s3cret"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains("s3cret"),
        "a value is never printed"
    );
    // A malformed pair is a usage error that does not echo what may be a secret.
    let out = inrush(&["validate", file, "-e", "=s3cret"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !text(&out.stderr).contains("s3cret"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_load_profile_scales_in_time_and_rate_with_the_flag_before_the_variable() {
    let scratch = Scratch::new();
    let file = scratch.scenario("overrides", scenario());
    let file = file.to_str().expect("utf-8 path");
    let token = ("INRUSH_TEST_TOKEN", "t");

    // The variable alone scales; `validate` says so and shows the stretched phases.
    let out = inrush(&["validate", file], &[token, ("INRUSH_DURATION", "2s")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("time scale 0.25 (2.0s of load instead of 8.0s)"),
        "{said}"
    );

    // Flags win over variables: --rate-scale 0.5 over INRUSH_RATE_SCALE=0.25.
    let dir = scratch.out("run");
    let out = inrush(
        &[
            "run",
            file,
            "--quiet",
            "--accept-overload",
            "--workers",
            "1",
            "--rate-scale",
            "0.5",
            "--out",
            dir.to_str().expect("utf-8 path"),
        ],
        &[
            token,
            ("INRUSH_DURATION", "2s"),
            ("INRUSH_RATE_SCALE", "0.25"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let summary: Summary = serde_json::from_str(
        &std::fs::read_to_string(dir.join("summary.json")).expect("summary.json"),
    )
    .expect("schema");
    // 240 arrivals in 8 s, squeezed into 2 s at the same rates (60) and halved (30): 5 in the
    // first second, 10 in the second.
    assert_eq!(summary.arrivals.planned, 30, "{:?}", summary.arrivals);
    assert_eq!(summary.arrivals.started, 30);
    assert_eq!(summary.metrics["health"].count, 30);
    assert_eq!(summary.metrics["health"].errors, 0);
    assert_eq!(summary.phases["calm"].arrivals.planned, 10);
    assert_eq!(summary.phases["surge"].arrivals.planned, 20);
    assert!(
        (summary.phases["surge"].end_s - 2.0).abs() < 0.05,
        "{}",
        summary.phases["surge"].end_s
    );
    assert_eq!(summary.overrides.len(), 2, "{:?}", summary.overrides);
    assert!(summary.overrides[1].starts_with("rate scale 0.5"));

    // --time-scale and --duration say the same thing two ways: one at a time.
    let out = inrush(
        &["validate", file, "--time-scale", "0.5", "--duration", "2s"],
        &[token],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = inrush(&["validate", file, "--rate-scale", "0"], &[token]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("scale factor"),
        "{}",
        text(&out.stderr)
    );
}
