//! A kept-alive connection's read buffer: what was read off the stream and not yet taken by the
//! response reader. Kept across requests (one allocation per connection, not per request), and
//! held to a modest size between them so that an idle connection stays small.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Its size when a connection opens: a typical response head and a small body in one read.
const INITIAL: usize = 4096;

/// Between requests a buffer grown past this (a large head, a chunked body read through it) is
/// shrunk back to [`INITIAL`].
const KEEP_AT_MOST: usize = 4 * INITIAL;

pub(crate) struct InBuf {
    /// Zero-initialised storage (safe reads into it); `start..end` is what was read and not taken.
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Default for InBuf {
    fn default() -> Self {
        InBuf {
            data: vec![0; INITIAL],
            start: 0,
            end: 0,
        }
    }
}

/// Why a response could not be read whole.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The stream failed (a reset, a TLS alert).
    Io(std::io::Error),
    /// The stream ended before the response did.
    Eof,
    /// Not HTTP, or not the HTTP/1.1 the head says.
    Malformed(String),
    /// Over a bound (the reason says which).
    TooLarge(String),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// A line found in the buffer: `len` bytes of content, `taken` with its `\n` or `\r\n`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line {
    pub len: usize,
    pub taken: usize,
}

impl InBuf {
    /// What was read and not taken yet.
    pub(crate) fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Takes `n` bytes off the front.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Forgets what is left (after a response: nothing on a reusable connection, bytes never to
    /// be read on another) and gives back memory a large response made it take.
    pub(crate) fn reset(&mut self) {
        self.start = 0;
        self.end = 0;
        if self.data.len() > KEEP_AT_MOST {
            self.data = vec![0; INITIAL];
        }
    }

    /// Reads once more from `io` after what is there (making room first: the unread bytes move
    /// to the front, or the buffer doubles when they fill it). The bytes read, 0 at the end of
    /// the stream. Callers bound what they leave unread, so the buffer stays bounded too.
    pub(crate) async fn fill<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
    ) -> std::io::Result<usize> {
        if self.end == self.data.len() {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let grown = (self.data.len() * 2).max(INITIAL);
                self.data.resize(grown, 0);
            }
        }
        let n = io.read(&mut self.data[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// The next line, if a whole one is in the buffer.
    pub(crate) fn line(&self) -> Option<Line> {
        let filled = self.filled();
        let nl = filled.iter().position(|&b| b == b'\n')?;
        let len = if nl > 0 && filled[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        Some(Line { len, taken: nl + 1 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_what_is_not_taken_and_grows_only_when_full() {
        let mut buf = InBuf::default();
        let mut io: &[u8] = b"ab\r\ncd\nef";
        assert_eq!(buf.fill(&mut io).await.expect("read"), 9);
        let l = buf.line().expect("a line");
        assert_eq!((l.len, l.taken), (2, 4));
        buf.consume(l.taken);
        let l = buf.line().expect("a bare-LF line");
        assert_eq!((l.len, l.taken), (2, 3));
        buf.consume(l.taken);
        assert!(buf.line().is_none());
        assert_eq!(buf.filled(), b"ef");
        assert_eq!(buf.fill(&mut io).await.expect("end"), 0);
        // A buffer full of unread bytes doubles; one whose front was taken compacts instead.
        let big = vec![7u8; INITIAL * 5];
        let mut io: &[u8] = &big;
        while buf.filled().len() < INITIAL * 2 {
            buf.fill(&mut io).await.expect("read");
        }
        assert_eq!(buf.data.len(), INITIAL * 2);
        buf.consume(INITIAL);
        buf.fill(&mut io).await.expect("read");
        assert_eq!(buf.data.len(), INITIAL * 2, "compacted, not grown");
        buf.reset();
        assert!(buf.is_empty());
        assert_eq!(buf.data.len(), INITIAL * 2, "small enough to keep");
    }
}
