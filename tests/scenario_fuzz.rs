//! No input panics the scenario compiler (issue 12): every shipped scenario is mutated the way a
//! hand edit, a bad merge or a generator goes wrong — byte flips, truncation, lines deleted or
//! duplicated, a value of the wrong type, huge/negative/NaN numbers, non-ASCII text — and each
//! mutant goes through `validate`'s path in-process. Each must either compile or be rejected with
//! an error that points into the file (`path:line:col`), never panic.
//!
//! Seeded, so a failure names the mutant that caused it and reproduces; the count keeps the test
//! to a few seconds on a 2-core machine.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// splitmix64: a tiny seeded generator, so the mutants do not depend on any crate's stream.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const ODD_NUMBERS: &[&str] = &[
    "0",
    "-1",
    "-0.5",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "18446744073709551616",
    "9223372036854775807",
    "0.000000001",
    "4294967296",
];

const ODD_TEXT: &[&str] = &[
    "é",
    "日本",
    "🚀",
    "\u{200b}",
    "\u{202e}",
    "{{",
    "}}",
    "{{ é }}",
    "{{ x.",
    "$.",
    "$[",
    "[",
    "]",
    "(",
    "\\",
    "\"",
    "'",
    "=",
    "\n",
    "\t",
    "999999999h",
    "-1s",
    "1e400ms",
    "nan s",
    "0s",
];

const ODD_VALUES: &[&str] = &[
    "\"x\"",
    "1",
    "true",
    "[]",
    "{}",
    "[1, \"a\"]",
    "{ a = 1 }",
    "\"\"",
    "\"1s\"",
    "-3",
    "1.5",
];

fn mutate(text: &str, rng: &mut Mix) -> String {
    let mut text = text.to_string();
    // One to three edits, so mutants also combine faults.
    for _ in 0..1 + rng.below(3) {
        text = match rng.below(9) {
            0 => flip_byte(&text, rng),
            1 => {
                let cut = char_boundary(&text, rng.below(text.len() + 1));
                text[..cut].to_string()
            }
            2 => edit_lines(&text, rng, |lines, i| {
                lines.remove(i);
            }),
            3 => edit_lines(&text, rng, |lines, i| {
                let line = lines[i].clone();
                lines.insert(i, line);
            }),
            4 => replace_value(&text, rng, ODD_VALUES),
            5 => replace_number(&text, rng),
            6 => {
                let at = char_boundary(&text, rng.below(text.len() + 1));
                format!("{}{}{}", &text[..at], rng.pick(ODD_TEXT), &text[at..])
            }
            7 => replace_value(&text, rng, ODD_NUMBERS),
            _ => edit_lines(&text, rng, |lines, i| {
                // Move a line elsewhere: a key lands in another table.
                let line = lines.remove(i);
                let to = i / 2;
                lines.insert(to, line);
            }),
        };
    }
    text
}

fn char_boundary(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn flip_byte(text: &str, rng: &mut Mix) -> String {
    let mut bytes = text.as_bytes().to_vec();
    if bytes.is_empty() {
        return String::new();
    }
    let i = rng.below(bytes.len());
    bytes[i] ^= 1 << rng.below(7);
    // A scenario is read as UTF-8 text; a flip that breaks UTF-8 is read_to_string's error,
    // tested elsewhere. Keep what still decodes.
    String::from_utf8(bytes).unwrap_or_else(|_| text.to_string())
}

fn edit_lines(text: &str, rng: &mut Mix, edit: impl Fn(&mut Vec<String>, usize)) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.is_empty() {
        return String::new();
    }
    let i = rng.below(lines.len());
    edit(&mut lines, i);
    lines.join("\n")
}

/// Replaces the value of a random `key = value` line.
fn replace_value(text: &str, rng: &mut Mix, values: &[&str]) -> String {
    let value = rng.pick(values).to_string();
    edit_lines(text, rng, move |lines, i| {
        if let Some(eq) = lines[i].find(" = ") {
            lines[i] = format!("{} = {}", &lines[i][..eq], value);
        }
    })
}

/// Replaces a random run of digits anywhere (inside strings too: "10s" → "1e308s").
fn replace_number(text: &str, rng: &mut Mix) -> String {
    let starts: Vec<usize> = text
        .char_indices()
        .filter(|&(i, c)| {
            c.is_ascii_digit() && (i == 0 || !text.as_bytes()[i - 1].is_ascii_digit())
        })
        .map(|(i, _)| i)
        .collect();
    if starts.is_empty() {
        return text.to_string();
    }
    let start = *rng.pick(&starts);
    let end = text[start..]
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or(text.len(), |n| start + n);
    format!(
        "{}{}{}",
        &text[..start],
        rng.pick(ODD_NUMBERS),
        &text[end..]
    )
}

fn shipped_scenarios() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["scenarios", "tests/fixtures"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).expect("shipped scenario is readable");
                files.push((path, text));
            }
        }
    }
    files.sort();
    files
}

/// An error a user can act on names the file and a position in it.
fn is_positioned(message: &str, path: &Path) -> bool {
    let name = path.display().to_string();
    message.lines().any(|line| {
        line.find(&name).is_some_and(|at| {
            let rest = &line[at + name.len()..];
            let mut parts = rest.splitn(3, ':');
            parts.next() == Some("")
                && parts.next().is_some_and(|l| l.parse::<u32>().is_ok())
                && parts.next().is_some_and(|c| {
                    c.split(':')
                        .next()
                        .is_some_and(|c| c.parse::<u32>().is_ok())
                })
        })
    })
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn mutated_scenarios_compile_or_fail_with_a_position_and_never_panic() {
    let files = shipped_scenarios();
    assert!(files.len() >= 8, "the shipped scenarios are found");
    // Keep the panic hook quiet: a panic is reported below with the mutant that caused it.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));

    // A longer hunt: INRUSH_FUZZ_MUTANTS=200000 INRUSH_FUZZ_SEED=7 cargo test --test scenario_fuzz
    let count = env_number("INRUSH_FUZZ_MUTANTS").unwrap_or(3_000);
    let mut rng = Mix(env_number("INRUSH_FUZZ_SEED").unwrap_or(0x1D2C_3B4A_5968_7788));
    let (mut compiled, mut rejected) = (0, 0);
    let mut unpositioned = Vec::new();
    let mut panicked = None;
    for n in 0..count {
        let (path, original) = rng.pick(&files);
        let mutant = mutate(original, &mut rng);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            inrush::compiled::compile(path, &mutant, None).map(|plan| {
                // validate prints this; it must hold for whatever compiled.
                inrush::compiled::describe(&plan)
            })
        }));
        match outcome {
            Err(_) => {
                panicked = Some((n, path.clone(), mutant));
                break;
            }
            Ok(Ok(_)) => compiled += 1,
            Ok(Err(errors)) => {
                rejected += 1;
                let message = errors.to_string();
                if !is_positioned(&message, path) {
                    unpositioned.push((n, path.clone(), message));
                }
            }
        }
    }
    std::panic::set_hook(hook);

    if let Some((n, path, mutant)) = panicked {
        panic!(
            "mutant {n} of {} panicked the compiler; the mutant:\n{mutant}",
            path.display()
        );
    }
    assert!(
        unpositioned.is_empty(),
        "{} of {rejected} rejections name no file:line:col, e.g. mutant {} of {}: {}",
        unpositioned.len(),
        unpositioned[0].0,
        unpositioned[0].1.display(),
        unpositioned[0].2
    );
    eprintln!("{count} mutants: {compiled} compiled, {rejected} rejected with a position");
    // Both outcomes must occur, or the mutations are too weak (or too strong) to test anything.
    assert!(
        compiled > 100 && rejected > 100,
        "compiled {compiled}, rejected {rejected}"
    );
}
