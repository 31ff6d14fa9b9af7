//! `inrush merge DIR...`: one run directory from the run directories of N shards of one
//! scenario (`inrush run --shard i/N`). Counts are summed, histograms merged losslessly
//! interval by interval from the shards' `latency.hlog`, the timeline put on one time axis
//! (each shard moved by its start offset), then the merged directory is read back, gated and
//! rendered by the same code as `inrush report` — so the merged verdict is the one `run` would
//! give on the merged data. docs/distributed.md says what each refusal means.

mod check;
mod extent;
mod intervals;
mod sum;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::compiled::shard::Shard;
use crate::error::Error;
use crate::metrics::timeline::Timeline;
use crate::report::summary::{Retries, ShardRun, Start, Summary, ThresholdResult, Verdict};
use crate::report::{files, Artifact, FinishedRun};
use check::ShardDir;
use intervals::{Grid, Histograms, Points};

/// Shards whose starts lie further apart than this are warned about: their intervals no longer
/// cover the same wall-clock seconds of the target's life.
pub const MAX_SKEW: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// The shards' run directories, in any order.
    pub dirs: Vec<PathBuf>,
    /// The merged run's directory; default `reports/<scenario>-merged-<UTC stamp>/`.
    pub out: Option<PathBuf>,
    /// Write into an `out` that already holds files.
    pub force: bool,
    /// `--max-skew`: the start spread beyond which the merge warns.
    pub max_skew: Duration,
    /// No warnings on stderr (they stay in the summary).
    pub quiet: bool,
}

pub struct Merged {
    pub dir: PathBuf,
    pub summary: Summary,
}

pub fn merge(opts: &MergeOptions) -> Result<Merged, Error> {
    let shards = opts
        .dirs
        .iter()
        .map(|d| check::read(d))
        .collect::<Result<Vec<_>, _>>()?;
    let shards = check::one_run(shards)?;
    check::started_together(&shards)?;
    let first_us = shards.iter().map(|s| s.start_us).min().unwrap_or(0);
    let started = UNIX_EPOCH + Duration::from_micros(first_us);
    let out = out_dir(opts, &shards, started)?;

    let mut grid = Grid::of(shards.iter().map(|s| &s.timeline));
    let mut histograms = Histograms::new();
    let mut points = Points::default();
    for s in &shards {
        let offset_s = (s.start_us - first_us) as f64 / 1e6;
        let hlog = s.dir.join(files::HLOG);
        let entries = crate::metrics::hlog::read(&hlog).map_err(Error::Usage)?;
        intervals::add_hlog(&mut histograms, &mut grid, entries, offset_s);
        points.add(&mut grid, &s.timeline, offset_s);
    }
    let offset_s = |s: &ShardDir| (s.start_us - first_us) as f64 / 1e6;
    // The merged timeline covers the run to its last shard's end (`coverage` checks it).
    let last_end = shards.iter().map(|s| offset_s(s) + s.summary.duration_s);
    grid.reach(last_end.fold(0.0, f64::max));
    let placed: Vec<_> = shards.iter().map(|s| (&s.timeline, offset_s(s))).collect();
    let phases = extent::phase_spans(&placed);
    let timeline = points.timeline(&grid, &histograms, phases);
    let entries = intervals::hlog_entries(histograms, &grid);
    let hlog = out.join(files::HLOG);
    crate::metrics::hlog::write(&hlog, started, &entries)
        .map_err(|e| Error::io("cannot write", &hlog, e))?;

    let first = shards
        .first()
        .ok_or_else(|| Error::Usage("merge: no shard given".into()))?;
    let (summary, skew) = summed(first, &shards, first_us, &timeline, opts.max_skew);
    // Written, then read back as `inrush report` reads a run: latencies from the merged log,
    // the thresholds evaluated on the merged data by the run's own gate.
    let written = FinishedRun::new(&out, &summary, &timeline);
    crate::report::json::SummaryJson.write(&written)?;
    crate::report::json::TimelineJson.write(&written)?;
    let (mut summary, timeline, histograms) = crate::report::rebuild::rebuild(&out)?;
    crate::gate::regate(&mut summary, &out.join(files::SUMMARY), &[])?;
    crate::report::write_run(
        &FinishedRun::new(&out, &summary, &timeline).with_histograms(histograms),
    )?;
    if let (Some(w), false) = (skew, opts.quiet) {
        crate::report::console::eprintln(&format!("warning: {w}"));
    }
    Ok(Merged { dir: out, summary })
}

/// `--out`, refused when it is one of the shards or holds files (without `--force`); else
/// `reports/<scenario>-merged-<stamp>/`.
fn out_dir(
    opts: &MergeOptions,
    shards: &[ShardDir],
    started: SystemTime,
) -> Result<PathBuf, Error> {
    let name = shards.first().map_or("merged".to_string(), |s| {
        format!("{}-merged", s.summary.scenario)
    });
    let Some(out) = &opts.out else {
        let dir = crate::run::default_dir(&name, started);
        return create(&dir);
    };
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    };
    if let Some(s) = shards.iter().find(|s| same(&s.dir, out)) {
        return Err(Error::Usage(format!(
            "--out {}: is shard {}'s own run directory; give the merged run a new one",
            out.display(),
            s.summary.shard.label()
        )));
    }
    if !opts.force {
        crate::run::fresh(out)?;
    }
    create(out)
}

fn create(dir: &Path) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::Usage(format!(
            "cannot create the merged run's directory {}: {e}",
            dir.display()
        ))
    })?;
    Ok(dir.to_path_buf())
}

/// The shards' summaries summed (`first` is `shards[0]`), with the merged run's identity, start, verdict so far and
/// shard list; and the start-skew warning, if any.
fn summed(
    first: &ShardDir,
    shards: &[ShardDir],
    first_us: u64,
    timeline: &Timeline,
    max_skew: Duration,
) -> (Summary, Option<String>) {
    let mut s = first.summary.clone();
    for sh in shards.iter().skip(1) {
        sum::add(&mut s, &sh.summary);
    }
    let count = shards.len() as u64;
    let offset_ms = |sh: &ShardDir| (sh.start_us - first_us) as f64 / 1000.0;
    s.retries = Retries::of(&s.metrics);
    s.shard = Shard { index: 0, count };
    s.started_at =
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_micros(first_us)).to_string();
    s.start = Some(Start {
        unix_us: first_us,
        requested: shards
            .iter()
            .find_map(|sh| sh.summary.start.as_ref()?.requested.clone()),
        offset_ms: None,
    });
    let placed: Vec<_> = shards
        .iter()
        .map(|sh| (&sh.summary, offset_ms(sh) / 1000.0))
        .collect();
    extent::set(
        &mut s,
        &placed,
        timeline.points.last().map_or(0.0, |p| p.end_s),
    );
    let interrupted = shards
        .iter()
        .any(|sh| sh.summary.verdict == Verdict::Interrupted);
    s.verdict = if interrupted {
        Verdict::Interrupted
    } else {
        Verdict::Passed
    };
    s.aborted = shards.iter().find_map(|sh| {
        let why = sh.summary.aborted.as_ref()?;
        Some(format!("shard {}: {why}", sh.summary.shard.label()))
    });
    // Every shard's thresholds (the scenario's, and each one's --threshold), once each: the
    // gate evaluates them again on the merged data.
    let mut thresholds: Vec<ThresholdResult> = Vec::new();
    for t in shards.iter().flat_map(|sh| &sh.summary.thresholds) {
        if !thresholds.iter().any(|x| x.expr == t.expr) {
            thresholds.push(t.clone());
        }
    }
    s.thresholds = thresholds;
    s.measurement.compromised_by.clear();
    s.measurement.overload_accepted = shards
        .iter()
        .all(|sh| sh.summary.measurement.overload_accepted);
    let mut targets: Vec<&str> = Vec::new();
    for sh in shards {
        if !targets.contains(&sh.summary.target.as_str()) {
            targets.push(&sh.summary.target);
        }
    }
    s.target = targets.join(", ");
    s.warnings = shards
        .iter()
        .flat_map(|sh| {
            let label = sh.summary.shard.label();
            sh.summary
                .warnings
                .iter()
                .map(move |w| format!("shard {label}: {w}"))
        })
        .collect();
    let latest = shards.iter().max_by_key(|sh| sh.start_us);
    let skew = latest.map_or(0.0, offset_ms);
    let skew_warning = latest
        .filter(|_| skew > max_skew.as_secs_f64() * 1000.0)
        .map(|sh| {
            format!(
            "the shards started up to {skew:.1} ms apart (shard {} last, {}), over the limit of \
             {} ms (--max-skew): the merged intervals mix load the target saw at different \
             times. Start shards together with --start-at and synced clocks",
            sh.summary.shard.label(),
            sh.dir.display(),
            max_skew.as_millis()
        )
        });
    s.warnings.extend(skew_warning.clone());
    s.shards = shards
        .iter()
        .map(|sh| ShardRun {
            index: sh.summary.shard.index,
            dir: sh.dir.display().to_string(),
            started_at: sh.summary.started_at.clone(),
            start_unix_us: sh.start_us,
            offset_ms: offset_ms(sh),
            late_ms: sh.summary.start.as_ref().and_then(|st| st.offset_ms),
            verdict: sh.summary.verdict,
            planned: sh.summary.arrivals.planned,
            started: sh.summary.arrivals.started,
            generator: sh.summary.generator.clone(),
            // Re-derived from its rebuilt figures, as a re-gated run derives its own.
            compromised_by: sh.summary.overload(),
        })
        .collect();
    (s, skew_warning)
}
