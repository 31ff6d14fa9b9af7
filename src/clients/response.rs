//! An HTTP/1.1 response as a kept-alive connection reads it: the head parsed in place by
//! `httparse` (no map is built: the header lines are kept as one copy, looked up when a check,
//! a capture, `Retry-After` or a trace asks), the body framed as RFC 9112 §6.3 says (no body for
//! HEAD, 1xx, 204 and 304; `Transfer-Encoding: chunked`; `Content-Length`; otherwise until the
//! server closes), and whether the connection can carry another request.

use std::mem::MaybeUninit;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::clients::chunked;
use crate::clients::inbuf::{InBuf, ReadError};
pub use head::MAX_HEADERS;
use head::{trim, Said, Scanned};

mod head;

/// Response bodies larger than this are a protocol error: a load generator must stay bounded.
pub const MAX_BODY: usize = 1 << 20;

/// A response head (status line and headers) larger than this is a protocol error.
pub const MAX_HEAD: usize = 64 * 1024;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Headers,
    /// A plain buffer, which the connection takes back for its next response when the step is
    /// done with it (`clients::kept`): a kept-alive request allocates none for its body.
    pub body: Vec<u8>,
}

/// A response's header lines as the server sent them, in order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// `name: value` lines, each ended by `\n` or `\r\n`, as `httparse` validated them.
    lines: Vec<u8>,
}

impl Headers {
    /// Every header in order: its name and its value without surrounding whitespace.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.lines.split(|&b| b == b'\n').filter_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            let name = std::str::from_utf8(&line[..colon]).ok()?;
            Some((name, trim(&line[colon + 1..])))
        })
    }

    /// The first value of `name` (any case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first value of `name` when it is text (see [`text`]).
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(text)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The buffer the lines were in, for the next response's (`clients::kept`).
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        self.lines
    }
}

/// Headers from name-value pairs (a response built by hand, as in tests).
impl<'a> FromIterator<(&'a str, &'a str)> for Headers {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(pairs: I) -> Self {
        let mut lines = Vec::new();
        for (name, value) in pairs {
            lines.extend_from_slice(name.as_bytes());
            lines.extend_from_slice(b": ");
            lines.extend_from_slice(value.as_bytes());
            lines.extend_from_slice(b"\r\n");
        }
        Headers { lines }
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(n, v)| (n, String::from_utf8_lossy(v))))
            .finish()
    }
}

/// A header value as text: visible ASCII, spaces and tabs only (what `http::HeaderValue::to_str`
/// accepts); `None` for anything else, such as bytes of another encoding.
pub fn text(value: &[u8]) -> Option<&str> {
    if value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

/// A whole response, and whether its connection may carry the next request.
#[derive(Debug)]
pub(crate) struct Read {
    pub response: Response,
    pub reusable: bool,
}

/// Where the body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// A response head, parsed.
#[derive(Debug)]
struct Head {
    len: usize,
    status: u16,
    headers: Headers,
    framing: Framing,
    /// The server closes the connection after this response (or it is upgraded away).
    closes: bool,
}

/// Reads one response from `io` through `buf` (which may already hold its first bytes). Bytes
/// after it stay in `buf`: a connection with any is not reusable, since a response nobody asked
/// for must never be taken as the answer to the next request.
#[cfg(test)]
pub(crate) async fn read<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut InBuf,
    head_request: bool,
) -> Result<Read, ReadError> {
    read_into(io, buf, head_request, &mut Spare::default()).await
}

/// The buffers of a response the user is done with, for a connection's next response: its
/// header lines' and its body's (taken by the reader; an empty one allocates as it fills).
#[derive(Debug, Default)]
pub(crate) struct Spare {
    pub lines: Vec<u8>,
    pub body: Vec<u8>,
}

/// [`read`], the header lines copied into `spare.lines` and a body of known length into
/// `spare.body` (both taken: a connection hands over the buffers of a response it is done
/// with, so that a kept-alive request allocates none for them).
pub(crate) async fn read_into<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut InBuf,
    head_request: bool,
    spare: &mut Spare,
) -> Result<Read, ReadError> {
    let head = loop {
        let head = loop {
            // Nothing read yet (a kept-alive request's first look, before its answer came):
            // nothing to parse.
            if !buf.is_empty() {
                if let Some(head) = parse_head(buf.filled(), head_request, &mut spare.lines)? {
                    break head;
                }
            }
            if buf.filled().len() >= MAX_HEAD {
                return Err(head_too_large());
            }
            if buf.fill(io).await? == 0 {
                return Err(ReadError::Eof);
            }
        };
        buf.consume(head.len);
        // Informational answers (100 Continue, 103 Early Hints) come before the real one.
        if !(100..200).contains(&head.status) || head.status == 101 {
            break head;
        }
    };
    let body = match head.framing {
        Framing::None => Ok(Vec::new()),
        Framing::Length(n) => sized(io, buf, n, std::mem::take(&mut spare.body)).await,
        Framing::Chunked => chunked::read(io, buf, MAX_BODY).await,
        Framing::Close => to_end(io, buf).await,
    }
    .map_err(|e| cut_short(head.status, e))?;
    let reusable = !head.closes && head.framing != Framing::Close && buf.is_empty();
    Ok(Read {
        response: Response {
            status: head.status,
            headers: head.headers,
            body,
        },
        reusable,
    })
}

/// A body the stream ended or failed in: the server answered, so it is not a failed connect
/// (a retry on `connect` would send a request the server already took again), but an answer
/// cut short.
fn cut_short(status: u16, e: ReadError) -> ReadError {
    let why = match e {
        ReadError::Io(e) => e.to_string(),
        ReadError::Eof => "the connection closed".to_string(),
        other => return other,
    };
    ReadError::Malformed(format!(
        "the {status} response was cut short in its body: {why}"
    ))
}

/// The head at the start of `bytes`, `None` while it is incomplete: scanned when it has the
/// common shape, else parsed by `httparse` (`head`'s doc).
fn parse_head(
    bytes: &[u8],
    head_request: bool,
    lines: &mut Vec<u8>,
) -> Result<Option<Head>, ReadError> {
    let mut said = Said::default();
    let scanned = match head::scan(bytes, &mut said) {
        Some(s) => s,
        None => {
            said = Said::default();
            match parse_unusual(bytes, &mut said)? {
                Some(s) => s,
                None => return Ok(None),
            }
        }
    };
    if scanned.len > MAX_HEAD {
        return Err(head_too_large());
    }
    if let Some(e) = said.error {
        return Err(e);
    }
    let (len, status) = (scanned.len, scanned.status);
    let no_body = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    let framing = match (no_body, said.encoded, said.length) {
        (true, _, _) => Framing::None,
        (false, true, _) if said.chunked => Framing::Chunked,
        (false, true, _) => Framing::Close,
        (false, false, Some(n)) => Framing::Length(n),
        (false, false, None) => Framing::Close,
    };
    // HTTP/1.0 closes unless asked to keep alive; HTTP/1.1 keeps alive unless asked to close.
    // A body with both framings was possibly smuggled: read it as chunked, then close.
    let closes = said.close
        || (scanned.http10 && !said.keep_alive)
        || status == 101
        || (said.encoded && said.length.is_some());
    Ok(Some(Head {
        len,
        status,
        headers: header_lines(bytes, len, scanned.first_header, lines),
        framing,
        closes,
    }))
}

/// A head of another shape than the common one, parsed by `httparse`, its headers told to
/// `said`.
fn parse_unusual(bytes: &[u8], said: &mut Said) -> Result<Option<Scanned>, ReadError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, bytes, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ReadError::Malformed(e.to_string())),
    };
    for h in resp.headers.iter() {
        said.header(h.name.as_bytes(), h.value);
    }
    // The offset of the first header from the address httparse's slice points at in `bytes`.
    let first_header = resp
        .headers
        .first()
        .map(|h| h.name.as_ptr() as usize - bytes.as_ptr() as usize);
    Ok(Some(Scanned {
        len,
        status: resp.code.unwrap_or(0),
        http10: resp.version == Some(0),
        first_header,
    }))
}

/// A copy of the head's header lines (the status line left out), as sent, in `lines` (taken):
/// one copy, nothing per header (lookups are rare: a check, a capture, a `Retry-After`, a
/// trace).
fn header_lines(
    bytes: &[u8],
    len: usize,
    first_header: Option<usize>,
    lines: &mut Vec<u8>,
) -> Headers {
    let Some(from) = first_header else {
        return Headers::default();
    };
    let mut lines = std::mem::take(lines);
    lines.clear();
    lines.extend_from_slice(bytes.get(from..len).unwrap_or_default());
    Headers { lines }
}

fn head_too_large() -> ReadError {
    ReadError::Malformed(format!("response head over {} KiB", MAX_HEAD / 1024))
}

fn too_large() -> ReadError {
    ReadError::TooLarge(format!("reading body: over the {MAX_BODY}-byte limit"))
}

/// A body of `n` bytes, in `body` (a spare buffer, emptied first): what the buffer holds, the
/// rest read straight into the body (so never past it).
async fn sized<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut InBuf,
    n: u64,
    mut body: Vec<u8>,
) -> Result<Vec<u8>, ReadError> {
    if n > MAX_BODY as u64 {
        return Err(too_large());
    }
    let n = n as usize;
    body.clear();
    body.reserve_exact(n);
    let have = buf.filled().len().min(n);
    body.extend_from_slice(&buf.filled()[..have]);
    buf.consume(have);
    if have < n {
        body.resize(n, 0);
        let mut got = have;
        while got < n {
            match io.read(&mut body[got..]).await? {
                0 => return Err(ReadError::Eof),
                r => got += r,
            }
        }
    }
    Ok(body)
}

/// A body that ends when the server closes the connection.
async fn to_end<S: AsyncRead + Unpin>(io: &mut S, buf: &mut InBuf) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let part = buf.filled();
        if body.len() + part.len() > MAX_BODY {
            return Err(too_large());
        }
        let n = part.len();
        body.extend_from_slice(part);
        buf.consume(n);
        if buf.fill(io).await? == 0 {
            return Ok(body);
        }
    }
}

#[cfg(test)]
mod tests;
