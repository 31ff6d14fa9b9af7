//! How numbers, times and small pieces of markup read on the page.

use std::fmt::Write;
use std::time::Duration;

use super::esc;
use crate::report::summary::{Latency, Verdict};

/// A count with thousands separators: `1,783`.
pub(crate) fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds with about four significant digits: `0.277`, `5.90`, `26.4`, `207`.
pub(crate) fn ms(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let a = v.abs();
    if a < 1.0 {
        format!("{v:.3}")
    } else if a < 10.0 {
        format!("{v:.2}")
    } else if a < 1000.0 {
        format!("{v:.1}")
    } else {
        int(v.round().max(0.0) as u64)
    }
}

/// A number as given, without float noise: `0`, `26.415`, `1e-7`.
pub(crate) fn plain(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

pub(crate) fn num_cell(out: &mut String, value: &str, shown: &str, class: &str) {
    let _ = write!(
        out,
        r#"<td class="num{class}" data-value="{}">{}</td>"#,
        esc(value),
        esc(shown)
    );
}

pub(super) fn count_cell(out: &mut String, n: u64, bad_if_positive: bool) {
    count_cell_in(out, n, bad_if_positive, "");
}

/// A count cell with `class` added (` wide`: hidden on a narrow screen).
pub(super) fn count_cell_in(out: &mut String, n: u64, bad_if_positive: bool, class: &str) {
    let bad = if bad_if_positive && n > 0 { " bad" } else { "" };
    num_cell(out, &n.to_string(), &int(n), &format!("{class}{bad}"));
}

pub(super) fn ms_cell(out: &mut String, l: Option<&Latency>, f: impl Fn(&Latency) -> f64) {
    ms_cell_in(out, l, f, "");
}

/// A milliseconds cell with `class` added (` wide`: hidden on a narrow screen).
pub(super) fn ms_cell_in(
    out: &mut String,
    l: Option<&Latency>,
    f: impl Fn(&Latency) -> f64,
    class: &str,
) {
    match l {
        Some(l) => num_cell(out, &plain(f(l)), &ms(f(l)), class),
        None => {
            let _ = write!(out, r#"<td class="num{class}">–</td>"#);
        }
    }
}

pub(super) fn verdict_word(v: Verdict) -> &'static str {
    v.word()
}

/// `2026-11-25T18:50:50.652Z` → `2026-11-25 18:50:50.652 UTC`.
pub(crate) fn readable_time(t: &str) -> String {
    match t.strip_suffix('Z') {
        Some(rest) => format!("{} UTC", rest.replacen('T', " ", 1)),
        None => t.to_string(),
    }
}

/// The end of the run, `started_at + duration_s`, when `started_at` is an RFC 3339 time and
/// the end is a time RFC 3339 can write (humantime's `Display` fails past the year 9999, and
/// `to_string` would panic on that: written into a `String` here, the failure is `None`).
pub(super) fn ended_at(started_at: &str, duration_s: f64) -> Option<String> {
    let start = humantime::parse_rfc3339_weak(started_at).ok()?;
    let d = Duration::try_from_secs_f64(duration_s).ok()?;
    let end = start.checked_add(d)?;
    let mut out = String::new();
    write!(out, "{}", humantime::format_rfc3339_millis(end)).ok()?;
    Some(out)
}

pub(crate) fn meta_row(out: &mut String, key: &str, value_html: &str) {
    let _ = write!(out, "<div><dt>{}</dt><dd>{value_html}</dd></div>", esc(key));
}

pub(super) fn kv_card(out: &mut String, title: &str, rows: &[(&str, String)]) {
    let _ = write!(
        out,
        r#"<div class="card"><h3>{}</h3><table><tbody>"#,
        esc(title)
    );
    for (k, v) in rows {
        let _ = write!(out, "<tr><td>{}</td>{v}</tr>", esc(k));
    }
    out.push_str("</tbody></table></div>");
}

pub(super) fn cell(f: impl FnOnce(&mut String)) -> String {
    let mut s = String::new();
    f(&mut s);
    s
}

pub(super) fn lat_summary(l: Option<&Latency>) -> String {
    match l {
        Some(l) => format!(
            r#"<td class="num" data-value="{}">p50 {} · p99 {} · max {} ms</td>"#,
            plain(l.p99),
            ms(l.p50),
            ms(l.p99),
            ms(l.max)
        ),
        None => r#"<td class="num">–</td>"#.to_string(),
    }
}
