//! `junit.xml`: one test case per threshold, so CI test-report viewers show which gate failed.

use std::fmt::Write;

use super::markup::escape;
use super::summary::{Summary, Verdict};
use super::{files, FileArtifact, FinishedRun};
use crate::error::Error;

/// `junit.xml`.
pub struct Junit;

impl FileArtifact for Junit {
    const FILE: &'static str = files::JUNIT;

    fn render(&self, run: &FinishedRun<'_>) -> Result<Vec<u8>, Error> {
        Ok(render(run.summary).into_bytes())
    }
}

pub fn render(s: &Summary) -> String {
    let run_failed = s.verdict == Verdict::Interrupted
        || s.aborted.is_some()
        || (s.verdict == Verdict::Failed && s.failed_outright().is_some());
    let inconclusive = s.verdict == Verdict::Inconclusive;
    let failures = s.thresholds.iter().filter(|t| !t.passed).count()
        + usize::from(run_failed)
        + usize::from(inconclusive);
    let suite = escape(&format!("inrush.{}", s.scenario));
    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<testsuites name="inrush" tests="{}" failures="{failures}" time="{:.3}">"#,
        s.thresholds.len() + 2,
        s.duration_s
    );
    let _ = writeln!(
        out,
        r#"  <testsuite name="{suite}" tests="{}" failures="{failures}" time="{:.3}" timestamp="{}">"#,
        s.thresholds.len() + 2,
        s.duration_s,
        escape(&s.started_at)
    );
    // The run itself: it fails when it was interrupted or stopped early.
    let _ = write!(
        out,
        r#"    <testcase classname="{suite}" name="run completed" time="{:.3}">"#,
        s.duration_s
    );
    // Why it stopped, when the run knows (a target unreachable at the start, an abort).
    let stopped = match (s.verdict == Verdict::Interrupted, &s.aborted) {
        (_, Some(why)) => Some(why.as_str()),
        (true, None) => Some("the run was interrupted"),
        (false, None) => None,
    };
    if let Some(why) = stopped {
        let _ = write!(out, r#"<failure message="{}"/>"#, escape(why));
    } else if let Some(why) = s.failed_outright().filter(|_| run_failed) {
        let _ = write!(out, r#"<failure message="{why}"/>"#);
    }
    let _ = writeln!(out, "</testcase>");
    // The measurement itself: it fails when the generator could not keep up (inconclusive); an
    // overload accepted with --accept-overload passes with the reason as output.
    let _ = write!(
        out,
        r#"    <testcase classname="{suite}" name="generator kept up">"#
    );
    match s.measurement.describe() {
        Some(why) if inconclusive => {
            let _ = write!(
                out,
                r#"<failure message="{}">{}</failure>"#,
                escape("inconclusive: the generator could not keep up"),
                escape(&why)
            );
        }
        Some(why) => {
            let _ = write!(out, "<system-out>{}</system-out>", escape(&why));
        }
        None => {}
    }
    let _ = writeln!(out, "</testcase>");
    for t in &s.thresholds {
        let observed = t.observed_phrase();
        let _ = write!(
            out,
            r#"    <testcase classname="{suite}" name="{}">"#,
            escape(&t.expr)
        );
        if !t.passed {
            let _ = write!(
                out,
                r#"<failure message="{}">{}</failure>"#,
                escape(&format!("{} ({observed})", t.expr)),
                escape(&format!("threshold {} failed: {observed}", t.expr))
            );
        } else {
            let _ = write!(out, "<system-out>{}</system-out>", escape(&observed));
        }
        let _ = writeln!(out, "</testcase>");
    }
    let _ = writeln!(out, "  </testsuite>");
    let _ = writeln!(out, "</testsuites>");
    out
}
