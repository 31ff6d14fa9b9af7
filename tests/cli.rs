//! The command-line contract: exit codes, error positions, validate, and a run against a
//! standalone target through --target.

mod common;

use std::process::Command;

use common::{run_quiet, Scenario, Scratch};

fn inrush() -> Command {
    Command::new(env!("CARGO_BIN_EXE_inrush"))
}

#[test]
fn validate_accepts_the_shipped_scenarios() {
    for file in [
        "scenarios/quickstart.toml",
        "scenarios/outage-surge.toml",
        "scenarios/regions.toml",
        "scenarios/retry-storm.toml",
        "scenarios/outage-day.toml",
        "scenarios/presence-soak.toml",
    ] {
        let out = inrush().args(["validate", file]).output().expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("valid") && stdout.contains("phase"),
            "{stdout}"
        );
    }
}

#[test]
fn a_bad_scenario_is_a_usage_error_with_file_line_and_column() {
    let scratch = Scratch::new();
    let path = scratch.scenario(
        "bad",
        "name = \"bad\"\n[target]\nbuiltin = {}\n[load]\nphases = [\n  { name = \"a\", duration = \"10 parsecs\", rate = 5 },\n]\n",
    );
    let out_dir = scratch.out("never");
    for args in [
        vec!["validate".to_string(), path.display().to_string()],
        vec![
            "run".to_string(),
            path.display().to_string(),
            "--out".to_string(),
            out_dir.display().to_string(),
        ],
    ] {
        let out = inrush().args(&args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let expected = format!("{}:6:28:", path.display());
        assert!(stderr.contains(&expected), "{stderr}");
        assert!(stderr.contains("parsecs"), "{stderr}");
    }
    assert!(
        !out_dir.exists(),
        "nothing may be written or sent for a bad scenario"
    );
}

#[test]
fn a_bad_target_flag_is_a_usage_error() {
    let out = inrush()
        .args([
            "run",
            "scenarios/quickstart.toml",
            "--target",
            "ftp://example",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--target"));
}

#[test]
fn a_run_drives_a_standalone_target_through_the_target_flag() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server = runtime
        .block_on(inrush::target::start(
            "127.0.0.1:0".parse().expect("addr"),
            inrush::target::Knobs::default(),
        ))
        .expect("server starts");
    let scratch = Scratch::new();
    let scenario = Scenario::new("remote", 9)
        .url("http://127.0.0.1:1") // overridden by --target
        .drain("1s")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "2s", rate = 10 } ]
[user]
messages = 2
think = { constant = "100ms" }
stay_online = { constant = "30s" }
"#,
        );
    let outcome = run_quiet(
        scratch.scenario("remote", scenario),
        scratch.out("run"),
        Some(format!("http://{}", server.addr)),
    );
    let s = &outcome.summary;
    assert_eq!(s.target, format!("http://{}", server.addr));
    assert_eq!(s.metrics["verify"].count, 20);
    assert_eq!(s.metrics["verify"].errors, 0);
    assert!(s.messages.delivered > 0);
    assert_eq!(s.messages.lost, Some(0));
    runtime.block_on(server.shutdown());
}

#[test]
fn init_writes_a_starter_that_validates_anywhere_and_keeps_an_existing_one() {
    let scratch = Scratch::new();
    let dir = scratch.out("elsewhere/new");
    let out = inrush().arg("init").arg(&dir).output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.join("quickstart.toml");
    let text = std::fs::read_to_string(&file).expect("written");
    // It tells how to run itself where it is, and it is the quickstart (no other files needed).
    assert!(
        text.contains(&format!("inrush run {}", file.display())),
        "{text}"
    );
    assert!(text.contains("name = \"quickstart\""));
    // Validated from another working directory: nothing it needs lives in the repository.
    let out = inrush()
        .current_dir(scratch.out("."))
        .arg("validate")
        .arg(&file)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A second init keeps the user's file; --force replaces it.
    std::fs::write(&file, "edited").expect("write");
    let out = inrush().arg("init").arg(&dir).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&file).expect("kept"), "edited");
    let out = inrush()
        .arg("init")
        .arg(&dir)
        .arg("--force")
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert_ne!(std::fs::read_to_string(&file).expect("replaced"), "edited");
}

#[test]
fn completions_and_the_manual_page_cover_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out = inrush()
            .args(["completions", shell])
            .output()
            .expect("runs");
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for word in [
            "run",
            "validate",
            "plan",
            "compare",
            "time-scale",
            "threshold",
        ] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    let out = inrush().arg("man").output().expect("runs");
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH inrush"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(
        page.contains("validate") && page.contains("compare"),
        "subcommands listed"
    );
}

/// The process runs without transparent huge pages (`src/main.rs`, `without_huge_pages`): a
/// fault in a huge-page region can compact memory in the faulting worker, a stall of
/// milliseconds in the schedule. Read from the kernel's own view of a running inrush.
#[cfg(all(target_os = "linux", not(feature = "system-allocator")))]
#[test]
fn the_process_runs_without_transparent_huge_pages() {
    use std::io::{BufRead, BufReader};
    let mut child = inrush()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    // Its first line (on standard error) says it listens: `main` has run by then.
    let mut line = String::new();
    let stderr = child.stderr.take().expect("piped");
    BufReader::new(stderr).read_line(&mut line).expect("reads");
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).expect("status");
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("listening"), "{line}");
    // Kernels before 5.0 do not say; where they do, it must be off.
    if let Some(thp) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
        assert!(thp.ends_with('0'), "{thp}");
    }
}
