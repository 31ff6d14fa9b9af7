//! Why a user's connection can no longer carry frames ([`Closed`]), in inrush's own terms, and
//! what the peer said when it closed it ([`PeerClose`]): the words a user's error and trace
//! show.

use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::clients::ws::OUT_QUEUE;
use crate::clients::OpError;
use crate::metrics::ErrorClass;

/// Why a connection can no longer carry frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The peer closed it: with a close frame (what it said in it), or by ending the stream
    /// without one.
    ByPeer(Option<PeerClose>),
    /// The transport failed (a reset, an I/O error): why, as the system said it.
    Broken(String),
    /// inrush gave up on it because the peer broke the protocol or stopped reading: why.
    Refused(String),
}

/// What a peer's close frame said: its status code and reason (RFC 6455 §7.4), both optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerClose {
    pub code: Option<u16>,
    /// The target's text, so bounded and without control characters (it goes into reports).
    pub reason: String,
}

/// The longest reason kept: what a close frame can carry (a control frame's 125 bytes, less the
/// code's two), in case a peer sends more.
const REASON_AT_MOST: usize = 123;

impl PeerClose {
    /// What `frame` said (`None`: a close frame without a body, so without a code).
    pub(crate) fn of(frame: Option<CloseFrame>) -> PeerClose {
        let Some(frame) = frame else {
            return PeerClose {
                code: None,
                reason: String::new(),
            };
        };
        let (reason, _) = crate::clients::quote::target_text(frame.reason.as_str(), REASON_AT_MOST);
        PeerClose {
            code: Some(frame.code.into()),
            reason,
        }
    }
}

impl std::fmt::Display for PeerClose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(code) = self.code {
            write!(f, ": {code}")?;
        }
        if !self.reason.is_empty() {
            write!(f, " {}", self.reason)?;
        }
        Ok(())
    }
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Closed::ByPeer(None) => f.write_str("the peer closed the connection"),
            Closed::ByPeer(Some(close)) => write!(f, "the peer closed the socket{close}"),
            Closed::Broken(why) => write!(f, "the connection broke: {why}"),
            Closed::Refused(why) => write!(f, "{why}; inrush closed the socket"),
        }
    }
}

impl Closed {
    /// The close a socket's error means.
    pub(crate) fn of(e: &WsError) -> Closed {
        use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
        match e {
            WsError::ConnectionClosed | WsError::AlreadyClosed => Closed::ByPeer(None),
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Closed::ByPeer(None),
            WsError::Io(io) => Closed::Broken(io.to_string()),
            WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
                Closed::Refused(format!("frame of {size} bytes over the {max_size} limit"))
            }
            WsError::Protocol(p) => Closed::Refused(format!("invalid frame: {p}")),
            WsError::Utf8(_) => Closed::Refused("invalid frame: text that is not UTF-8".into()),
            WsError::WriteBufferFull(_) => Closed::Refused(not_reading()),
            other => Closed::Broken(other.to_string()),
        }
    }

    /// Whether the peer's side ended it (a close, the stream's end, a reset), not inrush.
    pub fn by_peer(&self) -> bool {
        matches!(self, Closed::ByPeer(_) | Closed::Broken(_))
    }

    /// The failed operation this close is for whoever waited on the socket: a peer's close or
    /// a broken transport is `ws_closed`; a socket inrush gave up on is a `protocol` error.
    pub fn error(&self) -> OpError {
        let class = match self {
            Closed::ByPeer(_) | Closed::Broken(_) => ErrorClass::WsClosed,
            Closed::Refused(_) => ErrorClass::Protocol,
        };
        OpError::new(class, self.to_string())
    }
}

/// Why a socket whose peer does not read was given up.
pub(crate) fn not_reading() -> String {
    format!(
        "the peer does not read: more than {OUT_QUEUE} bytes (frames and the pongs for its \
         pings) waited to go out"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    #[test]
    fn a_peers_close_says_its_code_and_reason_bounded_and_on_one_line() {
        let close = |code: u16, reason: String| {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            };
            Closed::ByPeer(Some(PeerClose::of(Some(frame))))
        };
        let e = close(4000, "bye".into()).error();
        assert_eq!(e.class, ErrorClass::WsClosed);
        assert_eq!(e.reason, "the peer closed the socket: 4000 bye");
        assert_eq!(
            close(1000, String::new()).to_string(),
            "the peer closed the socket: 1000"
        );
        assert_eq!(
            Closed::ByPeer(Some(PeerClose::of(None))).to_string(),
            "the peer closed the socket"
        );
        // A reason is the target's text: no line breaks into reports, and no more than a close
        // frame can carry, cut at a character's boundary.
        assert_eq!(
            close(1011, "a\r\nb".into()).to_string(),
            "the peer closed the socket: 1011 a  b"
        );
        let long = close(4001, "é".repeat(100));
        let kept = "é".repeat(61);
        assert!(
            matches!(&long, Closed::ByPeer(Some(c)) if c.reason == kept),
            "{long:?}"
        );
    }

    #[test]
    fn errors_say_who_closed_and_why() {
        let too_long = WsError::Capacity(
            tokio_tungstenite::tungstenite::error::CapacityError::MessageTooLong {
                size: 5_000_000,
                max_size: 1 << 20,
            },
        );
        let e = Closed::of(&too_long).error();
        assert_eq!(e.class, ErrorClass::Protocol);
        assert_eq!(
            e.reason,
            "frame of 5000000 bytes over the 1048576 limit; inrush closed the socket"
        );
        let invalid = WsError::Protocol(
            tokio_tungstenite::tungstenite::error::ProtocolError::NonZeroReservedBits,
        );
        let e = Closed::of(&invalid).error();
        assert_eq!(e.class, ErrorClass::Protocol);
        assert!(
            e.reason.starts_with("invalid frame: Reserved bits"),
            "{}",
            e.reason
        );
        let reset = WsError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(Closed::of(&reset).error().class, ErrorClass::WsClosed);
        assert_eq!(Closed::of(&WsError::ConnectionClosed), Closed::ByPeer(None));
        assert_eq!(
            Closed::ByPeer(None).error().reason,
            "the peer closed the connection"
        );
    }
}
