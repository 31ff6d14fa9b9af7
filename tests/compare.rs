//! `inrush compare`: two runs of one scenario with different seeds are no regression; a target
//! with 100 ms of added latency is one (and the reverse is not); bad input is a usage error.
//! Then the statistics under the decision: Mann–Whitney U, Fisher's exact test, the parser.
//!
//! Three 8 s runs of 40 users/s against the in-process built-in target run once, side by side,
//! and every test compares them through the binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::html::{attr, children, name_of, outside_links, parse, section, tags, text};
use common::{all_on_schedule, run_quiet, Scenario, Scratch};
use serde_json::Value;

/// 40 users/s for 8 s, evenly spaced, against the built-in target adding `latency` to every
/// HTTP request.
fn scenario(seed: u64, latency: &str) -> Scenario {
    Scenario::new("compare", seed)
        .builtin(format!(r#"latency = "{latency}""#))
        .timeout("5s")
        .drain("500ms")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "steady", duration = "8s", rate = 40 } ]
[user]
contacts_known = 3
contacts_unknown = 2
messages = 2
think = { constant = "200ms" }
stay_online = { constant = "1s" }
"#,
        )
}

struct Runs {
    scratch: Scratch,
    base: PathBuf,
    /// Same scenario and target, another seed.
    again: PathBuf,
    /// Same scenario, the target adds 100 ms to every HTTP request: well above the floor that
    /// the generator's own lag sets (a schedule lag p99 of 25 ms was seen on a loaded machine,
    /// and compare rightly calls a change within it no regression).
    slow: PathBuf,
}

impl Runs {
    /// Runs the three scenarios side by side (each is light: 40 users/s, one worker thread),
    /// all three again when the machine held any of them back (a stall of the generator's own
    /// is latency the target did not add: `common::all_on_schedule`).
    fn new() -> Runs {
        let specs = [
            ("base", 1, "0ms"),
            ("again", 2, "0ms"),
            ("slow", 3, "100ms"),
        ];
        let (_, (scratch, dirs)) = all_on_schedule(|| {
            let scratch = Scratch::new();
            let (outcomes, dirs): (Vec<_>, Vec<PathBuf>) = std::thread::scope(|s| {
                let handles: Vec<_> = specs
                    .iter()
                    .map(|&(name, seed, latency)| {
                        let file = scratch.scenario(name, scenario(seed, latency));
                        let out = scratch.out(name);
                        s.spawn(move || (run_quiet(file, out.clone(), None), out))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("run thread"))
                    .unzip()
            });
            (outcomes, (scratch, dirs))
        });
        Runs {
            base: dirs[0].clone(),
            again: dirs[1].clone(),
            slow: dirs[2].clone(),
            scratch,
        }
    }
}

/// The runs take ~9 s, so they are made once and every case below compares them. One test
/// function, so that the temporary directory is removed at its end.
#[test]
fn compare_runs_of_the_built_in_target() {
    let runs = Runs::new();
    two_runs_of_one_scenario_are_no_regression(&runs);
    added_latency_is_a_regression_and_its_removal_is_not(&runs);
    one_slow_interval_is_noise_and_a_slow_run_is_not(&runs);
    bad_input_is_a_usage_error(&runs);
    compare_html_shows_compare_json(&runs);
    compare_md_puts_regressions_first(&runs);
}

fn inrush(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("inrush runs")
}

/// Runs `inrush compare BASE NEW --out OUT [extra]`, returns the exit code and compare.json.
fn compare(r: &Runs, base: &Path, new: &Path, out: &str, extra: &[&str]) -> (i32, Value, String) {
    let out = r.scratch.out(out);
    let mut args = vec![
        "compare",
        base.to_str().expect("utf-8"),
        new.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    let output = inrush(&args, r.scratch.dir.path());
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}{stderr}");
    let json = std::fs::read_to_string(out.join("compare.json")).expect("compare.json written");
    assert!(out.join("compare.md").exists());
    assert!(out.join("compare.html").exists());
    for ext in ["png", "svg"] {
        assert!(
            out.join(format!("distribution.{ext}")).exists(),
            "overlay chart"
        );
    }
    let code = output.status.code().expect("exit code");
    (
        code,
        serde_json::from_str(&json).expect("valid json"),
        stdout,
    )
}

fn check<'a>(c: &'a Value, metric: &str, what: &str) -> &'a Value {
    c["metrics"][metric]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|k| k["what"] == what)
        .unwrap_or_else(|| panic!("{metric}.{what} missing"))
}

fn two_runs_of_one_scenario_are_no_regression(r: &Runs) {
    for (name, base, new) in [
        ("same", &r.base, &r.again),
        ("same-reversed", &r.again, &r.base),
    ] {
        let (code, c, stdout) = compare(
            r,
            base,
            new,
            name,
            // Every latency check on, with a 5 ms floor: the runs share a 2-core machine with
            // whatever else it runs, and a worker that gets less CPU than its neighbour for the
            // whole 8 s shifts its p90 by 1-2 ms "consistently" (seen under load), while a
            // metric whose samples fall in two modes ~1 ms apart (sms_code: the code is either
            // already delivered or one timer tick away) can move its p50 from one mode to the
            // other. Both are real differences between the two runs, just not the service's;
            // the 100 ms the slow target adds is well above the floor.
            &[
                "--max-regression",
                "p50=10%,p90=10%,p99=10%,errors=0,rate=5%,floor=5ms",
            ],
        );
        assert_eq!(code, 0, "{stdout}");
        assert_eq!(c["verdict"], "passed");
        assert_eq!(c["schema"], "inrush.compare/1");
        assert!(c["regressions"].as_array().expect("list").is_empty());
        for metric in ["register", "verify", "contacts_sync"] {
            let p99 = check(&c, metric, "p99");
            assert_ne!(p99["decision"], "regression", "{p99}");
            // The figures compared are the runs' own (summary.json), not a re-estimate.
            for (side, dir) in [("base", base), ("new", new)] {
                let own = summary_p99(dir, metric);
                let shown = p99[side].as_f64().expect("p99 shown");
                assert!((shown - own).abs() < 0.01, "{side}: {p99} vs {own}");
            }
            assert_eq!(check(&c, metric, "rate")["decision"], "ok");
        }
        assert!(stdout.contains("no regression"), "{stdout}");
    }
}

fn summary_p99(dir: &Path, metric: &str) -> f64 {
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).expect("summary"))
            .expect("json");
    summary["metrics"][metric]["latency_ms"]["p99"]
        .as_f64()
        .unwrap_or_else(|| panic!("{metric} p99 in {}", dir.display()))
}

fn added_latency_is_a_regression_and_its_removal_is_not(r: &Runs) {
    let (code, c, stdout) = compare(r, &r.base, &r.slow, "slower", &[]);
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(c["verdict"], "regressed");
    let regressions: Vec<&str> = c["regressions"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for metric in ["register", "verify", "contacts_sync"] {
        assert!(
            regressions.contains(&format!("{metric}.p99").as_str()),
            "{regressions:?}"
        );
        let p99 = check(&c, metric, "p99");
        assert_eq!(p99["decision"], "regression", "{p99}");
        assert_eq!(p99["confidence"], "high", "{p99}");
        assert!(p99["p_value"].as_f64().expect("p") < 0.01, "{p99}");
        let [b, n] = [
            p99["base"].as_f64().expect("b"),
            p99["new"].as_f64().expect("n"),
        ];
        assert!(n - b > 80.0, "100 ms added: {p99}");
        assert!(
            p99["intervals"][0].as_u64().expect("intervals") >= 5,
            "{p99}"
        );
        assert_eq!(c["metrics"][metric]["decision"], "regression");
    }
    // The default tolerances (p99=10%, errors=0) are in force and echoed.
    assert_eq!(c["tolerances"]["latency"]["p99"], 0.1);
    assert!(stdout.contains("REGRESSION in"), "{stdout}");
    // The terminal: the regressions first with their evidence, then one row per metric that
    // fits 80 columns, the regressed stat marked.
    let evidence = stdout
        .split("regressions:\n")
        .nth(1)
        .expect("a regressions list");
    for metric in ["register", "verify", "contacts_sync"] {
        assert!(evidence.contains(&format!("  {metric} p99: ")), "{stdout}");
        let row = stdout
            .lines()
            .find(|l| l.starts_with(metric) && l.ends_with("REGRESSION"))
            .unwrap_or_else(|| panic!("{metric}'s row: {stdout}"));
        assert!(row.contains('!') && row.chars().count() <= 80, "{row}");
    }

    // A faster NEW is no regression: the same latencies read the other way are an improvement.
    // The default tolerances with a 5 ms floor: the three runs share two cores, and `base` runs
    // in lockstep with `again` (the same uniform timeline, constant think times), so their
    // message sends coincide and `base`'s message_ack p99 may sit a few ms above `slow`'s — the
    // machine, not the target (seen once in CI: 2.56 ms against 1.04 ms). The removed 100 ms
    // stay far above the floor.
    let (code, c, stdout) = compare(
        r,
        &r.slow,
        &r.base,
        "faster",
        &["--max-regression", "p99=10%,errors=0,floor=5ms"],
    );
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(c["verdict"], "passed");
    for metric in ["register", "verify", "contacts_sync"] {
        assert_eq!(check(&c, metric, "p99")["decision"], "improved");
    }
}

fn bad_input_is_a_usage_error(r: &Runs) {
    let cwd = r.scratch.dir.path();
    let (base, slow) = (
        r.base.to_str().expect("utf-8"),
        r.slow.to_str().expect("utf-8"),
    );
    let missing = r.scratch.out("no-such-run");
    for (args, says) in [
        (
            vec!["compare", base, slow, "--max-regression", "p99=10%,p98=5%"],
            "item 2",
        ),
        (
            vec!["compare", base, slow, "--max-regression", "p99=ten%"],
            "item 1",
        ),
        (
            vec!["compare", base, missing.to_str().expect("utf-8")],
            "NEW",
        ),
        (
            vec!["compare", cwd.to_str().expect("utf-8"), slow],
            "summary.json",
        ),
    ] {
        let out = inrush(&args, cwd);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }

    // A NEW run under another load (a copy of BASE claiming 30 % more arrivals) is refused.
    let other = r.scratch.out("other-load");
    std::fs::create_dir_all(&other).expect("dir");
    for file in ["latency.hlog", "timeline.json"] {
        std::fs::copy(r.base.join(file), other.join(file)).expect("copy");
    }
    let mut summary: Value = serde_json::from_str(
        &std::fs::read_to_string(r.base.join("summary.json")).expect("summary"),
    )
    .expect("json");
    let planned = summary["arrivals"]["planned"].as_u64().expect("planned");
    summary["arrivals"]["planned"] = (planned * 13 / 10).into();
    std::fs::write(other.join("summary.json"), summary.to_string()).expect("write");
    let out = inrush(&["compare", base, other.to_str().expect("utf-8")], cwd);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not comparable"));
    assert!(!cwd.join("reports/compare-base-vs-other-load").exists());

    // Without --out the report lands in reports/compare-<base>-vs-<new>/ under the cwd.
    let out = inrush(&["compare", base, base], cwd);
    assert_eq!(out.status.code(), Some(0));
    assert!(cwd
        .join("reports/compare-base-vs-base/compare.json")
        .exists());
}

/// One slow second is a transient, not a regression: ten 200 ms samples added to one interval
/// of NEW's `register` move its whole-run p99 from a few ms to 200 ms, but the interval test
/// sees one outlying interval among eight and says noise. The same samples in every interval
/// are a regression.
fn one_slow_interval_is_noise_and_a_slow_run_is_not(r: &Runs) {
    use inrush::compare::{compare_runs, load, Decision, Tolerances};

    let base = load::run(&r.base, "BASE").expect("base");
    let tolerances = Tolerances::default();
    for every_interval in [false, true] {
        let mut new = load::run(&r.base, "NEW").expect("new");
        let intervals = new
            .intervals
            .get_mut("register")
            .expect("register intervals");
        assert!(intervals.len() >= 8, "{}", intervals.len());
        let total = new.histograms.total.get_mut("register").expect("register");
        for (i, h) in intervals.iter_mut().enumerate() {
            if every_interval || i == 3 {
                h.auto(true);
                h.record_n(200_000, 10).expect("record");
                total.record_n(200_000, 10).expect("record");
            }
        }
        let c = compare_runs(&base, &new, &tolerances).expect("compare");
        let p99 = c.metrics["register"]
            .checks
            .iter()
            .find(|k| k.what == "p99")
            .expect("p99");
        eprintln!("every interval {every_interval}: {p99:?}");
        // 10 samples of 200 ms in an interval of ~40 lift NEW's p99 to them, whatever BASE's
        // p99 was on a loaded machine (31–47 ms was seen).
        assert!(p99.new.expect("new p99") >= 199.0, "{p99:?}");
        assert!(p99.change.expect("change") > 0.0, "{p99:?}");
        let p = p99.p_value.expect("tested");
        if every_interval {
            assert_eq!(p99.decision, Decision::Regression, "{p99:?}");
            assert!(p < 0.01, "{p99:?}");
        } else {
            assert_eq!(p99.decision, Decision::Ok, "{p99:?}");
            assert!(p > 0.1, "{p99:?}");
            assert!(p99.reason.contains("not consistent"), "{}", p99.reason);
        }
    }
}

/// A JSON number as the page's attributes hold it (`null` as an empty attribute).
fn number(v: &Value) -> Option<f64> {
    if v.is_null() {
        None
    } else {
        Some(v.as_f64().unwrap_or_else(|| panic!("{v} is a number")))
    }
}

fn attr_number(tag: &tl::HTMLTag, key: &str) -> Option<f64> {
    attr(tag, key).filter(|v| !v.is_empty()).map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{key}={v} is a number"))
    })
}

/// Every check of compare.json: metric, check, the check's object.
fn json_checks(c: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (metric, m) in c["metrics"].as_object().expect("metrics") {
        for k in m["checks"].as_array().expect("checks") {
            out.push((
                metric.clone(),
                k["what"].as_str().expect("what").to_string(),
                k,
            ));
        }
    }
    for k in c["messages"].as_array().expect("messages") {
        out.push((
            "messages".into(),
            k["what"].as_str().expect("what").to_string(),
            k,
        ));
    }
    out
}

/// compare.html of BASE vs the slow run, every kind of check on: parsed back, it is
/// self-contained, lists compare.json's regressions first with their numbers, shows every
/// metric's BASE and NEW values and change exactly as compare.json has them, embeds the overlay
/// chart and links to both runs' pages.
fn compare_html_shows_compare_json(r: &Runs) {
    let (code, c, _) = compare(
        r,
        &r.base,
        &r.slow,
        "page",
        &[
            "--max-regression",
            "p50=10%,p99=10%,errors=0,rate=5%,lost=0",
        ],
    );
    assert_eq!(code, 1);
    let out = r.scratch.out("page");
    let page = std::fs::read_to_string(out.join("compare.html")).expect("compare.html");
    let dom = parse(&page);
    assert!(page.starts_with("<!DOCTYPE html>"));

    // Offline: the only links leaving the page are the two runs' index.html, relative.
    let links = outside_links(&page, &dom);
    assert_eq!(links, ["../base/index.html", "../slow/index.html"]);
    for link in &links {
        assert!(out.join(link).is_file(), "{link} does not resolve");
    }

    let badge = tags(&dom)
        .find(|t| attr(t, "class").as_deref() == Some("badge"))
        .expect("verdict badge");
    assert_eq!(text(badge, &dom), "regressed");

    // Regressions first: before the verdict, the table, the chart and the runs.
    let at = |id: &str| {
        page.find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id}"))
    };
    assert!(at("regressions") < at("decision"));
    assert!(at("decision") < at("metrics"));
    assert!(at("metrics") < at("charts"));
    assert!(at("charts") < at("runs"));

    // The regressions listed are compare.json's, in its order, with its numbers.
    let checks = json_checks(&c);
    let find = |name: &str| {
        checks
            .iter()
            .find(|(m, w, _)| format!("{m}.{w}") == name)
            .unwrap_or_else(|| panic!("{name} not in compare.json"))
            .2
    };
    let regressions_html = section(&dom, "regressions");
    let regressions = parse(&regressions_html);
    let listed: Vec<_> = tags(&regressions)
        .filter(|t| name_of(t) == "li" && attr(t, "class").as_deref() == Some("regression"))
        .collect();
    let names: Vec<String> = listed
        .iter()
        .map(|t| attr(t, "data-check").expect("data-check"))
        .collect();
    let want: Vec<&str> = c["regressions"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(want.len() >= 3, "{want:?}");
    assert_eq!(names, want);
    for li in &listed {
        let name = attr(li, "data-check").expect("data-check");
        let k = find(&name);
        for (key, field) in [
            ("data-base", "base"),
            ("data-new", "new"),
            ("data-change", "change"),
            ("data-p", "p_value"),
        ] {
            assert_eq!(attr_number(li, key), number(&k[field]), "{name} {field}");
        }
        // The evidence in words, with the numbers as the page shows them.
        let words = text(li, &regressions);
        let metric = name.split('.').next().expect("metric");
        let http = ["register", "verify", "contacts_sync"].contains(&metric);
        if http && k["what"] == "p99" {
            let base = k["base"].as_f64().expect("base");
            let new = k["new"].as_f64().expect("new");
            let intervals = k["intervals"][1].as_u64().expect("intervals");
            let higher = k["higher_intervals"].as_u64().expect("higher_intervals");
            assert!(higher * 2 > intervals, "{k}");
            for part in [
                "p99 rose".to_string(),
                format!("{} ms →", shown_ms(base)),
                format!("→ {} ms", shown_ms(new)),
                format!("higher in {higher} of {intervals} intervals"),
                "Mann–Whitney p".to_string(),
            ] {
                assert!(words.contains(&part), "{part:?} not in {words:?}");
            }
        }
    }

    // Every metric: BASE, NEW and change per check, exactly compare.json's.
    let metrics_html = section(&dom, "metrics");
    let metrics = parse(&metrics_html);
    let blocks: Vec<_> = tags(&metrics)
        .filter(|t| name_of(t) == "tbody" && attr(t, "data-metric").is_some())
        .collect();
    assert_eq!(
        blocks.len(),
        c["metrics"].as_object().expect("metrics").len()
    );
    let mut cells_seen = 0;
    for block in blocks {
        let metric = attr(block, "data-metric").expect("metric");
        let m = &c["metrics"][&metric];
        assert_eq!(
            attr(block, "data-decision").as_deref(),
            m["decision"].as_str()
        );
        for tr in children(block, &metrics) {
            let run = attr(tr, "data-run").expect("data-run");
            let field = match run.as_str() {
                "base" | "new" => run.as_str(),
                _ => "change",
            };
            for td in children(tr, &metrics) {
                let Some(what) = attr(td, "data-check") else {
                    continue;
                };
                let k = find(&format!("{metric}.{what}"));
                assert_eq!(
                    attr_number(td, "data-value"),
                    number(&k[field]),
                    "{metric}.{what} {field}"
                );
                cells_seen += 1;
            }
        }
    }
    // p50, p95, p99, max, errors and rate, three rows each, for every metric.
    assert!(cells_seen >= 18 * 5, "{cells_seen}");

    // Every decided check with its decision, and no undecided one.
    let decided_html = section(&dom, "decisions");
    let decided = parse(&decided_html);
    // (serde_json sorts the metrics by name here; the page keeps the run's order.)
    let mut rows: Vec<String> = tags(&decided)
        .filter_map(|t| attr(t, "data-check"))
        .collect();
    rows.sort();
    let mut want: Vec<String> = checks
        .iter()
        .filter(|(_, _, k)| k["decision"] != "not_checked")
        .map(|(m, w, _)| format!("{m}.{w}"))
        .collect();
    want.sort();
    assert_eq!(rows, want);
    assert!(want.contains(&"messages.lost".to_string()), "{want:?}");

    // The overlay chart, inline.
    let charts = section(&dom, "charts");
    assert_eq!(charts.matches("<svg").count(), 1, "one overlay chart");
    assert_eq!(tags(&dom).filter(|t| name_of(t) == "figure").count(), 1);

    // Both runs' identities.
    let runs = section(&dom, "runs");
    for side in ["base", "new"] {
        let info = &c[side];
        for v in [
            info["scenario"].as_str().expect("scenario").to_string(),
            info["seed"].to_string(),
            info["started_at"].as_str().expect("started_at").to_string(),
            info["inrush_version"]
                .as_str()
                .expect("version")
                .to_string(),
        ] {
            assert!(runs.contains(&v), "{side}'s {v} not in #runs");
        }
    }
}

/// Milliseconds as index.html shows them (about four significant digits).
fn shown_ms(v: f64) -> String {
    if v < 1.0 {
        format!("{v:.3}")
    } else if v < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// compare.md opens with the regressions, each with its evidence, before any table; the table
/// has one row per metric.
fn compare_md_puts_regressions_first(r: &Runs) {
    let (_, c, _) = compare(r, &r.base, &r.slow, "markdown", &[]);
    let md =
        std::fs::read_to_string(r.scratch.out("markdown").join("compare.md")).expect("compare.md");
    let regressions = md.find("### Regressions").expect("a Regressions heading");
    let table = md.find("\n| metric |").expect("a table");
    assert!(regressions < table, "{md}");
    let listed = &md[regressions..table];
    for name in c["regressions"].as_array().expect("list") {
        let name = name.as_str().expect("name");
        let (metric, what) = name.rsplit_once('.').expect("metric.check");
        let line = listed
            .lines()
            .find(|l| l.starts_with(&format!("- **{metric}** {what} rose")))
            .unwrap_or_else(|| panic!("{name} not listed first: {listed}"));
        assert!(
            line.contains("higher in") || line.contains("low confidence"),
            "{line}"
        );
    }
    let metrics = c["metrics"].as_object().expect("metrics");
    let rows = metrics
        .keys()
        .filter(|m| md.lines().any(|l| l.starts_with(&format!("| {m} | "))))
        .count();
    assert_eq!(rows, metrics.len(), "{md}");
    // The file says what became of the undecided checks.
    assert!(md.contains("collapsed into their metric's row"), "{md}");
}

mod stats {
    use inrush::compare::stats::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn erfc_matches_known_values() {
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (2.0, 0.004_677_734_981_047_266),
            (3.0, 2.209_049_699_858_544e-5),
            (-1.0, 1.842_700_792_949_715),
        ] {
            let got = erfc(x);
            assert!(
                close(got, want, want * 2e-7),
                "erfc({x}) = {got}, want {want}"
            );
        }
        // One-sided normal tails used as α: z = 2.326 ↔ 0.01.
        assert!(close(upper_tail(2.326_347_874), 0.01, 1e-8));
    }

    /// Exact null distribution of U (no ties) by counting: the number of ways to reach each U.
    fn exact_upper_tail(n1: usize, n2: usize, u: usize) -> f64 {
        // ways[a][b][u]: arrangements of a base and b new values with U = u (recursive on the
        // largest value: if it is new, it beats all a base values).
        let max_u = n1 * n2;
        let mut ways = vec![vec![vec![0f64; max_u + 1]; n2 + 1]; n1 + 1];
        for a in 0..=n1 {
            for b in 0..=n2 {
                if a == 0 || b == 0 {
                    ways[a][b][0] = 1.0;
                    continue;
                }
                for k in 0..=a * b {
                    let from_new = if k >= a { ways[a][b - 1][k - a] } else { 0.0 };
                    ways[a][b][k] = from_new + ways[a - 1][b][k];
                }
            }
        }
        let total: f64 = ways[n1][n2].iter().sum();
        ways[n1][n2][u..].iter().sum::<f64>() / total
    }

    #[test]
    fn mann_whitney_textbook_separation() {
        // Complete separation, 5 vs 5: U = 25, z = (25 − 12.5 − 0.5)/√(25·11/12) = 2.5067,
        // p = 0.00609 (normal approximation; the exact p is 1/252 = 0.00397).
        let r = mann_whitney_greater(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        assert_eq!(r.u, 25.0);
        assert!(close(r.z, 2.506_7, 1e-4), "{r:?}");
        assert!(close(r.p, 0.006_093, 2e-6), "{r:?}");
        assert!(close(exact_upper_tail(5, 5, 25), 1.0 / 252.0, 1e-12));
        // The other direction is no evidence at all.
        let r = mann_whitney_greater(&[6.0, 7.0, 8.0, 9.0, 10.0], &[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(r.u, 0.0);
        assert!(r.p > 0.99, "{r:?}");
    }

    #[test]
    fn mann_whitney_textbook_with_ties() {
        // Siegel & Castellan style example, worked by hand: base = 1 2 2 3 5, new = 2 4 4 6 7.
        // Ranks: 1→1, 2 (three) → 3, 3→5, 4 (two) → 6.5, 5→8, 6→9, 7→10.
        // R_new = 3 + 6.5 + 6.5 + 9 + 10 = 35, U = 35 − 15 = 20.
        // Σ(t³−t) = 24 + 6 = 30; var = 25/12 · (11 − 30/90) = 22.2222; z = (20 − 12.5 − 0.5)/4.714.
        let r = mann_whitney_greater(&[1.0, 2.0, 2.0, 3.0, 5.0], &[2.0, 4.0, 4.0, 6.0, 7.0]);
        assert_eq!(r.u, 20.0);
        let z = 7.0 / (25.0_f64 / 12.0 * (11.0 - 30.0 / 90.0)).sqrt();
        assert!(close(r.z, z, 1e-12), "{r:?} want z {z}");
        assert!(close(r.p, 0.068_9, 5e-4), "{r:?}");
    }

    #[test]
    fn mann_whitney_identical_samples_give_no_evidence() {
        let xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let r = mann_whitney_greater(&xs, &xs);
        assert_eq!(r.u, 32.0);
        assert!(close(r.p, 0.5, 0.03), "{r:?}");
        // All values tied: no variance, no evidence.
        let r = mann_whitney_greater(&[0.0; 8], &[0.0; 8]);
        assert_eq!(r.p, 1.0);
        assert_eq!(mann_whitney_greater(&[], &[1.0]).p, 1.0);
    }

    #[test]
    fn mann_whitney_shifted_samples_give_a_tiny_p() {
        let base: Vec<f64> = (0..30).map(|i| f64::from(i % 10)).collect();
        let new: Vec<f64> = base.iter().map(|v| v + 25.0).collect();
        let r = mann_whitney_greater(&base, &new);
        assert_eq!(r.u, 900.0);
        assert!(r.p < 1e-9, "{r:?}");
    }

    #[test]
    fn mann_whitney_normal_approximation_tracks_the_exact_tail() {
        // 8 vs 8 with no ties, the regime `compare` works in (≥ 5 intervals per side).
        let base = [1.0, 2.0, 4.0, 5.0, 7.0, 9.0, 10.0, 12.0];
        let new = [3.0, 6.0, 8.0, 11.0, 13.0, 14.0, 15.0, 16.0];
        let r = mann_whitney_greater(&base, &new);
        let exact = exact_upper_tail(8, 8, r.u as usize);
        assert_eq!(r.u, 50.0);
        assert!(close(r.p, exact, 0.004), "approx {} exact {exact}", r.p);
        // Complete separation: the approximation is conservative (its p is above the exact one).
        let low: Vec<f64> = (1..=8).map(f64::from).collect();
        let high: Vec<f64> = (9..=16).map(f64::from).collect();
        let sep = mann_whitney_greater(&low, &high);
        assert!(
            sep.p < 0.01 && sep.p > exact_upper_tail(8, 8, 64),
            "{sep:?}"
        );
    }

    #[test]
    fn fisher_exact_matches_the_hypergeometric_tail() {
        // 0 of 320 vs 3 of 320: all three errors in NEW by chance, C(320,3)/C(640,3).
        let want = (320.0 * 319.0 * 318.0) / (640.0 * 639.0 * 638.0);
        assert!(close(fisher_greater(0, 320, 3, 320), want, 1e-12));
        // Tea-tasting table (Fisher 1935): 3 of 4 vs 1 of 4, one-sided p = 17/70.
        assert!(close(fisher_greater(1, 4, 3, 4), 17.0 / 70.0, 1e-12));
        assert_eq!(fisher_greater(0, 100, 0, 100), 1.0);
        assert!(fisher_greater(5, 1000, 5, 1000) > 0.5);
        assert!(fisher_greater(0, 1000, 40, 1000) < 1e-10);
    }

    #[test]
    fn poisson_rate_test_sees_a_drop_but_not_noise() {
        assert!(poisson_rate_lower(400, 10.0, 390, 10.0) > 0.3);
        assert!(poisson_rate_lower(400, 10.0, 300, 10.0) < 0.001);
        // The same rate over spans of different lengths.
        assert!(poisson_rate_lower(400, 10.0, 200, 5.0) > 0.3);
    }
}

mod tolerances {
    use inrush::compare::{Stat, Tolerances};

    #[test]
    fn parses_every_key() {
        let t = Tolerances::parse("p99=10%, p50=20%,errors=0,rate=5%,lost=2,max=50%,floor=500us")
            .expect("valid");
        assert_eq!(t.latency[&Stat::P99], 0.10);
        assert_eq!(t.latency[&Stat::P50], 0.20);
        assert_eq!(t.latency[&Stat::Max], 0.50);
        assert_eq!(t.errors_pp, Some(0.0));
        assert_eq!(t.rate, Some(0.05));
        assert_eq!(t.lost, Some(2));
        assert!((t.floor_ms - 0.5).abs() < 1e-12);
        assert_eq!(
            t.to_string(),
            "p50=20%,p99=10%,max=50%,errors=0pp,rate=5%,lost=2,floor=0.5ms"
        );
        let t = Tolerances::parse("errors=0.5%,p999=12.5%").expect("valid");
        assert_eq!(t.errors_pp, Some(0.5));
        assert_eq!(t.latency[&Stat::P999], 0.125);
        assert_eq!(t.rate, None);
        // k6's spelling and the new percentiles.
        let t = Tolerances::parse("p(95)=5%,p99.9=10%,p99.99=20%").expect("valid");
        assert_eq!(t.latency[&Stat::P95], 0.05);
        assert_eq!(t.latency[&Stat::P999], 0.10);
        assert_eq!(t.latency[&Stat::P9999], 0.20);
        let twice = Tolerances::parse("p95=5%,p(95)=10%").expect_err("the same statistic twice");
        assert!(twice.contains("given twice"), "{twice}");
    }

    #[test]
    fn the_default_is_p99_ten_percent_and_no_more_errors() {
        let t = Tolerances::default();
        assert_eq!(t.to_string(), "p99=10%,errors=0pp,floor=1ms");
        assert_eq!(Tolerances::parse("p99=10%,errors=0").expect("valid"), t);
    }

    #[test]
    fn errors_name_the_item_at_fault() {
        for (text, item, says) in [
            ("p99=10", "item 1 `p99=10`", "percent sign"),
            (
                "p99=10%,p50=fast%",
                "item 2 `p50=fast%`",
                "not a percentage",
            ),
            ("p99=10%,p98=5%", "item 2", "unknown key `p98`"),
            ("p99=10%,,errors=0", "item 2", "empty item"),
            ("p99", "item 1", "KEY=VALUE"),
            ("errors=lots", "item 1", "percentage points"),
            ("errors=-1", "item 1", "0 or more"),
            ("p99=-5%", "item 1", "0 or more"),
            ("lost=1.5", "item 1", "count of messages"),
            ("rate=5%,rate=6%", "item 2", "twice"),
            ("floor=1", "item 1", "no unit"),
        ] {
            let err = Tolerances::parse(text).expect_err(text);
            assert!(err.contains(item) && err.contains(says), "{text}: {err}");
            assert!(err.starts_with("--max-regression"), "{err}");
        }
    }
}
