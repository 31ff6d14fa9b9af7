//! The protocol clients a simulated user talks through (HTTP, WebSocket, the TCP connect and
//! TLS under both, the region's simulated network, a worker's shared HTTP connection pool), the
//! one connection seam the runtime holds a
//! socket through (`connection`), and the error every failed operation carries.

pub mod chunked;
pub mod closed;
pub mod connection;
pub mod http;
pub mod inbuf;
pub mod kept;
pub mod pool;
pub mod quote;
pub mod read_ahead;
pub mod region_link;
pub mod request;
pub mod response;
pub mod retry_after;
pub mod stream;
pub mod tcp;
pub mod tls;
pub mod ws;

use crate::metrics::ErrorClass;

/// A failed operation: its class (counted) and a short reason (for the few samples shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    pub class: ErrorClass,
    pub reason: String,
    /// The HTTP status of a response that failed its check, so a retry policy can name it.
    pub status: Option<u16>,
    /// The wait the response's `Retry-After` header asked for.
    pub retry_after: Option<std::time::Duration>,
}

impl OpError {
    pub fn new(class: ErrorClass, reason: impl Into<String>) -> Self {
        OpError {
            class,
            reason: reason.into(),
            status: None,
            retry_after: None,
        }
    }

    /// The same error, carrying the response's status and `Retry-After` wait.
    pub fn with_status(mut self, status: u16, retry_after: Option<std::time::Duration>) -> Self {
        self.status = Some(status);
        self.retry_after = retry_after;
        self
    }
}

/// Where the target lives, resolved once before the run.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: std::net::SocketAddr,
    /// `host:port`, sent as the Host header.
    pub authority: String,
    /// The Host header line, rendered from `authority` once.
    pub host: HostLine,
    /// Path prefix of the API, e.g. `` or `/api`.
    pub prefix: String,
    /// Local addresses to connect from (`[run] source_addresses`); empty: the system chooses.
    pub sources: Vec<std::net::IpAddr>,
    /// TLS settings when the target is `https://` (WebSockets are then `wss://`).
    pub tls: Option<std::sync::Arc<tls::Tls>>,
}

impl Endpoint {
    /// Plain HTTP at `addr`, no path prefix, the system choosing the source address: the
    /// built-in target, and the tests' loopback peers.
    pub fn plain(addr: std::net::SocketAddr) -> Endpoint {
        Endpoint::new(addr, addr.to_string(), String::new(), Vec::new(), None)
    }

    /// An endpoint at `addr` named `authority` (its Host header), with its API's path prefix.
    pub fn new(
        addr: std::net::SocketAddr,
        authority: String,
        prefix: String,
        sources: Vec<std::net::IpAddr>,
        tls: Option<std::sync::Arc<tls::Tls>>,
    ) -> Endpoint {
        Endpoint {
            addr,
            host: HostLine::new(&authority),
            authority,
            prefix,
            sources,
            tls,
        }
    }

    /// A user's TLS state (its own session store), when the endpoint speaks TLS.
    pub fn user_tls(&self) -> Option<std::rc::Rc<tls::UserTls>> {
        self.tls.as_ref().map(|t| t.for_user())
    }

    /// The source address of user `index`: users are dealt round-robin over the addresses, so
    /// each address carries an even share of the connections.
    pub fn source_for(&self, index: u64) -> Option<std::net::IpAddr> {
        if self.sources.is_empty() {
            return None;
        }
        self.sources
            .get((index % self.sources.len() as u64) as usize)
            .copied()
    }
}

/// The `Host` header line of every request to an endpoint (`host: example.com:443\r\n`),
/// rendered and checked once rather than per request; an authority HTTP cannot carry is every
/// request's protocol error.
#[derive(Debug, Clone)]
pub struct HostLine(Result<Box<[u8]>, String>);

impl HostLine {
    fn new(authority: &str) -> HostLine {
        let fits = !authority.is_empty() && authority.bytes().all(|b| b.is_ascii_graphic());
        HostLine(match fits {
            true => Ok(format!("host: {authority}\r\n").into_bytes().into()),
            false => Err(format!("bad request: invalid host {authority:?}")),
        })
    }

    /// The line, with its CRLF.
    pub fn line(&self) -> Result<&[u8], OpError> {
        self.0
            .as_deref()
            .map_err(|e| OpError::new(ErrorClass::Protocol, e.clone()))
    }
}
