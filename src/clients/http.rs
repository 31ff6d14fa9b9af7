//! A user's HTTP/1.1 connection: one keep-alive connection per simulated user, as a phone app
//! holds one, opened lazily and reopened when the server closes it; counted in its worker's
//! [`OpenConnections`] while it is open.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

use std::cell::Cell;
use std::rc::Rc;

use crate::clients::region_link::Link;
use crate::clients::stream::Meter;
use crate::clients::tls::UserTls;
use crate::clients::{Endpoint, OpError};
use crate::metrics::ErrorClass;

/// Responses larger than this are a protocol error: a load generator must stay bounded.
const MAX_BODY: usize = 1 << 20;

/// A request that got no usable response: a response that is not HTTP (or too large a head) is
/// the target's `protocol` error — retrying it as a failed connect would hide it — while a
/// connection refused, reset or closed before the answer is `connect`.
fn request_failed(e: &hyper::Error) -> OpError {
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        OpError::new(ErrorClass::Protocol, format!("malformed response: {e}"))
    } else {
        OpError::new(
            ErrorClass::Connect,
            format!("request failed: {}", with_causes(e)),
        )
    }
}

/// How many HTTP connections a worker's users hold open: a gauge touched by the worker's thread
/// alone (a plain cell, no atomics), read at each interval's end.
#[derive(Debug, Clone, Default)]
pub struct OpenConnections(Rc<Cell<u64>>);

impl OpenConnections {
    pub fn get(&self) -> u64 {
        self.0.get()
    }

    /// One more connection open, until the first of its two ends closes it.
    fn opened(&self) -> Rc<Open> {
        self.0.set(self.0.get() + 1);
        Rc::new(Open {
            count: self.clone(),
            counted: Cell::new(true),
        })
    }
}

/// One open connection in the count. It leaves the count at the first of its ends: the server
/// closes it (its connection task ends, even while the user is idle) or the user lets it go (its
/// sender is dropped, and hyper closes it) — the latter at once, so a user that ended holds
/// nothing in the count when its worker reports its last interval.
#[derive(Debug)]
struct Open {
    count: OpenConnections,
    counted: Cell<bool>,
}

impl Open {
    fn close(&self) {
        if self.counted.replace(false) {
            let n = &self.count.0;
            n.set(n.get().saturating_sub(1));
        }
    }
}

/// The kept-alive connection: what sends on it, and its place in the count (left when dropped).
struct Kept {
    sender: SendRequest<Full<Bytes>>,
    open: Rc<Open>,
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.open.close();
    }
}

pub struct HttpClient {
    kept: Option<Kept>,
    /// The worker's count of open HTTP connections.
    count: OpenConnections,
    /// The local address to connect from, if the scenario sets some.
    source: Option<std::net::IpAddr>,
    /// The user's TLS state when the target is `https://` (shared with its WebSocket).
    tls: Option<Rc<UserTls>>,
    /// The bytes of every connection this client opens (one user's, one request at a time, so
    /// what it counted since the last take is that request's and response's).
    meter: Meter,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl HttpClient {
    /// A client whose connections leave from `source`, over TLS when `tls` is given, each
    /// counted in `count` while it is open.
    pub fn new(
        source: Option<std::net::IpAddr>,
        tls: Option<Rc<UserTls>>,
        count: OpenConnections,
    ) -> Self {
        HttpClient {
            kept: None,
            count,
            source,
            tls,
            meter: Meter::default(),
        }
    }

    /// The bytes written and read since the last call: a request's head and body as hyper
    /// wrote them, its response's as hyper read them.
    pub fn take_bytes(&self) -> (u64, u64) {
        self.meter.take()
    }

    /// The user's TLS state, for its WebSocket to share (and for its handshakes to be recorded).
    pub fn tls(&self) -> Option<&Rc<UserTls>> {
        self.tls.as_ref()
    }

    /// Lets the kept-alive connection go (the next request opens a new one); the TLS session
    /// stays, so that connection resumes it.
    pub fn disconnect(&mut self) {
        self.kept = None;
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Kept, OpError> {
        let stream = crate::clients::stream::open(
            endpoint,
            self.source,
            self.tls.as_deref(),
            self.meter.clone(),
        )
        .await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| OpError::new(ErrorClass::Connect, format!("http handshake: {e}")))?;
        let open = self.count.opened();
        let closed = open.clone();
        // The connection task ends when the server closes it or the sender is dropped.
        tokio::task::spawn_local(async move {
            let _ = conn.await;
            closed.close();
        });
        Ok(Kept { sender, open })
    }

    /// Sends one request (path and query below the endpoint's prefix) and reads the whole
    /// response body.
    pub async fn request(
        &mut self,
        endpoint: &Endpoint,
        link: &mut Link,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, OpError> {
        // Reuse the kept-alive connection unless the server closed it meanwhile.
        let reusable = match self.kept.take() {
            Some(mut k) => k.sender.ready().await.is_ok().then_some(k),
            None => None,
        };
        let mut kept = match reusable {
            Some(s) => s,
            None => {
                // A new connection first costs the user's network a round trip, and TLS 1.3's
                // handshake one more.
                link.round_trip().await;
                if self.tls.is_some() {
                    link.round_trip().await;
                }
                self.connect(endpoint).await?
            }
        };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{}", endpoint.prefix, path))
            .header(hyper::header::HOST, endpoint.authority.as_str());
        for (name, value) in headers {
            req = req.header(name.as_str(), value.as_str());
        }
        let body = match body {
            Some((content_type, bytes)) => {
                if !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                {
                    req = req.header(hyper::header::CONTENT_TYPE, content_type);
                }
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req
            .body(body)
            .map_err(|e| OpError::new(ErrorClass::Protocol, format!("bad request: {e}")))?;
        // The request travels one way through the user's network, the response back the other.
        link.one_way().await;
        let resp = kept
            .sender
            .send_request(req)
            .await
            .map_err(|e| request_failed(&e))?;
        let status = resp.status().as_u16();
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| OpError::new(ErrorClass::Protocol, format!("reading body: {e}")))?
            .to_bytes();
        link.one_way().await;
        self.kept = Some(kept);
        Ok(Response {
            status,
            headers: parts.headers,
            body,
        })
    }
}

/// An error with its causes: hyper's own text is generic ("connection error") and the reason
/// (a reset, a TLS alert such as a required client certificate) is in its sources.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
