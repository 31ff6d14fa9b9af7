//! A response head: what its header lines say about the body's framing and the connection
//! ([`Said`]), and a scan of the common head's shape that finds it without `httparse`
//! ([`scan`]).
//!
//! `httparse` spends ~1 000 instructions on a typical 100-byte head (bench/README.md, "Fewer
//! instructions per kept-alive request, second round"), about a tenth of a kept-alive request's
//! whole cost in the generator. The scan accepts only a strict subset of what `httparse`
//! accepts — `HTTP/1.0` or `HTTP/1.1`, a three-digit status, a reason phrase and header values of
//! visible ASCII, spaces and tabs, header names of token characters, every line ended by CRLF,
//! at most [`MAX_HEADERS`] headers — and gives up on anything else, which `httparse` then parses:
//! a head it takes is one `httparse` takes too, read the same way, and every malformed head is
//! still `httparse`'s to judge (the same error, the same message).

use crate::clients::inbuf::ReadError;

/// More header lines than this is a protocol error (hyper's limit too; the WebSocket upgrade's
/// answer takes as many).
pub const MAX_HEADERS: usize = 100;

/// What the header lines say about the body's framing and the connection, in the order they
/// came; the first invalid value is kept as the head's error (after the whole head was found
/// well-formed, as with `httparse`).
#[derive(Debug, Default)]
pub(super) struct Said {
    pub length: Option<u64>,
    /// A `Transfer-Encoding` was sent.
    pub encoded: bool,
    /// The last coding of the last `Transfer-Encoding` is `chunked`.
    pub chunked: bool,
    pub close: bool,
    pub keep_alive: bool,
    pub error: Option<ReadError>,
}

impl Said {
    /// One header line, in order (its name of token characters, as a well-formed head's
    /// are). Inlined down to a look at the name's length: most headers are none of the three.
    #[inline(always)]
    pub(super) fn header(&mut self, name: &[u8], value: &[u8]) {
        if matches!(name.len(), 10 | 14 | 17) && self.error.is_none() {
            if let Err(e) = self.take(name, value) {
                self.error = Some(e);
            }
        }
    }

    #[inline(never)]
    fn take(&mut self, name: &[u8], value: &[u8]) -> Result<(), ReadError> {
        // The length first: three names of three lengths, so most headers are passed over
        // without a comparison of their bytes.
        match name.len() {
            14 if is_name(name, b"content-length") => {
                let n = content_length(value)?;
                if self.length.is_some_and(|l| l != n) {
                    return Err(ReadError::Malformed("conflicting content-length".into()));
                }
                self.length = Some(n);
            }
            17 if is_name(name, b"transfer-encoding") => {
                self.encoded = true;
                // The last coding listed is the one applied last: chunked, or the body runs to
                // the connection's end.
                self.chunked = tokens(value)
                    .last()
                    .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
            }
            10 if is_name(name, b"connection") => {
                for t in tokens(value) {
                    self.close |= t.eq_ignore_ascii_case(b"close");
                    self.keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// A head the scan read whole.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Scanned {
    /// The head's length, its empty last line included.
    pub len: usize,
    pub status: u16,
    pub http10: bool,
    /// Where the first header line starts (`None`: no headers).
    pub first_header: Option<usize>,
}

/// The head at the start of `bytes` when it is whole and of the common shape (the module's
/// doc), its header lines told to `said`; `None` for anything else (incomplete, or of another
/// shape: `httparse` decides, and `said` is then to be dropped).
pub(super) fn scan(bytes: &[u8], said: &mut Said) -> Option<Scanned> {
    let line = bytes.get(..13)?;
    let http10 = match line {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', minor, b' ', ..] => match minor {
            b'0' => true,
            b'1' => false,
            _ => return None,
        },
        _ => return None,
    };
    let digit = |b: u8| b.is_ascii_digit().then(|| u16::from(b - b'0'));
    let status = digit(line[9])? * 100 + digit(line[10])? * 10 + digit(line[11])?;
    if line[12] != b' ' {
        return None;
    }
    let mut at = line_end(bytes, text_end(bytes, 13)?)?;
    let mut first_header = None;
    let mut count = 0;
    loop {
        if *bytes.get(at)? == b'\r' {
            let len = line_end(bytes, at)?;
            return Some(Scanned {
                len,
                status,
                http10,
                first_header,
            });
        }
        let name_end = name_end(bytes, at)?;
        if name_end == at || bytes[name_end] != b':' {
            return None;
        }
        count += 1;
        if count > MAX_HEADERS {
            return None;
        }
        first_header.get_or_insert(at);
        // The spaces before a value are not part of it (as `httparse` reads it).
        let mut value = name_end + 1;
        while bytes.get(value) == Some(&b' ') {
            value += 1;
        }
        let value_end = text_end(bytes, value)?;
        said.header(&bytes[at..name_end], &bytes[value..value_end]);
        at = line_end(bytes, value_end)?;
    }
}

/// The start of the next line, given the `\r` that ends this one (which must be followed by
/// `\n`).
fn line_end(bytes: &[u8], cr: usize) -> Option<usize> {
    (bytes.get(cr + 1) == Some(&b'\n')).then_some(cr + 2)
}

/// Where a header name starting at `at` ends: the first byte that is not a token character.
/// Eight bytes at a time while they are letters, digits and dashes (as nearly every name's
/// are), any other byte looked up alone. Inlined, as [`text_end`] and [`Said::header`]: on
/// every header line of every response, a call costs a fair part of a dozen bytes' work.
#[inline(always)]
fn name_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = ONES * 0x80;
    const LOW: u64 = ONES * 0x7f;
    while let Some(word) = bytes.get(at..at + 8) {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        let x = u64::from_le_bytes(eight);
        // On the low seven bits of each byte, so that no sum carries into the next byte; a
        // byte with its high bit set is no letter, digit or dash (`& !x` below).
        let x7 = x & LOW;
        // A letter is 0x61..=0x7a once its 0x20 bit is set; each sum's high bit says "at
        // least" the bound it adds up to 0x80 from.
        let folded = x7 | (ONES * 0x20);
        let letter = folded.wrapping_add(ONES * (0x80 - 0x61)) & !folded.wrapping_add(ONES * 5);
        let digit = x7.wrapping_add(ONES * (0x80 - 0x30)) & !x7.wrapping_add(ONES * 0x46);
        let d = x7 ^ (ONES * u64::from(b'-'));
        let dash = !((d & LOW).wrapping_add(LOW) | d);
        let plain = (letter | digit | dash) & !x & HIGH;
        if plain == HIGH {
            at += 8;
            continue;
        }
        at += ((!plain & HIGH).trailing_zeros() / 8) as usize;
        if !TOKEN[usize::from(bytes[at])] {
            return Some(at);
        }
        at += 1;
    }
    while TOKEN[usize::from(*bytes.get(at)?)] {
        at += 1;
    }
    Some(at)
}

/// Where text (a header value, the reason phrase) starting at `at` ends: the index of the `\r`
/// after it, every byte before that visible ASCII, a space or a tab; `None` for any other byte
/// first, or the end of `bytes`. Eight bytes at a time: a word's first byte out of the common
/// range is found from its bit mask, and only that byte is looked at.
#[inline(always)]
fn text_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    while let Some(word) = bytes.get(at..at + 8) {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        let x = u64::from_le_bytes(eight);
        // Each byte under 0x20 (a control byte, `\t`, `\r`), 0x7f or over it has its high bit
        // set in `odd`, and so does no byte before the first such one (Bit Twiddling Hacks,
        // "hasless" and "haszero": a borrow only runs on to later bytes); little-endian, so the
        // lowest set bit is the first such byte.
        let control = x.wrapping_sub(ONES * 0x20) & !x;
        let del = (x ^ (ONES * 0x7f)).wrapping_sub(ONES) & !(x ^ (ONES * 0x7f));
        let odd = (control | del | x) & HIGH;
        if odd == 0 {
            at += 8;
            continue;
        }
        at += (odd.trailing_zeros() / 8) as usize;
        match bytes[at] {
            b'\r' => return Some(at),
            b'\t' => at += 1,
            _ => return None,
        }
    }
    loop {
        match *bytes.get(at)? {
            b'\r' => return Some(at),
            b'\t' | b' '..=b'~' => at += 1,
            _ => return None,
        }
    }
}

/// Whether a header name (token characters only) is `lower`, a name of lowercase letters and
/// dashes of at least 8 bytes, in any case: compared a word at a time (the last one
/// overlapping) with every byte's 0x20 bit set, which lowercases a letter and leaves a dash as
/// it is. No other token character becomes a lowercase letter or a dash that way (only `\r`
/// would become a dash).
fn is_name(name: &[u8], lower: &[u8]) -> bool {
    const CASE: u64 = u64::from_le_bytes([0x20; 8]);
    let word = |b: &[u8], at: usize| {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(eight)
    };
    let n = lower.len();
    if name.len() != n || n < 8 {
        return false;
    }
    let same = |at: usize| word(name, at) | CASE == word(lower, at);
    (0..n - 8).step_by(8).all(same) && same(n - 8)
}

/// RFC 9110's token characters (`tchar`), as `httparse` has them for header names.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

/// Comma-separated tokens of a header value, trimmed, empty ones skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|t| !t.is_empty())
}

/// A value without the spaces and tabs around it.
pub(super) fn trim(v: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !is_space(b)).unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    &v[start..end]
}

/// A `Content-Length` value: digits, or a list of the same digits (a proxy may join repeats).
fn content_length(value: &[u8]) -> Result<u64, ReadError> {
    // Most are plain digits (the scan passed the spaces before them).
    if !value.is_empty() && value.len() <= 19 && value.iter().all(u8::is_ascii_digit) {
        return Ok(value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')));
    }
    let bad = || ReadError::Malformed("invalid content-length".into());
    let mut found = None;
    for t in value.split(|&b| b == b',').map(trim) {
        if t.is_empty() || t.len() > 19 || !t.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        let n = t.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return Err(bad());
        }
        found = Some(n);
    }
    found.ok_or_else(bad)
}

#[cfg(test)]
mod tests;
