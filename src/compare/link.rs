//! Links from `compare.html` to each run's own `index.html`: relative, so that the comparison
//! and its runs can be moved, uploaded or served together and the links still work.

use std::path::{Component, Path, PathBuf};

/// `target` (a file) as an `href` from a page in `page_dir`, or `None` when it does not exist.
/// Relative when both paths resolve on this machine (they share the root), percent-encoded.
pub fn href(page_dir: &Path, target: &Path) -> Option<String> {
    if !target.is_file() {
        return None;
    }
    let (from, to) = (page_dir.canonicalize().ok()?, target.canonicalize().ok()?);
    Some(encode(&relative(&from, &to)))
}

/// The path from directory `from` to `to`, both absolute; `to` itself when they share nothing
/// (another drive).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let (f, t): (Vec<Component>, Vec<Component>) =
        (from.components().collect(), to.components().collect());
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return to.to_path_buf();
    }
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

/// A path as a URL path: `/`-separated, every byte but the unreserved ones percent-encoded (a
/// space, `#`, `?`, `%` or `:` in a directory name would otherwise change the link's meaning).
fn encode(path: &Path) -> String {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir => parts.push(String::new()),
            Component::ParentDir => parts.push("..".into()),
            Component::CurDir => parts.push(".".into()),
            Component::Prefix(p) => parts.push(p.as_os_str().to_string_lossy().into_owned()),
            Component::Normal(name) => {
                let mut s = String::new();
                for b in name.to_string_lossy().bytes() {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        s.push(char::from(b));
                    } else {
                        s.push_str(&format!("%{b:02X}"));
                    }
                }
                parts.push(s);
            }
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sibling_and_nested_directories_link_relatively() {
        let rel = |a: &str, b: &str| encode(&relative(Path::new(a), Path::new(b)));
        assert_eq!(
            rel("/r/compare-a-vs-b", "/r/a/index.html"),
            "../a/index.html"
        );
        assert_eq!(rel("/r", "/r/a/index.html"), "a/index.html");
        assert_eq!(rel("/x/y/z", "/r/a/index.html"), "../../../r/a/index.html");
        assert_eq!(
            rel("/r/c", "/r/run #1: 50%/index.html"),
            "../run%20%231%3A%2050%25/index.html"
        );
    }

    #[test]
    fn a_missing_page_has_no_link() {
        let dir = std::env::temp_dir();
        assert_eq!(href(&dir, &dir.join("no-such-dir/index.html")), None);
    }
}
