//! What a TOML error means in a scenario file, said the way its author can act on: serde's
//! "invalid type: integer `10`, expected a string" under `duration` becomes "a duration is
//! text with a unit"; "missing field `target`" shows the two forms a target takes.

/// Keys whose value is a duration (`"300ms"`, `"2s"`, `"1m"`), wherever they appear.
const DURATION_KEYS: &[&str] = &[
    "duration",
    "ramp",
    "timeout",
    "drain",
    "within",
    "delivery_deadline",
    "max_start_lag",
    "grace",
    "backoff",
    "max_backoff",
    "constant",
    "min",
    "max",
    "mean",
    "long_poll",
    "latency",
    "jitter",
    "schedule_lag_p99",
    "loop_lag_p99",
    "sms_delay",
    "stall_every",
    "stall_for",
    "drop_sockets",
    "for",
];

/// `message` with a hint for the error at `at` in `text`, when one helps.
pub fn explain(message: &str, text: &str, at: usize) -> String {
    if let Some(field) = missing_field(message) {
        if let Some(hint) = missing_hint(field) {
            return format!("{message}: {hint}");
        }
    }
    let numeric = message.starts_with("invalid type: integer")
        || message.starts_with("invalid type: floating point");
    if numeric && message.contains("expected a string") {
        let key = key_before(text, at);
        let value = value_at(text, at);
        if key.is_some_and(|k| DURATION_KEYS.contains(&k)) {
            let example = if value == "0" {
                "0s".to_string()
            } else {
                format!("{value}s")
            };
            return format!(
                "{message}: `{}` is a duration, written as text with a unit, e.g. \"{example}\" or \"{value}ms\"",
                key.unwrap_or_default()
            );
        }
        return format!("{message}: write it in quotes, e.g. \"{value}\"");
    }
    message.to_string()
}

fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

fn missing_hint(field: &str) -> Option<&'static str> {
    Some(match field {
        "target" => {
            "add a [target] table: `[target]` with `builtin = {}` (inrush's own messenger, no \
             setup) or `url = \"https://staging.example.com\"` (your service)"
        }
        "load" => {
            "add a [load] table, e.g. `[load]` with `phases = [ { name = \"surge\", duration = \
             \"30s\", rate = 50 } ]`"
        }
        "name" => "add `name = \"my-rehearsal\"` at the top (it names the run directory)",
        _ => return None,
    })
}

/// The key whose value starts at `at`: the word before the nearest `=` on that line.
fn key_before(text: &str, at: usize) -> Option<&str> {
    let line_start = text.get(..at)?.rfind('\n').map_or(0, |i| i + 1);
    let before = text.get(line_start..at)?;
    let eq = before.rfind('=')?;
    let key = before[..eq].trim_end();
    let start = key
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(0, |i| i + 1);
    let key = &key[start..];
    (!key.is_empty()).then_some(key)
}

/// The bare value at `at` (a number), as written.
fn value_at(text: &str, at: usize) -> &str {
    let rest = text.get(at..).unwrap_or("");
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E' | '_')))
        .unwrap_or(rest.len());
    &rest[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint_at(text: &str, needle: &str, message: &str) -> String {
        explain(message, text, text.find(needle).expect("needle"))
    }

    #[test]
    fn a_number_where_a_duration_goes_gets_its_unit_suggested() {
        let text = "[load]\nphases = [ { name = \"a\", duration = 10, rate = 5 } ]\n";
        let said = hint_at(text, "10,", "invalid type: integer `10`, expected a string");
        assert!(
            said.ends_with(
                "`duration` is a duration, written as text with a unit, e.g. \"10s\" or \"10ms\""
            ),
            "{said}"
        );
        let text = "[run]\ntimeout = 2.5\n";
        let said = hint_at(
            text,
            "2.5",
            "invalid type: floating point `2.5`, expected a string",
        );
        assert!(said.contains("e.g. \"2.5s\""), "{said}");
        // A number where other text goes: quote it.
        let text = "[user]\nphone_prefix = 44\n";
        let said = hint_at(text, "44", "invalid type: integer `44`, expected a string");
        assert!(said.ends_with("write it in quotes, e.g. \"44\""), "{said}");
    }

    #[test]
    fn a_missing_target_shows_both_forms() {
        let said = explain("missing field `target`", "", 0);
        assert!(
            said.contains("builtin = {}") && said.contains("url = "),
            "{said}"
        );
        assert_eq!(
            explain("missing field `other`", "", 0),
            "missing field `other`"
        );
        assert_eq!(explain("something else", "x = 1", 4), "something else");
    }
}
