//! A user's byte stream under HTTP and WebSocket: plain TCP, or TLS over it.
//!
//! An enum rather than a `Box<dyn>`: every read and write is one match on a local value, and a
//! plain connection costs exactly what a bare `TcpStream` costs. The TLS side is boxed once per
//! connection (rustls's state is a few KiB), which keeps a plain stream small.
//!
//! A TLS connection's handshake is noted once its first read shows the server accepted it, and
//! a TLS alert on that read is the handshake's failure ([`Unconfirmed`]).

use std::cell::Cell;
use std::io::IoSlice;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::clients::tls::{Unconfirmed, UserTls};
use crate::clients::{Endpoint, OpError};

/// A connection's bytes: what the user's HTTP or WebSocket client wrote into its stream and read
/// out of it, counted where the stream hands them over — above TLS, so an `https://` run counts
/// what an `http://` one would (no record framing, no handshake). Shared between the client
/// that takes the counts and the stream a connection task may drive, both on the worker's
/// thread: plain cells, no atomics, no lock.
#[derive(Debug, Clone, Default)]
pub struct Meter(Rc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    sent: Cell<u64>,
    received: Cell<u64>,
}

impl Meter {
    fn wrote(&self, n: usize) {
        let c = &self.0.sent;
        c.set(c.get() + n as u64);
    }

    fn read(&self, n: usize) {
        let c = &self.0.received;
        c.set(c.get() + n as u64);
    }

    /// The bytes received since the last take, left in place.
    pub(crate) fn received(&self) -> u64 {
        self.0.received.get()
    }

    /// (sent, received) since the last take.
    pub fn take(&self) -> (u64, u64) {
        (self.0.sent.replace(0), self.0.received.replace(0))
    }

    /// Moves the counts into `to` (a pooled connection's bytes to the user whose request they
    /// were).
    pub fn move_to(&self, to: &Meter) {
        let (sent, received) = self.take();
        let c = &to.0;
        c.sent.set(c.sent.get() + sent);
        c.received.set(c.received.get() + received);
    }
}

pub struct Stream {
    io: Io,
    meter: Meter,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<Tls>),
}

struct Tls {
    stream: TlsStream<TcpStream>,
    /// The handshake, until the first read shows whether the server accepted it.
    unconfirmed: Option<Unconfirmed>,
}

impl Tls {
    /// What the first read (`p`) says of the handshake: an alert first is the server's
    /// rejection, which the read's error then says; anything else confirms it. Later reads pass.
    fn judge(&mut self, p: Poll<std::io::Result<()>>) -> Poll<std::io::Result<()>> {
        match p {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) if crate::clients::tls::is_tls_error(&e) => {
                match self.unconfirmed.take() {
                    Some(handshake) => Poll::Ready(Err(handshake.reject(&e))),
                    None => Poll::Ready(Err(e)),
                }
            }
            ready => {
                // Dropped: noted.
                self.unconfirmed = None;
                ready
            }
        }
    }
}

/// Connects to the endpoint from `source`, then runs the TLS handshake when the user has TLS
/// (the endpoint is `https://`). The handshake is noted in `tls` for the runtime to record;
/// the bytes that go through the stream, in `meter`.
pub async fn open(
    endpoint: &Endpoint,
    source: Option<std::net::IpAddr>,
    tls: Option<&UserTls>,
    meter: Meter,
) -> Result<Stream, OpError> {
    let tcp = crate::clients::tcp::tcp(endpoint, source).await?;
    let io = match tls {
        None => Io::Plain(tcp),
        Some(tls) => {
            let (stream, unconfirmed) = tls.handshake(tcp).await?;
            Io::Tls(Box::new(Tls {
                stream,
                unconfirmed: Some(unconfirmed),
            }))
        }
    };
    Ok(Stream { io, meter })
}

impl Stream {
    /// The bytes that went through the stream.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Notes the connection's handshake, when the server accepts it, with `user`'s (a pooled
    /// connection, opened for the user's request).
    pub(crate) fn note_handshake_in(&mut self, user: &UserTls) {
        if let Io::Tls(t) = &mut self.io {
            if let Some(h) = &mut t.unconfirmed {
                h.note_in(user);
            }
        }
    }

    /// After a write failed on a TLS connection not read from yet: the server's rejection of
    /// the handshake, when it waits to be read (a server that refuses the client's certificate
    /// sends its alert and closes, and a write into the closed connection can fail first).
    /// Looked at without waiting.
    pub(crate) fn rejection(&mut self) -> Option<OpError> {
        match &self.io {
            Io::Tls(t) if t.unconfirmed.is_some() => {}
            _ => return None,
        }
        let mut one = [0u8; 1];
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut probe = ReadBuf::new(&mut one);
        match Pin::new(self).poll_read(&mut cx, &mut probe) {
            Poll::Ready(Err(e)) => crate::clients::tls::rejection(&e),
            _ => None,
        }
    }

    /// Whether nothing has arrived on an idle connection (the server neither closed it nor
    /// sent anything), found without waiting. Over plain TCP, a look at the readiness the
    /// runtime already holds (a read only if it says readable: no waker registered); over TLS,
    /// a read through rustls (a session ticket arriving late is not data). A byte read here is
    /// counted, and the connection is not reused.
    pub fn quiet(&mut self) -> bool {
        let mut one = [0u8; 1];
        match &mut self.io {
            Io::Plain(s) => match s.try_read(&mut one) {
                Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                Ok(n) => {
                    self.meter.read(n);
                    false
                }
            },
            Io::Tls(_) => {
                let mut cx = Context::from_waker(std::task::Waker::noop());
                let mut probe = ReadBuf::new(&mut one);
                Pin::new(self).poll_read(&mut cx, &mut probe).is_pending()
            }
        }
    }
}

/// Counts what a write or read moved (`Ready(Ok)` only: a pending or failed one moved nothing).
fn counted<T>(
    p: Poll<std::io::Result<T>>,
    moved: impl FnOnce(&T) -> usize,
    count: impl FnOnce(usize),
) -> Poll<std::io::Result<T>> {
    if let Poll::Ready(Ok(v)) = &p {
        count(moved(v));
    }
    p
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let p = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(t) => {
                // A connection is polled for reading when nothing may have arrived yet (a
                // response not yet sent, an idle connection looked at before its reuse): with no
                // decrypted bytes waiting, ask the socket first (it registers the waker) instead
                // of going through rustls's read path.
                let (tcp, tls) = t.stream.get_mut();
                if tls.wants_read() {
                    std::task::ready!(tcp.poll_read_ready(cx))?;
                }
                let p = Pin::new(&mut t.stream).poll_read(cx, buf);
                match t.unconfirmed {
                    None => p,
                    Some(_) => t.judge(p),
                }
            }
        };
        let filled = buf.filled().len();
        counted(p, |_| filled - before, |n| this.meter.read(n))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let p = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(t) => Pin::new(&mut t.stream).poll_write(cx, buf),
        };
        counted(p, |n| *n, |n| this.meter.wrote(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let p = match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(t) => Pin::new(&mut t.stream).poll_write_vectored(cx, bufs),
        };
        counted(p, |n| *n, |n| this.meter.wrote(n))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(t) => t.stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(t) => Pin::new(&mut t.stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(t) => Pin::new(&mut t.stream).poll_shutdown(cx),
        }
    }
}
