//! `inrush report DIR` never destroys data: a run directory it cannot read whole (an empty,
//! truncated or missing `latency.hlog`, a malformed `summary.json`) is refused with exit 2,
//! naming the file and why, and nothing in it is touched; a good one is rewritten file by file
//! through temporary files renamed into place.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{run_quiet, Scenario, Scratch};

fn report(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inrush"))
        .arg("report")
        .arg(dir)
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
