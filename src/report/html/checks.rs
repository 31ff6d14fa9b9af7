//! The page's checks and data section: the flows' checks (the overall pass rate, and a row per
//! check only for those that failed) and the bytes each metric sent and received.

use std::fmt::Write;

use super::format::{count_cell, num_cell};
use crate::report::checks::bytes_text;
use crate::report::markup::escape as esc;
use crate::report::summary::Summary;

/// `<section id="checks">`: nothing when the run has neither checks nor bytes.
pub(super) fn checks_and_data(out: &mut String, s: &Summary) {
    let checks = &s.checks;
    if checks.is_empty() && s.bytes_sent == 0 && s.bytes_received == 0 {
        return;
    }
    out.push_str(r#"<section id="checks"><h2>Checks and data</h2>"#);
    if !checks.is_empty() {
        let _ = write!(
            out,
            r#"<p id="checks-rate">Checks (each condition of a step's <code>expect</code>, on every answer the step judged): <strong>{}</strong></p>"#,
            esc(&checks.text())
        );
        let failing = checks.failing();
        if !failing.is_empty() {
            out.push_str(
                r#"<div class="scroll"><table class="checks"><thead><tr><th>Failed check</th><th class="num">Passed</th><th class="num">Failed</th><th class="num">Pass rate</th></tr></thead><tbody>"#,
            );
            for c in failing {
                let _ = write!(out, "<tr><td><code>{}</code></td>", esc(&c.name));
                count_cell(out, c.passed, false);
                count_cell(out, c.failed, true);
                let _ = write!(out, r#"<td class="num">{}</td></tr>"#, esc(&c.rate_text()));
            }
            out.push_str("</tbody></table></div>");
        }
    }
    data_table(out, s);
    out.push_str("</section>");
}

/// Bytes per metric that moved any, and the run's totals (unnamed requests included).
fn data_table(out: &mut String, s: &Summary) {
    if s.bytes_sent == 0 && s.bytes_received == 0 {
        return;
    }
    out.push_str(
        r#"<p class="note">Bytes as the HTTP and WebSocket clients wrote and read them (request and response heads and bodies; a socket's upgrade and frames with their headers), above TLS.</p><div class="scroll"><table class="data"><thead><tr><th>Data</th><th class="num">Sent</th><th class="num">Received</th></tr></thead><tbody>"#,
    );
    let row = |out: &mut String, name: &str, sent: u64, received: u64| {
        let _ = write!(out, "<tr><td>{}</td>", esc(name));
        num_cell(out, &sent.to_string(), &bytes_text(sent), "");
        num_cell(out, &received.to_string(), &bytes_text(received), "");
        out.push_str("</tr>");
    };
    for (name, m) in &s.metrics {
        if m.bytes_sent > 0 || m.bytes_received > 0 {
            row(out, name, m.bytes_sent, m.bytes_received);
        }
    }
    row(out, "all (the run)", s.bytes_sent, s.bytes_received);
    out.push_str("</tbody></table></div>");
}
