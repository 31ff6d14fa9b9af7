//! `inrush find-capacity` against the built-in messenger with a known verification capacity
//! (`verify_capacity = N`: a token bucket of N tokens refilled at N/s, 429 beyond it), each user
//! verifying once: the answer brackets N. Short steps (3 s warm-up + 3 s measured) at rates a
//! debug build holds on a loaded 2-core machine; the generator's own overload is accepted
//! (`--accept-overload`), so the thresholds decide. The generator-bound case is tested on the
//! search policy with a fake judge (`capacity::search`'s tests): a real one would need a
//! machine-dependent rate.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{Scenario, Scratch};
use inrush::capacity::step::Source;
use inrush::capacity::{find_capacity, CapacityOptions, Outcome};

/// Verifications the built-in target holds per second.
const CAPACITY: f64 = 40.0;

/// Users arriving evenly (the same timeline every run), each signing up and verifying once,
/// then leaving: one verification per user.
fn signups(thresholds: &str) -> Scenario {
    Scenario::new("cap", 11)
        .builtin(format!("verify_capacity = {CAPACITY:.1}"))
        .with(format!(
            r#"
[load]
arrivals = "uniform"
phases = [ {{ name = "surge", duration = "10s", rate = 100 }} ]

[user]
messages = 0
stay_online = {{ constant = "100ms" }}

[thresholds]
{thresholds}
"#
        ))
}

fn options(scenario: std::path::PathBuf, out: std::path::PathBuf) -> CapacityOptions {
    CapacityOptions {
        scenario,
        inputs: Default::default(),
        from: Some(25.0),
        max: Some(400.0),
        precision: Some(0.3),
        warmup: Some(Duration::from_secs(3)),
        measure: Some(Duration::from_secs(3)),
        target: None,
        out: Some(out),
        workers: Some(1),
        metric: None,
        thresholds: Vec::new(),
        accept_overload: true,
        quiet: true,
    }
}

#[test]
fn the_answer_brackets_the_targets_verification_capacity_within_the_precision() {
    let scratch = Scratch::new();
    // The scenario's [thresholds] fail at every rate (no verification completes within a
    // microsecond); its [capacity] section names the search's SLO and bounds instead, so the
    // search answers with a bracket, with nothing given on the command line.
    let file = scratch.scenario(
        "cap",
        signups(
            r#""verify.p99" = "< 0.001ms"

[capacity]
thresholds = { "verify.errors" = "== 0" }
from = 25
max = 400
precision = "30%"
warmup = "3s"
step_duration = "3s"
"#,
        ),
    );
    let out = scratch.out("capacity");
    let found = find_capacity(&CapacityOptions {
        from: None,
        max: None,
        precision: None,
        warmup: None,
        measure: None,
        ..options(file, out.clone())
    })
    .expect("the search runs");
    let r = &found.report;
    assert_eq!(r.thresholds_from, Source::Capacity);
    assert_eq!(
        (r.settings.from, r.settings.max, r.settings.precision),
        (25.0, 400.0, 0.3)
    );
    assert_eq!((r.settings.warmup_s, r.settings.measure_s), (3.0, 3.0));
    assert_eq!(r.thresholds_applied, vec!["measure:verify.errors == 0"]);
    assert_eq!(r.thresholds_replaced, vec!["verify.p99 < 0.001ms"]);
    for s in &r.steps {
        let judged: Vec<&str> = s.thresholds.iter().map(|t| t.expr.as_str()).collect();
        assert_eq!(
            judged,
            vec!["measure:verify.errors == 0"],
            "step {}",
            s.index
        );
    }
    assert_eq!(found.outcome, Outcome::Found, "{}", r.answer);
    let (pass, fail) = match (r.bracket.last_pass, r.bracket.first_fail) {
        (Some(p), Some(f)) => (p, f),
        other => panic!("no bracket: {other:?}: {}", r.answer),
    };
    assert!(
        fail <= pass * 1.3 + 1e-9,
        "within the precision: {pass}..{fail}"
    );
    // At or below N no verification is refused, unless the machine stalled the run: a stall of
    // s seconds (the generator, or the in-process target, starved by other load) bunches R·s
    // verifications, beyond the bucket's N tokens once s > N/R — and the verifications it held
    // waited that long from their intended start. So a fail at R ≤ N must show a verification
    // at least ~N/R late in each failing step; then the bracket says nothing about N.
    let stalled = fail <= CAPACITY;
    for step in r
        .steps
        .iter()
        .filter(|s| s.verdict == "fail" && s.rate <= CAPACITY)
    {
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(&step.dir).join("summary.json")).expect("summary"),
        )
        .expect("summary parses");
        let late_s = summary["metrics"]["verify"]["latency_ms"]["max"]
            .as_f64()
            .expect("verify max")
            / 1000.0;
        assert!(
            late_s >= 0.9 * CAPACITY / step.rate,
            "step {} failed at {}/s ≤ {CAPACITY}/s with no stall to explain it (verify max \
             {late_s:.3} s): {}",
            step.index,
            step.rate,
            r.answer
        );
    }
    if stalled {
        eprintln!("the machine stalled the search below N: {}", r.answer);
    } else {
        // Above N the bucket's N tokens last N/(R − N) s, so a rate fails within a 6 s step
        // only from N·(1 + 1/6) up: the bracket may sit up to that much above N, never more
        // than the precision beyond it (docs/capacity.md, "Step duration").
        assert!(pass >= CAPACITY * (1.0 - 0.3), "{pass}..{fail}");
        assert!(
            fail <= CAPACITY * (1.0 + 1.0 / 6.0) * 1.3 + 1e-9,
            "{pass}..{fail}"
        );
    }
    // Doubling from 25, each fail confirmed, bisection to 30 %: a handful of steps.
    assert!(r.steps_run <= 8, "{} steps", r.steps_run);
    assert_eq!(r.saturating.as_deref(), Some("target_refusals"), "{r:?}");
    assert!(
        r.fails_first
            .iter()
            .any(|f| f.expr == "measure:verify.errors == 0"),
        "{:?}",
        r.fails_first
    );
    assert!(r.answer.starts_with("holds "), "{}", r.answer);
    // Every fail was confirmed by a repeat at the same rate.
    for (i, s) in r.steps.iter().enumerate() {
        if s.verdict == "fail" && s.rate == fail {
            let twin = r.steps.iter().filter(|t| t.rate == s.rate).count();
            assert!(twin >= 2, "step {i} not confirmed: {:?}", r.steps);
        }
    }
    // The directory: capacity.json as reported, each step a run directory, one JUnit case each.
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("capacity.json")).expect("capacity.json"),
    )
    .expect("JSON");
    assert_eq!(json["schema"], "inrush.capacity/1");
    assert_eq!(json["steps"].as_array().map(Vec::len), Some(r.steps_run));
    for s in &r.steps {
        assert!(out.join(&s.dir).join("summary.json").is_file(), "{}", s.dir);
        assert!(out.join(&s.dir).join("latency.hlog").is_file(), "{}", s.dir);
    }
    let junit = std::fs::read_to_string(out.join("junit.xml")).expect("junit.xml");
    assert_eq!(junit.matches("<testcase").count(), r.steps_run);
    let md = std::fs::read_to_string(out.join("capacity.md")).expect("capacity.md");
    assert!(md.contains(&r.answer), "{md}");
    assert!(
        md.contains("replaced by the scenario's [capacity] thresholds"),
        "{md}"
    );
    chart_names_the_gated_statistic(&out);
    page_agrees_with_capacity_json(&out, &json);
}

/// `capacity.png` and `.svg` exist; the SVG's text names the gated statistic and its threshold.
fn chart_names_the_gated_statistic(out: &std::path::Path) {
    let png = std::fs::metadata(out.join("capacity.png")).expect("capacity.png");
    assert!(png.len() > 1000, "{} bytes", png.len());
    let svg = std::fs::read_to_string(out.join("capacity.svg")).expect("capacity.svg");
    // Plotters writes each text element's content on a line of its own.
    assert!(
        svg.lines().any(|l| l.trim() == "measure:verify.errors"),
        "panel title"
    );
    assert!(
        svg.contains("threshold: measure:verify.errors == 0"),
        "threshold line"
    );
    assert!(svg.contains("offered arrival rate (users/s)"), "x axis");
    assert!(svg.contains("knee: last pass"), "the knee is marked");
    assert!(
        !svg.contains("0.001ms"),
        "a replaced threshold is not drawn"
    );
}

/// The answer's numbers on `index.html` are capacity.json's; every step row links its run's
/// page, which exists; nothing else leaves the page.
fn page_agrees_with_capacity_json(out: &std::path::Path, json: &serde_json::Value) {
    use common::html::{attr, children, name_of, outside_links, parse, tags, text};
    let page = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    let dom = parse(&page);
    let by_id = |id: &str| {
        tags(&dom)
            .find(|t| attr(t, "id").as_deref() == Some(id))
            .map(|t| text(t, &dom))
            .unwrap_or_else(|| panic!("no #{id}"))
    };
    let number = |id: &str| -> f64 {
        let t = by_id(id);
        t.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("#{id}: {t}"))
    };
    assert_eq!(
        by_id("answer-text"),
        json["answer"].as_str().expect("answer")
    );
    assert_eq!(Some(number("holds")), json["holds"].as_f64());
    assert_eq!(
        Some(number("last-pass")),
        json["bracket"]["last_pass"].as_f64()
    );
    assert_eq!(
        Some(number("first-fail")),
        json["bracket"]["first_fail"].as_f64()
    );
    assert_eq!(Some(number("steps-run")), json["steps_run"].as_f64());
    let total = json["total_s"].as_f64().expect("total_s");
    assert!((number("total-s") - total).abs() <= 0.5, "{total}");
    assert_eq!(
        by_id("fails-first"),
        json["fails_first"][0]["expr"].as_str().expect("expr")
    );
    assert!(page.contains("<svg"), "the chart is inline");
    let rows: Vec<_> = tags(&dom)
        .filter(|t| name_of(t) == "tr" && attr(t, "data-verdict").is_some())
        .collect();
    let steps = json["steps"].as_array().expect("steps");
    assert_eq!(rows.len(), steps.len());
    for (row, step) in rows.iter().zip(steps) {
        assert_eq!(
            attr(row, "data-rate").and_then(|r| r.parse::<f64>().ok()),
            step["rate"].as_f64()
        );
        assert_eq!(
            attr(row, "data-verdict").as_deref(),
            step["verdict"].as_str()
        );
        let cells = children(row, &dom);
        let links: Vec<String> = cells
            .iter()
            .flat_map(|c| children(c, &dom))
            .filter(|t| name_of(t) == "a")
            .filter_map(|a| attr(a, "href"))
            .collect();
        let dir = step["dir"].as_str().expect("dir");
        assert_eq!(links, vec![format!("{dir}/index.html")]);
        assert!(out.join(&links[0]).is_file(), "{}", links[0]);
        if step["verdict"] == "fail" {
            assert!(text(row, &dom).contains("measure:verify.errors == 0"));
        }
    }
    for link in outside_links(&page, &dom) {
        assert!(!link.starts_with('/') && !link.contains(".."), "{link}");
        assert!(out.join(&link).is_file(), "{link}");
    }
}

fn inrush(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args(args)
        .output()
        .expect("inrush runs")
}

#[test]
fn a_threshold_failing_at_every_rate_exits_one_with_the_lowest_steps_evidence() {
    let scratch = Scratch::new();
    // No verification completes within a microsecond.
    let file = scratch.scenario("cap", signups(r#""verify.p99" = "< 0.001ms""#));
    let out = scratch.out("capacity");
    let o = inrush(&[
        "find-capacity",
        file.to_str().expect("utf-8 path"),
        "--from",
        "15",
        "--warmup",
        "1s",
        "--step-duration",
        "2s",
        "--accept-overload",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("even the lowest rate fails"), "{stdout}");
    assert!(stdout.contains("measure:verify.p99 < 0.001ms"), "{stdout}");
    // Each step is judged on the search's own line: a step's run says nothing of its own (its
    // verdict and report lines interleaved with the search's, even under --quiet).
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("threshold FAIL"), "{stderr}");
    assert!(!stderr.contains("report: "), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("capacity.json")).expect("capacity.json"),
    )
    .expect("JSON");
    assert_eq!(json["outcome"], "fails_lowest");
    // The lowest rate and its confirmation, nothing more.
    let rates: Vec<f64> = json["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["rate"].as_f64())
        .collect();
    assert_eq!(rates, vec![15.0, 15.0]);
    assert!(json["fails_first"][0]["observed"].as_f64() > Some(0.001));
}

#[test]
fn a_scenario_without_thresholds_or_with_a_bad_precision_is_refused_before_any_step() {
    let scratch = Scratch::new();
    let bare = scratch.scenario("bare", signups("").builtin(""));
    let o = inrush(&["find-capacity", bare.to_str().expect("utf-8 path")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs thresholds"));
    let file = scratch.scenario("cap", signups(r#""verify.errors" = "== 0""#));
    let path = file.to_str().expect("utf-8 path");
    for bad in [
        vec!["--precision", "0"],
        vec!["--precision", "150%"],
        vec!["--from", "-3"],
        vec!["--threshold", "verify.p99 <"],
    ] {
        let mut args = vec!["find-capacity", path];
        args.extend(bad.iter().copied());
        let o = inrush(&args);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
    }
    // Too short a measured window at --from to judge anything: said before any traffic.
    let o = inrush(&[
        "find-capacity",
        path,
        "--from",
        "2",
        "--step-duration",
        "1s",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("fewer than"));
    // A top step over what a run may ask for (10 000 000 arrivals/s), as --rate-scale may not.
    let o = inrush(&["find-capacity", path, "--max", "1e12"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("--max 1000000000000: would reach 1000000000000 users per second"),
        "{stderr}"
    );
}

/// Ctrl-C once the first step is done, while the next one is set up or running: the search
/// ends there (exit 3) with the steps so far recorded — a signal between two steps is not lost.
#[cfg(unix)]
#[test]
fn ctrl_c_between_steps_ends_the_search_with_the_steps_so_far() {
    let scratch = Scratch::new();
    let file = scratch.scenario("cap", signups(r#""verify.errors" = "== 0""#));
    let out = scratch.out("capacity");
    // Fine precision and a wide range: uninterrupted, this search takes 6 steps or more.
    let mut child = Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args(["find-capacity", file.to_str().expect("utf-8 path")])
        .args(["--from", "15", "--max", "480", "--precision", "2%"])
        .args([
            "--warmup",
            "1s",
            "--step-duration",
            "2s",
            "--accept-overload",
        ])
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let first = out.join("steps").join("01-15").join("summary.json");
    let waited = std::time::Instant::now();
    while !first.exists() {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the first step did not finish in 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().expect("exits");
    assert_eq!(status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("capacity.json")).expect("capacity.json"),
    )
    .expect("JSON");
    assert_eq!(json["outcome"], "interrupted");
    let steps = json["steps"].as_array().expect("steps").len();
    // The first step, and at most the one the signal interrupted (not recorded as judged).
    assert!((1..=2).contains(&steps), "{steps} steps");
}

/// `--dry-run` (and `inrush plan` for a scenario with `[capacity]`) says what the search will
/// take — steps and minutes from the search policy, whether one generator process reaches
/// `max` — and sends nothing: a listener standing in for the target is never connected to.
#[test]
fn a_dry_run_foresees_the_search_and_sends_nothing() {
    let scratch = Scratch::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let file = scratch.scenario(
        "cap",
        signups(
            r#""verify.p99" = "< 1s"

[capacity]
from = 20
max = 160
precision = "10%"
warmup = "2s"
step_duration = "8s"
"#,
        )
        .url(&url),
    );
    let path = file.to_str().expect("utf-8 path");
    let o = inrush(&["find-capacity", path, "--dry-run"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    let (fewest, most) = inrush::capacity::preview::steps(inrush::capacity::search::Limits {
        from: 20.0,
        max: 160.0,
        precision: 0.1,
    });
    // Each step: 2 s warm-up + 8 s window + the scenario's drain.
    assert!(
        stdout.contains(&format!(
            "20 to 160 users/s, bracket within 10 %: {fewest} to {most} steps"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("one generator process reaches 160 users/s"),
        "{stdout}"
    );
    // Far beyond what one process holds: said before any step.
    let o = inrush(&["find-capacity", path, "--dry-run", "--max", "100000"]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("does NOT reach 100000 users/s"), "{stdout}");
    // `plan` says the same for a scenario with a [capacity] section.
    let o = inrush(&[
        "plan",
        path,
        "--out",
        scratch.out("plan").to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("find-capacity: 20 to 160 users/s"),
        "{stdout}"
    );
    // A [capacity] section the search would refuse (too few users in a window at `from`) does
    // not fail the plan of the run: the plan says why and exits 0.
    let thin = scratch.scenario(
        "thin",
        signups("\"verify.p99\" = \"< 1s\"\n\n[capacity]\nfrom = 1\nstep_duration = \"2s\"\n")
            .url(&url),
    );
    let o = inrush(&[
        "plan",
        thin.to_str().expect("utf-8 path"),
        "--out",
        scratch.out("thin-plan").to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("find-capacity: would not start:"),
        "{stdout}"
    );
    assert!(stdout.contains("fewer than"), "{stdout}");
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the dry run connected to the target: {other:?}"),
    }
}

/// `--metric surge`: each step runs the scenario's own phases up to the surge, scaled so the
/// surge peaks at the step's rate (the calm phase before it is the warm-up, the phase after it
/// is left out), judged on the surge's own SLO. The built-in target's bucket of N tokens (full
/// when the surge starts: the calm phase stays below N) lasts N/(R − N) s, so within a 4 s surge
/// only rates above N·(1 + 1/4) = 50/s fail: doubling 20, 40, 80 (fails, confirmed) brackets
/// [40, 80] at a precision of 100 %.
#[test]
fn a_phase_metric_scales_the_surge_and_brackets_the_capacity_on_its_slo() {
    let scratch = Scratch::new();
    let file = scratch.scenario(
        "cap",
        Scenario::new("cap", 11)
            .builtin(format!("verify_capacity = {CAPACITY:.1}"))
            .with(
                r#"
[load]
arrivals = "uniform"
phases = [
  { name = "calm", duration = "2s", rate = 10 },
  { name = "surge", duration = "4s", rate = 100 },
  { name = "after", duration = "60s", rate = 10 },
]

[user]
messages = 0
stay_online = { constant = "100ms" }

[thresholds]
"surge:verify.errors" = "== 0"
"after:verify.p99" = "< 0.001ms"
"#,
            ),
    );
    let out = scratch.out("capacity");
    let found = find_capacity(&CapacityOptions {
        metric: Some("surge".into()),
        from: Some(20.0),
        max: Some(160.0),
        precision: Some(1.0),
        warmup: None,
        measure: None,
        ..options(file, out.clone())
    })
    .expect("the search runs");
    let r = &found.report;
    assert_eq!(found.outcome, Outcome::Found, "{}", r.answer);
    assert_eq!(r.settings.metric, "surge");
    assert_eq!((r.settings.warmup_s, r.settings.measure_s), (2.0, 4.0));
    assert_eq!(r.thresholds_applied, vec!["surge:verify.errors == 0"]);
    assert!(
        r.thresholds_skipped[0].starts_with("after:verify.p99"),
        "{r:?}"
    );
    assert_eq!(
        (r.bracket.last_pass, r.bracket.first_fail),
        (Some(40.0), Some(80.0)),
        "{}",
        r.answer
    );
    assert!(
        r.answer.contains("users/s at the peak of phase `surge`"),
        "{}",
        r.answer
    );
    // A step's run: the calm phase scaled with the surge (10/s × 80/100 for 2 s), no `after`.
    let step = r
        .steps
        .iter()
        .find(|s| s.rate == 80.0)
        .expect("a step at 80/s");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(&step.dir).join("summary.json")).expect("summary"),
    )
    .expect("JSON");
    let phases = summary["phases"].as_object().expect("phases");
    assert_eq!(phases.len(), 2, "{phases:?}");
    assert_eq!(phases["calm"]["arrivals"]["planned"], 16);
    assert_eq!(phases["surge"]["arrivals"]["planned"], 320);
}
