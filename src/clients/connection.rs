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

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use crate::clients::region_link::{Inbox, Link};
use crate::clients::tls::UserTls;
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

/// Why a connection can no longer carry frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The peer closed it: a close handshake, or the stream ended.
    ByPeer,
    /// The transport failed: a reset, a protocol error, a frame that could not go out.
    Broken,
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Closed::ByPeer => "the peer closed the connection",
            Closed::Broken => "the connection broke",
        })
    }
}

impl Closed {
    fn of(e: &WsError) -> Closed {
        match e {
            WsError::ConnectionClosed | WsError::AlreadyClosed => Closed::ByPeer,
            _ => Closed::Broken,
        }
    }
}

/// A user's open connection.
pub struct Connection {
    socket: ws::Socket,
    /// What the socket read, each item seen after the user's one-way delay. Control frames go
    /// through it too, so the link's delay draws stay one per item read.
    inbox: Inbox<Result<Message, WsError>>,
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
        let socket =
            ws::connect_with(endpoint, path_and_query, headers, subprotocols, source, tls).await?;
        Ok(Connection::over(socket))
    }

    fn over(socket: ws::Socket) -> Connection {
        Connection {
            socket,
            inbox: Inbox::default(),
        }
    }

    /// Sends one frame (and flushes it).
    pub async fn send(&mut self, frame: Frame) -> Result<(), Closed> {
        self.socket
            .send(frame.into_message())
            .await
            .map_err(|e| Closed::of(&e))
    }

    /// The next data frame as the user sees it through `link`. Cancel-safe: a frame read when
    /// the caller stops waiting stays in the inbox for the next call.
    pub async fn next(&mut self, link: &mut Link) -> Result<Frame, Closed> {
        loop {
            match self.inbox.next(&mut self.socket, link).await {
                Some(Ok(Message::Text(t))) => return Ok(Frame::Text(FrameText(t))),
                Some(Ok(Message::Binary(b))) => return Ok(Frame::Binary(b)),
                // Pings are answered by tungstenite on the next read or write; a close frame is
                // followed by the end of the stream, which is what reports it.
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(Closed::of(&e)),
                None => return Err(Closed::ByPeer),
            }
        }
    }

    /// Starts the close handshake from our side (frames may still arrive until the peer's
    /// answer ends the stream).
    pub async fn close(&mut self) -> Result<(), Closed> {
        self.socket.close(None).await.map_err(|e| Closed::of(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let endpoint = Endpoint {
            addr,
            authority: addr.to_string(),
            prefix: String::new(),
            sources: Vec::new(),
            tls: None,
        };
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
        // The peer closed after two frames: the end is reported as its close, once and again.
        assert_eq!(conn.next(&mut link).await, Err(Closed::ByPeer));
        assert!(conn.next(&mut link).await.is_err());
    }
}
