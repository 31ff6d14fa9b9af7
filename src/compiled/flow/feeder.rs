//! Feeders: rows of a CSV file handed out to users (`{{ feed.accounts.password }}`), for
//! services whose users must come from a list — existing accounts, test tenants, device ids.
//! Loaded once at start; a user keeps one row for its whole flow.

use std::path::Path;

use toml::Spanned;

use crate::scenario::{self, Problems};

#[derive(Debug, Clone, PartialEq)]
pub struct Feeder {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Rows drawn per user from the seed instead of in arrival order.
    pub random: bool,
}

impl Feeder {
    /// Reads `path` (with a header row naming the columns). A record that cannot be read is
    /// said with `path:LINE:COLUMN` (the column where its missing field would start, or its
    /// first extra field starts), in words.
    pub fn load(name: &str, path: &Path, random: bool) -> Result<Feeder, String> {
        let bytes = crate::input_file::read(path)
            .map_err(|e| format!("cannot read feeder file {}: {e}", path.display()))?;
        // Flexible: a record of another length is told here, at its line and column.
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(bytes.as_slice());
        let at = |pos: Option<&csv::Position>, column: usize| match pos {
            Some(p) => format!("{}:{}:{column}", path.display(), p.line()),
            None => path.display().to_string(),
        };
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| format!("{}: {}", at(e.position(), 1), csv_words(&e)))?
            .iter()
            .map(|c| c.trim().to_string())
            .collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record =
                record.map_err(|e| format!("{}: {}", at(e.position(), 1), csv_words(&e)))?;
            if record.len() != columns.len() {
                let pos = record.position();
                let line = pos.map_or(&bytes[..0], |p| {
                    line_at(&bytes, usize::try_from(p.byte()).unwrap_or(usize::MAX))
                });
                let column = field_column(line, columns.len());
                return Err(format!(
                    "{}: {} field{} where the header names {} ({})",
                    at(pos, column),
                    record.len(),
                    if record.len() == 1 { "" } else { "s" },
                    columns.len(),
                    columns.join(", ")
                ));
            }
            rows.push(record.iter().map(str::to_string).collect());
        }
        if rows.is_empty() {
            return Err(format!("feeder file {} has no rows", path.display()));
        }
        Ok(Feeder {
            name: name.to_string(),
            columns,
            rows,
            random,
        })
    }

    /// The row of user `index`: in arrival order (wrapping around), or drawn from `seed`.
    pub fn row(&self, index: u64, seed: u64) -> &[String] {
        let n = self.rows.len() as u64;
        let i = if self.random {
            // SplitMix64 of the user index: a stable, well-spread draw per user.
            let mut z = index ^ seed ^ 0x9E37_79B9_7F4A_7C15;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % n
        } else {
            index % n
        };
        &self.rows[i as usize]
    }
}

/// The scenario's feeders: those read, and the names of those refused (their problem already
/// said), so a template naming one is not also told the feeder does not exist.
#[derive(Debug, Default)]
pub struct Loaded {
    pub feeders: Vec<Feeder>,
    pub unreadable: Vec<String>,
}

/// Reads every feeder's CSV file, relative to the scenario file.
pub(crate) fn load_all(
    scenario: &Path,
    specs: &indexmap::IndexMap<String, Spanned<scenario::FeederSpec>>,
    problems: &mut Problems,
) -> Loaded {
    let dir = scenario.parent().unwrap_or(Path::new("."));
    let mut unreadable = Vec::new();
    let feeders = specs
        .iter()
        .filter_map(|(name, spec)| {
            let random = match spec.get_ref().pick.as_deref() {
                None | Some("sequential") => false,
                Some("random") => true,
                Some(other) => {
                    problems.add(
                        spec.span(),
                        format!("pick `{other}` is unknown: expected \"sequential\" or \"random\""),
                    );
                    return None;
                }
            };
            let file = dir.join(&spec.get_ref().file);
            let loaded = Feeder::load(name, &file, random);
            if loaded.is_err() {
                unreadable.push(name.clone());
            }
            loaded.map_err(|e| problems.add(spec.span(), e)).ok()
        })
        .collect();
    Loaded {
        feeders,
        unreadable,
    }
}

/// The line of `bytes` starting at `start`, without its end of line.
fn line_at(bytes: &[u8], start: usize) -> &[u8] {
    let rest = bytes.get(start..).unwrap_or_default();
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end])
}

/// The column (1-based, in characters) where field `n` of a CSV line starts: after its `n`th
/// comma outside quotes, or the line's end when it has fewer.
fn field_column(line: &[u8], n: usize) -> usize {
    let text = String::from_utf8_lossy(line);
    let (mut quoted, mut commas) = (false, 0);
    for (i, c) in text.chars().enumerate() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                commas += 1;
                if commas == n {
                    return i + 2;
                }
            }
            _ => {}
        }
    }
    text.chars().count() + 1
}

/// A CSV reading error in words, without the position `csv` puts in its own message (the
/// caller says file:line:column).
fn csv_words(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "field {} is not UTF-8 (save the file as UTF-8)",
            err.field() + 1
        ),
        csv::ErrorKind::Io(e) => format!("cannot read it: {e}"),
        _ => format!("not CSV: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_in_order_or_drawn_and_errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "login,password\nann,p1\nbob,\"p,2\"\n").expect("write");
        let f = Feeder::load("accounts", &path, false).expect("loads");
        assert_eq!(f.columns, ["login", "password"]);
        assert_eq!(f.row(0, 1), ["ann", "p1"]);
        assert_eq!(f.row(3, 1), ["bob", "p,2"]);
        let r = Feeder { random: true, ..f };
        let picks: std::collections::HashSet<&str> =
            (0..64).map(|i| r.row(i, 7)[0].as_str()).collect();
        assert_eq!(picks.len(), 2, "both rows are drawn");
        assert_eq!(r.row(5, 7), r.row(5, 7));
        std::fs::write(&path, "a,b\n1\n").expect("write");
        assert!(Feeder::load("x", &path, false)
            .expect_err("ragged")
            .contains("a.csv"));
        // Said at the line and column of the missing or first extra field.
        std::fs::write(&path, "login,password\na,b\nc\n\"x,y\",z,extra\n").expect("write");
        let short = Feeder::load("x", &path, false).expect_err("short");
        assert!(
            short.ends_with("a.csv:3:2: 1 field where the header names 2 (login, password)"),
            "{short}"
        );
        std::fs::write(&path, "login,password\n\"x,y\",z,extra\n").expect("write");
        let long = Feeder::load("x", &path, false).expect_err("long");
        assert!(
            long.ends_with("a.csv:2:9: 3 fields where the header names 2 (login, password)"),
            "{long}"
        );
        let missing = Feeder::load("x", &dir.path().join("none.csv"), false).expect_err("missing");
        assert!(missing.contains("none.csv"));
    }

    #[test]
    fn a_feeder_whose_file_is_refused_gives_one_error() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("r.csv"), "login,password\na,b\nc\n").expect("csv");
        let scenario = dir.path().join("s.toml");
        let text = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\n\
                    phases = [ { name = \"a\", duration = \"1s\", rate = 1 } ]\n\
                    [feeders.acc]\nfile = \"r.csv\"\n[[flows.f.steps]]\nname = \"s\"\n\
                    http = \"GET /u/{{ feed.acc.login }}\"\n";
        let problems = match crate::compiled::compile(&scenario, text, Some(1)) {
            Ok(_) => panic!("a ragged feeder file is refused"),
            Err(e) => e.0,
        };
        let said: Vec<String> = problems.iter().map(|p| p.message.clone()).collect();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].ends_with("r.csv:3:2: 1 field where the header names 2 (login, password)"));
    }
}
