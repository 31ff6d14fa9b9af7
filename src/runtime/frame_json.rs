//! A frame's JSON parsed only as far as the socket's background rules read it: the top-level
//! keys their paths start with are kept, every other member is skipped by the parser without
//! being built (no strings copied, no maps allocated). A chat server's frames carry bodies,
//! timestamps and metadata that a rule matching `$.type` and reading `$.id` never looks at.
//!
//! The kept keys hold exactly what a full parse would hold, so every path the rules read
//! selects the same values either way (tested below); rules that may read anything (a path
//! starting with an index, a wildcard or a computed key, or a reply reading `frame.*`) get the
//! full parse.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::compiled::flow::jsonpath::{JsonPath, Seg};
use crate::compiled::flow::{Capture, Expr, FrameRule, IdSource, RuleAction};

/// The top-level keys `rules` read from a frame's JSON, or `None` when they may read anything.
pub(super) fn keys_read(rules: &[FrameRule]) -> Option<Vec<String>> {
    let mut keys: Vec<String> = Vec::new();
    let mut add = |p: &JsonPath<Expr>| match p.segments.first() {
        Some(Seg::Key(k)) => {
            if !keys.contains(k) {
                keys.push(k.clone());
            }
            true
        }
        _ => false,
    };
    for rule in rules {
        if !rule.matcher.json.iter().all(|(p, _)| add(p)) {
            return None;
        }
        for action in &rule.actions {
            let bounded = match action {
                RuleAction::Delivered(IdSource::Json(p))
                | RuleAction::Acked(IdSource::Json(p))
                | RuleAction::Rejected(IdSource::Json(p)) => add(p),
                RuleAction::Reply { json: true, .. } => false,
                RuleAction::Capture(captures) => captures.iter().all(|(_, c)| match c {
                    Capture::Json(p) => add(p),
                    _ => true,
                }),
                _ => true,
            };
            if !bounded {
                return None;
            }
        }
    }
    Some(keys)
}

/// `text` as JSON with only `keys` kept in its top-level object (a document that is not an
/// object is parsed whole); `None` when it is not JSON, as for a full parse.
pub(super) fn parse_keys(text: &str, keys: &[String]) -> Option<serde_json::Value> {
    if !text.trim_start().starts_with('{') {
        return serde_json::from_str(text).ok();
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let value = de.deserialize_map(Only(keys)).ok()?;
    // Trailing garbage makes the frame not JSON, as it does for a full parse.
    de.end().ok()?;
    Some(value)
}

/// Builds the object with the wanted members only.
struct Only<'k>(&'k [String]);

impl<'de> Visitor<'de> for Only<'_> {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(wanted) = map.next_key_seed(Key(self.0))? {
            match wanted {
                // A repeated key: the last one wins, as in a full parse.
                Some(i) => {
                    out.insert(self.0[i].clone(), map.next_value()?);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// A member's key: which wanted key it is, if any (compared without copying it).
struct Key<'k>(&'k [String]);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|k| k == key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiled::flow::jsonpath::parse;
    use crate::compiled::flow::template::{Resolver, Segment, Value};

    struct NoVars;
    impl Resolver for NoVars {
        type Expr = Expr;
        fn literal(&mut self, v: Value) -> Expr {
            Expr::Lit(v)
        }
        fn concat(&mut self, _: Vec<Expr>) -> Expr {
            Expr::Lit(Value::Null)
        }
        fn path(&mut self, _: &[Segment], _: Vec<Vec<Expr>>) -> Result<Expr, String> {
            Ok(Expr::UserIndex)
        }
    }

    fn path(p: &str) -> JsonPath<Expr> {
        parse(p, &mut NoVars).expect("valid path")
    }

    fn rule(matcher: &[&str], acked: &str) -> FrameRule {
        FrameRule {
            matcher: crate::compiled::flow::Matcher {
                json: matcher
                    .iter()
                    .map(|p| (path(p), crate::compiled::flow::Want::Const("m".into())))
                    .collect(),
                ..Default::default()
            },
            actions: vec![RuleAction::Acked(IdSource::Json(path(acked)))],
        }
    }

    #[test]
    fn the_keys_read_are_the_first_keys_of_the_rules_paths() {
        let rules = [rule(&["$.type"], "$.id"), rule(&["$.type"], "$.ack.id")];
        assert_eq!(
            keys_read(&rules),
            Some(vec!["type".into(), "id".into(), "ack".into()])
        );
        // A path that may start anywhere reads the whole frame.
        for open in ["$[0]", "$.*", "$[{{ x }}]"] {
            assert_eq!(keys_read(&[rule(&["$.type"], open)]), None, "{open}");
        }
        let reply = FrameRule {
            matcher: Default::default(),
            actions: vec![RuleAction::Reply {
                frame: crate::compiled::flow::Frame::Text(
                    crate::compiled::flow::template::Template {
                        parts: vec![],
                        escape: crate::compiled::flow::template::Escape::None,
                    },
                ),
                json: true,
            }],
        };
        assert_eq!(keys_read(&[reply]), None);
    }

    #[test]
    fn only_the_keys_read_are_kept_and_they_select_as_in_a_full_parse() {
        let keys: Vec<String> = vec!["type".into(), "id".into(), "ack".into()];
        let text = r#" {"body":{"text":"a \"long\" one","xs":[1,2,{"y":null}]},"type":"m",
            "ts":1.5e3,"i\u0064":"7-1-20","ack":{"id":"7-0-10","n":[true]},"type":"m2"} "#;
        let full: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
        let part = parse_keys(text, &keys).expect("valid JSON");
        assert_eq!(
            part,
            serde_json::json!({"type": "m2", "id": "7-1-20", "ack": {"id": "7-0-10", "n": [true]}}),
            "an escaped key is matched, a repeated one is the last, the rest skipped"
        );
        for p in ["$.type", "$.id", "$.ack.id", "$.ack.n[0]", "$.missing"] {
            let p = path(p);
            let idx = |_: &Expr| String::new();
            assert_eq!(p.first(&part, idx), p.first(&full, idx));
        }
    }

    #[test]
    fn what_is_not_json_or_not_an_object_parses_as_a_full_parse_would() {
        let keys: Vec<String> = vec!["id".into()];
        for text in [
            "",
            "not json",
            r#"{"id":"1"} trailing"#,
            r#"{"id":"1""#,
            r#"{"id":}"#,
            "{\"a\":[1,}",
        ] {
            assert_eq!(parse_keys(text, &keys), None, "{text}");
        }
        assert_eq!(parse_keys("[1, 2]", &keys), Some(serde_json::json!([1, 2])));
        assert_eq!(parse_keys(" \"s\" ", &keys), Some(serde_json::json!("s")));
        assert_eq!(parse_keys("{}", &keys), Some(serde_json::json!({})));
    }
}
