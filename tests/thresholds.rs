//! Thresholds as CI gates: evaluation against real runs, exit codes, early abort, junit.xml.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Scenario, Scratch};
use inrush::report::summary::{Summary, Verdict};

fn inrush() -> Command {
    Command::new(env!("CARGO_BIN_EXE_inrush"))
}

fn gates() -> Scenario {
    Scenario::new("gates", 21)
        .builtin(r#"latency = "20ms""#)
        .drain("1s")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "warm", duration = "1s", rate = 10 }, { name = "busy", duration = "1s", rate = 20 } ]
[user]
contacts_known = 3
contacts_unknown = 1
messages = 2
think = { constant = "50ms" }
stay_online = { constant = "30s" }
[thresholds]
"register.p50" = "> 19ms"          # the target adds 20 ms to every request: passes
"busy:verify.max" = "< 5ms"        # the same 20 ms make this fail
"#,
        )
}

fn run(scratch: &Scratch, extra: &[&str]) -> (Option<i32>, Summary, std::path::PathBuf) {
    let scenario = scratch.scenario("gates", gates());
    let out = scratch.out(&format!("run{}", extra.len()));
    let mut cmd = inrush();
    cmd.arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        // The exit code by the thresholds alone, however this shared machine held the generator.
        .args(["--workers", "1", "--quiet", "--accept-overload"]);
    for t in extra {
        cmd.args(["--threshold", t]);
    }
    let status = cmd.output().expect("runs").status;
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary written");
    (
        status.code(),
        serde_json::from_str(&text).expect("summary schema"),
        out,
    )
}

#[test]
fn thresholds_pass_and_fail_by_their_observed_values_and_set_the_exit_code() {
    let scratch = Scratch::new();
    let gates = [
        "messages.lost == 0",
        "errors.rate < 1%",
        "arrivals.dropped == 0",
        "contacts.missing == 0",
        "register.count == 30",
        "warm:register.count <= 10",
        "busy:register.count >= 25",
        "message_delivery.p99 < 1ms",
        "verify.error_rate <= 0",
        "sms_code.rate > 0/s",
        "arrivals.lag.max < 10s",
    ];
    let (code, s, out) = run(&scratch, &gates);
    assert_eq!(code, Some(1), "a failed threshold exits 1");
    assert_eq!(s.verdict, Verdict::Failed);
    let results: Vec<(&str, bool)> = s
        .thresholds
        .iter()
        .map(|t| (t.expr.as_str(), t.passed))
        .collect();
    // Each outcome follows from the scenario: 20 ms added to every HTTP request, exactly 10 + 20
    // evenly spaced arrivals, and a low load that loses nothing. Message delivery is not slowed
    // by the knob, so that gate is checked against its own observed value.
    let expected = [
        ("register.p50 > 19ms", true),
        ("busy:verify.max < 5ms", false),
        ("messages.lost == 0", true),
        ("errors.rate < 1%", true),
        ("arrivals.dropped == 0", true),
        ("contacts.missing == 0", true),
        ("register.count == 30", true),
        ("warm:register.count <= 10", true),
        ("busy:register.count >= 25", false),
        ("verify.error_rate <= 0", true),
        ("sms_code.rate > 0/s", true),
        ("arrivals.lag.max < 10s", true),
    ];
    for (expr, passed) in expected {
        let got = results.iter().find(|(e, _)| *e == expr).map(|(_, p)| *p);
        assert_eq!(got, Some(passed), "{expr}: {:?}", s.thresholds);
    }
    let delivery = s
        .thresholds
        .iter()
        .find(|t| t.expr.starts_with("message_delivery"))
        .expect("present");
    let observed = delivery.observed.expect("observed");
    assert_eq!(delivery.passed, observed < 1.0);

    // junit.xml: one test case per threshold plus the run and the measurement, failures where
    // thresholds failed (the overload, accepted, is no failure).
    let xml = std::fs::read_to_string(out.join("junit.xml")).expect("junit.xml");
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), s.thresholds.len() + 2);
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .filter_map(|c| c.attribute("name"))
        .collect();
    let expected_failed: Vec<&str> = s
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .map(|t| t.expr.as_str())
        .collect();
    assert_eq!(failed, expected_failed);
    let md = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    assert!(
        md.contains("failed") && md.contains("`busy:verify.max < 5ms`"),
        "{md}"
    );
    // Every observed value is written in its threshold's unit, in each artifact.
    let max = s
        .thresholds
        .iter()
        .find(|t| t.expr == "busy:verify.max < 5ms")
        .and_then(|t| t.observed)
        .expect("observed");
    let ms = format!("{} ms", (max * 1e4).round() / 1e4);
    let failure = format!("threshold busy:verify.max &lt; 5ms failed: observed {ms}");
    assert!(xml.contains(&failure), "{failure} in {xml}");
    assert!(md.contains(&format!("| {ms} |")), "{ms} in {md}");
    assert!(md.contains("| 0 % |"), "errors.rate as a percentage: {md}");
    assert!(md.contains("| 30 |"), "register.count as a count: {md}");
    let html = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    assert!(html.contains(&format!(">{ms}</td>")), "{ms} in index.html");
}

#[test]
fn passing_thresholds_exit_zero() {
    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "ok",
        Scenario::new("ok", 1).with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "a", duration = "1s", rate = 10 } ]
[user]
messages = 0
stay_online = { constant = "0s" }
[thresholds]
"register.count" = "== 10"
"#,
        ),
    );
    let status = inrush()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(scratch.out("run"))
        .args([
            "--quiet",
            "--accept-overload",
            "--workers",
            "1",
            "--threshold",
            "errors.count == 0",
        ])
        .status()
        .expect("runs");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_malformed_threshold_is_a_usage_error_that_says_where() {
    let scratch = Scratch::new();
    let scenario = scratch.scenario("gates", gates());
    let out = inrush()
        .arg("run")
        .arg(&scenario)
        .args(["--threshold", "verify.p99 < 250"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("column 14") && stderr.contains("unit"),
        "{stderr}"
    );

    let bad = scratch.scenario(
        "bad",
        "name = \"bad\"\n[target]\nbuiltin = {}\n[load]\nphases = [ { name = \"a\", duration = \"1s\", rate = 1 } ]\n[thresholds]\n\"verfy.p99\" = \"< 1s\"\n",
    );
    let out = inrush().arg("validate").arg(&bad).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(":7:15:") && stderr.contains("verfy"),
        "{stderr}"
    );
}

#[test]
fn a_scope_on_a_subject_known_for_the_whole_run_only_is_refused_where_it_is_written() {
    let scratch = Scratch::new();
    let scoped = scratch.scenario(
        "scoped",
        "name = \"scoped\"\n[target]\nbuiltin = {}\n[load]\nphases = [ { name = \"a\", duration = \"1s\", rate = 1 }, { name = \"b\", duration = \"1s\", rate = 1 } ]\n[thresholds]\n\"messages.lost\" = \"== 0\"\n\"b:messages.lost\" = \"== 0\"\n",
    );
    let out = inrush()
        .arg("validate")
        .arg(&scoped)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "could never pass: refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(":8:21:") && stderr.contains("whole run only"),
        "{stderr}"
    );
    let out = inrush()
        .arg("run")
        .arg(scratch.scenario("gates", gates()))
        .args(["--threshold", "warm:messages.loss_rate < 1%"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("whole run only"), "{stderr}");
}

#[test]
fn abort_on_fail_stops_the_run_early_and_still_writes_the_report() {
    let scratch = Scratch::new();
    let scenario = scratch.scenario(
        "abort",
        Scenario::new("abort", 2)
            .builtin("failure_rate = 1.0")
            .drain("3s")
            .with(
                r#"
[load]
arrivals = "uniform"
phases = [ { name = "a", duration = "30s", rate = 20 } ]
[user]
messages = 0
[thresholds]
"register.errors" = { check = "== 0", abort_on_fail = true, grace = "1s" }
"#,
            ),
    );
    let out = scratch.out("run");
    let started = Instant::now();
    let status = inrush()
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        // Judged by its threshold, however this shared machine held the generator.
        .args(["--quiet", "--workers", "1", "--accept-overload"])
        .status()
        .expect("runs");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped well before 30 s"
    );
    assert_eq!(status.code(), Some(1));
    let s: Summary =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary"))
            .expect("schema");
    assert_eq!(s.verdict, Verdict::Failed);
    assert!(
        s.aborted
            .as_deref()
            .is_some_and(|a| a.contains("register.errors")),
        "{:?}",
        s.aborted
    );
    assert!(s.duration_s < 10.0, "{}", s.duration_s);
}

/// An `abort_on_fail` threshold aborts on data, as k6's do: before its subject has a sample
/// (a phase not yet begun, a first verify still waiting for its SMS) there is nothing to judge,
/// and the run goes on. The two runs go side by side.
#[test]
fn abort_on_fail_waits_for_a_first_sample() {
    let scratch = Scratch::new();
    let user = "[user]\nmessages = 0\nstay_online = { constant = \"0s\" }\n";
    let later_phase = Scenario::new("later", 3).drain("2s").with(format!(
        r#"
[load]
arrivals = "uniform"
phases = [ {{ name = "a", duration = "2s", rate = 10 }}, {{ name = "b", duration = "1s", rate = 10 }} ]
{user}
[thresholds]
"b:verify.p99" = {{ check = "< 5s", abort_on_fail = true }}
"#
    ));
    // Every verify waits 1.5 s for its SMS: the checks in the first second see no sample.
    let slow_first = Scenario::new("slow", 4)
        .builtin(r#"sms_delay = "1500ms""#)
        .drain("3s")
        .with(format!(
            r#"
[load]
arrivals = "uniform"
phases = [ {{ name = "a", duration = "2s", rate = 10 }} ]
{user}
[thresholds]
"verify.p99" = {{ check = "< 5s", abort_on_fail = true }}
"#
        ));
    let children: Vec<_> = [("later", later_phase), ("slow", slow_first)]
        .into_iter()
        .map(|(name, scenario)| {
            let out = scratch.out(name);
            let child = inrush()
                .arg("run")
                .arg(scratch.scenario(name, scenario))
                .arg("--out")
                .arg(&out)
                // Judged by its threshold, however this shared machine held the generator.
                .args(["--quiet", "--workers", "1", "--accept-overload"])
                .spawn()
                .expect("starts");
            (name, out, child)
        })
        .collect();
    for (name, out, mut child) in children {
        let status = child.wait().expect("exits");
        let s: Summary = serde_json::from_str(
            &std::fs::read_to_string(out.join("summary.json")).expect("summary"),
        )
        .expect("schema");
        assert_eq!(s.aborted, None, "{name}");
        assert_eq!(status.code(), Some(0), "{name}: {:?}", s.thresholds);
        assert!(s.thresholds[0].passed, "{name}: {:?}", s.thresholds);
        // Every planned user arrived: the run went to its end.
        assert_eq!(s.arrivals.planned, s.arrivals.started, "{name}");
        assert!(s.arrivals.started >= 20, "{name}: {:?}", s.arrivals);
    }
}

/// Ctrl-C (SIGINT), and what `timeout`, Docker, Kubernetes and CI runners send to cancel
/// (SIGTERM; SIGHUP when a terminal goes away): the users stop, the report is written, exit 3.
/// The three runs go side by side.
#[test]
fn an_interrupted_run_exits_three_with_its_report() {
    let scratch = Scratch::new();
    // A second signal (an impatient Ctrl-C Ctrl-C, a runner's repeated TERM) lands while the
    // users stop and the report is written: it must not cut the report short.
    let signals = [
        ("int", libc::SIGINT, 1, "SIGINT"),
        ("term", libc::SIGTERM, 1, "SIGTERM"),
        ("hup", libc::SIGHUP, 1, "SIGHUP"),
        ("term-twice", libc::SIGTERM, 2, "SIGTERM"),
    ];
    let children: Vec<_> = signals
        .iter()
        .map(|&(name, signal, times, said)| {
            let out = scratch.out(name);
            let mut command = inrush();
            // A test run under `nohup` (which ignores SIGHUP, and inrush keeps it ignored, as
            // asked) must still test the handler: the child starts with the default action.
            // SAFETY: between fork and exec only async-signal-safe `signal` is called.
            unsafe {
                command.pre_exec(|| {
                    libc::signal(libc::SIGHUP, libc::SIG_DFL);
                    Ok(())
                });
            }
            let child = command
                .args([
                    "run",
                    "scenarios/quickstart.toml",
                    "--quiet",
                    "--workers",
                    "1",
                    "--out",
                ])
                .arg(&out)
                .spawn()
                .expect("starts");
            (name, (signal, times, said), out, child)
        })
        .collect();
    std::thread::sleep(Duration::from_millis(2500));
    for (_, (signal, times, _), _, child) in &children {
        for k in 0..*times {
            if k > 0 {
                // Apart, so that the two are not merged into one pending signal.
                std::thread::sleep(Duration::from_millis(100));
            }
            // SAFETY: sending a signal to our own child process.
            unsafe {
                libc::kill(child.id() as i32, *signal);
            }
        }
    }
    for (name, (_, _, said), out, mut child) in children {
        let status = child.wait().expect("exits");
        assert_eq!(status.code(), Some(3), "{name}");
        let s: Summary = serde_json::from_str(
            &std::fs::read_to_string(out.join("summary.json")).expect("summary"),
        )
        .expect("schema");
        assert_eq!(s.verdict, Verdict::Interrupted, "{name}");
        assert!(s.duration_s < 10.0, "{name}");
        // Why, in the summary and in the JUnit case a CI page shows: the signal, by name.
        let why = s.aborted.as_deref().unwrap_or_default();
        assert!(
            why.starts_with(&format!("stopped by {said}")),
            "{name}: {why}"
        );
        let junit = std::fs::read_to_string(out.join("junit.xml")).expect("junit.xml");
        assert!(junit.contains(why), "{name}: {junit}");
        // Stopped mid-run, every started user is still accounted for: the ones the signal
        // stopped mid-flow are cut off.
        let a = &s.arrivals;
        assert_eq!(
            a.started,
            a.completed + a.failed + a.cut_off,
            "{name}: {a:?}"
        );
        assert!(a.cut_off > 0, "{name}: {a:?}");
        for file in ["junit.xml", "index.html", "latency.hlog"] {
            assert!(out.join(file).exists(), "{name}: {file}");
        }
    }
}
