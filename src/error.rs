//! Errors that reach the user. A scenario error points at the file, line and column at fault;
//! nothing here is compared as a string.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a scenario file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioIssue {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ScenarioIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every problem of a scenario file at once, so a user fixes them in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioErrors(pub Vec<ScenarioIssue>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scenario file is wrong; nothing was sent.
    #[error("{0}")]
    Scenario(#[from] ScenarioErrors),
    /// The command line is wrong, or an input it names (a scenario file, a run directory) is
    /// missing, unreadable or malformed; nothing was run.
    #[error("{0}")]
    Usage(String),
    /// Reading or writing a file failed.
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The run could not start or could not finish (e.g. the built-in target failed to bind).
    #[error("{0}")]
    Run(String),
}

impl Error {
    pub fn io(what: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            what,
            path: path.into(),
            source,
        }
    }

    /// An output the command line named (a directory, a file) that cannot be created before
    /// anything runs: the input's fault, exit 2 as for a run's `--out` (README, "Exit codes").
    pub fn output(what: &str, path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Usage(format!("{what} {}: {source}", path.display()))
    }

    /// True when nothing was sent because the input was wrong (exit code 2 in the CLI contract).
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Scenario(_) | Error::Usage(_))
    }
}

/// Converts a byte offset in `text` into a 1-based (line, column); columns count characters.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let text = "a = 1\nbb = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 11), (2, 6));
        assert_eq!(line_column(text, 999), (3, 1));
    }
}
