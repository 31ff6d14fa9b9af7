//! A WebSocket's reads from the kernel, taken ahead of the frame parser: one read of up to
//! [`AHEAD`] bytes serves the parser's many small ones, and what it asked for less is held here
//! only until it takes it.
//!
//! Why: tungstenite keeps its read buffer for the socket's whole life, sized as its largest read
//! (`read_buffer_size`). At 512 bytes that buffer was the largest block an idle connected user
//! held (bench/README.md, "Memory per connected user"); at [`PARSER_READ`] bytes a burst of
//! frames would cost a system call each 64 bytes. Read here first, into the stack, the kernel is
//! asked as rarely as with a large buffer, and an idle socket holds nothing but the parser's few
//! bytes.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most bytes one read from the kernel takes (on the worker's stack, for the call only).
pub const AHEAD: usize = 8 * 1024;

/// The frame parser's read size and its buffer's starting size (`read_buffer_size`): what an
/// idle socket keeps. Frames larger than this grow the parser's buffer as they arrive.
pub const PARSER_READ: usize = 128;

/// A stream whose reads are taken ahead ([module docs](self)).
pub struct ReadAhead<S> {
    inner: S,
    /// Bytes read from the kernel and not yet taken; boxed, so a socket with none (an idle one)
    /// pays a pointer.
    held: Option<Box<Held>>,
}

struct Held {
    bytes: Vec<u8>,
    taken: usize,
}

impl<S> ReadAhead<S> {
    pub fn new(inner: S) -> ReadAhead<S> {
        ReadAhead { inner, held: None }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if let Some(held) = &mut this.held {
            let rest = &held.bytes[held.taken..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            held.taken += n;
            if held.taken == held.bytes.len() {
                this.held = None;
            }
            return Poll::Ready(Ok(()));
        }
        if buf.remaining() >= AHEAD {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let mut chunk = [MaybeUninit::<u8>::uninit(); AHEAD];
        let mut ahead = ReadBuf::uninit(&mut chunk);
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut ahead))?;
        let got = ahead.filled();
        let n = got.len().min(buf.remaining());
        buf.put_slice(&got[..n]);
        if n < got.len() {
            this.held = Some(Box::new(Held {
                bytes: got[n..].to_vec(),
                taken: 0,
            }));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Small reads get every byte, in order, across reads from the kernel of any size; the
    /// kernel is asked once for what one write put there, and nothing is held once all is taken.
    #[tokio::test]
    async fn small_reads_take_every_byte_in_order_and_hold_nothing_after() {
        let (mut far, near) = tokio::io::duplex(64 * 1024);
        let mut ahead = ReadAhead::new(near);
        // More than one read from the kernel can take, in two writes.
        let sent: Vec<u8> = (0..(AHEAD * 2 + 123)).map(|i| (i % 251) as u8).collect();
        far.write_all(&sent).await.expect("written");
        drop(far);
        let mut got = Vec::new();
        let mut small = [0u8; 7];
        loop {
            let n = ahead.read(&mut small).await.expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, sent);
        assert!(ahead.held.is_none(), "nothing held after the end");
    }

    /// A read as large as a read-ahead goes to the stream directly, and a read of nothing
    /// reads nothing (and holds nothing).
    #[tokio::test]
    async fn large_and_empty_reads_hold_nothing() {
        let (mut far, near) = tokio::io::duplex(64 * 1024);
        let mut ahead = ReadAhead::new(near);
        far.write_all(&[1, 2, 3]).await.expect("written");
        let mut none = [0u8; 0];
        assert_eq!(ahead.read(&mut none).await.expect("read"), 0);
        assert!(ahead.held.is_none());
        let mut large = vec![0u8; AHEAD];
        assert_eq!(ahead.read(&mut large).await.expect("read"), 3);
        assert_eq!(&large[..3], &[1, 2, 3]);
        assert!(ahead.held.is_none());
    }
}
