//! XML paths for `expect.xml`, `fail_on.xml` and frame rules' `match.xml`: a small, fixed subset
//! of XPath that reads as what it selects, parsed once when a scenario loads and evaluated with
//! roxmltree (a maintained, read-only XML parser) on the frame or body.
//!
//! `/iq/@type` — the `type` attribute of the root element `iq`; `/message/body` — the text of
//! the `body` child of the root `message`; `//error` — any `error` element; `*` matches any
//! element name. Names match an element's local name (its namespace is not compared), as stanza
//! protocols are written with default namespaces.

/// One step of a path: a child (or, with `any_depth`, a descendant) element by local name.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    name: String,
    any_depth: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct XmlPath {
    steps: Vec<Step>,
    /// A final `@attr`: the attribute's value instead of the element's text.
    attr: Option<String>,
    /// The path as written, for error messages.
    pub source: String,
}

impl XmlPath {
    pub fn parse(s: &str) -> Result<XmlPath, String> {
        let bad = |why: &str| format!("xml path `{s}`: {why}");
        let Some(mut rest) = s.strip_prefix('/') else {
            return Err(bad("starts with `/` (the root element) or `//` (anywhere)"));
        };
        let mut steps = Vec::new();
        let mut attr = None;
        loop {
            let any_depth = match rest.strip_prefix('/') {
                Some(r) => {
                    rest = r;
                    true
                }
                None => false,
            };
            let end = rest.find('/').unwrap_or(rest.len());
            let (name, tail) = rest.split_at(end);
            if let Some(a) = name.strip_prefix('@') {
                if !tail.is_empty() || any_depth || a.is_empty() || steps.is_empty() {
                    return Err(bad("an `@attribute` comes last, after an element"));
                }
                attr = Some(a.to_string());
                break;
            }
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_alphanumeric() || "*-_.:".contains(c))
            {
                return Err(bad("each step is an element name or `*`"));
            }
            // A prefix (`stream:features`) is not compared: the local name is.
            let local = name.rsplit(':').next().unwrap_or(name);
            steps.push(Step {
                name: local.to_string(),
                any_depth,
            });
            match tail.strip_prefix('/') {
                Some(t) if !t.is_empty() => rest = t,
                Some(_) => return Err(bad("ends with `/`")),
                None => break,
            }
        }
        Ok(XmlPath {
            steps,
            attr,
            source: s.to_string(),
        })
    }

    /// The values the path selects in `doc` (attribute values, or elements' text); empty when
    /// `doc` is not XML.
    pub fn select(&self, doc: &roxmltree::Document) -> Vec<String> {
        let mut at: Vec<roxmltree::Node> = vec![doc.root()];
        for step in &self.steps {
            let matches = |n: &roxmltree::Node| {
                n.is_element() && (step.name == "*" || n.tag_name().name() == step.name)
            };
            let mut next = Vec::new();
            for node in &at {
                if step.any_depth {
                    next.extend(node.descendants().skip(1).filter(matches));
                } else {
                    next.extend(node.children().filter(matches));
                }
            }
            at = next;
        }
        at.iter()
            .filter_map(|n| match &self.attr {
                Some(a) => n.attribute(a.as_str()).map(str::to_string),
                None => Some(n.text().unwrap_or("").to_string()),
            })
            .collect()
    }
}

/// How deep elements may nest in a document inrush parses. roxmltree builds the tree by
/// recursion, one stack frame per level: 35 KB of `<a>` from a hostile target overflowed a
/// worker's stack (the process aborted, no report). Real documents (XMPP stanzas, SOAP, feeds)
/// nest a few dozen levels.
pub const MAX_DEPTH: usize = 256;

/// `text` parsed as XML, when it is and nests at most [`MAX_DEPTH`] elements deep.
pub fn parse_doc(text: &str) -> Option<roxmltree::Document<'_>> {
    if deeper_than(text.as_bytes(), MAX_DEPTH) {
        return None;
    }
    roxmltree::Document::parse(text).ok()
}

/// Whether elements in `xml` nest deeper than `limit`, by a scan of its tags that never
/// undercounts: comments, CDATA sections, declarations and processing instructions are
/// skipped, quoted attribute values may hold `>`, and a self-closing tag opens nothing.
fn deeper_than(xml: &[u8], limit: usize) -> bool {
    let find = |from: usize, what: &[u8]| {
        xml.get(from..)
            .and_then(|rest| rest.windows(what.len()).position(|w| w == what))
            .map_or(xml.len(), |p| from + p + what.len())
    };
    let (mut depth, mut i) = (0usize, 0usize);
    while i < xml.len() {
        if xml[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &xml[i..];
        if rest.starts_with(b"<!--") {
            i = find(i + 4, b"-->");
        } else if rest.starts_with(b"<![CDATA[") {
            i = find(i + 9, b"]]>");
        } else if rest.starts_with(b"</") {
            depth = depth.saturating_sub(1);
            i = find(i + 2, b">");
        } else if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            i = find(i + 2, b">");
        } else {
            // A start tag: to its `>`, outside quoted attribute values.
            let mut j = i + 1;
            let mut quote = None;
            while j < xml.len() {
                match (quote, xml[j]) {
                    (Some(q), c) if c == q => quote = None,
                    (None, c @ (b'"' | b'\'')) => quote = Some(c),
                    (None, b'>') => break,
                    _ => {}
                }
                j += 1;
            }
            if xml.get(j.wrapping_sub(1)) != Some(&b'/') {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            i = j + 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn select(path: &str, xml: &str) -> Vec<String> {
        let doc = parse_doc(xml).expect("XML");
        XmlPath::parse(path).expect("a path").select(&doc)
    }

    #[test]
    fn a_document_nested_too_deep_is_not_parsed_and_the_scan_counts_only_elements() {
        // 5 000 levels overflowed a thread's stack in roxmltree; refused before parsing.
        let deep = format!("{}{}", "<a>".repeat(5000), "</a>".repeat(5000));
        assert!(parse_doc(&deep).is_none());
        let at = |n: usize| format!("{}{}", "<a x='>'>".repeat(n), "</a>".repeat(n));
        assert!(parse_doc(&at(MAX_DEPTH)).is_some());
        assert!(parse_doc(&at(MAX_DEPTH + 1)).is_none());
        // Siblings, self-closing tags, comments, CDATA and declarations do not nest.
        let wide = format!(
            "<?xml version='1.0'?><!DOCTYPE r><r>{}</r>",
            "<b/><!-- <c> --><![CDATA[<d>]]><e></e>".repeat(1000)
        );
        assert!(!deeper_than(wide.as_bytes(), 2));
        assert!(deeper_than(wide.as_bytes(), 1));
    }

    #[test]
    fn paths_select_attributes_text_and_descendants() {
        let iq = "<iq type='error' id='p1'><error code='503'><text>busy</text></error></iq>";
        assert_eq!(select("/iq/@type", iq), ["error"]);
        assert_eq!(select("/iq/error/text", iq), ["busy"]);
        assert_eq!(select("//text", iq), ["busy"]);
        assert_eq!(select("//error/@code", iq), ["503"]);
        assert_eq!(select("/*/@id", iq), ["p1"]);
        assert!(select("/message/@type", iq).is_empty(), "another root");
        let ns = "<message xmlns='jabber:client' from='a'><body>hi</body></message>";
        assert_eq!(select("/message/body", ns), ["hi"], "local names");
        assert!(parse_doc("{\"type\":\"message\"}").is_none());
    }

    #[test]
    fn malformed_paths_say_why() {
        for (p, why) in [
            ("iq/@type", "starts with `/`"),
            ("/iq/@type/x", "comes last"),
            ("/@type", "comes last"),
            ("/iq/", "ends with `/`"),
            ("/iq[1]", "element name"),
        ] {
            let e = XmlPath::parse(p).expect_err(p);
            assert!(e.contains(why), "{p}: {e}");
        }
    }
}
