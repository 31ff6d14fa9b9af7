//! `inrush report DIR` never destroys data: a run directory it cannot read whole (an empty,
//! truncated or missing `latency.hlog`, a malformed `summary.json`) is refused with exit 2,
//! naming the file and why, and nothing in it is touched; a good one is rewritten file by file
//! through temporary files renamed into place. `compare` and `merge` read a run directory
//! through the same reader, so they refuse what `report` refuses, with the same message.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{run_quiet, Scenario, Scratch};

fn report(dir: &Path) -> Output {
    inrush(&["report".as_ref(), dir.as_os_str()])
}

fn inrush(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args(args)
        .output()
        .expect("inrush runs")
}

/// A short run against the built-in messenger: 10 users/s for 2 s asking for its health page,
/// so `latency.hlog` holds a couple of intervals with samples.
fn a_run(scratch: &Scratch) -> PathBuf {
    let scenario = Scenario::new("rebuilt", 5).with(
        r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "2s", rate = 10 } ]

[[flows.f.steps]]
name = "health"
http = "GET /healthz"
"#,
    );
    let dir = scratch.out("run");
    run_quiet(scratch.scenario("rebuilt", scenario), dir.clone(), None);
    dir
}

/// Every file of a run directory with its bytes, sorted by name.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            let bytes = std::fs::read(e.path()).expect("read file");
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

fn copy_of(run: &Path, scratch: &Scratch, name: &str) -> PathBuf {
    let copy = scratch.out(name);
    std::fs::create_dir(&copy).expect("dir");
    for (file, bytes) in snapshot(run) {
        std::fs::write(copy.join(file), bytes).expect("copy");
    }
    copy
}

#[test]
fn a_run_directory_that_cannot_be_read_whole_is_refused_and_left_untouched() {
    let scratch = Scratch::new();
    let run = a_run(&scratch);
    let hlog = std::fs::read_to_string(run.join("latency.hlog")).expect("hlog");
    let lines: Vec<&str> = hlog.lines().collect();
    let intervals = lines.iter().filter(|l| !l.starts_with('#')).count();
    assert!(intervals >= 4, "{intervals} interval lines: too few to cut");
    // The header and the first interval line only: a log cut short.
    let first = lines
        .iter()
        .position(|l| !l.starts_with('#'))
        .expect("an interval");
    let truncated = lines[..=first].join("\n") + "\n";
    let summary = std::fs::read_to_string(run.join("summary.json")).expect("summary");
    // A saved threshold that is no threshold: the summary is well-formed, its gate is not.
    let mut bogus: serde_json::Value = serde_json::from_str(&summary).expect("json");
    bogus["thresholds"] = serde_json::json!([
        {"expr": "bogus", "observed": null, "unit": "count", "passed": false}
    ]);
    let bogus = serde_json::to_string_pretty(&bogus).expect("json");
    let cases: [(&str, &str, Option<String>, &str); 5] = [
        ("empty", "latency.hlog", Some(String::new()), "empty"),
        ("truncated", "latency.hlog", Some(truncated), "truncated"),
        ("missing", "latency.hlog", None, "cannot read"),
        (
            "malformed",
            "summary.json",
            Some(summary[..summary.len() / 2].to_string()),
            "not a run file",
        ),
        ("bogus", "summary.json", Some(bogus), "threshold 'bogus'"),
    ];
    for (name, file, contents, says) in cases {
        let dir = copy_of(&run, &scratch, name);
        match contents {
            Some(text) => std::fs::write(dir.join(file), text).expect("damage"),
            None => std::fs::remove_file(dir.join(file)).expect("remove"),
        }
        let before = snapshot(&dir);
        let out = report(&dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(file) && stderr.contains(says),
            "{name}: {stderr}"
        );
        assert!(
            snapshot(&dir) == before,
            "{name}: the directory was changed"
        );
    }
}

#[test]
fn a_good_run_directory_is_rewritten_whole_and_leaves_no_temporary_file() {
    let scratch = Scratch::new();
    let run = a_run(&scratch);
    let before = snapshot(&run);
    let out = report(&run);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An untouched run rebuilds to the same files, and nothing is left beside them.
    let after = snapshot(&run);
    let names = |s: &[(String, Vec<u8>)]| s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&after), names(&before));
    assert!(
        after == before,
        "a rebuild of an untouched run changed a file"
    );
}

/// A run file rewritten: `edit` takes its text and returns the damaged one.
struct Damage {
    name: &'static str,
    file: &'static str,
    edit: Box<dyn Fn(&str) -> String>,
    /// What the refusal must say, the file's name among it.
    says: Vec<String>,
}

fn damage(
    name: &'static str,
    file: &'static str,
    says: &[&str],
    edit: impl Fn(&str) -> String + 'static,
) -> Damage {
    let mut says: Vec<String> = says.iter().map(|s| s.to_string()).collect();
    says.push(file.to_string());
    Damage {
        name,
        file,
        edit: Box::new(edit),
        says,
    }
}

/// `text` without the lines `drop` picks, ending as the log does, in a newline.
fn without_lines(text: &str, drop: impl Fn(usize, &str) -> bool) -> String {
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|&(i, l)| !drop(i, l))
        .map(|(_, l)| l)
        .collect();
    kept.join("\n") + "\n"
}

/// A JSON run file with `change` applied.
fn json_edit(text: &str, change: impl Fn(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(text).expect("json");
    change(&mut v);
    serde_json::to_string_pretty(&v).expect("json")
}

/// The damages an audit fed to `report`, `compare` and `merge`: before, some gave a report
/// from part of the data (exit 0), some panicked (exit 101) after rewriting files, some said
/// an internal Debug value. `hlog` is the good run's log, to find lines in.
fn damages(hlog: &str) -> Vec<Damage> {
    let lines: Vec<&str> = hlog.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with("Tag="))
        .expect("an interval");
    let tag = lines[first]["Tag=".len()..]
        .split(',')
        .next()
        .expect("a tag")
        .to_string();
    let last_loop_lag = lines
        .iter()
        .rposition(|l| l.starts_with("Tag=loop_lag,"))
        .expect("the drain's loop_lag");
    // The first interval line with its histogram's 11th character made `!`, and with its start
    // time made a word: each said at its line (1-based) with its tag.
    let at_line = format!("latency.hlog:{}:", first + 1);
    let tagged = format!("tag `{tag}`");
    let bad_char = move |t: &str| {
        t.lines()
            .enumerate()
            .map(|(i, l)| match (i == first, l.rsplit_once(',')) {
                (true, Some((head, b64))) => format!("{head},{}!{}", &b64[..10], &b64[11..]),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let bad_start = move |t: &str| {
        t.lines()
            .enumerate()
            .map(|(i, l)| match (i == first, l.split_once(',')) {
                (true, Some((tag, rest))) => {
                    let rest = rest.split_once(',').map_or("", |(_, r)| r);
                    format!("{tag},soon,{rest}")
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    vec![
        damage(
            "truncated",
            "latency.hlog",
            &["holds", "summary.json"],
            move |t| without_lines(t, |i, _| i > first),
        ),
        damage(
            "lag-removed",
            "latency.hlog",
            &["loop_lag", "timeline.json"],
            |t| {
                without_lines(t, |_, l| {
                    l.starts_with("Tag=loop_lag,") || l.starts_with("Tag=schedule_lag,")
                })
            },
        ),
        damage(
            "schedule-lag-removed",
            "latency.hlog",
            &["schedule_lag"],
            |t| without_lines(t, |_, l| l.starts_with("Tag=schedule_lag,")),
        ),
        damage("drain-cut", "latency.hlog", &["loop_lag"], move |t| {
            without_lines(t, |i, _| i == last_loop_lag)
        }),
        damage(
            "bad-base64",
            "latency.hlog",
            &[&at_line, &tagged, "not base64", "`!`"],
            bad_char,
        ),
        damage(
            "bad-line",
            "latency.hlog",
            &[&at_line, &tagged, "not an interval log line"],
            bad_start,
        ),
        damage("timeline-cut", "timeline.json", &["points end at"], |t| {
            json_edit(t, |v| {
                let points = v["points"].as_array_mut().expect("points");
                points.truncate(2);
            })
        }),
        damage("timeline-empty", "timeline.json", &["0 points"], |t| {
            json_edit(t, |v| v["points"] = serde_json::json!([]))
        }),
        damage(
            "end-absurd",
            "timeline.json",
            &["end_s", "longer than any run"],
            |t| {
                json_edit(t, |v| {
                    let points = v["points"].as_array_mut().expect("points");
                    let last = points.last_mut().expect("a point");
                    last["end_s"] = serde_json::json!(1e15);
                })
            },
        ),
        damage(
            "duration-absurd",
            "summary.json",
            &["duration_s", "longer than any run"],
            |t| json_edit(t, |v| v["duration_s"] = serde_json::json!(1e18)),
        ),
        damage(
            "duration-negative",
            "summary.json",
            &["duration_s", "negative"],
            |t| json_edit(t, |v| v["duration_s"] = serde_json::json!(-7.0)),
        ),
        damage(
            "old-schema",
            "summary.json",
            &["inrush.summary/0", "inrush.summary/1"],
            |t| json_edit(t, |v| v["schema"] = serde_json::json!("inrush.summary/0")),
        ),
    ]
}

#[test]
fn report_compare_and_merge_refuse_a_damaged_run_directory_alike() {
    let scratch = Scratch::new();
    let run = a_run(&scratch);
    let hlog = std::fs::read_to_string(run.join("latency.hlog")).expect("hlog");
    let timeline = std::fs::read_to_string(run.join("timeline.json")).expect("timeline");
    let points: serde_json::Value = serde_json::from_str(&timeline).expect("json");
    // A 2 s run and its drain: at least 3 one-second points, so 2 of them are a cut.
    assert!(
        points["points"].as_array().expect("points").len() >= 3,
        "{timeline}"
    );
    for d in damages(&hlog) {
        let dir = copy_of(&run, &scratch, d.name);
        let text = std::fs::read_to_string(dir.join(d.file)).expect("file");
        let damaged = (d.edit)(&text);
        assert_ne!(damaged, text, "{}: nothing damaged", d.name);
        std::fs::write(dir.join(d.file), damaged).expect("damage");
        let before = snapshot(&dir);
        let compare_out = scratch.out(&format!("{}-compare", d.name));
        let merge_out = scratch.out(&format!("{}-merge", d.name));
        let commands: [(&str, Vec<&std::ffi::OsStr>); 3] = [
            ("report", vec!["report".as_ref(), dir.as_os_str()]),
            (
                "compare",
                vec![
                    "compare".as_ref(),
                    run.as_os_str(),
                    dir.as_os_str(),
                    "--out".as_ref(),
                    compare_out.as_os_str(),
                ],
            ),
            (
                "merge",
                vec![
                    "merge".as_ref(),
                    dir.as_os_str(),
                    "--out".as_ref(),
                    merge_out.as_os_str(),
                ],
            ),
        ];
        for (command, args) in commands {
            let out = inrush(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let case = format!("{} by {command}: {stderr}", d.name);
            assert_eq!(out.status.code(), Some(2), "{case}");
            for says in &d.says {
                assert!(stderr.contains(says.as_str()), "{case} (wanted `{says}`)");
            }
            // Said in words, not as the parser's internal value.
            assert!(
                !stderr.contains("ParseError") && !stderr.contains("Invalid symbol"),
                "{case}"
            );
            assert!(
                snapshot(&dir) == before,
                "{case}: the directory was changed"
            );
        }
    }
}
