//! A `Transfer-Encoding: chunked` response body (RFC 9112 §7.1): chunks of a hexadecimal size,
//! chunk extensions after `;` ignored, the trailer section after the last chunk read and
//! dropped. Every line is bounded, and so is the body.

use tokio::io::AsyncRead;

use crate::clients::inbuf::{InBuf, Line, ReadError};

/// The longest chunk-size line (with its extensions) or trailer line.
const MAX_LINE: usize = 4096;

/// The largest trailer section.
const MAX_TRAILERS: usize = 64 * 1024;

/// The body, at most `max` bytes of it, leaving whatever follows the trailer section in `buf`.
pub(crate) async fn read<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut InBuf,
    max: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let l = line(io, buf).await?;
        let size = chunk_size(&buf.filled()[..l.len])?;
        buf.consume(l.taken);
        if size == 0 {
            break;
        }
        if size > (max - body.len()) as u64 {
            return Err(ReadError::TooLarge(format!(
                "reading body: over the {max}-byte limit"
            )));
        }
        let mut left = size as usize;
        while left > 0 {
            if buf.is_empty() && buf.fill(io).await? == 0 {
                return Err(ReadError::Eof);
            }
            let part = &buf.filled()[..left.min(buf.filled().len())];
            let n = part.len();
            body.extend_from_slice(part);
            buf.consume(n);
            left -= n;
        }
        let end = line(io, buf).await?;
        if end.len != 0 {
            return Err(ReadError::Malformed(
                "chunk data longer than its size".into(),
            ));
        }
        buf.consume(end.taken);
    }
    let mut trailers = 0;
    loop {
        let l = line(io, buf).await?;
        buf.consume(l.taken);
        if l.len == 0 {
            return Ok(body);
        }
        trailers += l.taken;
        if trailers > MAX_TRAILERS {
            return Err(ReadError::Malformed(format!(
                "trailers over {} KiB",
                MAX_TRAILERS / 1024
            )));
        }
    }
}

/// The next line, read as far as needed.
async fn line<S: AsyncRead + Unpin>(io: &mut S, buf: &mut InBuf) -> Result<Line, ReadError> {
    loop {
        let found = buf.line();
        if found.map_or(buf.filled().len(), |l| l.len) > MAX_LINE {
            return Err(ReadError::Malformed(format!(
                "chunked line over {MAX_LINE} bytes"
            )));
        }
        if let Some(l) = found {
            return Ok(l);
        }
        if buf.fill(io).await? == 0 {
            return Err(ReadError::Eof);
        }
    }
}

/// A chunk-size line: hexadecimal digits, then optional whitespace and `;` extensions.
fn chunk_size(line: &[u8]) -> Result<u64, ReadError> {
    let bad = || {
        ReadError::Malformed(format!(
            "bad chunk size {:?}",
            String::from_utf8_lossy(&line[..line.len().min(32)])
        ))
    };
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    // 16 hex digits fill a u64; more would overflow (and no body here is that large).
    if digits == 0 || digits > 16 {
        return Err(bad());
    }
    let rest = &line[digits..];
    let rest = &rest[rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count()..];
    if !rest.is_empty() && rest[0] != b';' {
        return Err(bad());
    }
    Ok(line[..digits].iter().fold(0u64, |n, &d| {
        // Hex digits only, checked above.
        let v = (d as char).to_digit(16).unwrap_or(0);
        (n << 4) | u64::from(v)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_with_extensions_and_whitespace() {
        let size = |l: &[u8]| chunk_size(l).ok();
        assert_eq!(size(b"1a"), Some(26));
        assert_eq!(size(b"1A;name=value"), Some(26));
        assert_eq!(size(b"0 ; last"), Some(0));
        assert_eq!(size(b"ffffffffffffffff"), Some(u64::MAX));
        for bad in [&b""[..], b"x", b"-1", b"1 2", b"10000000000000000", b" 1"] {
            assert!(size(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
