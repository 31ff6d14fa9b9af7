//! `--shard i/N`, `--start-at` and `inrush merge`, through the binary on loopback.
//!
//! One short scenario and seed (48 evenly spaced arrivals over 2 s) runs as one process, as 2
//! shards and as 4 shards, each set against its own in-process built-in target (the same seed
//! gives the same phones, so two sets on one target would collide); the shards' directories
//! are merged and compared with the one-process run and with their own hlogs. The refusals of
//! `merge` reuse those directories. `--start-at` runs apart, with the in-process target.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Scenario, Scratch};
use hdrhistogram::Histogram;
use serde_json::Value;

/// Arrivals of the scenario: 24/s for 2 s, evenly spaced (the first half a step in).
const ARRIVALS: u64 = 48;

fn scenario() -> Scenario {
    Scenario::new("sharded", 7)
        .url("http://127.0.0.1:1") // every run gives --target
        .timeout("5s")
        .drain("1s")
        // Loopback source addresses: every shard spreads its users over both.
        .run(r#"source_addresses = ["127.0.0.2", "127.0.0.3"]"#)
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "surge", duration = "2s", rate = 24 } ]
[user]
contacts_known = 2
contacts_unknown = 1
messages = 1
think = { constant = "50ms" }
stay_online = { constant = "300ms" }
[thresholds]
"arrivals.planned" = ">= 40"
"register.p99" = "< 5s"
"#,
        )
}

fn inrush(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inrush"));
    c.args(args);
    c
}

/// Runs every command side by side and waits for all of them.
fn all(commands: Vec<Command>) -> Vec<Output> {
    let children: Vec<_> = commands
        .into_iter()
        .map(|mut c| {
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("inrush starts")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("inrush ends"))
        .collect()
}

fn summary(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

struct Fixture {
    scratch: Scratch,
    scenario: PathBuf,
    single: PathBuf,
    two: Vec<PathBuf>,
    four: Vec<PathBuf>,
    /// `inrush merge` of `two` and of `four`: (output, directory).
    merged_two: (Output, PathBuf),
    merged_four: (Output, PathBuf),
    /// The shards' own exit codes.
    shard_codes: Vec<Option<i32>>,
}

fn run_args(scenario: &Path, target: &str, out: &Path) -> Vec<String> {
    [
        "run",
        &scenario.display().to_string(),
        "--target",
        target,
        "--out",
        &out.display().to_string(),
        "--workers",
        "1",
        "--quiet",
        "--accept-overload",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let scratch = Scratch::new();
        let scenario = scratch.scenario("sharded", scenario());
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let servers: Vec<_> = (0..3)
            .map(|_| {
                runtime
                    .block_on(inrush::target::start(
                        "127.0.0.1:0".parse().expect("addr"),
                        inrush::target::Knobs::default(),
                    ))
                    .expect("target starts")
            })
            .collect();
        let targets: Vec<String> = servers
            .iter()
            .map(|t| format!("http://{}", t.addr))
            .collect();
        let single = scratch.out("single");
        let two: Vec<PathBuf> = (0..2).map(|i| scratch.out(&format!("two-{i}"))).collect();
        let four: Vec<PathBuf> = (0..4).map(|i| scratch.out(&format!("four-{i}"))).collect();
        // The one-process run and the 2 shards side by side, then the 4 shards together at a
        // --start-at a little ahead (time for four processes to start on a loaded machine).
        let mut first = vec![command(run_args(&scenario, &targets[0], &single))];
        for (i, dir) in two.iter().enumerate() {
            let mut args = run_args(&scenario, &targets[1], dir);
            args.extend(["--shard".into(), format!("{i}/2")]);
            first.push(command(args));
        }
        let mut outputs = all(first);
        let at = humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_millis(1500))
            .to_string();
        let second = four
            .iter()
            .enumerate()
            .map(|(i, dir)| {
                let mut args = run_args(&scenario, &targets[2], dir);
                args.extend([
                    "--shard".into(),
                    format!("{i}/4"),
                    "--start-at".into(),
                    at.clone(),
                ]);
                command(args)
            })
            .collect();
        outputs.extend(all(second));
        for server in servers {
            runtime.block_on(server.shutdown());
        }
        for o in &outputs {
            assert!(
                matches!(o.status.code(), Some(0 | 1)),
                "a run failed: {:?} {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let merge = |dirs: &[PathBuf], out: PathBuf| {
            let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
            (merge_quietly(&dirs, &out), out)
        };
        // Given in any order.
        let reversed: Vec<PathBuf> = four.iter().rev().cloned().collect();
        let merged_two = merge(&two, scratch.out("merged-two"));
        let merged_four = merge(&reversed, scratch.out("merged-four"));
        Fixture {
            shard_codes: outputs[1..].iter().map(|o| o.status.code()).collect(),
            scratch,
            scenario,
            single,
            two,
            four,
            merged_two,
            merged_four,
        }
    })
}

/// `inrush merge --quiet DIRS… --out OUT`, run to its end.
fn merge_quietly(dirs: &[&Path], out: &Path) -> Output {
    let mut args = vec!["merge".to_string(), "--quiet".into()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out".into(), out.display().to_string()]);
    command(args).output().expect("merge runs")
}

fn command(args: Vec<String>) -> Command {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    inrush(&refs)
}

/// Every hlog entry of `tag` of the given runs, in one histogram.
fn fed_all(dirs: &[PathBuf], tag: &str) -> Histogram<u64> {
    let mut h = inrush::metrics::recorder::new_histogram();
    for d in dirs {
        for e in inrush::metrics::hlog::read(&d.join("latency.hlog")).expect("hlog") {
            if e.tag.as_deref() == Some(tag) {
                h.add(&e.histogram).expect("auto-resizing");
            }
        }
    }
    h
}

fn check_merged(shards: &[PathBuf], merged: &(Output, PathBuf), single: &Value) {
    let (out, dir) = merged;
    assert_eq!(
        out.status.code(),
        Some(0),
        "the merged run passes its thresholds: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = summary(dir);
    let n = shards.len() as u64;
    let parts: Vec<Value> = shards.iter().map(|d| summary(d)).collect();
    assert_eq!(m["shard"]["count"], n);
    assert_eq!(m["verdict"], "passed");
    // The shards' planned arrivals are the one-process schedule's, split floor/ceil.
    assert_eq!(u(&single["arrivals"]["planned"]), ARRIVALS);
    assert_eq!(u(&m["arrivals"]["planned"]), ARRIVALS);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(u(&p["shard"]["index"]), i as u64);
        let share = ARRIVALS / n + u64::from((i as u64) < ARRIVALS % n);
        assert_eq!(u(&p["arrivals"]["planned"]), share, "shard {i}");
        // A shard alone fails `arrivals.planned >= 40`; the merged run is gated on the sum.
        assert_eq!(p["verdict"], "failed", "shard {i}");
    }
    // Counts are the sums of the shards'.
    let sum = |path: &[&str]| -> u64 {
        parts
            .iter()
            .map(|p| u(path.iter().fold(p, |v: &Value, k| &v[*k])))
            .sum()
    };
    for key in ["planned", "started", "dropped", "completed"] {
        assert_eq!(u(&m["arrivals"][key]), sum(&["arrivals", key]), "{key}");
    }
    for key in ["sent", "acked", "delivered"] {
        assert_eq!(u(&m["messages"][key]), sum(&["messages", key]), "{key}");
    }
    let metrics = m["metrics"].as_object().expect("metrics");
    for (name, metric) in metrics {
        assert_eq!(
            u(&metric["count"]),
            sum(&["metrics", name, "count"]),
            "{name}"
        );
        // Identities never collide between shards: no 409 (or any error) from the target.
        assert_eq!(u(&metric["errors"]), 0, "{name}: {metric}");
    }
    assert_eq!(
        u(&m["metrics"]["register"]["count"]),
        u(&m["arrivals"]["started"])
    );
    // Percentiles of the merged run are those of one histogram fed every shard's samples.
    for tag in ["register", "verify", "ws_connect"] {
        let h = fed_all(shards, tag);
        assert_eq!(h.len(), u(&m["metrics"][tag]["count"]), "{tag}");
        let lat = &m["metrics"][tag]["latency_ms"];
        for (stat, q) in [("p50", 0.5), ("p99", 0.99)] {
            let want = h.value_at_quantile(q) as f64 / 1000.0;
            let got = lat[stat].as_f64().expect("a latency");
            // HDR precision: 3 significant digits, and the summary's µs rounding.
            assert!(
                (got - want).abs() <= want * 1e-3 + 1e-3,
                "{tag} {stat}: merged {got} ms, all samples {want} ms"
            );
        }
        let max = h.max() as f64 / 1000.0;
        let got = lat["max"].as_f64().expect("max");
        assert!((got - max).abs() <= max * 1e-3 + 1e-3, "{tag} max");
    }
    // Each shard's generator is kept, with its start offset.
    let list = m["shards"].as_array().expect("shards");
    assert_eq!(list.len() as u64, n);
    assert!(list.iter().all(|s| s["generator"]["workers"] == 1));
    assert!(list.iter().any(|s| s["offset_ms"] == 0.0));
    for file in [
        "index.html",
        "junit.xml",
        "summary.md",
        "latency.svg",
        "timeline.json",
    ] {
        assert!(dir.join(file).is_file(), "{file}");
    }
}

#[test]
fn shards_merge_into_the_one_process_run() {
    let f = fixture();
    // A shard alone fails the scenario's `arrivals.planned >= 40` (exit 1).
    assert!(
        f.shard_codes.iter().all(|c| *c == Some(1)),
        "{:?}",
        f.shard_codes
    );
    let single = summary(&f.single);
    assert_eq!(single["verdict"], "passed");
    check_merged(&f.two, &f.merged_two, &single);
    check_merged(&f.four, &f.merged_four, &single);
    // The four shards shared one --start-at: their time zeros are it (or late, and say so).
    for d in &f.four {
        let s = summary(d);
        let late = s["start"]["offset_ms"].as_f64().expect("an offset");
        // Late only when a process was not ready in time (a very loaded machine).
        assert!((0.0..5000.0).contains(&late), "{late}");
        assert!(s["start"]["requested"].is_string());
    }
    // Merged counts equal the one-process run's where the schedule decides them.
    let m = summary(&f.merged_four.1);
    assert_eq!(m["arrivals"]["planned"], single["arrivals"]["planned"]);
    assert_eq!(m["scenario_fingerprint"], single["scenario_fingerprint"]);
}

/// Copies a run directory into `to`, with `edit` applied to its summary.json.
fn edited(from: &Path, to: &Path, edit: impl FnOnce(&mut Value)) -> PathBuf {
    std::fs::create_dir_all(to).expect("dir");
    for e in std::fs::read_dir(from).expect("read dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
    let mut s = summary(to);
    edit(&mut s);
    std::fs::write(to.join("summary.json"), s.to_string()).expect("write");
    to.to_path_buf()
}

fn refused(dirs: &[&Path], reason: &str, names: &Path) {
    let mut args = vec!["merge".to_string()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    let o = command(args).output().expect("merge runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(reason), "`{reason}` in: {err}");
    assert!(
        err.contains(&names.display().to_string()),
        "names {}: {err}",
        names.display()
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn the_merged_run_ends_and_drains_as_its_last_shard_does() {
    let f = fixture();
    let s = &f.scratch;
    // Shard 1 as if its drain had lasted a second longer; shard 0 keeps its own, shorter one.
    let longer = edited(&f.two[1], &s.out("longer"), |v| {
        let f = |v: &Value| v.as_f64().expect("seconds");
        let duration = f(&v["duration_s"]) + 1.0;
        v["drain_s"] = (f(&v["drain_s"]) + 1.0).into();
        v["duration_s"] = duration.into();
        v["phases"]["surge"]["end_s"] = duration.into();
    });
    // Its timeline ends with it (a run directory whose timeline stops short of its duration is
    // refused as cut short): the last interval is the one that lasted a second longer.
    let timeline_path = longer.join("timeline.json");
    let text = std::fs::read_to_string(&timeline_path).expect("timeline");
    let mut timeline: Value = serde_json::from_str(&text).expect("json");
    let last = timeline["points"]
        .as_array_mut()
        .and_then(|p| p.last_mut())
        .expect("a point");
    let end = last["end_s"].as_f64().expect("seconds") + 1.0;
    last["end_s"] = end.into();
    std::fs::write(&timeline_path, timeline.to_string()).expect("write");
    let out = s.out("merged-longer");
    let o = merge_quietly(&[&f.two[0], &longer], &out);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m = summary(&out);
    let parts = [summary(&f.two[0]), summary(&longer)];
    let secs = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not seconds: {v}"));
    let offsets: Vec<f64> = (0..2)
        .map(|i| secs(&m["shards"][i]["offset_ms"]) / 1000.0)
        .collect();
    let latest = |at: &dyn Fn(&Value) -> f64| {
        parts
            .iter()
            .zip(&offsets)
            .map(|(p, o)| o + at(p))
            .fold(0.0, f64::max)
    };
    let duration = secs(&m["duration_s"]);
    let end = latest(&|p| secs(&p["duration_s"]));
    let load_end = latest(&|p| secs(&p["duration_s"]) - secs(&p["drain_s"]));
    // The merged timeline may end a little later (its last interval's end); never earlier.
    assert!(
        duration >= end - 1e-3,
        "{duration} s, shards end at {end} s"
    );
    let drain = secs(&m["drain_s"]);
    assert!(
        (drain - (duration - load_end)).abs() < 2e-3,
        "drain {drain} s: the run's end {duration} s less the load's end {load_end} s"
    );
    assert!(drain > 1.0, "shard 1's drain, not shard 0's: {drain} s");
    let surge = &m["phases"]["surge"];
    let first_start = parts
        .iter()
        .zip(&offsets)
        .map(|(p, o)| o + secs(&p["phases"]["surge"]["start_s"]))
        .fold(f64::INFINITY, f64::min);
    assert!(
        (secs(&surge["start_s"]) - first_start).abs() < 1e-5,
        "{surge}"
    );
    assert!(
        secs(&surge["end_s"]) >= duration,
        "the last phase holds the drain: {surge}"
    );
    // The charts' shading: the load profile's 2 s, from the first shard's start to the last's.
    let timeline: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("timeline.json")).expect("timeline.json"),
    )
    .expect("JSON");
    let span = &timeline["phases"][0];
    let last_offset = offsets.iter().copied().fold(0.0, f64::max);
    assert!(
        (secs(&span["end_s"]) - (2.0 + last_offset)).abs() < 1e-5,
        "{span}"
    );
}

/// A shard whose generator fell behind makes the merged run inconclusive, however sound the
/// merged figures (the other shards' samples dilute its lag). Here shard 1 is held to a
/// schedule lag p99 limit of 0 ms (its summary edited: every run lags some microseconds) and
/// ran without --accept-overload; shard 0 keeps the 5 ms default the merged run is judged by.
#[test]
fn a_shard_that_fell_behind_makes_the_merged_run_inconclusive() {
    let f = fixture();
    let s = &f.scratch;
    let behind = edited(&f.two[1], &s.out("behind"), |v| {
        v["measurement"]["limits"]["schedule_lag_p99_ms"] = 0.0.into();
        v["measurement"]["overload_accepted"] = false.into();
    });
    let out = s.out("merged-behind");
    let o = merge_quietly(&[&f.two[0], &behind], &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{err}");
    let m = summary(&out);
    assert_eq!(m["verdict"], "inconclusive");
    let why = m["measurement"]["compromised_by"].to_string();
    assert!(why.contains("shard 1/2: schedule lag p99"), "{why}");
    assert!(
        !m["shards"][1]["compromised_by"]
            .as_array()
            .expect("a list")
            .is_empty(),
        "{}",
        m["shards"][1]
    );
    // `inrush report` on the merged directory re-derives the same verdict.
    let again = command(vec!["report".into(), out.display().to_string()])
        .output()
        .expect("report runs");
    assert_eq!(again.status.code(), Some(4));
}

#[test]
fn merge_refuses_what_is_not_one_run() {
    let f = fixture();
    let s = &f.scratch;
    let (a, b) = (&f.two[0], &f.two[1]);
    let other_seed = edited(b, &s.out("seed"), |v| v["seed"] = 8.into());
    refused(&[a, &other_seed], "seed 8", &other_seed);
    let other_file = edited(b, &s.out("file"), |v| {
        v["scenario_fingerprint"] = "fnv1a64:0000000000000000".into()
    });
    refused(&[a, &other_file], "scenario file", &other_file);
    let other_name = edited(b, &s.out("name"), |v| v["scenario"] = "other".into());
    refused(&[a, &other_name], "scenario `other`", &other_name);
    refused(&[a, &f.four[1]], "split 4 ways", &f.four[1]);
    // A shard given twice (a copy of it in another directory), and a missing one.
    let copy = edited(a, &s.out("copy"), |_| {});
    refused(&[a, &copy, b], "given twice", &copy);
    refused(
        &[&f.four[0], &f.four[1], &f.four[3]],
        "shard 2/4 missing",
        &f.four[0],
    );
    let empty = s.out("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    refused(&[a, &empty], "not a run directory", &empty);
    // A merged run (its summary says shard 0/2) with shard 1/2: each count would count twice.
    let merged = &f.merged_two.1;
    refused(
        &[merged, b],
        "a merged run (of 2 shards), not a shard",
        merged,
    );
    // Shards that started days apart are not one run (an edited start.unix_us, a clock far
    // off): refused, naming the shard, before the merged timeline lays out every second
    // between them (a 30-day gap took 139 MB, a changed first digit gigabytes).
    let moved = |dir: &Path, name: &str, by: i64| {
        edited(dir, &s.out(name), |v| {
            let at = v["start"]["unix_us"].as_i64().expect("start.unix_us");
            v["start"]["unix_us"] = (at + by).into();
        })
    };
    const DAY_US: i64 = 86_400 * 1_000_000;
    let late = moved(b, "late", 30 * DAY_US);
    refused(
        &[a, &late],
        "shard 1/2 started 30.0 days after shard 0/2",
        &late,
    );
    let day_late = moved(b, "day-late", DAY_US + 1_000_000);
    refused(&[a, &day_late], " h) after shard 0/2", &day_late);
    let early = moved(a, "early", -1_000_000_000_000_000);
    refused(&[&early, b], "11574.1 days after shard 0/2", &early);
    // Hours apart (a failed shard rerun the same day) is merged, with the skew warning.
    let rerun = moved(b, "rerun", 2 * 3600 * 1_000_000);
    let o = command(vec![
        "merge".into(),
        a.display().to_string(),
        rerun.display().to_string(),
        "--out".into(),
        s.out("rerun-merged").display().to_string(),
    ])
    .output()
    .expect("merge runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--max-skew"),
        "the skew is warned about: {err}"
    );
    // Nothing was written by a refused merge (its default directory is under reports/).
    let written = std::fs::read_dir("reports").into_iter().flatten().flatten();
    assert!(!written.into_iter().any(|e| e
        .file_name()
        .to_string_lossy()
        .starts_with("sharded-merged")));
}

#[test]
fn a_shard_is_validated_before_anything_runs() {
    let f = fixture();
    for bad in ["3/2", "0/0", "two/4", "1"] {
        let o = inrush(&[
            "validate",
            &f.scenario.display().to_string(),
            "--shard",
            bad,
        ])
        .output()
        .expect("runs");
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("not a shard"),
            "{bad}"
        );
    }
    let o = inrush(&[
        "validate",
        &f.scenario.display().to_string(),
        "--shard",
        "1/4",
    ])
    .output()
    .expect("runs");
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("shard 1/4"));
}

/// A one-second scenario against the in-process target.
fn quick(scratch: &Scratch) -> PathBuf {
    let s = Scenario::new("start-at", 3).drain("0s").with(
        r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "1s", rate = 4 } ]
[user]
messages = 0
stay_online = { constant = "0s" }
"#,
    );
    scratch.scenario("start-at", s)
}

fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_micros() as u64
}

#[test]
fn start_at_waits_for_its_time_and_a_past_one_starts_late_and_says_so() {
    let scratch = Scratch::new();
    let scenario = quick(&scratch).display().to_string();
    let ahead = SystemTime::now() + Duration::from_millis(2500);
    let past = SystemTime::now() - Duration::from_secs(10);
    let text = |t| humantime::format_rfc3339_millis(t).to_string();
    let dirs = [scratch.out("ahead"), scratch.out("past")];
    let runs = [(text(ahead), &dirs[0]), (text(past), &dirs[1])]
        .into_iter()
        .map(|(at, dir)| {
            let mut args: Vec<String> = ["run", &scenario, "--workers", "1", "--accept-overload"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            args.extend([
                "--out".into(),
                dir.display().to_string(),
                "--start-at".into(),
                at,
            ]);
            command(args)
        })
        .collect();
    let outputs = all(runs);
    let ended = SystemTime::now();
    for o in &outputs {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Ahead: time zero is the start time (to the millisecond given), within a generous bound
    // of it on a loaded machine, and the run lasted its second after it.
    let s = summary(&dirs[0]);
    let start = u(&s["start"]["unix_us"]);
    let at = unix_us(ahead) / 1000 * 1000;
    assert!(
        start >= at && start - at < 500_000,
        "start {start}, asked {at}"
    );
    assert!(unix_us(ended) >= at + 1_000_000);
    // On time (the usual case) it warns of nothing; late past 100 ms, it says so.
    let late = s["start"]["offset_ms"].as_f64().expect("offset");
    let warned = s["warnings"].to_string().contains("--start-at");
    assert_eq!(warned, late > 100.0, "offset {late} ms");
    // Past: started at once, the offset recorded, a warning on stderr and in the summary.
    let s = summary(&dirs[1]);
    let late = s["start"]["offset_ms"].as_f64().expect("offset");
    assert!(late >= 10_000.0, "{late}");
    let stderr = String::from_utf8_lossy(&outputs[1].stderr);
    assert!(
        stderr.contains("--start-at") && stderr.contains("late"),
        "{stderr}"
    );
    assert!(s["warnings"].to_string().contains("--start-at"));
}

/// Ctrl-C while a shard waits for its `--start-at` (here an hour ahead) ends it at once — the
/// run interrupted (exit 3), its report written — instead of after the start time.
#[cfg(unix)]
#[test]
fn ctrl_c_while_waiting_for_the_start_time_ends_the_run_at_once() {
    let scratch = Scratch::new();
    let scenario = quick(&scratch).display().to_string();
    let dir = scratch.out("waiting");
    let at = humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(3600));
    let mut child = inrush(&["run", &scenario, "--workers", "1", "--quiet"])
        .arg("--out")
        .arg(&dir)
        .arg("--start-at")
        .arg(at.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starts");
    // Waiting once the run's directory is there: it is made after the signal watcher is in
    // place (a signal before it kills the process, exit None) and before the start's wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !dir.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dir.exists(), "the run made its directory");
    let sent = std::time::Instant::now();
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().expect("exits");
    assert_eq!(status.code(), Some(3));
    assert!(
        sent.elapsed() < Duration::from_secs(30),
        "{:?}",
        sent.elapsed()
    );
    let s = summary(&dir);
    assert_eq!(s["verdict"], "interrupted");
}

/// Shards must run one schedule and one set of users: two machines whose copies of the
/// scenario's curve or feeder file differ are not shards of one run, however equal the
/// scenario's text (`merge` then refuses them, as for another file).
#[test]
fn the_fingerprint_covers_the_files_the_scenario_reads() {
    let scratch = Scratch::new();
    let text = r#"name = "files"
seed = 1
[target]
builtin = {}
[load]
curve = { file = "day.csv", name = "day" }
[feeders.accounts]
file = "accounts.csv"
[[flows.f.steps]]
name = "login"
http = "POST /login"
json = { login = "{{ feed.accounts.login }}" }
"#;
    let machine = |name: &str, rate: u32, login: &str| {
        let dir = scratch.out(name);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("s.toml"), text).expect("scenario");
        std::fs::write(
            dir.join("day.csv"),
            format!("time,rate\n0,{rate}\n2,{rate}\n"),
        )
        .expect("curve");
        std::fs::write(dir.join("accounts.csv"), format!("login\n{login}\n")).expect("feeder");
        inrush::compiled::load(&dir.join("s.toml"), None)
            .expect("the scenario loads")
            .fingerprint
    };
    let a = machine("a", 10, "ann");
    assert_eq!(a, machine("same", 10, "ann"));
    assert_ne!(a, machine("curve", 40, "ann"), "another curve");
    assert_ne!(a, machine("feeder", 10, "bob"), "another feeder");
}
