//! One meaning per exit code, for every command (README, "Exit codes"): 0 passed, 1 a
//! threshold failed, 2 nothing was run because of the input, 3 a run started and was stopped
//! (with its report). Each row of the table has its test here; the signals of row 3 are
//! `tests/thresholds.rs::an_interrupted_run_exits_three_with_its_report`.

mod common;

use std::process::{Command, Output};

use common::{Scenario, Scratch};
use inrush::report::summary::{Summary, Verdict};

fn inrush(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args(args)
        .output()
        .expect("inrush runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// 5 users/s for 1 s against the built-in messenger, each asking for its health page.
fn healthy() -> Scenario {
    Scenario::new("codes", 3).with(
        r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "1s", rate = 5 } ]

[[flows.f.steps]]
name = "health"
http = "GET /healthz"
expect.status = 200
"#,
    )
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

#[test]
fn zero_when_the_run_passes_and_one_when_a_threshold_fails() {
    let scratch = Scratch::new();
    let file = scratch.scenario("codes", healthy());
    let passed = scratch.out("passed");
    // These rows are about the thresholds: a generator slowed by a loaded machine must not
    // turn them into exit 4 (that row is tests/overload.rs's).
    let out = inrush(&[
        "run",
        path(&file),
        "--quiet",
        "--accept-overload",
        "--out",
        path(&passed),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let failed = scratch.out("failed");
    let out = inrush(&[
        "run",
        path(&file),
        "--quiet",
        "--accept-overload",
        "--threshold",
        "health.count > 1000000",
        "--out",
        path(&failed),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // --quiet still says why a run failed, and where its report is.
    let said = stderr(&out);
    assert!(
        said.contains("failed") && said.contains("threshold FAIL: health.count > 1000000"),
        "{said}"
    );
    assert!(
        said.contains(&format!("report: {}", path(&failed))),
        "{said}"
    );
    // `report` re-gates with the same rule: the failing threshold again, passing without it.
    let out = inrush(&["report", path(&passed)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = inrush(&["report", path(&passed), "--threshold", "health.errors > 0"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // A what-if threshold leaves the run's record as it was; --save keeps it.
    let saved = || std::fs::read_to_string(passed.join("summary.json")).expect("summary");
    assert!(!saved().contains("health.errors > 0"));
    let out = inrush(&["report", path(&passed)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = inrush(&[
        "report",
        path(&passed),
        "--threshold",
        "health.errors > 0",
        "--save",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(saved().contains("health.errors > 0"));
    let out = inrush(&["report", path(&passed)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // `compare`'s --out that cannot be created is the input's fault too.
    let blocker = scratch.out("file");
    std::fs::write(&blocker, "x").expect("write");
    let below_a_file = blocker.join("compared");
    let out = inrush(&[
        "compare",
        path(&passed),
        path(&passed),
        "--out",
        path(&below_a_file),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn two_when_the_scenario_cannot_be_read_and_nothing_runs() {
    let scratch = Scratch::new();
    let missing = scratch.out("missing.toml");
    let dir = scratch.out("a-dir");
    std::fs::create_dir(&dir).expect("dir");
    // Valid up to line 2, column 6, where a byte that is not UTF-8 (Latin-1 é) sits.
    let latin1 = scratch.out("latin1.toml");
    std::fs::write(&latin1, b"name = \"x\"\n# caf\xe9 au lait\n").expect("write");
    let cases: [(&[&str], String); 5] = [
        (&["run", path(&missing)], "missing.toml".into()),
        (&["validate", path(&dir)], "is a directory".into()),
        (&["plan", path(&dir)], "is a directory".into()),
        (
            &["validate", path(&latin1)],
            format!("{}:2:6:", path(&latin1)),
        ),
        // An I/O error while reading (running as root, a mode of 000 would not do).
        (
            &["validate", "/proc/self/mem"],
            "cannot read scenario".into(),
        ),
    ];
    for (args, says) in cases {
        let out = inrush(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(&says), "{args:?}: {}", stderr(&out));
    }
    assert!(stderr(&inrush(&["validate", path(&latin1)])).contains("not UTF-8"));
}

#[test]
fn two_for_a_command_line_or_run_directory_that_is_wrong() {
    let scratch = Scratch::new();
    let file = scratch.scenario("codes", healthy());
    let not_a_run = scratch.out("empty");
    std::fs::create_dir(&not_a_run).expect("dir");
    // An --out below a regular file cannot be created: refused before any traffic.
    let blocker = scratch.out("file");
    std::fs::write(&blocker, "x").expect("write");
    let below_a_file = blocker.join("run");
    let nowhere = scratch.out("nowhere");
    let (stream_below_a_file, streamed) = (blocker.join("x.jsonl"), scratch.out("streamed"));
    let cases: [&[&str]; 9] = [
        &["run", path(&file), "--no-such-flag"],
        &["run", path(&file), "--workers", "0"],
        &["run", path(&file), "--threshold", "health.p99 <"],
        &["run", path(&file), "--quiet", "--out", path(&below_a_file)],
        // Every output the command line names, as --out: `--stream`, `plan --out`.
        &[
            "run",
            path(&file),
            "--quiet",
            "--stream",
            path(&stream_below_a_file),
            "--out",
            path(&streamed),
        ],
        &["plan", path(&file), "--out", path(&below_a_file)],
        &["report", path(&nowhere)],
        &["report", path(&not_a_run)],
        &["compare", path(&not_a_run), path(&not_a_run)],
    ];
    for args in cases {
        let out = inrush(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty(), "{args:?} says why");
    }
    // One worker per core is the design: a count beyond any machine is refused before anything
    // starts (it took 1 MB a worker: `plan --workers 99999999` reached 7.8 GB), from the flag
    // or the variable.
    let too_many: [&[&str]; 3] = [
        &["run", path(&file), "--quiet", "--workers", "1025"],
        &[
            "plan",
            path(&file),
            "--workers",
            "1025",
            "--out",
            path(&nowhere),
        ],
        &["find-capacity", path(&file), "--workers", "1025"],
    ];
    for args in too_many {
        let out = inrush(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("expected 1 to 1024"), "{args:?}: {err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args(["run", path(&file), "--quiet"])
        .env("INRUSH_WORKERS", "5000")
        .output()
        .expect("inrush runs");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn three_with_a_report_when_the_target_cannot_be_reached() {
    let scratch = Scratch::new();
    // A port nothing listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let file = scratch.scenario("codes", healthy().url(&format!("http://127.0.0.1:{port}")));
    let out_dir = scratch.out("down");
    let out = inrush(&["run", path(&file), "--quiet", "--out", path(&out_dir)]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot connect"), "{}", stderr(&out));
    let summary: Summary = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("summary.json")).expect("summary written"),
    )
    .expect("schema");
    assert_eq!(summary.verdict, Verdict::Interrupted);
    let why = summary.aborted.expect("the reason");
    assert!(
        why.contains("could not be reached") && why.contains("nothing was sent"),
        "{why}"
    );
    assert_eq!(summary.arrivals.started, 0);
    let junit = std::fs::read_to_string(out_dir.join("junit.xml")).expect("junit written");
    assert!(
        junit.contains("<failure message=\"the target could not be reached"),
        "{junit}"
    );
    // The directory is a whole run directory: `report` reads it back, with the same verdict.
    let out = inrush(&["report", path(&out_dir)]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}

#[test]
fn two_for_an_out_directory_that_holds_files_unless_forced() {
    let scratch = Scratch::new();
    let file = scratch.scenario("codes", healthy());
    let out_dir = scratch.out("taken");
    std::fs::create_dir(&out_dir).expect("dir");
    std::fs::write(out_dir.join("summary.json"), "an earlier run's").expect("write");
    let out = inrush(&["run", path(&file), "--quiet", "--out", path(&out_dir)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    let kept = std::fs::read_to_string(out_dir.join("summary.json")).expect("kept");
    assert_eq!(
        kept, "an earlier run's",
        "refused before anything was written"
    );
    // An existing empty directory is fresh; --force writes into a used one.
    let empty = scratch.out("empty");
    std::fs::create_dir(&empty).expect("dir");
    let out = inrush(&[
        "run",
        path(&file),
        "--quiet",
        "--accept-overload",
        "--out",
        path(&empty),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = inrush(&[
        "run",
        path(&file),
        "--quiet",
        "--accept-overload",
        "--force",
        "--out",
        path(&out_dir),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary = std::fs::read_to_string(out_dir.join("summary.json")).expect("written");
    assert!(summary.contains("inrush.summary/1"));
}

/// `inrush args` with its standard output (and with `stderr_too` its standard error) a pipe whose
/// reader went away before anything was written (as `inrush report DIR | head` or `… 2>&1 | head`
/// leaves it): every write there gets a broken pipe.
fn closed(args: &[&str], stderr_too: bool) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("inrush starts");
    drop(child.stdout.take());
    if stderr_too {
        drop(child.stderr.take());
    }
    child.wait_with_output().expect("inrush exits")
}

fn stdout_closed(args: &[&str]) -> Output {
    closed(args, false)
}

#[test]
fn a_closed_stdout_changes_no_exit_code() {
    let scratch = Scratch::new();
    let file = scratch.scenario("codes", healthy());
    let run = scratch.out("run");
    let (compared, planned) = (scratch.out("compared"), scratch.out("planned"));
    // Not --quiet: the run prints its table into the closed pipe.
    let out = stdout_closed(&[
        "run",
        path(&file),
        "--accept-overload",
        "--workers",
        "1",
        "--out",
        path(&run),
    ]);
    assert_eq!(out.status.code(), Some(0), "run: {}", stderr(&out));
    let cases: [(&[&str], i32); 7] = [
        (&["report", path(&run)], 0),
        (
            &["report", path(&run), "--threshold", "health.count > 1000"],
            1,
        ),
        (
            &["compare", path(&run), path(&run), "--out", path(&compared)],
            0,
        ),
        (&["validate", path(&file)], 0),
        (&["plan", path(&file), "--out", path(&planned)], 0),
        (&["completions", "bash"], 0),
        (&["man"], 0),
    ];
    for (args, code) in cases {
        let out = stdout_closed(args);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("panicked"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// Errors, warnings and a `--quiet` verdict go to stderr; with stderr closed too they are dropped
/// and the exit code is still the outcome's, not a panic's 101.
#[test]
fn a_closed_stderr_changes_no_exit_code() {
    let scratch = Scratch::new();
    let file = scratch.scenario("codes", healthy());
    let missing = scratch.out("missing.toml");
    let failed = scratch.out("failed");
    let cases: [(&[&str], i32); 4] = [
        // "error: cannot read …" on stderr.
        (&["validate", path(&missing)], 2),
        // clap's usage error.
        (&["run", path(&file), "--no-such-flag"], 2),
        // A failing verdict and "report: DIR" on stderr.
        (
            &[
                "run",
                path(&file),
                "--quiet",
                "--accept-overload",
                "--workers",
                "1",
                "--threshold",
                "health.count > 1000",
                "--out",
                path(&failed),
            ],
            1,
        ),
        // A refused target: its error on stderr.
        (
            &["run", path(&file), "--target", "http://127.0.0.1:notaport"],
            2,
        ),
    ];
    for (args, code) in cases {
        let out = closed(args, true);
        assert_eq!(out.status.code(), Some(code), "{args:?}");
    }
}
