//! Helpers shared by the integration tests: temporary scenario files and quiet runs.
#![allow(dead_code)]

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

    pub fn scenario(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write scenario");
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
    })
    .expect("run completes")
}
