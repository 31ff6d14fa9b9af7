//! Any bytes as a scenario file: compiled (and described, as `inrush validate` prints it) or
//! rejected with positioned errors, never a panic. Seed it with the shipped scenarios:
//! `cargo +nightly fuzz run scenario fuzz/corpus/scenario ../scenarios` (see docs/fuzzing.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    // A file that is not UTF-8 is refused before parsing (`compiled::load`); the parser sees text.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A relative path that names nothing: `ca`/`cert`/feeder files resolve to missing files,
    // which is a positioned error like any other.
    let path = Path::new("fuzz/scenario.toml");
    match inrush::compiled::compile(path, text, None) {
        Ok(plan) => {
            let _ = inrush::compiled::describe(&plan);
        }
        Err(errors) => {
            // Every error renders (positions inside the text, on char boundaries).
            let _ = errors.to_string();
        }
    }
});
