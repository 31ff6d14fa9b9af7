//! A frame's JSON parsed only as far as the socket's background rules read it: the top-level
//! keys their paths start with are kept, every other member is skipped by the parser without
//! being built (no strings copied, no maps allocated). A chat server's frames carry bodies,
//! timestamps and metadata that a rule matching `$.type` and reading `$.id` never looks at.
//!
//! The kept keys hold exactly what a full parse would hold, so every path the rules read
//! selects the same values either way (tested below); rules that may read anything (a path
//! starting with an index, a wildcard or a computed key, or a reply reading `frame.*`) get the
//! full parse.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

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

/// `text` as JSON, with only `keys` (all, for `None`) kept in its top-level object; `None`
/// when it is not JSON. Built over the object of the frame this worker parsed before (see
/// [`recycle`]): every tracked message's frame is parsed, and its members' keys, strings and
/// map would otherwise be four or five allocations per frame. What it holds is exactly what a
/// fresh parse holds (tested below): only where its memory comes from differs.
pub(super) fn parse(text: &str, keys: Option<&[String]>, spare: &Spare) -> Option<Value> {
    if !text.trim_start().starts_with('{') {
        return serde_json::from_str(text).ok();
    }
    let mut map = std::mem::take(&mut *spare.borrow_mut());
    if fill(text, keys, &mut map).is_some() {
        return Some(Value::Object(map));
    }
    recycle(Some(Value::Object(map)), spare);
    None
}

/// Hands a frame's parsed JSON back once its handling is done, for the next frame's parse to
/// build over (an object only: nothing else is worth keeping).
pub(super) fn recycle(json: Option<Value>, spare: &Spare) {
    if let Some(Value::Object(map)) = json {
        *spare.borrow_mut() = map;
    }
}

/// The last frame's object: one per worker (`WorkerCtx::scratch`), whatever its users (one
/// that is still using its frame's leaves an empty map to the next).
pub(super) type Spare = std::cell::RefCell<Map<String, Value>>;

/// Parses `text`'s top-level object into `map`, over what it held: the wanted members are set
/// (a string into the buffer of the member it replaces), and those of the earlier frame that
/// this one lacks are removed. `None` when `text` is not JSON.
fn fill(text: &str, keys: Option<&[String]>, map: &mut Map<String, Value>) -> Option<()> {
    let mut de = serde_json::Deserializer::from_str(text);
    let mut members = Members {
        keys,
        map,
        seen: Default::default(),
        n: 0,
    };
    de.deserialize_map(&mut members).ok()?;
    // Trailing garbage makes the frame not JSON, as it does for a full parse.
    de.end().ok()?;
    let Members { map, seen, n, .. } = members;
    if n <= TRACKED && map.len() > n {
        let seen = &seen[..n];
        map.retain(|k, _| seen.iter().any(|s| s == k));
    }
    Some(())
}

/// How many of a frame's keys its parse notes, to tell the earlier frame's members apart.
const TRACKED: usize = 8;

/// Sets a frame's wanted members in `map`, noting which keys this frame has.
struct Members<'k, 'm, 'de> {
    keys: Option<&'k [String]>,
    map: &'m mut Map<String, Value>,
    /// The first keys set, each once.
    seen: [Cow<'de, str>; TRACKED],
    /// How many distinct keys were set, up to one more than [`TRACKED`]: from there on, the
    /// map holds this frame's members only (see `visit_map`).
    n: usize,
}

impl<'de> Visitor<'de> for &mut Members<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        while let Some(key) = access.next_key_seed(KeyText)? {
            if self
                .keys
                .is_some_and(|keys| !keys.iter().any(|k| *k == *key))
            {
                access.next_value::<IgnoredAny>()?;
                continue;
            }
            // A key not yet set in this frame (a repeated one: the last value wins, as in a
            // full parse). Once more keys than noted come, the earlier frame's members not
            // seen yet are dropped: what the map holds from then on is this frame's.
            let new = self.n <= TRACKED && !self.seen[..self.n.min(TRACKED)].contains(&key);
            if new && self.n == TRACKED {
                let seen = &self.seen;
                self.map.retain(|k, _| seen.iter().any(|s| s == k));
            }
            match self.map.get_mut(key.as_ref()) {
                Some(v) => access.next_value_seed(InPlace(v))?,
                None => {
                    let mut value = Value::Null;
                    access.next_value_seed(InPlace(&mut value))?;
                    self.map.insert(key.to_string(), value);
                }
            }
            if new {
                if let Some(slot) = self.seen.get_mut(self.n) {
                    *slot = key;
                }
                self.n += 1;
            }
        }
        Ok(())
    }
}

/// A member's key, borrowed from the frame unless it holds an escape.
struct KeyText;

impl<'de> DeserializeSeed<'de> for KeyText {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyText {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(key.to_owned()))
    }
}

/// Deserializes a value over `self.0`: a string into its buffer, anything else as a full
/// parse builds it.
struct InPlace<'v>(&'v mut Value);

impl<'de> DeserializeSeed<'de> for InPlace<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for InPlace<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        match self.0 {
            Value::String(buf) => {
                buf.clear();
                buf.push_str(s);
            }
            other => *other = Value::String(s.to_owned()),
        }
        Ok(())
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        *self.0 = Value::Bool(b);
        Ok(())
    }

    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        *self.0 = Value::Number(n.into());
        Ok(())
    }

    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        *self.0 = Value::Number(n.into());
        Ok(())
    }

    fn visit_f64<E>(self, n: f64) -> Result<(), E> {
        // As serde_json's own: a float JSON cannot hold (it never parses one) is null.
        *self.0 = Value::from(n);
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        *self.0 = Value::Null;
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        *self.0 = Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        *self.0 = Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(())
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

    /// `text` with only `keys` kept, parsed without a worker's earlier frames.
    fn parse_keys(text: &str, keys: &[String]) -> Option<serde_json::Value> {
        super::parse(text, Some(keys), &Spare::default())
    }

    #[test]
    fn frames_parsed_over_earlier_ones_hold_what_a_fresh_parse_holds() {
        let frames = [
            r#"{"type":"m","id":"1-0-5","body":{"t":"x"}}"#,
            r#"{"id":"1-1-9","type":"ack"}"#,
            // Members of the frame before that this one lacks, or holds with another type.
            r#"{"type":7,"n":[1,{"a":null}],"id":{"k":"v"}}"#,
            r#"{"type":"a \"quoted\" \u00e9","id":null,"x":true,"f":-2.5,"i":-3}"#,
            r#"{"i\u0064":"escaped key","id":"repeated, the last wins"}"#,
            "{}",
            r#"{"type":"m","id":"broken"#,
            r#"["not", "an", "object"]"#,
            r#"{"type":"m","id":"2-0-1"} trailing"#,
            r#"{"type":"m","id":"2-0-1","big":18446744073709551615,"e":-1e300}"#,
            // More members than a parse notes (`TRACKED`), one repeated after that, and then
            // frames with fewer: the earlier frame's extra members never stay.
            r#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"a":0,"b":"s"}"#,
            r#"{"b":1,"c":2,"d":3,"e":4,"f":5,"g":6,"h":7,"type":"x","id":"y","z":null}"#,
            r#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8}"#,
            r#"{"h":"only"}"#,
        ];
        let keys: Vec<String> = vec!["type".into(), "id".into()];
        let wanted = |v: serde_json::Value| match v {
            serde_json::Value::Object(m) => {
                serde_json::Value::Object(m.into_iter().filter(|(k, _)| keys.contains(k)).collect())
            }
            v => v,
        };
        // Twice over, in both modes, each frame handed back before the next, as a worker does;
        // and once more with one frame taken and never handed back (a user that stopped).
        let spare = Spare::default();
        for round in 0..3 {
            for text in frames {
                let fresh: Option<serde_json::Value> = serde_json::from_str(text).ok();
                let all = super::parse(text, None, &spare);
                assert_eq!(all, fresh, "{text}");
                recycle(all, &spare);
                let some = super::parse(text, Some(&keys), &spare);
                assert_eq!(some, fresh.map(wanted), "{text}");
                if round < 2 {
                    recycle(some, &spare);
                }
            }
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
