//! The target's text as inrush quotes it in an error, a report or a terminal line: it is the
//! target's, so it is cut to a bound and its control characters are replaced by spaces (an
//! escape sequence would otherwise retitle or clear the user's terminal, a CR or LF forge a
//! line). The WebSocket close reason, the upgrade's answer and `fail_on`'s match are quoted so.

/// `text` cut to at most `at_most` bytes (at a character boundary), control characters
/// replaced by spaces; and whether anything was cut.
pub fn target_text(text: &str, at_most: usize) -> (String, bool) {
    let mut out = String::with_capacity(text.len().min(at_most));
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > at_most {
            return (out, true);
        }
        out.push(c);
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_spaces_and_the_text_is_cut_at_a_char_boundary() {
        let (s, cut) = target_text("err \u{1b}]0;PWNED\u{7}\r\nfake", 64);
        assert_eq!((s.as_str(), cut), ("err  ]0;PWNED   fake", false));
        let (s, cut) = target_text("ééé", 5);
        assert_eq!((s.as_str(), cut), ("éé", true));
        assert_eq!(target_text("abc", 3), ("abc".to_string(), false));
    }
}
