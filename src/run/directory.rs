//! The run directory: a new one per run (as k6 and Gatling give), or `--out`, refused when it
//! already holds another run's files unless `--force`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::compiled::Plan;
use crate::error::Error;

/// A run writes into a directory of its own, as k6 and Gatling do: an `--out` that already
/// holds files (another run's, most likely) is refused before anything is sent, unless
/// `--force` says to write into it.
pub fn fresh(out: &Path) -> Result<(), Error> {
    let occupied = match std::fs::read_dir(out) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        // Not a directory, or unreadable: creating the run directory will say so.
        Err(_) => false,
    };
    if occupied {
        return Err(Error::Usage(format!(
            "--out {}: the directory exists and is not empty; give each run a new directory \
             (or leave --out out: reports/<scenario>-<UTC time>/), or add --force to write \
             into it",
            out.display()
        )));
    }
    Ok(())
}

/// `reports/<name>-<UTC stamp>/`, with `-2`, `-3`, … when that exists already: a directory of
/// its own for every run (and every capacity search).
pub fn default_dir(name: &str, at: SystemTime) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(at)
        .to_string()
        .replace(['-', ':'], "");
    let base = Path::new("reports").join(format!("{name}-{stamp}"));
    let mut dir = base.clone();
    let mut n = 2;
    while dir.exists() {
        dir = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    dir
}

pub(super) fn run_dir(
    plan: &Plan,
    out: &Option<PathBuf>,
    started: SystemTime,
) -> Result<PathBuf, Error> {
    let dir = match out {
        Some(dir) => dir.clone(),
        None => default_dir(&plan.name, started),
    };
    // Before any traffic: a directory that cannot be made is the input's fault (exit 2).
    std::fs::create_dir_all(&dir).map_err(|e| {
        Error::Usage(format!(
            "cannot create the run directory {}: {e}",
            dir.display()
        ))
    })?;
    Ok(dir)
}
