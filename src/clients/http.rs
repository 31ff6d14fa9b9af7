//! A user's HTTP/1.1 requests: by default over one keep-alive connection per simulated user, as
//! a phone app holds one, opened lazily and reopened when the server closes it; with `[run]
//! connections = { pool = N }`, over a connection of its worker's shared pool (`clients::pool`).
//! Every connection is counted in its worker's [`OpenConnections`] while it is open.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};

use std::rc::Rc;

use crate::clients::kept::Kept;
pub use crate::clients::kept::OpenConnections;
use crate::clients::pool::Pool;
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

pub struct HttpClient {
    /// The user's own kept-alive connection (without a pool).
    kept: Option<Kept>,
    /// The worker's shared connections, when the scenario pools them.
    pool: Option<Rc<Pool>>,
    /// The worker's count of open HTTP connections.
    count: OpenConnections,
    /// The local address to connect from, if the scenario sets some.
    source: Option<std::net::IpAddr>,
    /// The user's TLS state when the target is `https://` (shared with its WebSocket).
    tls: Option<Rc<UserTls>>,
    /// The bytes of every connection this client opens (one user's, one request at a time, so
    /// what it counted since the last take is that request's and response's); a pooled
    /// connection's bytes are moved here when the user's request lets it go.
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
    /// counted in `count` while it is open; or, given a `pool`, whose requests take the pool's
    /// connections (`tls` is then the user's WebSocket's, and where the pool's handshakes done
    /// for this user's requests are noted).
    pub fn new(
        source: Option<std::net::IpAddr>,
        tls: Option<Rc<UserTls>>,
        count: OpenConnections,
        pool: Option<Rc<Pool>>,
    ) -> Self {
        HttpClient {
            kept: None,
            pool,
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
    /// stays, so that connection resumes it. A pool's connections are not the user's to let go.
    pub fn disconnect(&mut self) {
        self.kept = None;
    }

    /// Sends one request (path and query below the endpoint's prefix) and reads the whole
    /// response body, over the user's own connection or a pooled one. A wait for a pooled
    /// connection is part of the request's time: the caller's latency and timeout cover it.
    pub async fn request(
        &mut self,
        endpoint: &Endpoint,
        link: &mut Link,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response, OpError> {
        let Some(pool) = &self.pool else {
            return self
                .own_request(endpoint, link, method, path, headers, body)
                .await;
        };
        // Dropped however the request ends: a connection in the middle of one is closed, not
        // reused, and its bytes are this user's.
        let mut lease = pool.lease(&self.meter).await?;
        let kept = match lease.idle().await {
            Some(k) => k,
            None => {
                new_connection_delay(link, self.tls.is_some()).await;
                pool.connect(endpoint, self.tls.as_deref()).await?
            }
        };
        let kept = lease.hold(kept);
        let response = send(kept, endpoint, link, method, path, headers, body).await?;
        lease.release();
        Ok(response)
    }

    /// A request over the user's own kept-alive connection.
    async fn own_request(
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
            Some(mut k) => k.usable().await.then_some(k),
            None => None,
        };
        let mut kept = match reusable {
            Some(s) => s,
            None => {
                new_connection_delay(link, self.tls.is_some()).await;
                let meter = self.meter.clone();
                Kept::connect(
                    endpoint,
                    self.source,
                    self.tls.as_deref(),
                    meter,
                    &self.count,
                )
                .await?
            }
        };
        let response = send(&mut kept, endpoint, link, method, path, headers, body).await?;
        self.kept = Some(kept);
        Ok(response)
    }
}

/// A new connection first costs the user's network a round trip, and TLS 1.3's handshake one
/// more.
async fn new_connection_delay(link: &mut Link, tls: bool) {
    link.round_trip().await;
    if tls {
        link.round_trip().await;
    }
}

/// The request, set field by field rather than through `http`'s `Builder` (whose every call
/// moves its whole state), and without a `format!` when the target has no path prefix: this is
/// every request's path (bench/README.md, "HTTP against peers").
fn build_request(
    endpoint: &Endpoint,
    method: Method,
    path: &str,
    headers: &[(String, String)],
    body: Option<(&str, Vec<u8>)>,
) -> Result<Request<Full<Bytes>>, OpError> {
    fn bad(e: impl std::fmt::Display) -> OpError {
        OpError::new(ErrorClass::Protocol, format!("bad request: {e}"))
    }
    let uri = if endpoint.prefix.is_empty() {
        Uri::try_from(path)
    } else {
        Uri::try_from(format!("{}{}", endpoint.prefix, path))
    }
    .map_err(bad)?;
    let (content_type, bytes) = match body {
        Some((content_type, bytes)) => (Some(content_type), Bytes::from(bytes)),
        None => (None, Bytes::new()),
    };
    let mut req = Request::new(Full::new(bytes));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    let map = req.headers_mut();
    let host = HeaderValue::try_from(endpoint.authority.as_str()).map_err(bad)?;
    map.try_append(HOST, host).map_err(bad)?;
    for (name, value) in headers {
        let name = HeaderName::try_from(name.as_str()).map_err(bad)?;
        let value = HeaderValue::try_from(value.as_str()).map_err(bad)?;
        map.try_append(name, value).map_err(bad)?;
    }
    if let Some(content_type) = content_type {
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            let value = HeaderValue::try_from(content_type).map_err(bad)?;
            map.try_append(CONTENT_TYPE, value).map_err(bad)?;
        }
    }
    Ok(req)
}

/// Sends one request on a connection and reads the whole response body.
async fn send(
    kept: &mut Kept,
    endpoint: &Endpoint,
    link: &mut Link,
    method: Method,
    path: &str,
    headers: &[(String, String)],
    body: Option<(&str, Vec<u8>)>,
) -> Result<Response, OpError> {
    let req = build_request(endpoint, method, path, headers, body)?;
    // The request travels one way through the user's network, the response back the other.
    link.one_way().await;
    let resp = kept
        .sender()
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
    Ok(Response {
        status,
        headers: parts.headers,
        body,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(prefix: &str) -> Endpoint {
        Endpoint {
            addr: ([127, 0, 0, 1], 9).into(),
            authority: "127.0.0.1:9".into(),
            prefix: prefix.into(),
            sources: Vec::new(),
            tls: None,
        }
    }

    #[test]
    fn builds_the_request_as_the_flow_rendered_it() {
        let headers = vec![("x-a".to_string(), "1".to_string())];
        let body = Some(("application/json", b"{}".to_vec()));
        let req = build_request(&endpoint("/api"), Method::POST, "/v1/x?y=1", &headers, body)
            .expect("a valid request");
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri(), "/api/v1/x?y=1");
        let names: Vec<&str> = req.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["host", "x-a", "content-type"]);
        assert_eq!(req.headers()[HOST], "127.0.0.1:9");
        assert_eq!(req.headers()[CONTENT_TYPE], "application/json");
        // The flow's own content type wins; without a prefix the path is the URI.
        let own = vec![("Content-Type".to_string(), "text/csv".to_string())];
        let req = build_request(
            &endpoint(""),
            Method::PUT,
            "/x",
            &own,
            Some(("a/b", vec![])),
        )
        .expect("a valid request");
        assert_eq!(req.uri(), "/x");
        assert_eq!(req.headers().get_all(CONTENT_TYPE).iter().count(), 1);
        assert_eq!(req.headers()[CONTENT_TYPE], "text/csv");
        // A header a flow rendered into something HTTP cannot carry is a protocol error.
        let broken = vec![("x-b".to_string(), "line\nbreak".to_string())];
        let e = build_request(&endpoint(""), Method::GET, "/", &broken, None)
            .expect_err("a newline in a header value");
        assert_eq!(e.class, ErrorClass::Protocol);
        assert!(e.reason.starts_with("bad request: "), "{}", e.reason);
        let e = build_request(&endpoint(""), Method::GET, "/a b", &[], None)
            .expect_err("a space in the path");
        assert_eq!(e.class, ErrorClass::Protocol);
    }
}
