//! A kept-alive HTTP/1.1 connection (a user's own, or one of its worker's pool) and the
//! worker's gauge of open HTTP connections it is counted in.

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use std::cell::Cell;
use std::rc::Rc;

use crate::clients::stream::Meter;
use crate::clients::tls::UserTls;
use crate::clients::{Endpoint, OpError};
use crate::metrics::ErrorClass;

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

/// A kept-alive connection: what sends on it, its place in the count (left when dropped) and
/// the bytes through it.
pub(crate) struct Kept {
    sender: SendRequest<Full<Bytes>>,
    open: Rc<Open>,
    meter: Meter,
}

impl Kept {
    /// Opens a connection from `source` (over TLS when `tls` is given), its bytes counted in
    /// `meter` and the connection in `count` while it is open.
    pub(crate) async fn connect(
        endpoint: &Endpoint,
        source: Option<std::net::IpAddr>,
        tls: Option<&UserTls>,
        meter: Meter,
        count: &OpenConnections,
    ) -> Result<Kept, OpError> {
        let stream = crate::clients::stream::open(endpoint, source, tls, meter.clone()).await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| OpError::new(ErrorClass::Connect, format!("http handshake: {e}")))?;
        let open = count.opened();
        let closed = open.clone();
        // The connection task ends when the server closes it or the sender is dropped.
        tokio::task::spawn_local(async move {
            let _ = conn.await;
            closed.close();
        });
        Ok(Kept {
            sender,
            open,
            meter,
        })
    }

    /// What sends requests on the connection.
    pub(crate) fn sender(&mut self) -> &mut SendRequest<Full<Bytes>> {
        &mut self.sender
    }

    /// Whether the connection can take a request: false once the server closed it.
    pub(crate) async fn usable(&mut self) -> bool {
        self.sender.ready().await.is_ok()
    }

    /// The bytes through the connection since the last take, moved to `to`.
    pub(crate) fn bytes_to(&self, to: &Meter) {
        self.meter.move_to(to);
    }
}

impl Drop for Kept {
    fn drop(&mut self) {
        self.open.close();
    }
}
