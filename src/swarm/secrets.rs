//! The run's secrets — the `env.*` values its templates read — and what hides them in any text
//! that leaves the generator: a trace, an error example (summary.json, the reports, the terminal,
//! the live dashboard). A check that compares a response with `{{ env.API_KEY }}`, or a
//! `fail_on` that quotes a 401 echoing the Authorization header, must not print the key.
//!
//! Masking runs only where a text is kept (a traced event; the first error example per metric
//! and class of an interval), never per sample.

use std::borrow::Cow;

use base64::Engine as _;

use crate::compiled::flow::template::percent_encode;

/// Base64 texts shorter than this are not decoded: no secret of a byte hides in two characters,
/// and words of the report's own text are not worth decoding.
const MIN_ENCODED: usize = 4;
/// At most this many separators in one base64 run are tried as the start of an encoded text.
const STARTS: usize = 32;

/// The secrets of a run, with the forms a template may have written them in.
#[derive(Default)]
pub struct Secrets {
    /// (text to hide, what stands in its place), longest first so that a secret containing
    /// another is masked whole.
    masks: Vec<(String, String)>,
    /// (name, value): what a decoded base64 text is searched for.
    values: Vec<(String, String)>,
}

impl Secrets {
    /// The secrets (name, value); empty values hide nothing and are left out.
    pub fn new(secrets: &[(String, String)]) -> Secrets {
        let mut masks: Vec<(String, String)> = Vec::new();
        let mut values = Vec::new();
        for (name, value) in secrets.iter().filter(|(_, v)| !v.is_empty()) {
            let stand_in = format!("[masked env.{name}]");
            // As a template writes it: as is, URL-encoded (a query, a form), JSON-escaped.
            let mut url = String::new();
            percent_encode(value, &mut url);
            let json = serde_json::to_string(value).unwrap_or_default();
            let json = json.trim_matches('"').to_string();
            for form in [value.clone(), url, json] {
                if !masks.iter().any(|(v, _)| *v == form) {
                    masks.push((form, stand_in.clone()));
                }
            }
            let b64 = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
            masks.push((b64, format!("[masked base64(env.{name})]")));
            values.push((name.clone(), value.clone()));
        }
        masks.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
        Secrets { masks, values }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret replaced by its stand-in: as written, URL-encoded, JSON-escaped,
    /// base64-encoded, and inside any base64 text that decodes to something holding it (a Basic
    /// authorization of `user:{{ env.PW }}`, a token's payload).
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.is_empty() {
            return Cow::Borrowed(text);
        }
        // Encoded texts first: a secret's own base64 can sit inside a longer one (after
        // `alice:`, whose 6 bytes encode apart), and masking it there would break the rest.
        let mut out = match self.mask_encoded(text) {
            Some(masked) => Cow::Owned(masked),
            None => Cow::Borrowed(text),
        };
        for (secret, stand_in) in &self.masks {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), stand_in));
            }
        }
        out
    }

    /// `text` with each base64 run that decodes to bytes holding a secret replaced; `None` when
    /// there is none.
    fn mask_encoded(&self, text: &str) -> Option<String> {
        let mut out = String::new();
        let mut done = 0;
        for (start, end) in base64_runs(text) {
            let Some((name, whole, skip)) = self.hidden_in(&text[start..end]) else {
                continue;
            };
            let start = start + skip;
            out.push_str(&text[done..start]);
            if whole {
                out.push_str(&format!("[masked base64(env.{name})]"));
            } else {
                out.push_str(&format!("[masked base64(… env.{name} …)]"));
            }
            done = end;
        }
        if done == 0 {
            return None;
        }
        out.push_str(&text[done..]);
        Some(out)
    }

    /// The name of a secret that `run`, decoded as base64 (standard or URL-safe, padded or
    /// not), holds; whether it is all the run holds; where in the run the encoded text starts.
    /// It need not start the run: `+`, `/`, `-` and `_` are base64 characters too, so `Basic+…`
    /// (a form) or `20…` (after a URL's `%`) join the encoded text's run. So the starts tried
    /// are the run's first 4 characters and the first after each of those separators (at most
    /// [`STARTS`] of them: a reason is short, and this runs only when an example is kept).
    fn hidden_in(&self, run: &str) -> Option<(&str, bool, usize)> {
        let after_separators = run
            .bytes()
            .enumerate()
            .filter(|(_, b)| matches!(b, b'+' | b'/' | b'-' | b'_'))
            .map(|(i, _)| i + 1);
        // The run's start first, then a separator's end (a whole encoded text after `+`),
        // then a misaligned start (1–3 characters joined to it).
        let starts = std::iter::once(0)
            .chain(after_separators.take(STARTS))
            .chain(1..4)
            .filter(|&s| s < run.len());
        starts.into_iter().find_map(|skip| {
            let (name, whole) = self.hidden_from(&run[skip..])?;
            Some((name, whole && skip == 0, skip))
        })
    }

    fn hidden_from(&self, run: &str) -> Option<(&str, bool)> {
        use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurposeConfig};
        let config =
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
        let engines = [
            general_purpose::GeneralPurpose::new(&base64::alphabet::STANDARD, config),
            general_purpose::GeneralPurpose::new(&base64::alphabet::URL_SAFE, config),
        ];
        let decoded = engines.iter().find_map(|e| e.decode(run).ok())?;
        self.values
            .iter()
            .find(|(_, v)| contains(&decoded, v.as_bytes()))
            .map(|(name, v)| (name.as_str(), decoded == v.as_bytes()))
    }
}

/// The byte ranges of `text`'s maximal runs of base64 characters (either alphabet, with any
/// trailing `=`), at least [`MIN_ENCODED`] long.
fn base64_runs(text: &str) -> Vec<(usize, usize)> {
    let is_b64 = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_');
    let bytes = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_b64(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_b64(bytes[i]) {
            i += 1;
        }
        while i < bytes.len() && bytes[i] == b'=' {
            i += 1;
        }
        if i - start >= MIN_ENCODED {
            runs.push((start, i));
        }
    }
    runs
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(pairs: &[(&str, &str)]) -> Secrets {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        Secrets::new(&pairs)
    }

    #[test]
    fn a_secret_is_masked_in_every_form_a_template_writes_it() {
        let s = secrets(&[
            ("TOKEN", "s3cr3t"),
            ("LONG", "s3cr3t-and-more"),
            ("PW", "a b\"c"),
        ]);
        assert_eq!(
            s.mask(r#"?p=a%20b%22c {"p":"a b\"c"}"#),
            r#"?p=[masked env.PW] {"p":"[masked env.PW]"}"#
        );
        assert_eq!(
            s.mask("a s3cr3t-and-more b s3cr3t"),
            "a [masked env.LONG] b [masked env.TOKEN]"
        );
        assert_eq!(s.mask("Basic czNjcjN0"), "Basic [masked base64(env.TOKEN)]");
    }

    #[test]
    fn a_base64_text_that_holds_a_secret_is_masked_whole() {
        let s = secrets(&[("PW", "hunter2-xyz")]);
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:hunter2-xyz");
        assert_eq!(
            s.mask(&format!("matched `Bearer x Basic {basic}` in the body")),
            "matched `Bearer x Basic [masked base64(… env.PW …)]` in the body"
        );
        // A token's URL-safe, unpadded payload between dots.
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"sub":"alice","pw":"hunter2-xyz"}"#);
        assert_eq!(
            s.mask(&format!("eyJhbGciOiJIUzI1NiJ9.{payload}.c2ln")),
            "eyJhbGciOiJIUzI1NiJ9.[masked base64(… env.PW …)].c2ln"
        );
        // Joined to what comes before it: a form's `Basic+…`, a URL's `%20…`, a prefix of 1–3.
        assert_eq!(
            s.mask(&format!("auth=Basic+{basic}&x=1")),
            "auth=Basic+[masked base64(… env.PW …)]&x=1"
        );
        assert_eq!(
            s.mask(&format!("Basic%20{basic}")),
            "Basic%20[masked base64(… env.PW …)]"
        );
        for prefix in ["a", "ab", "abc"] {
            let text = format!("{prefix}{basic}");
            let masked = s.mask(&text);
            assert!(
                !masked.contains(&basic) && masked.contains("env.PW"),
                "{masked}"
            );
        }
    }

    #[test]
    fn texts_without_secrets_are_left_as_they_are() {
        let s = secrets(&[("PW", "hunter2-xyz")]);
        let text = "expected HTTP 2xx, got 401 (Basic YWxpY2U6b3RoZXI=)";
        assert!(matches!(s.mask(text), Cow::Borrowed(t) if t == text));
        let none = Secrets::default();
        assert!(matches!(none.mask("hunter2-xyz"), Cow::Borrowed(_)));
    }
}
