//! A user's byte stream under HTTP and WebSocket: plain TCP, or TLS over it.
//!
//! An enum rather than a `Box<dyn>`: every read and write is one match on a local value, and a
//! plain connection costs exactly what a bare `TcpStream` costs. The TLS side is boxed once per
//! connection (rustls's state is a few KiB), which keeps a plain stream small.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::clients::tls::UserTls;
use crate::clients::{Endpoint, OpError};

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Connects to the endpoint from `source`, then runs the TLS handshake when the user has TLS
/// (the endpoint is `https://`). The handshake is noted in `tls` for the runtime to record.
pub async fn open(
    endpoint: &Endpoint,
    source: Option<std::net::IpAddr>,
    tls: Option<&UserTls>,
) -> Result<Stream, OpError> {
    let tcp = crate::clients::tcp::tcp(endpoint, source).await?;
    match tls {
        None => Ok(Stream::Plain(tcp)),
        Some(tls) => Ok(Stream::Tls(Box::new(tls.handshake(tcp).await?))),
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => {
                // hyper polls its connection for reading several times per request, mostly
                // when nothing has arrived; with no decrypted bytes waiting, ask the socket
                // first (it registers the waker) instead of going through rustls's read path.
                let (tcp, tls) = s.get_mut();
                if tls.wants_read() {
                    std::task::ready!(tcp.poll_read_ready(cx))?;
                }
                Pin::new(s.as_mut()).poll_read(cx, buf)
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
