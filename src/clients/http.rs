//! A user's HTTP/1.1 requests: by default over one keep-alive connection per simulated user, as
//! a phone app holds one, opened lazily and reopened when the server closes it; with `[run]
//! connections = { pool = N }`, over a connection of its worker's shared pool (`clients::pool`).
//! Every connection is counted in its worker's [`OpenConnections`] while the user (or the
//! pool) holds it. The requests and responses are inrush's own HTTP/1.1 (`clients::kept`).
//! A request the server closed its kept-alive connection under, unanswered, goes again once
//! on a new connection when it may ([`HttpClient::request`]).

use http::Method;

use std::rc::Rc;

pub use crate::clients::kept::OpenConnections;
use crate::clients::kept::{Failed, Kept};
use crate::clients::pool::Pool;
use crate::clients::region_link::Link;
pub use crate::clients::response::{Headers, Response};
use crate::clients::stream::Meter;
use crate::clients::tls::UserTls;
use crate::clients::{Endpoint, OpError};

pub struct HttpClient {
    /// The user's own kept-alive connection (without a pool). Boxed: once its WebSocket is up a
    /// user lets it go, and an idle connected user would still carry its room.
    kept: Option<Box<Kept>>,
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

    /// The bytes written and read since the last call: a request's head and body as written,
    /// its response's as read.
    pub fn take_bytes(&self) -> (u64, u64) {
        self.meter.take()
    }

    /// The user's TLS state, for its WebSocket to share (and for its handshakes to be recorded).
    pub fn tls(&self) -> Option<&Rc<UserTls>> {
        self.tls.as_ref()
    }

    /// Hands a response's buffers (header lines, body) back for the next response: to the
    /// user's connection, or, pooled, to the pool (the connection that read it is back there by
    /// now, and the next arrival is another user's).
    pub fn reuse(&mut self, response: Response) {
        if let Some(kept) = &mut self.kept {
            kept.reuse(response);
        } else if let Some(pool) = &self.pool {
            pool.reuse(response);
        }
    }

    /// Lets the kept-alive connection go (the next request opens a new one); the TLS session
    /// stays, so that connection resumes it. A pool's connections are not the user's to let go.
    pub fn disconnect(&mut self) {
        self.kept = None;
    }

    /// Sends one request (path and query below the endpoint's prefix) and reads the whole
    /// response body, over the user's own connection or a pooled one. A wait for a pooled
    /// connection is part of the request's time: the caller's latency and timeout cover it.
    ///
    /// A request on a kept-alive connection the server closed as it went out (its idle timeout
    /// ran out at that moment: the connection looked open, and nothing came back) is sent
    /// again, once, on a new connection when it may be sent twice ([`replayable`]), as Go's
    /// net/http and hyper do; the caller's latency, from the step's intended start, holds both.
    ///
    /// Its future is put by the caller into a 1 KiB block the worker lends per request (the
    /// step's attempt, `swarm::blocks`), so it is kept under 1 KiB (968 bytes, was 1 752): a
    /// larger one would be boxed per attempt. So the arguments are borrowed and kept once (an
    /// `async fn` keeps them twice), and the pooled request, larger, is boxed on its own
    /// (bench/README.md).
    #[allow(clippy::manual_async_fn)]
    pub fn request<'r>(
        &'r mut self,
        endpoint: &'r Endpoint,
        link: &'r mut Link,
        method: &'r Method,
        path: &'r str,
        headers: &'r [(String, String)],
        body: Option<(&'r str, &'r [u8])>,
    ) -> impl std::future::Future<Output = Result<Response, OpError>> + 'r {
        async move {
            let req = Req {
                endpoint,
                method,
                path,
                headers,
                body,
            };
            match &self.pool {
                None => self.own_request(link, &req).await,
                Some(pool) => Box::pin(self.pooled_request(pool, link, &req)).await,
            }
        }
    }

    /// A request over a connection of the worker's pool.
    async fn pooled_request(
        &self,
        pool: &Rc<Pool>,
        link: &mut Link,
        req: &Req<'_>,
    ) -> Result<Response, OpError> {
        // Dropped however the request ends: a connection in the middle of one is closed, not
        // reused, and its bytes are this user's.
        let mut lease = pool.lease(&self.meter).await?;
        let (kept, reused) = match lease.idle() {
            Some(k) => (k, true),
            None => {
                new_connection_delay(link, self.tls.is_some()).await;
                (
                    pool.connect(req.endpoint, self.tls.as_deref()).await?,
                    false,
                )
            }
        };
        let response = match send(lease.hold(kept), link, req).await {
            Ok(r) => r,
            Err(f) if reused && f.unanswered && replayable(req) => {
                // Counted as a connection the server closed, replaced by a new one.
                lease.let_closed_go();
                new_connection_delay(link, self.tls.is_some()).await;
                let kept = pool.connect(req.endpoint, self.tls.as_deref()).await?;
                send(lease.hold(kept), link, req).await?
            }
            Err(f) => return Err(f.error),
        };
        lease.release();
        Ok(response)
    }

    /// A request over the user's own kept-alive connection.
    async fn own_request(&mut self, link: &mut Link, req: &Req<'_>) -> Result<Response, OpError> {
        // Reuse the kept-alive connection unless the server closed it meanwhile.
        let reusable = match self.kept.take() {
            Some(mut k) => k.usable().then_some(k),
            None => None,
        };
        let reused = reusable.is_some();
        let mut kept = match reusable {
            Some(s) => s,
            None => self.connect(req.endpoint, link).await?,
        };
        let response = match send(&mut kept, link, req).await {
            Ok(r) => r,
            Err(f) if reused && f.unanswered && replayable(req) => {
                drop(kept);
                kept = self.connect(req.endpoint, link).await?;
                send(&mut kept, link, req).await?
            }
            Err(f) => return Err(f.error),
        };
        // A connection the server closes after this answer is let go now.
        if kept.reusable() {
            self.kept = Some(kept);
        }
        Ok(response)
    }

    /// Opens the user's own connection, after the user's network's delay for it.
    async fn connect(&self, endpoint: &Endpoint, link: &mut Link) -> Result<Box<Kept>, OpError> {
        new_connection_delay(link, self.tls.is_some()).await;
        let meter = self.meter.clone();
        // Boxed: a connect (with its TLS handshake) is ~1.3 KB of future, once per connection;
        // inline it would size the future of every request, which is boxed and copied per
        // attempt, a kept-alive one's too.
        let connect = Kept::connect(
            endpoint,
            self.source,
            self.tls.as_deref(),
            meter,
            &self.count,
        );
        Ok(Box::new(Box::pin(connect).await?))
    }
}

/// One request, as the flow rendered it.
struct Req<'r> {
    endpoint: &'r Endpoint,
    method: &'r Method,
    path: &'r str,
    headers: &'r [(String, String)],
    body: Option<(&'r str, &'r [u8])>,
}

/// Whether a request may reach the server twice: an idempotent method (RFC 9110 §9.2.2), or
/// one the flow gave an idempotency key (Go's rule too).
fn replayable(req: &Req<'_>) -> bool {
    use http::Method as M;
    let idempotent = [M::GET, M::HEAD, M::OPTIONS, M::TRACE, M::PUT, M::DELETE];
    idempotent.contains(req.method)
        || req.headers.iter().any(|(name, _)| {
            name.eq_ignore_ascii_case("idempotency-key")
                || name.eq_ignore_ascii_case("x-idempotency-key")
        })
}

/// A new connection first costs the user's network a round trip, and TLS 1.3's handshake one
/// more.
async fn new_connection_delay(link: &mut Link, tls: bool) {
    link.round_trip().await;
    if tls {
        link.round_trip().await;
    }
}

/// Sends one request on a connection and reads the whole response body.
async fn send(kept: &mut Kept, link: &mut Link, req: &Req<'_>) -> Result<Response, Failed> {
    let prepared = kept.prepare(req.endpoint, req.method, req.path, req.headers, req.body)?;
    // The request travels one way through the user's network, the response back the other
    // (over an ideal network, without making and polling a future for nothing).
    let ideal = link.is_ideal();
    if !ideal {
        link.one_way().await;
    }
    let resp = kept.exchange(prepared).await?;
    if !ideal {
        link.one_way().await;
    }
    Ok(resp)
}
