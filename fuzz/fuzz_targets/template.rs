//! Any text as a `{{ }}` template, two ways: through the template parser with a resolver that
//! accepts every path (the grammar alone: nesting, quotes, calls, non-ASCII), and inside a real
//! scenario's request path, JSON body and expectation, where the flow compiler's own scope
//! resolves it. Either compiles or returns an error at a position; never a panic.
#![no_main]

use inrush::compiled::flow::template::{self, Escape, Resolver, Segment, Value};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

/// Accepts every name and call: the parser's grammar is what is under test.
struct Anything;

impl Resolver for Anything {
    type Expr = ();
    fn literal(&mut self, _: Value) {}
    fn concat(&mut self, _: Vec<()>) {}
    fn path(&mut self, _: &[Segment], _: Vec<Vec<()>>) -> Result<(), String> {
        Ok(())
    }
}

/// `text` as a TOML basic string's content (the scenario below must stay valid TOML around it).
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for escape in [Escape::None, Escape::Url] {
        let _ = template::compile(text, escape, &mut Anything);
    }
    let t = toml_string(text);
    let scenario = format!(
        r#"name = "fuzz"
[target]
builtin = {{}}
[load]
phases = [{{ duration = "1s", rate = 1 }}]
[[flows]]
name = "f"
[[flows.steps]]
name = "a"
http = "GET /x/{{{{ user.index }}}}"
headers = {{ "x-fuzz" = {t} }}
[[flows.steps]]
name = "b"
http = {t}
json = {{ k = {t} }}
expect = {{ status = 200, json = {{ "$.k" = {t} }} }}
"#
    );
    if let Err(errors) = inrush::compiled::compile(Path::new("fuzz.toml"), &scenario, None) {
        let _ = errors.to_string();
    }
});
