//! Helpers shared by the integration tests: scenarios that show only what a test is about,
//! temporary scenario files and quiet runs.
#![allow(dead_code)]

use std::fmt;
use std::path::PathBuf;

use inrush::run::{run, Outcome, RunOptions};

pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Writes `text` (a `Scenario` or literal TOML) to `<name>.toml` in the scratch directory.
    pub fn scenario(&self, name: &str, text: impl fmt::Display) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text.to_string()).expect("write scenario");
        path
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs a scenario quietly into `out`, with one worker thread (tests run side by side).
pub fn run_quiet(scenario: PathBuf, out: PathBuf, target: Option<String>) -> Outcome {
    run(&RunOptions {
        scenario,
        target,
        out: Some(out),
        seed: None,
        workers: Some(1),
        thresholds: Vec::new(),
        quiet: true,
        memory_budget: None,
        trace: None,
    })
    .expect("run completes")
}

/// A scenario file for a test that gives only what it is about — its `[load]`, `[user]`,
/// flows, thresholds, the target's knobs — as TOML in the scenario language (README,
/// docs/scenario-language.md), and leaves the rest to these defaults:
///
/// - `name` and `seed` are always given: the seed fixes the arrival timeline and every user's
///   identity and draws, so what a test counts repeats run after run.
/// - `[target] builtin = {}`: the built-in messenger, in-process on an OS-assigned loopback
///   port, so a run needs no setup and no network. `builtin(knobs)` sets its knobs, `url(url)`
///   points at a server the test started itself.
/// - `[run] drain = "0s"`: the run ends with its schedule. A test that counts messages still
///   in flight at the end (deliveries, losses) sets a drain, and so says that it does.
/// - `[run] timeout`: the program's own (10 s) unless `timeout(..)` sets one: a timeout only
///   matters where an operation is slow or a message unacknowledged, and a test that relies on
///   one states it. More `[run]` keys (retry, reconnect, source addresses) go through `run(..)`.
///
/// The load is always the test's own (`[load]` in `with(..)`): rates, durations and
/// `arrivals = "uniform"` are what make the counts a test asserts exact.
///
/// `with(..)` appends whole tables verbatim (`[load]`, `[user]`, `[[flows.f.steps]]`,
/// `[[cohorts]]`, `[[regions]]`, `[feeders.x]`, `[thresholds]`), in the order given; `[run]`
/// comes before them, so they must not open it again. `Display` gives the file's text.
pub struct Scenario {
    name: String,
    description: Option<String>,
    seed: u64,
    target: String,
    timeout: Option<String>,
    drain: String,
    run: Vec<String>,
    tables: Vec<String>,
}

impl Scenario {
    pub fn new(name: &str, seed: u64) -> Self {
        Scenario {
            name: name.to_string(),
            description: None,
            seed,
            target: "builtin = {}".to_string(),
            timeout: None,
            drain: "0s".to_string(),
            run: Vec::new(),
            tables: Vec::new(),
        }
    }

    /// The top-level `description` (plain text; quoted here).
    pub fn description(mut self, text: &str) -> Self {
        self.description = Some(text.to_string());
        self
    }

    /// The built-in messenger with knobs, as the inside of its inline table:
    /// `builtin(r#"latency = "20ms""#)`.
    pub fn builtin(mut self, knobs: impl AsRef<str>) -> Self {
        self.target = format!("builtin = {{ {} }}", knobs.as_ref());
        self
    }

    /// A target at `url` instead of the built-in messenger.
    pub fn url(mut self, url: &str) -> Self {
        self.target = format!("url = {}", quoted(url));
        self
    }

    pub fn timeout(mut self, duration: &str) -> Self {
        self.timeout = Some(duration.to_string());
        self
    }

    pub fn drain(mut self, duration: &str) -> Self {
        self.drain = duration.to_string();
        self
    }

    /// More `[run]` keys, verbatim: `run(r#"retry = { attempts = 3 }"#)`.
    pub fn run(mut self, keys: impl AsRef<str>) -> Self {
        self.run.push(keys.as_ref().to_string());
        self
    }

    /// Whole tables, verbatim, after `[run]` and after the tables given before (so a call may
    /// also carry on the table the previous one opened).
    pub fn with(mut self, tables: impl AsRef<str>) -> Self {
        self.tables.push(tables.as_ref().to_string());
        self
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(f, "name = {}", quoted(&self.name))?;
        if let Some(d) = &self.description {
            writeln!(f, "description = {}", quoted(d))?;
        }
        writeln!(f, "seed = {}", self.seed)?;
        writeln!(f, "[target]\n{}", self.target)?;
        writeln!(f, "[run]")?;
        if let Some(t) = &self.timeout {
            writeln!(f, "timeout = {}", quoted(t))?;
        }
        writeln!(f, "drain = {}", quoted(&self.drain))?;
        for keys in &self.run {
            writeln!(f, "{}", keys.trim())?;
        }
        for tables in &self.tables {
            writeln!(f, "{}", tables.trim_end())?;
        }
        Ok(())
    }
}

/// `text` as a TOML string.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}
