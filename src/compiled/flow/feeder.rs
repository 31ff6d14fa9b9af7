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
    /// Reads `path` (with a header row naming the columns).
    pub fn load(name: &str, path: &Path, random: bool) -> Result<Feeder, String> {
        let bytes = crate::input_file::read(path)
            .map_err(|e| format!("cannot read feeder file {}: {e}", path.display()))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(bytes.as_slice());
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .iter()
            .map(|c| c.trim().to_string())
            .collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| format!("{}: {e}", path.display()))?;
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

/// Reads every feeder's CSV file, relative to the scenario file.
pub(crate) fn load_all(
    scenario: &Path,
    specs: &indexmap::IndexMap<String, Spanned<scenario::FeederSpec>>,
    problems: &mut Problems,
) -> Vec<Feeder> {
    let dir = scenario.parent().unwrap_or(Path::new("."));
    specs
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
            Feeder::load(name, &file, random)
                .map_err(|e| problems.add(spec.span(), e))
                .ok()
        })
        .collect()
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
        let missing = Feeder::load("x", &dir.path().join("none.csv"), false).expect_err("missing");
        assert!(missing.contains("none.csv"));
    }
}
