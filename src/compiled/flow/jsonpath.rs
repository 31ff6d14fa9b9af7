//! A small JSON path: `$.a.b`, `$["a key"]`, `$.items[0]`, `$.items[-1]`, `$.found[*].phone`,
//! and keys that come from variables: `$.presence[{{ peer }}]`. Parsed once when a scenario
//! loads; selecting borrows from the response, copying nothing.

use serde_json::Value as Json;

use crate::compiled::flow::template::{self, Resolver, TemplateError};

#[derive(Debug, Clone, PartialEq)]
pub enum Seg<E> {
    Key(String),
    Index(i64),
    /// Every element of an array or every value of an object.
    Wildcard,
    /// A key computed per user from an expression.
    KeyExpr(E),
}

#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath<E> {
    pub segments: Vec<Seg<E>>,
}

fn error(offset: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        offset,
        message: message.into(),
    }
}

/// Parses a path; expressions inside `[{{ }}]` are resolved with `resolver`. One loop over the
/// characters with one arm per token (the usual shape of a hand-written scanner), hence its length.
pub fn parse<R: Resolver>(
    text: &str,
    resolver: &mut R,
) -> Result<JsonPath<R::Expr>, TemplateError> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'$') {
        return Err(error(
            0,
            format!("a JSON path starts with `$`, e.g. `$.user_id` (got `{text}`)"),
        ));
    }
    let mut segments = Vec::new();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end] != b'.' && bytes[end] != b'[' {
                    end += 1;
                }
                let key = &text[start..end];
                if key.is_empty() {
                    return Err(error(i, "empty key after `.`"));
                }
                segments.push(if key == "*" {
                    Seg::Wildcard
                } else {
                    Seg::Key(key.to_string())
                });
                i = end;
            }
            b'[' => {
                let close = text[i..]
                    .find(']')
                    .map(|c| i + c)
                    .ok_or_else(|| error(i, "`[` is not closed by `]`"))?;
                // A `]` inside `{{ }}` or quotes would end early; look for the real one.
                let close = if text[i + 1..].trim_start().starts_with("{{") {
                    let end = text[i..]
                        .find("}}")
                        .map(|c| i + c + 2)
                        .ok_or_else(|| error(i, "`{{` is not closed by `}}`"))?;
                    text[end..]
                        .find(']')
                        .map(|c| end + c)
                        .ok_or_else(|| error(i, "`[` is not closed by `]`"))?
                } else {
                    close
                };
                let inner = text[i + 1..close].trim();
                let seg = if inner == "*" {
                    Seg::Wildcard
                } else if let Some(expr) =
                    inner.strip_prefix("{{").and_then(|s| s.strip_suffix("}}"))
                {
                    let at = i + 1 + text[i + 1..close].find("{{").unwrap_or(0) + 2;
                    let syntax = template::parse_expr(expr, at)?;
                    Seg::KeyExpr(template::resolve(&syntax, resolver)?)
                } else if (inner.starts_with('"') && inner.ends_with('"') && inner.len() >= 2)
                    || (inner.starts_with('\'') && inner.ends_with('\'') && inner.len() >= 2)
                {
                    Seg::Key(inner[1..inner.len() - 1].to_string())
                } else {
                    Seg::Index(inner.parse().map_err(|_| {
                        error(
                            i + 1,
                            format!(
                                "`{inner}` is not an index, `*`, a quoted key or `{{{{ expr }}}}`"
                            ),
                        )
                    })?)
                };
                segments.push(seg);
                i = close + 1;
            }
            _ => {
                return Err(error(
                    i,
                    format!("unexpected `{}`: expected `.` or `[`", &text[i..]),
                ))
            }
        }
    }
    Ok(JsonPath { segments })
}

impl<E> JsonPath<E> {
    /// The first value the path selects, if any. Without a wildcard a path selects at most one
    /// value, found by walking down without collecting (every tracked frame's id is read so).
    pub fn first<'v, F: FnMut(&E) -> String>(
        &self,
        root: &'v Json,
        mut key_of: F,
    ) -> Option<&'v Json> {
        if self.is_multi() {
            return self.select(root, key_of).into_iter().next();
        }
        let mut v = root;
        for seg in &self.segments {
            v = match seg {
                Seg::Key(k) => v.get(k.as_str())?,
                Seg::KeyExpr(e) => v.get(key_of(e).as_str())?,
                Seg::Index(i) => index(v, *i)?,
                Seg::Wildcard => return None,
            };
        }
        Some(v)
    }

    /// Every value the path selects (none when it does not match).
    pub fn select<'v, F: FnMut(&E) -> String>(
        &self,
        root: &'v Json,
        mut key_of: F,
    ) -> Vec<&'v Json> {
        let mut current = vec![root];
        for seg in &self.segments {
            let mut next = Vec::new();
            for v in current {
                match seg {
                    Seg::Key(k) => next.extend(v.get(k.as_str())),
                    Seg::KeyExpr(e) => next.extend(v.get(key_of(e).as_str())),
                    Seg::Index(i) => next.extend(index(v, *i)),
                    Seg::Wildcard => match v {
                        Json::Array(a) => next.extend(a.iter()),
                        Json::Object(o) => next.extend(o.values()),
                        _ => {}
                    },
                }
            }
            current = next;
        }
        current
    }

    /// True when the path can select several values (it has a wildcard).
    pub fn is_multi(&self) -> bool {
        self.segments.iter().any(|s| matches!(s, Seg::Wildcard))
    }
}

/// Element `i` of an array, counted from its end when negative.
fn index(v: &Json, i: i64) -> Option<&Json> {
    let Json::Array(a) = v else { return None };
    let idx = if i < 0 { a.len() as i64 + i } else { i };
    usize::try_from(idx).ok().and_then(|idx| a.get(idx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiled::flow::template::{Segment, Value};

    struct Vars;
    impl Resolver for Vars {
        type Expr = String;
        fn literal(&mut self, v: Value) -> String {
            v.to_text()
        }
        fn concat(&mut self, parts: Vec<String>) -> String {
            parts.concat()
        }
        fn path(&mut self, segs: &[Segment], _: Vec<Vec<String>>) -> Result<String, String> {
            match segs[0].name.as_str() {
                "peer" => Ok("u2".into()),
                other => Err(format!("unknown variable `{other}`")),
            }
        }
    }

    fn sel(path: &str, doc: &Json) -> Vec<Json> {
        let p = parse(path, &mut Vars).expect("valid path");
        let all: Vec<Json> = p.select(doc, |k| k.clone()).into_iter().cloned().collect();
        // The first of them is what `first` finds, with or without a wildcard.
        assert_eq!(p.first(doc, |k| k.clone()), all.first(), "{path}");
        all
    }

    #[test]
    fn selects_keys_indices_wildcards_and_variable_keys() {
        let doc = serde_json::json!({
            "user_id": "u1",
            "found": [{"phone": "+1"}, {"phone": "+2"}],
            "presence": {"u2": "online"},
            "a key": 5
        });
        assert_eq!(sel("$.user_id", &doc), vec![serde_json::json!("u1")]);
        assert_eq!(
            sel("$.found[*].phone", &doc),
            vec![serde_json::json!("+1"), serde_json::json!("+2")]
        );
        assert_eq!(
            sel("$.found[-1].phone", &doc),
            vec![serde_json::json!("+2")]
        );
        assert_eq!(sel("$[\"a key\"]", &doc), vec![serde_json::json!(5)]);
        assert_eq!(
            sel("$.presence[{{ peer }}]", &doc),
            vec![serde_json::json!("online")]
        );
        assert!(sel("$.missing.deeper", &doc).is_empty());
        assert!(sel("$.found[2].phone", &doc).is_empty());
        assert!(sel("$.found[-3]", &doc).is_empty());
        assert!(sel("$.user_id[0]", &doc).is_empty());
        assert_eq!(
            sel("$.found[0]", &doc),
            vec![serde_json::json!({"phone": "+1"})]
        );
        assert_eq!(sel("$", &doc).len(), 1);
    }

    #[test]
    fn bad_paths_say_where() {
        assert_eq!(parse("user_id", &mut Vars).expect_err("no $").offset, 0);
        let e = parse("$.found[x]", &mut Vars).expect_err("bad index");
        assert_eq!(e.offset, 8);
        let e = parse("$.found[0", &mut Vars).expect_err("unclosed");
        assert_eq!(e.offset, 7);
        let e = parse("$.p[{{ nobody }}]", &mut Vars).expect_err("unknown var");
        assert!(e.message.contains("nobody"));
        assert_eq!(e.offset, 7);
    }
}
