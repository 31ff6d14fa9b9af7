//! A kept-alive HTTP/1.1 connection (a user's own, or one of its worker's pool) and the
//! worker's gauge of open HTTP connections it is counted in.
//!
//! No task per connection: the request's own future writes the request and reads the response
//! on the stream, with buffers kept across requests (bench/README.md, "A lean HTTP/1.1
//! client"). What a connection task used to notice on its own — the server closing an idle
//! connection — is noticed when the connection is next taken ([`Kept::usable`]) or let go, or,
//! when the close crosses the next request, by that request ([`Failed::unanswered`]).

use std::cell::Cell;
use std::io::IoSlice;
use std::rc::Rc;

use http::Method;
use tokio::io::AsyncWriteExt;

use crate::clients::inbuf::{InBuf, ReadError};
use crate::clients::request::{self, Sent};
use crate::clients::response::{self, Response, Spare};
use crate::clients::stream::{Meter, Stream};
use crate::clients::tls::UserTls;
use crate::clients::{Endpoint, OpError};
use crate::metrics::ErrorClass;

/// How many HTTP connections a worker's users hold open: a gauge touched by the worker's thread
/// alone (a plain cell, no atomics), read at each interval's end.
#[derive(Debug, Clone, Default)]
pub struct OpenConnections(Rc<Cell<u64>>);

impl OpenConnections {
    pub fn get(&self) -> u64 {
        self.0.get()
    }

    /// One more connection open, until it is dropped.
    fn opened(&self) -> Open {
        self.0.set(self.0.get() + 1);
        Open(self.clone())
    }
}

/// One connection in the count: the generator holds it open. It leaves the count when the
/// generator lets it go — the user disconnects or ends, a request fails on it or finds it closed
/// by the server, the server said it closes — so a user that ended holds nothing in the count
/// when its worker reports its last interval. A connection the server closed while its user
/// is idle stays counted until then: the descriptor is still the generator's.
#[derive(Debug)]
struct Open(OpenConnections);

impl Drop for Open {
    fn drop(&mut self) {
        let n = &(self.0).0;
        n.set(n.get().saturating_sub(1));
    }
}

/// A body up to this size is copied behind the head, so that the request is one write.
const INLINE_BODY: usize = 16 * 1024;

/// A write buffer grown past this by a large request is let go after it.
const KEEP_OUT_AT_MOST: usize = 16 * 1024;

/// A response's header lines' buffer larger than this is not kept for the next response.
const KEEP_LINES_AT_MOST: usize = 1024;

/// Nor a body's buffer larger than this (a typical API answer fits; an idle connection stays
/// small).
const KEEP_BODY_AT_MOST: usize = 4096;

/// A kept-alive connection: its stream, the buffers its requests reuse, its place in the count
/// (left when dropped) and the bytes through it.
pub(crate) struct Kept {
    stream: Stream,
    inbuf: InBuf,
    out: Vec<u8>,
    _open: Open,
    meter: Meter,
    /// The request `out` holds, when it was one without headers or body: the next one alike is
    /// sent as it stands, not written again (a keep-alive loop polls the same path).
    written: Option<Written>,
    /// The buffers of a response the user is done with, for the next one's.
    spare: Spare,
    /// Whether it can carry another request: false from a request's start until its response
    /// was read whole (so a request cut off mid-way leaves it unusable), and for good once
    /// the server said it closes or sent more than the response.
    reusable: bool,
}

/// A request that got no usable response, and whether any byte of an answer came back: a
/// request the server never answered may be sent again on a new connection
/// (`clients::http`, a kept-alive connection the server closed as the request went out).
#[derive(Debug)]
pub(crate) struct Failed {
    pub error: OpError,
    /// It may have gone out, but nothing came back: the server closed or reset the connection
    /// (or TLS said it closes) before the first byte of a response.
    pub unanswered: bool,
}

impl From<Failed> for OpError {
    fn from(f: Failed) -> OpError {
        f.error
    }
}

impl From<OpError> for Failed {
    /// A request that failed before it went out (HTTP cannot carry it): never sent again.
    fn from(error: OpError) -> Failed {
        Failed {
            error,
            unanswered: false,
        }
    }
}

/// The method and path of the bare request (no headers, no body) a connection's write buffer
/// holds, and what its head said.
struct Written {
    method: Method,
    path: String,
    sent: Sent,
}

impl Default for Written {
    fn default() -> Self {
        Written {
            method: Method::GET,
            path: String::new(),
            sent: Sent {
                head_request: false,
                close: false,
            },
        }
    }
}

impl Written {
    fn is(&self, method: &Method, path: &str) -> bool {
        self.path == path && self.method == method
    }
}

/// A request prepared in a connection's write buffer: what of it is still to go out.
pub(crate) struct Prepared<'b> {
    /// The body when it is too large to copy behind the head.
    body: &'b [u8],
    sent: Sent,
}

impl Kept {
    /// Opens a connection from `source` (over TLS when `tls` is given), its bytes counted in
    /// `meter` and the connection in `count` while it is open.
    pub(crate) async fn connect(
        endpoint: &Endpoint,
        source: Option<std::net::IpAddr>,
        tls: Option<&UserTls>,
        meter: Meter,
        count: &OpenConnections,
    ) -> Result<Kept, OpError> {
        let stream = crate::clients::stream::open(endpoint, source, tls, meter.clone()).await?;
        Ok(Kept {
            stream,
            inbuf: InBuf::default(),
            out: Vec::with_capacity(256),
            _open: count.opened(),
            meter,
            written: None,
            spare: Spare::default(),
            reusable: true,
        })
    }

    /// Whether the connection can take a request: its last response was read whole and the
    /// server has neither closed it nor sent anything since (a look at the read side that does
    /// not wait: the end of the stream, bytes or an error mean no).
    pub(crate) fn usable(&mut self) -> bool {
        if !self.reusable {
            return false;
        }
        self.reusable = self.stream.quiet();
        self.reusable
    }

    /// Notes the connection's TLS handshake with `user`'s, once the server accepts it.
    pub(crate) fn note_handshake_in(&mut self, user: &UserTls) {
        self.stream.note_handshake_in(user);
    }

    /// Whether the last request left the connection fit for another.
    pub(crate) fn reusable(&self) -> bool {
        self.reusable
    }

    /// Writes the request's head (and a small body) into the connection's buffer; a request
    /// HTTP cannot carry fails here, before anything is sent.
    pub(crate) fn prepare<'b>(
        &mut self,
        endpoint: &Endpoint,
        method: &Method,
        path: &str,
        headers: &[(String, String)],
        body: Option<(&str, &'b [u8])>,
    ) -> Result<Prepared<'b>, OpError> {
        // Only the method and path vary: a connection serves one endpoint.
        let bare = headers.is_empty() && body.is_none();
        if let Some(w) = self.written.as_ref().filter(|w| bare && w.is(method, path)) {
            return Ok(Prepared {
                body: &[],
                sent: w.sent,
            });
        }
        // `out` is rewritten from here (and left half-written when the request fails).
        let mut written = self.written.take();
        let described = body.map(|(content_type, bytes)| (content_type, bytes.len()));
        let sent = request::write_head(&mut self.out, endpoint, method, path, headers, described)?;
        if bare {
            let w = written.get_or_insert_with(Written::default);
            w.method.clone_from(method);
            w.path.clear();
            w.path.push_str(path);
            w.sent = sent;
            self.written = written;
        }
        let mut rest: &[u8] = body.map_or(&[], |(_, b)| b);
        if rest.len() <= INLINE_BODY {
            self.out.extend_from_slice(rest);
            rest = &[];
        }
        Ok(Prepared { body: rest, sent })
    }

    /// Sends the prepared request and reads its whole response.
    pub(crate) async fn exchange(&mut self, req: Prepared<'_>) -> Result<Response, Failed> {
        self.reusable = false;
        if let Err(e) = self.write(req.body).await {
            // A server that rejected the TLS handshake has its alert waiting to be read.
            let error = self.stream.rejection().unwrap_or_else(|| failed(&e));
            return Err(Failed {
                error,
                unanswered: true,
            });
        }
        if self.out.capacity() > KEEP_OUT_AT_MOST {
            self.out = Vec::with_capacity(256);
            self.written = None;
        }
        let before = self.meter.received();
        let (io, inbuf, spare) = (&mut self.stream, &mut self.inbuf, &mut self.spare);
        let read = response::read_into(io, inbuf, req.sent.head_request, spare).await;
        let read = read.map_err(|e| Failed {
            unanswered: matches!(e, ReadError::Io(_) | ReadError::Eof)
                && self.meter.received() == before,
            error: op_error(e),
        })?;
        self.reusable = read.reusable && !req.sent.close;
        // Empty when reusable; otherwise what is left is never read. Either way a buffer a
        // large response grew is given back before the connection idles.
        self.inbuf.reset();
        Ok(read.response)
    }

    /// The buffer, then `body`: one write (a vectored one with a large body) unless the
    /// stream takes less.
    async fn write(&mut self, body: &[u8]) -> std::io::Result<()> {
        let (mut head, mut body) = (&self.out[..], body);
        while !head.is_empty() || !body.is_empty() {
            let n = if body.is_empty() {
                self.stream.write(head).await?
            } else {
                let parts = [IoSlice::new(head), IoSlice::new(body)];
                self.stream.write_vectored(&parts).await?
            };
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            let of_head = n.min(head.len());
            head = &head[of_head..];
            body = &body[n - of_head..];
        }
        // Over TLS, records rustls still holds go out now.
        self.stream.flush().await
    }

    /// Takes back the header lines' and body's buffers of a response read on this connection,
    /// for the next response's; a large one is let go (an idle connection stays small).
    pub(crate) fn reuse(&mut self, response: Response) {
        let lines = response.headers.into_buffer();
        if lines.capacity() <= KEEP_LINES_AT_MOST {
            self.spare.lines = lines;
        }
        if response.body.capacity() <= KEEP_BODY_AT_MOST {
            self.spare.body = response.body;
        }
    }

    /// The capacities of the buffers kept for the next response (header lines, body).
    #[cfg(test)]
    pub(crate) fn spare_capacity(&self) -> (usize, usize) {
        (self.spare.lines.capacity(), self.spare.body.capacity())
    }

    /// The bytes through the connection since the last take, moved to `to`.
    pub(crate) fn bytes_to(&self, to: &Meter) {
        self.meter.move_to(to);
    }
}

/// A request that got no usable response: a response that is not HTTP (or over a bound) is the
/// target's `protocol` error — retrying it as a failed connect would hide it — while a
/// connection refused, reset or closed before the answer is `connect`.
fn op_error(e: ReadError) -> OpError {
    match e {
        ReadError::Io(e) => failed(&e),
        ReadError::Eof => OpError::new(
            ErrorClass::Connect,
            "request failed: the connection closed before the response was complete",
        ),
        ReadError::Malformed(why) => {
            OpError::new(ErrorClass::Protocol, format!("malformed response: {why}"))
        }
        ReadError::TooLarge(why) => OpError::new(ErrorClass::Protocol, why),
    }
}

/// A failed write or read, with the causes (a TLS alert is inside the I/O error); a TLS
/// handshake the server rejected on the first read is that handshake's failure.
fn failed(e: &std::io::Error) -> OpError {
    if let Some(handshake) = crate::clients::tls::rejection(e) {
        return handshake;
    }
    let mut text = format!("request failed: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    OpError::new(ErrorClass::Connect, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A loopback peer that reads one request head and answers with `answer`, then holds the
    /// connection open (so only the client's own state decides whether it is reused).
    async fn peer(answer: &'static [u8]) -> Endpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let mut head = Vec::new();
            let mut buf = [0u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            if s.write_all(answer).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        });
        Endpoint::plain(addr)
    }

    async fn get(kept: &mut Kept, endpoint: &Endpoint) -> Result<Response, Failed> {
        let req = kept.prepare(endpoint, &Method::GET, "/", &[], None)?;
        kept.exchange(req).await
    }

    #[tokio::test]
    async fn a_request_cut_off_mid_response_leaves_its_connection_unusable() {
        let endpoint = peer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf").await;
        let count = OpenConnections::default();
        let mut kept = Kept::connect(&endpoint, None, None, Meter::default(), &count)
            .await
            .expect("connect");
        assert!(kept.usable(), "a fresh connection");
        // The step's timeout drops the request's future with half a body read.
        let cut = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            get(&mut kept, &endpoint),
        )
        .await;
        assert!(cut.is_err(), "the rest of the body never comes");
        assert!(!kept.usable() && !kept.reusable());
        assert_eq!(count.get(), 1);
        drop(kept);
        assert_eq!(count.get(), 0, "let go, it leaves the count");
    }

    #[tokio::test]
    async fn an_answered_request_leaves_its_connection_usable_and_a_closing_one_not() {
        let endpoint = peer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        let count = OpenConnections::default();
        let mut kept = Kept::connect(&endpoint, None, None, Meter::default(), &count)
            .await
            .expect("connect");
        let r = get(&mut kept, &endpoint).await.expect("an answer");
        assert_eq!((r.status, &r.body[..]), (200, &b"ok"[..]));
        assert!(kept.usable());
        let endpoint =
            peer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await;
        let mut kept = Kept::connect(&endpoint, None, None, Meter::default(), &count)
            .await
            .expect("connect");
        get(&mut kept, &endpoint).await.expect("an answer");
        assert!(!kept.usable(), "the server said it closes");
    }
}
