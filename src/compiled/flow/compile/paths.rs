//! A flow's paths checked as the client will send them: a literal space or byte beyond visible
//! ASCII in an `http` or `ws` path fails every request at run time (`clients::request::
//! unsendable`, the same check), so `validate` refuses it with its file:line:column. What a
//! `{{ }}` inserts is the user's data at run time and is not checked here (an `http` path
//! percent-encodes it).

use std::ops::Range;

use super::Compiler;
use crate::clients::request::unsendable;
use crate::compiled::target::unsendable_char;

impl Compiler<'_, '_> {
    /// Refuses `path`, the text of the TOML string at `span`, when its literal text holds what a
    /// request cannot carry. `whole` is the string `path` was taken from (the `http` line).
    pub(super) fn sendable_path(&mut self, whole: &str, path: &str, span: Range<usize>) -> bool {
        let literal = without_templates(path);
        let Some(i) = unsendable(&literal) else {
            return true;
        };
        let c = path[i..].chars().next().unwrap_or(' ');
        let start = self.problems.locate(&span, whole) + whole.find(path).unwrap_or(0);
        let rest = &path[i..];
        let message = if rest.trim_start().starts_with("HTTP/") {
            format!(
                "`{}` is not part of the path: an http step is a method and a path, e.g. \
                 \"GET /ok\" (inrush speaks HTTP/1.1)",
                rest.trim()
            )
        } else {
            format!("the path holds {}", unsendable_char(c))
        };
        self.problems.add((start + i)..(start + i), message);
        false
    }
}

/// `path` with each `{{ … }}` replaced by as many `x`: offsets stay those of `path`.
fn without_templates(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let len = after.find("}}").map_or(after.len(), |end| end + 2);
        out.extend(std::iter::repeat_n('x', len));
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problems of a scenario whose target is `url` and whose one step is `step`, as
    /// `t.toml:LINE:COLUMN: message`.
    fn problems(url: &str, step: &str) -> Vec<String> {
        let text = format!(
            "name = \"t\"\n[target]\nurl = \"{url}\"\n[load]\n\
             phases = [ {{ name = \"a\", duration = \"1s\", rate = 1 }} ]\n\
             [[flows.f.steps]]\nname = \"s\"\n{step}\n"
        );
        match crate::compiled::compile(std::path::Path::new("t.toml"), &text, Some(1)) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn a_path_a_request_cannot_carry_is_refused_where_it_is() {
        let url = "http://127.0.0.1:9";
        assert_eq!(
            problems(url, r#"http = "GET /a b""#),
            ["t.toml:8:15: the path holds a space, which a request cannot carry; percent-encode \
              it: `%20`"]
        );
        assert_eq!(
            problems(url, r#"http = "GET /café""#)[0],
            "t.toml:8:17: the path holds `é` (beyond ASCII), which a request cannot carry; \
             percent-encode it: `%C3%A9`"
        );
        let version = problems(url, r#"http = "GET /ok HTTP/1.1""#);
        assert!(version[0].starts_with("t.toml:8:16: `HTTP/1.1` is not part of the path"));
        assert_eq!(
            problems(url, r#"ws = "/chat room""#),
            ["t.toml:8:12: the path holds a space, which a request cannot carry; percent-encode \
              it: `%20`"]
        );
        // What a template inserts is checked (and encoded) at run time; a fragment is not sent.
        assert!(problems(url, r#"http = "GET /u/{{ 'a b' }}#x y""#).is_empty());
        let prefix = problems("http://127.0.0.1:9/pre fix", r#"http = "GET /ok""#);
        assert!(
            prefix[0]
                .starts_with("t.toml:3:7: `http://127.0.0.1:9/pre fix`: its path holds a space"),
            "{prefix:?}"
        );
    }

    #[test]
    fn templates_are_blanked_with_offsets_kept() {
        assert_eq!(without_templates("/a/{{ id }} b"), "/a/xxxxxxxx b");
        assert_eq!(without_templates("/{{ x"), "/xxxx");
        assert_eq!(unsendable(&without_templates("/u/{{ a + ' ' }}")), None);
    }
}
