//! The connection seam: the one persistent connection a simulated user holds, as the runtime
//! sees it — send a frame, wait for the next one, close — in inrush's own terms ([`Frame`],
//! [`Closed`]), so that the user runtime never matches a protocol library's types.
//!
//! WebSocket (`clients/ws.rs`) is the first implementation, over plain TCP or TLS
//! (`clients/stream.rs`). Other protocols and HTTP long-poll deliveries plug in here later, as
//! further transports behind the same methods.
//!
//! This is every message's path, so it stays lean: a frame's bytes are moved in and out of the
//! socket, never copied; nothing is boxed per frame; the connection is the socket plus the
//! region link's inbox, nothing more (an idle connected user's memory is mostly this).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;

use futures_util::{FutureExt, SinkExt};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use crate::clients::closed::not_reading;
pub use crate::clients::closed::{Closed, PeerClose};
use crate::clients::region_link::{Inbox, Link};
use crate::clients::stream::Meter;
use crate::clients::tls::UserTls;
use crate::clients::ws::OUT_QUEUE;
use crate::clients::{ws, Endpoint, OpError};

/// A data frame: text or binary. Control frames (ping, pong, close) are handled by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(FrameText),
    Binary(Bytes),
}

/// The UTF-8 text of a frame, sharing the socket's buffer (reading it copies nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameText(Utf8Bytes);

impl FrameText {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl Frame {
    /// A text frame that takes over `text`'s buffer.
    pub fn text(text: String) -> Frame {
        Frame::Text(FrameText(text.into()))
    }

    /// A binary frame that takes over `bytes`' buffer.
    pub fn binary(bytes: Vec<u8>) -> Frame {
        Frame::Binary(bytes.into())
    }

    /// The frame as text, which is what flows match, check and capture: a text frame as it is,
    /// a binary one decoded lossily (borrowed, without a copy, when it is valid UTF-8).
    pub fn to_text(&self) -> Cow<'_, str> {
        match self {
            Frame::Text(t) => Cow::Borrowed(t.as_str()),
            Frame::Binary(b) => String::from_utf8_lossy(b),
        }
    }

    fn into_message(self) -> Message {
        match self {
            Frame::Text(t) => Message::Text(t.0),
            Frame::Binary(b) => Message::Binary(b),
        }
    }
}

/// How long closing a socket may take: our close frame out and the peer's close back. After it
/// the connection is dropped, so a peer that never answers (or never reads) cannot hold a user.
pub const CLOSE_WITHIN: Duration = Duration::from_secs(1);

/// How long the answer to the peer's close may take to go out: it is owed (RFC 6455 §5.5.1),
/// but a peer that stopped reading must not hold the user whose socket it closed.
const CLOSE_REPLY_WITHIN: Duration = Duration::from_millis(100);

/// How long a frame may take to go out before the peer counts as not reading, unless the
/// runtime sets the step timeout instead ([`Connection::stall_limit`]).
const SEND_WITHIN: Duration = Duration::from_secs(10);

/// What a client's frame takes on the wire: a 2-byte header, an extended length for payloads
/// over 125 bytes (2 or 8 bytes) and the 4-byte mask.
fn wire_len(payload: usize) -> usize {
    let extended = match payload {
        0..=125 => 0,
        126..=65535 => 2,
        _ => 8,
    };
    2 + extended + 4 + payload
}

/// `d` in nanoseconds, at most `u64::MAX` (584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A user's open connection.
pub struct Connection {
    socket: ws::Socket,
    /// What the socket read, each item seen after the user's one-way delay. Control frames go
    /// through it too, so the link's delay draws stay one per item read.
    inbox: Inbox<Result<Message, WsError>>,
    /// Bytes handed to the socket to go out (frames, pongs for pings read) since everything was
    /// last seen written out: an upper bound on what waits in tungstenite's queue.
    owed: usize,
    /// [`Connection::stall_limit`], in nanoseconds: 8 bytes where a `Duration` takes 16, which
    /// keeps an idle user's socket in the allocator's 384-byte class (bench/README.md).
    send_within_ns: u64,
    /// The peer's close, read and not yet handed over: its answer is being written out. Kept
    /// here so that a caller that stops waiting meanwhile still gets it on its next call.
    closing: Option<Box<Closed>>,
}

impl Connection {
    /// Opens a WebSocket to `path_and_query` with extra headers and offered subprotocols, over
    /// TLS when `tls` is given (the user's, shared with its HTTP connection).
    pub async fn open_ws(
        endpoint: &Endpoint,
        path_and_query: &str,
        headers: &[(String, String)],
        subprotocols: &[String],
        source: Option<std::net::IpAddr>,
        tls: Option<&UserTls>,
    ) -> Result<Connection, OpError> {
        let socket = ws::connect_with(
            endpoint,
            path_and_query,
            headers,
            subprotocols,
            source,
            tls,
            Meter::default(),
        )
        .await?;
        Ok(Connection {
            socket,
            inbox: Inbox::default(),
            owed: 0,
            send_within_ns: nanos(SEND_WITHIN),
            closing: None,
        })
    }

    /// The bytes written and read on the socket since the last call: the upgrade's request and
    /// response, frames with their headers and masks, pings, pongs and closes — as they went
    /// through the stream, which is when they were read off the network, before the user's
    /// region link delays them.
    pub fn take_bytes(&self) -> (u64, u64) {
        self.socket.get_ref().get_ref().meter().take()
    }

    /// How long a frame may take to go out before the peer counts as not reading (the step
    /// timeout, so a background reply cannot hold a user longer than a step could).
    pub fn stall_limit(mut self, within: Duration) -> Connection {
        self.send_within_ns = nanos(within);
        self
    }

    fn send_within(&self) -> Duration {
        Duration::from_nanos(self.send_within_ns)
    }

    /// Sends one frame and waits until it is written out (with any frames fed before it).
    /// Refused (and the socket given up) when the peer has not read for the stall limit or the
    /// outgoing queue is over its bound.
    pub async fn send(&mut self, frame: Frame) -> Result<(), Closed> {
        self.write(frame, true).await
    }

    /// Hands one frame to the socket without writing it out yet: it goes with the next `send`
    /// or `flush` (or sooner, once [`ws::WRITE_BATCH`] bytes wait), so that a burst of frames
    /// costs one write. Refused as `send` is.
    pub async fn feed(&mut self, frame: Frame) -> Result<(), Closed> {
        self.write(frame, false).await
    }

    /// Writes out every frame fed and not yet written, within the stall limit.
    pub async fn flush(&mut self) -> Result<(), Closed> {
        let within = self.send_within();
        match bounded(within, self.socket.flush()).await {
            Ok(Ok(())) => {
                self.owed = 0;
                Ok(())
            }
            Ok(Err(e)) => Err(Closed::of(&e)),
            Err(_) => Err(Closed::Refused(format!(
                "the peer does not read: frames could not go out within {within:?}"
            ))),
        }
    }

    async fn write(&mut self, frame: Frame, flush: bool) -> Result<(), Closed> {
        let len = wire_len(match &frame {
            Frame::Text(t) => t.as_str().len(),
            Frame::Binary(b) => b.len(),
        });
        if len > OUT_QUEUE {
            return Err(Closed::Refused(format!(
                "a frame of {len} bytes to send is over the {OUT_QUEUE} limit"
            )));
        }
        self.owe(len)?;
        let within = self.send_within();
        let message = frame.into_message();
        let written = if flush {
            bounded(within, self.socket.send(message)).await
        } else {
            bounded(within, self.socket.feed(message)).await
        };
        match written {
            Ok(Ok(())) => {
                if flush {
                    self.owed = 0;
                }
                Ok(())
            }
            Ok(Err(e)) => Err(Closed::of(&e)),
            Err(_) => Err(Closed::Refused(format!(
                "the peer does not read: a frame could not go out within {within:?}"
            ))),
        }
    }

    /// Counts `bytes` more to go out. Over [`OUT_QUEUE`], the queue must have drained since it
    /// was last seen empty, or the peer is not reading.
    fn owe(&mut self, bytes: usize) -> Result<(), Closed> {
        self.owed = self.owed.saturating_add(bytes);
        if self.owed <= OUT_QUEUE {
            return Ok(());
        }
        // Without waiting: whatever tungstenite holds goes to the kernel now, or cannot.
        match self.socket.flush().now_or_never() {
            Some(Ok(())) => {
                self.owed = bytes;
                Ok(())
            }
            Some(Err(e)) => Err(Closed::of(&e)),
            None => Err(Closed::Refused(not_reading())),
        }
    }

    /// The next data frame as the user sees it through `link`. Cancel-safe: a frame read when
    /// the caller stops waiting stays in the inbox for the next call.
    pub async fn next(&mut self, link: &mut Link) -> Result<Frame, Closed> {
        while self.closing.is_none() {
            match self.inbox.next(&mut self.socket, link, weight).await {
                Some(Ok(Message::Text(t))) => return Ok(Frame::Text(FrameText(t))),
                Some(Ok(Message::Binary(b))) => return Ok(Frame::Binary(b)),
                // tungstenite queues the pong and writes it on the next read or write: it is
                // owed until then, and a peer that pings without reading the pongs is stopped
                // at the bound.
                Some(Ok(Message::Ping(p))) => self.owe(wire_len(p.len()))?,
                // The peer's close is the end, whether or not the stream's end follows: RFC 6455
                // lets a server wait for the client to close the TCP connection, and a user
                // waiting for that would miss its socket's loss (no error, no reconnect). What
                // it said is kept for the user's error, and it is answered first.
                Some(Ok(Message::Close(frame))) => {
                    let closed = Closed::ByPeer(Some(PeerClose::of(frame)));
                    self.closing = Some(Box::new(closed));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(Closed::of(&e)),
                None => return Err(Closed::ByPeer(None)),
            }
        }
        // Boxed, and awaited once the frame read is out of scope: the answer runs once, at a
        // socket's end, and inline its timer and the read message would be laid out in every
        // listening user's future (176 bytes of each idle connected user's: -Zprint-type-sizes).
        Err(Box::pin(self.answer_close()).await)
    }

    /// Writes out the close frame tungstenite queued as the answer to the peer's (it writes it
    /// only on a later read or write, and the user reads no more), within
    /// [`CLOSE_REPLY_WITHIN`]; then hands over the peer's close.
    async fn answer_close(&mut self) -> Closed {
        // Whether it went out changes nothing for the user: the socket is done either way.
        let _ = tokio::time::timeout(CLOSE_REPLY_WITHIN, self.socket.flush()).await;
        self.closing.take().map_or(Closed::ByPeer(None), |c| *c)
    }

    /// Starts the close handshake from our side (frames may still arrive until the peer's
    /// answer ends the stream), within [`CLOSE_WITHIN`].
    pub async fn close(&mut self) -> Result<(), Closed> {
        match tokio::time::timeout(CLOSE_WITHIN, self.socket.close(None)).await {
            Ok(r) => r.map_err(|e| Closed::of(&e)),
            Err(_) => Err(Closed::Refused(format!(
                "the peer did not take the close within {CLOSE_WITHIN:?}"
            ))),
        }
    }
}

/// `fut`'s output, or an error once `within` passed without it: a timeout armed only when the
/// first poll does not finish it. A frame almost always goes out at once (the kernel takes
/// it), and then no timer is made and dropped — on every message's path.
async fn bounded<F: Future + Unpin>(
    within: Duration,
    mut fut: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut fut).poll(cx))).await;
    match first {
        Poll::Ready(out) => Ok(out),
        // Not finished: the limit counts from here, a poll later than the call (no wait).
        Poll::Pending => tokio::time::timeout(within, fut).await,
    }
}

/// What a read item holds in memory, for the inbox's byte bound.
fn weight(item: &Result<Message, WsError>) -> usize {
    match item {
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ErrorClass;
    use futures_util::StreamExt;
    use tokio::net::TcpListener;

    #[test]
    fn frames_read_as_text_without_copying_valid_utf8() {
        let t = Frame::text("héllo".to_string());
        assert!(matches!(t.to_text(), Cow::Borrowed("héllo")));
        let b = Frame::binary(b"plain".to_vec());
        assert!(matches!(b.to_text(), Cow::Borrowed("plain")));
        // Invalid UTF-8 is replaced, as before the seam.
        let bad = Frame::binary(vec![b'a', 0xff, b'b']);
        assert_eq!(bad.to_text(), "a\u{fffd}b");
        assert!(matches!(bad.to_text(), Cow::Owned(_)));
        // Converting to the wire type keeps the kind.
        assert!(matches!(t.into_message(), Message::Text(_)));
        assert!(matches!(b.into_message(), Message::Binary(_)));
    }

    /// A loopback WebSocket echo peer that sends a ping first and closes after `n` frames.
    async fn echo_peer(n: usize) -> Result<std::net::SocketAddr, std::io::Error> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            if ws
                .send(Message::Ping(Bytes::from_static(b"p")))
                .await
                .is_err()
            {
                return;
            }
            let mut echoed = 0;
            while let Some(Ok(m)) = ws.next().await {
                if m.is_text() || m.is_binary() {
                    if ws.send(m).await.is_err() {
                        return;
                    }
                    echoed += 1;
                    if echoed == n {
                        let _ = ws.close(None).await;
                    }
                }
            }
        });
        Ok(addr)
    }

    #[tokio::test]
    async fn sends_and_receives_frames_and_reports_the_peers_close() {
        let addr = echo_peer(2).await.expect("bind loopback");
        let endpoint = Endpoint::plain(addr);
        let mut conn = Connection::open_ws(&endpoint, "/", &[], &[], None, None)
            .await
            .expect("handshake with the loopback peer");
        let mut link = Link::ideal();
        conn.send(Frame::text("one".into())).await.expect("send");
        // The ping before the echo is answered inside the client, never returned.
        let first = conn.next(&mut link).await.expect("echo");
        assert_eq!(first, Frame::text("one".into()));
        conn.send(Frame::binary(vec![1, 2])).await.expect("send");
        assert_eq!(
            conn.next(&mut link).await,
            Ok(Frame::binary(vec![1, 2])),
            "binary frames stay binary"
        );
        // The peer closed after two frames (a close frame without a code): the end is reported
        // as its close, once and again.
        let closed = conn.next(&mut link).await.expect_err("closed");
        assert_eq!(closed.to_string(), "the peer closed the socket");
        assert!(conn.next(&mut link).await.is_err());
    }

    #[tokio::test]
    async fn fed_frames_wait_for_the_flush_and_go_out_together() {
        let addr = echo_peer(3).await.expect("bind loopback");
        let endpoint = Endpoint::plain(addr);
        let mut conn = Connection::open_ws(&endpoint, "/", &[], &[], None, None)
            .await
            .expect("handshake with the loopback peer");
        let mut link = Link::ideal();
        // A round trip first: the peer's ping is read (and its pong written) on the way.
        conn.send(Frame::text("first".into())).await.expect("send");
        assert_eq!(conn.next(&mut link).await, Ok(Frame::text("first".into())));
        conn.feed(Frame::text("a".into())).await.expect("feed");
        conn.feed(Frame::text("b".into())).await.expect("feed");
        // Not written yet: no echo comes back (a loopback echo takes well under this).
        let early = tokio::time::timeout(Duration::from_millis(200), conn.next(&mut link)).await;
        assert!(
            early.is_err(),
            "a fed frame went out before the flush: {early:?}"
        );
        conn.flush().await.expect("flush");
        assert_eq!(conn.next(&mut link).await, Ok(Frame::text("a".into())));
        assert_eq!(conn.next(&mut link).await, Ok(Frame::text("b".into())));
        assert!(matches!(
            conn.next(&mut link).await,
            Err(Closed::ByPeer(Some(_)))
        ));
    }

    #[tokio::test]
    async fn the_peers_close_frame_ends_the_socket_while_its_tcp_stays_open_and_is_answered() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        let (answered, answer) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let going_away = tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Away,
                reason: "restarting".into(),
            };
            let _ = ws.send(Message::Close(Some(going_away))).await;
            // What the client sends back: its close frame, as RFC 6455 §5.5.1 asks.
            let _ = answered.send(ws.next().await.map(|m| m.map_err(|e| e.to_string())));
            // The TCP connection stays open: the server waits for the client to close it.
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(ws);
        });
        let endpoint = Endpoint::plain(addr);
        let mut conn = Connection::open_ws(&endpoint, "/", &[], &[], None, None)
            .await
            .expect("handshake with the loopback peer");
        let mut link = Link::ideal();
        // Within seconds, not when the peer's TCP ends (30 s): the close frame itself is the end,
        // and the user is told what the peer said.
        let next = tokio::time::timeout(Duration::from_secs(10), conn.next(&mut link)).await;
        let closed = next.expect("in time").expect_err("closed");
        assert_eq!(
            closed.error().reason,
            "the peer closed the socket: 1001 restarting"
        );
        // Answered while the user still holds the socket (it is not dropped yet).
        let reply = tokio::time::timeout(Duration::from_secs(10), answer).await;
        let reply = reply
            .expect("the close is answered in time")
            .expect("the peer's report");
        assert!(
            matches!(&reply, Some(Ok(Message::Close(Some(f)))) if u16::from(f.code) == 1001),
            "{reply:?}"
        );
        drop(conn);
    }

    /// A loopback peer that answers the upgrade and then reads nothing, with a small receive
    /// buffer so that the kernel's buffers fill soon.
    async fn deaf_peer() -> Result<std::net::SocketAddr, std::io::Error> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(4096)?;
        socket.bind(([127, 0, 0, 1], 0).into())?;
        let listener = socket.listen(4)?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            // Held open, never read.
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            drop(ws);
        });
        Ok(addr)
    }

    #[tokio::test]
    async fn a_peer_that_does_not_read_stalls_a_send_and_the_close_is_bounded() {
        let addr = deaf_peer().await.expect("bind loopback");
        let endpoint = Endpoint::plain(addr);
        let stall = Duration::from_millis(200);
        let mut conn = Connection::open_ws(&endpoint, "/", &[], &[], None, None)
            .await
            .expect("handshake with the loopback peer")
            .stall_limit(stall);
        // 64 KiB frames until the kernel's buffers are full and one cannot go out in time
        // (a few MiB at most on loopback; 1 000 frames would be 64 MiB).
        let frame = Frame::binary(vec![7; 64 * 1024]);
        let mut refused = None;
        for _ in 0..1000 {
            if let Err(e) = conn.send(frame.clone()).await {
                refused = Some(e);
                break;
            }
        }
        let refused = refused.expect("a send stalls");
        assert!(
            matches!(&refused, Closed::Refused(why) if why.contains("the peer does not read")),
            "{refused:?}"
        );
        assert_eq!(refused.error().class, ErrorClass::Protocol);
        // The close frame cannot go out either: the close gives up after CLOSE_WITHIN.
        let t = std::time::Instant::now();
        assert!(conn.close().await.is_err());
        let took = t.elapsed();
        // At least the deadline; at most it plus a generous margin for a loaded machine.
        assert!(took >= CLOSE_WITHIN && took < CLOSE_WITHIN * 5, "{took:?}");
    }

    #[test]
    fn a_client_frame_takes_header_length_and_mask() {
        assert_eq!(wire_len(0), 6);
        assert_eq!(wire_len(125), 131);
        assert_eq!(wire_len(126), 134);
        assert_eq!(wire_len(70_000), 70_014);
    }
}
