//! A metric's name as an hlog tag. HdrHistogram's log format ends a tag at a comma and its
//! readers split lines at spaces, so a tag cannot hold a space, comma, CR or LF — yet step and
//! transaction names are the user's words (`sign up`). Those characters, and `%` itself so the
//! text decodes unambiguously, are written percent-encoded (`sign%20up`): any HdrHistogram tool
//! still reads the line, and inrush decodes the tag back to the name. A log says it encodes its
//! tags in a header comment ([`NOTE`]); a log written before that (no note) has its tags read as
//! they stand, so an old run directory's `50%` stays `50%`.

use std::borrow::Cow;

/// The header comment of a log whose tags are percent-encoded.
pub const NOTE: &str = "tags: space, comma, CR, LF and % are written %20 %2C %0D %0A %25";

/// The characters a tag cannot hold, and `%`, with their codes.
const ESCAPED: [(char, &str); 5] = [
    (' ', "%20"),
    (',', "%2C"),
    ('\r', "%0D"),
    ('\n', "%0A"),
    ('%', "%25"),
];

/// `name` as a tag HdrHistogram accepts.
pub fn encode(name: &str) -> Cow<'_, str> {
    if !name.chars().any(|c| ESCAPED.iter().any(|&(e, _)| e == c)) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match ESCAPED.iter().find(|&&(e, _)| e == c) {
            Some((_, code)) => out.push_str(code),
            None => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The name a tag of an encoding log stands for. A `%` not followed by one of the codes
/// [`encode`] writes (an edited log) is kept as it stands.
pub fn decode(tag: &str) -> Cow<'_, str> {
    if !tag.contains('%') {
        return Cow::Borrowed(tag);
    }
    let mut out = String::with_capacity(tag.len());
    let mut rest = tag;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let code = ESCAPED
            .iter()
            .find(|(_, code)| after.get(..3).is_some_and(|s| s.eq_ignore_ascii_case(code)));
        match code {
            Some(&(c, _)) => {
                out.push(c);
                rest = &after[3..];
            }
            None => {
                out.push('%');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_a_tag_cannot_hold_round_trip() {
        for name in ["sign up", "a,b", "50%", "x\r\ny", "%20", "plain", "é %2"] {
            let tag = encode(name);
            assert!(
                hdrhistogram::serialization::interval_log::Tag::new(&tag).is_some(),
                "{tag:?}"
            );
            assert_eq!(decode(&tag), name);
        }
        assert_eq!(encode("sign up, now"), "sign%20up%2C%20now");
        assert_eq!(encode("plain"), "plain");
    }

    #[test]
    fn a_stray_percent_stays() {
        assert_eq!(decode("50%"), "50%");
        assert_eq!(decode("a%zzb%2"), "a%zzb%2");
        assert_eq!(decode("a%2cb"), "a,b");
    }
}
