//! `inrush run --trace N`: what a few sampled users did, event by event, in `trace.jsonl` of the
//! run directory — to debug a scenario against a server it has never met.
//!
//! Bounded on purpose: only the sampled users are traced (the others carry a `None` and pay one
//! branch per event site), bodies and frames are cut at [`BODY_LIMIT`] bytes, and a user writes at
//! most [`EVENTS_PER_USER`] events. Every text is masked before it is cut or written: no value a
//! template took from `env.*` reaches the file (nor its base64 form, as in a Basic auth header).
//!
//! Lines from every worker go through one mutex-guarded writer: that is a lock per *traced* event,
//! for a handful of users, never one per sample of the measured swarm.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use super::secrets::Secrets;

/// Bodies and frames longer than this are cut (at a character boundary) in the trace.
pub const BODY_LIMIT: usize = 2048;
/// A traced user's events beyond this are left out (one `truncated` event says so).
pub const EVENTS_PER_USER: u32 = 10_000;

/// The trace of one run: which users it follows, the secrets it masks, the file.
pub struct Tracer {
    users: u64,
    first_closed_index: u64,
    secrets: Secrets,
    out: Mutex<Sink>,
}

struct Sink {
    file: BufWriter<File>,
    /// The first write error; later lines are not attempted and `finish` reports it.
    error: Option<std::io::Error>,
}

impl Tracer {
    /// A trace of `users` users into `path`, masking `secrets` (name, value).
    pub fn create(
        path: &Path,
        users: u64,
        first_closed_index: u64,
        secrets: &[(String, String)],
    ) -> std::io::Result<Tracer> {
        let file = BufWriter::new(File::create(path)?);
        Ok(Tracer {
            users,
            first_closed_index,
            secrets: Secrets::new(secrets),
            out: Mutex::new(Sink { file, error: None }),
        })
    }

    /// Whether user `index` is traced: the first `users` indexes of the open timeline (its first
    /// arrivals, the same for a given scenario and seed) and, in a scenario with closed phases
    /// after open ones, the first `users` closed-phase indexes too.
    pub fn traces(&self, index: u64) -> bool {
        index < self.users
            || (self.first_closed_index > 0
                && index >= self.first_closed_index
                && index - self.first_closed_index < self.users)
    }

    /// What masks a user's texts: the run's secrets and `derived`, the user's own values made
    /// from them ((stand-in, value), see `runtime::eval`).
    pub fn masker<'m>(&'m self, derived: &'m [(String, String)]) -> Mask<'m> {
        Mask {
            secrets: &self.secrets,
            derived,
        }
    }

    /// Writes one event (already masked) as a line.
    pub fn write(&self, event: &serde_json::Value) {
        let Ok(mut sink) = self.out.lock() else {
            return;
        };
        if sink.error.is_some() {
            return;
        }
        let line = event.to_string();
        if let Err(e) = writeln!(sink.file, "{line}") {
            sink.error = Some(e);
        }
    }

    /// Flushes the file; the first write error of the run, if any.
    pub fn finish(&self) -> std::io::Result<()> {
        let mut sink = self
            .out
            .lock()
            .map_err(|_| std::io::Error::other("a worker panicked while writing the trace"))?;
        if let Some(e) = sink.error.take() {
            return Err(e);
        }
        sink.file.flush()
    }
}

/// Masks one traced user's texts (see [`Tracer::masker`]).
pub struct Mask<'m> {
    secrets: &'m Secrets,
    derived: &'m [(String, String)],
}

impl Mask<'_> {
    /// `text` with every secret (and value derived from one) replaced by its stand-in.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        // Derived values first: they name what they were made of, which the decoded base64
        // the run's secrets find in them would not.
        for (stand_in, derived) in self.derived {
            if out.contains(derived.as_str()) {
                out = out.replace(derived.as_str(), stand_in);
            }
        }
        self.secrets.mask(&out).into_owned()
    }

    /// `text` masked, then cut to [`BODY_LIMIT`] bytes: (the text, its size before the cut).
    pub fn body(&self, text: &str) -> (String, usize) {
        let mut masked = self.mask(text);
        let size = masked.len();
        if size > BODY_LIMIT {
            let mut end = BODY_LIMIT;
            while !masked.is_char_boundary(end) {
                end -= 1;
            }
            masked.truncate(end);
        }
        (masked, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracer(dir: &Path, secrets: &[(&str, &str)]) -> Tracer {
        let secrets: Vec<(String, String)> = secrets
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        Tracer::create(&dir.join("trace.jsonl"), 2, 100, &secrets).expect("a trace file")
    }

    #[test]
    fn secrets_and_their_base64_are_masked_before_the_cut() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let t = tracer(
            dir.path(),
            &[
                ("TOKEN", "s3cr3t"),
                ("LONG", "s3cr3t-and-more"),
                ("PW", "a b\"c"),
            ],
        );
        // As a query or a JSON string writes it, too; and a user's derived values.
        let derived = [("[derived]".to_string(), "ZGVyaXZlZA==".to_string())];
        let m = t.masker(&derived);
        assert_eq!(
            m.mask(r#"?p=a%20b%22c {"p":"a b\"c"} ZGVyaXZlZA=="#),
            r#"?p=[masked env.PW] {"p":"[masked env.PW]"} [derived]"#
        );
        let t = t.masker(&[]);
        assert_eq!(
            t.mask("a s3cr3t-and-more b s3cr3t"),
            "a [masked env.LONG] b [masked env.TOKEN]"
        );
        assert_eq!(t.mask("Basic czNjcjN0"), "Basic [masked base64(env.TOKEN)]");
        // A secret straddling the cut is masked first, so no prefix of it is left.
        let text = format!("{}s3cr3t", "x".repeat(BODY_LIMIT - 3));
        let (cut, size) = t.body(&text);
        assert_eq!(size, BODY_LIMIT - 3 + "[masked env.TOKEN]".len());
        assert_eq!(cut.len(), BODY_LIMIT);
        assert!(!cut.contains("s3c"), "{cut}");
        // A cut lands on a character boundary.
        let (cut, _) = t.body(&"é".repeat(BODY_LIMIT));
        assert_eq!(cut.len(), BODY_LIMIT);
    }

    #[test]
    fn the_first_users_of_each_kind_are_traced() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let t = tracer(dir.path(), &[]);
        let traced: Vec<u64> = (0..200).filter(|&i| t.traces(i)).collect();
        assert_eq!(traced, [0, 1, 100, 101]);
        t.write(&serde_json::json!({"event": "x"}));
        t.finish().expect("flushed");
        let text = std::fs::read_to_string(dir.path().join("trace.jsonl")).expect("the file");
        assert_eq!(text, "{\"event\":\"x\"}\n");
    }
}
