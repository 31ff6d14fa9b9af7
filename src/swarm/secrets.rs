//! The run's secrets — the `env.*` values its templates read — and what hides them in any text
//! that leaves the generator: a trace, an error example (summary.json, the reports, the terminal,
//! the live dashboard). A check that compares a response with `{{ env.API_KEY }}`, or a
//! `fail_on` that quotes a 401 echoing the Authorization header, must not print the key.
//!
//! Which values are masked, and where. Masking hides a value that can be told apart from
//! ordinary text; one that cannot (a number such as `4`, a word such as `reset`) hides nothing
//! by being replaced wherever it occurs — anyone can guess it — and garbles every report
//! (`got 404`, `Connection reset by peer`). So, as GitLab does for masked variables (8
//! characters at least) and unlike a plain search-and-replace (k6's redaction, GitHub's masks,
//! which mangle short values):
//! - a value shorter than [`PLAIN_MASKED_FROM`] characters that is a plain word or number
//!   (letters only, or a number such as `4`, `-1` or `1.0`) is masked where it stands alone
//!   (`page_size=4`, `Connection reset by peer`), not inside a longer word or number (the `4`
//!   of `404`): it still never reaches a report as itself (a short password such as `letmein`
//!   is a secret too), and ordinary text around it is left whole;
//! - any other value is masked wherever it occurs (a short one that mixes letters, digits or
//!   punctuation, `s3cr3t`, is not found in ordinary text by chance);
//! - the forms a template writes it in are masked alike: as is, URL-encoded, JSON-escaped,
//!   its base64, and inside any base64 text that decodes to bytes holding it (a Basic
//!   authorization of `user:{{ env.PW }}`, a token's payload);
//! - the text is masked in one pass over what it was: a stand-in is never masked again (the
//!   `4` of `base64`), nor is a stand-in already in the text (a traced value derived from a
//!   secret, masked before).
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
/// A decoded base64 text is searched for values this long (bytes) or longer; a shorter one
/// is found only as all it holds (a few random bytes hold three by chance).
const MIN_HIDDEN: usize = 4;
/// A plain word or number this long (in characters) is masked wherever it occurs; a shorter
/// one only where it stands alone.
pub const PLAIN_MASKED_FROM: usize = 8;

/// One form of a secret to hide: the text, and what stands in its place.
struct Form {
    text: String,
    stand_in: String,
    /// Masked only where no letter or digit touches it (a short plain word or number).
    alone: bool,
}

/// The secrets of a run, with the forms a template may have written them in.
#[derive(Default)]
pub struct Secrets {
    /// Longest first, so that a secret containing another is masked whole.
    forms: Vec<Form>,
    /// (name, value): what a decoded base64 text is searched for.
    values: Vec<(String, String)>,
    /// Every stand-in this run's masking writes, longest first: left as they are in a text.
    stand_ins: Vec<String>,
}

/// Whether `value` cannot be told apart from ordinary text inside a longer word or number: a
/// short plain word or number.
fn plain_and_short(value: &str) -> bool {
    let plain = value.chars().all(char::is_alphabetic) || value.trim().parse::<f64>().is_ok();
    plain && value.chars().count() < PLAIN_MASKED_FROM
}

/// Whether `text[at..end]` stands alone: no letter or digit right before or after it.
fn alone(text: &str, at: usize, end: usize) -> bool {
    let touches = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    !touches(text[..at].chars().next_back()) && !touches(text[end..].chars().next())
}

impl Secrets {
    /// The secrets (name, value); empty values hide nothing and are left out.
    pub fn new(secrets: &[(String, String)]) -> Secrets {
        let mut forms: Vec<Form> = Vec::new();
        let mut values = Vec::new();
        let mut stand_ins = Vec::new();
        for (name, value) in secrets {
            if value.is_empty() {
                continue;
            }
            let alone = plain_and_short(value);
            let stand_in = format!("[masked env.{name}]");
            let b64_stand_in = format!("[masked base64(env.{name})]");
            // As a template writes it: as is, URL-encoded (a query, a form), JSON-escaped.
            let mut url = String::new();
            percent_encode(value, &mut url);
            let json = serde_json::to_string(value).unwrap_or_default();
            let json = json.trim_matches('"').to_string();
            let b64 = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
            let written = [url, json].into_iter().map(|f| (f, stand_in.clone()));
            for (text, stand_in) in std::iter::once((value.clone(), stand_in.clone()))
                .chain(written)
                .chain([(b64, b64_stand_in.clone())])
            {
                if !forms.iter().any(|f| f.text == text) {
                    forms.push(Form {
                        text,
                        stand_in,
                        alone,
                    });
                }
            }
            stand_ins.extend([
                stand_in,
                b64_stand_in,
                format!("[masked base64(… env.{name} …)]"),
            ]);
            values.push((name.clone(), value.clone()));
        }
        forms.sort_by_key(|f| std::cmp::Reverse(f.text.len()));
        stand_ins.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Secrets {
            forms,
            values,
            stand_ins,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every secret replaced by its stand-in: as written, URL-encoded, JSON-escaped,
    /// base64-encoded, and inside any base64 text that decodes to something holding it (a Basic
    /// authorization of `user:{{ env.PW }}`, a token's payload). One pass over `text`: what
    /// is replaced is found in `text` as it was, never in a stand-in.
    pub fn mask<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.is_empty() {
            return Cow::Borrowed(text);
        }
        // Stand-ins already there stay as they are; then encoded texts: a secret's own base64
        // can sit inside a longer one (after `alice:`, whose 6 bytes encode apart), and masking
        // it there would break the rest; then each form, longest first.
        let mut spans: Vec<(usize, usize, Cow<'_, str>)> = Vec::new();
        for stand_in in &self.stand_ins {
            for (at, found) in text.match_indices(stand_in.as_str()) {
                claim(&mut spans, at, at + found.len(), Cow::Borrowed(found));
            }
        }
        for (start, end, stand_in) in self.encoded(text) {
            claim(&mut spans, start, end, Cow::Owned(stand_in));
        }
        for f in &self.forms {
            for (at, _) in text.match_indices(f.text.as_str()) {
                let end = at + f.text.len();
                if !f.alone || alone(text, at, end) {
                    claim(&mut spans, at, end, Cow::Borrowed(f.stand_in.as_str()));
                }
            }
        }
        if spans.iter().all(|(s, e, by)| text[*s..*e] == **by) {
            return Cow::Borrowed(text);
        }
        spans.sort_by_key(|(start, _, _)| *start);
        let mut out = String::with_capacity(text.len());
        let mut done = 0;
        for (start, end, by) in &spans {
            out.push_str(&text[done..*start]);
            out.push_str(by);
            done = *end;
        }
        out.push_str(&text[done..]);
        Cow::Owned(out)
    }

    /// Each base64 run of `text` that decodes to bytes holding a secret: where, and its
    /// stand-in.
    fn encoded(&self, text: &str) -> Vec<(usize, usize, String)> {
        let mut found = Vec::new();
        for (start, end) in base64_runs(text) {
            let Some((name, whole, skip)) = self.hidden_in(&text[start..end]) else {
                continue;
            };
            let stand_in = if whole {
                format!("[masked base64(env.{name})]")
            } else {
                format!("[masked base64(… env.{name} …)]")
            };
            found.push((start + skip, end, stand_in));
        }
        found
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
            .find(|(_, v)| {
                decoded == v.as_bytes()
                    || (v.len() >= MIN_HIDDEN && contains(&decoded, v.as_bytes()))
            })
            .map(|(name, v)| (name.as_str(), decoded == v.as_bytes()))
    }
}

/// Takes `start..end` of the text for `by`, unless part of it is taken already.
fn claim<'a>(
    spans: &mut Vec<(usize, usize, Cow<'a, str>)>,
    start: usize,
    end: usize,
    by: Cow<'a, str>,
) {
    if !spans.iter().any(|(s, e, _)| start < *e && *s < end) {
        spans.push((start, end, by));
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
    fn short_plain_words_and_numbers_are_masked_where_they_stand_alone() {
        // Inside a longer word or number they are left (`4` in `404`, `reset` in `resetting`;
        // `HTTP`, whose base64 decodes to a byte `4`); standing alone they are the value, and
        // never reach a report as it (a short password is a secret too).
        let s = secrets(&[("PAGE_SIZE", "4"), ("MODE", "reset"), ("PW", "letmein")]);
        for text in ["got 404 from HTTP", "resetting 14 rows", "letmeinto"] {
            assert!(
                matches!(s.mask(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
        assert_eq!(
            s.mask("GET /nf?page_size=4: Connection reset by peer"),
            "GET /nf?page_size=[masked env.PAGE_SIZE]: Connection [masked env.MODE] by peer"
        );
        assert_eq!(s.mask("pw=letmein"), "pw=[masked env.PW]");
        assert_eq!(
            s.mask("Basic bGV0bWVpbg=="),
            "Basic [masked base64(env.PW)]"
        );
    }

    #[test]
    fn a_short_value_that_is_no_plain_word_or_number_and_a_long_one_are_masked() {
        let s = secrets(&[("PIN", "x9-1"), ("WORD", "password"), ("N", "12345678")]);
        assert_eq!(
            s.mask("pin=x9-1&a=bx9-1"),
            "pin=[masked env.PIN]&a=b[masked env.PIN]"
        );
        assert_eq!(s.mask("wrong password"), "wrong [masked env.WORD]");
        assert_eq!(s.mask("id=0123456789"), "id=0[masked env.N]9");
    }

    #[test]
    fn a_stand_in_is_never_masked_again() {
        // A secret that a stand-in holds: `env.TOKEN` is in `[masked base64(env.TOKEN)]`.
        let s = secrets(&[("TOKEN", "s3cr3t"), ("NAME", "env.TOKEN")]);
        assert_eq!(s.mask("Basic czNjcjN0"), "Basic [masked base64(env.TOKEN)]");
        assert_eq!(
            s.mask("s3cr3t env.TOKEN"),
            "[masked env.TOKEN] [masked env.NAME]"
        );
        // One already in the text (a traced value masked before) stays as it is.
        let text = "body [masked env.TOKEN] and [masked base64(… env.TOKEN …)]";
        assert!(matches!(s.mask(text), Cow::Borrowed(t) if t == text));
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
