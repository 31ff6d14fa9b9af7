//! A worker's share of a shared HTTP connection pool (`[run] connections = { pool = N }`): the
//! worker's users take turns on at most `share` kept-alive connections, as oha's or wrk's
//! requests share their connections.
//!
//! Per worker, not per run: each worker is one thread, so its part of the pool is plain data
//! (a queue of idle connections in a cell) with no lock between workers and none per request.
//! The slots are a FIFO semaphore of `share` permits: a request holds one from the moment it
//! takes a connection until it lets it go, so at most `share` connections are open and the
//! requests waiting for one are served in the order they came (a wait is never hidden: it is
//! inside the request's latency, which counts from its intended start, and inside its timeout).
//!
//! Life of a connection: opened lazily by a request that finds no idle one (while fewer than
//! `share` are open), kept alive and put back after each answered request, replaced when the
//! server closed it while idle (found when a request next takes it, or by the request it
//! closed under, which goes again on the new one: `clients::http`) or said it would close it.
//! A request that fails or is cut off (its timeout) mid-way closes its connection rather than
//! put back one in an unknown state; the next request opens another.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use tokio::sync::Semaphore;

use crate::clients::kept::{Kept, OpenConnections};
use crate::clients::response::Response;
use crate::clients::stream::Meter;
use crate::clients::tls::UserTls;
use crate::clients::{Endpoint, OpError};
use crate::metrics::ErrorClass;

pub struct Pool {
    /// Connections open and not in use, the longest idle first (each is used in turn, so the
    /// load is spread over all of them as over a peer's fixed connections).
    idle: RefCell<VecDeque<Kept>>,
    /// One permit per connection the worker may hold.
    slots: Semaphore,
    share: usize,
    /// The pool's TLS state: one session store, so a replacement connection resumes.
    tls: Option<Rc<UserTls>>,
    /// The run's source addresses, dealt round-robin over the connections the pool opens.
    sources: Vec<std::net::IpAddr>,
    count: OpenConnections,
    /// Connections opened so far, and idle ones found closed by the server (each replaced by
    /// the next connect).
    opened: Cell<u64>,
    replaced: Cell<u64>,
    /// Connects started, for dealing the source addresses.
    dealt: Cell<u64>,
    /// The two as the worker last reported them.
    reported: Cell<(u64, u64)>,
}

impl Pool {
    /// A pool of at most `share` connections to `endpoint`, each counted in `count` while open.
    pub fn new(share: usize, endpoint: &Endpoint, count: OpenConnections) -> Pool {
        Pool {
            idle: RefCell::new(VecDeque::with_capacity(share)),
            slots: Semaphore::new(share),
            share,
            tls: endpoint.user_tls(),
            sources: endpoint.sources.clone(),
            count,
            opened: Cell::new(0),
            replaced: Cell::new(0),
            dealt: Cell::new(0),
            reported: Cell::new((0, 0)),
        }
    }

    /// The most connections this pool holds.
    pub fn share(&self) -> usize {
        self.share
    }

    /// Connections opened so far, and idle ones found closed by the server.
    pub fn opened(&self) -> (u64, u64) {
        (self.opened.get(), self.replaced.get())
    }

    /// Connections opened and replaced since the last call, for the worker's interval.
    pub fn take_counts(&self) -> (u64, u64) {
        let now = self.opened();
        let (opened, replaced) = self.reported.replace(now);
        (now.0 - opened, now.1 - replaced)
    }

    /// Waits for a slot (first come, first served). The lease moves the bytes of the
    /// connection it holds to `user` when it is let go.
    pub async fn lease(self: &Rc<Self>, user: &Meter) -> Result<Lease, OpError> {
        self.slots
            .acquire()
            .await
            .map_err(|_| OpError::new(ErrorClass::Connect, "the connection pool was closed"))?
            .forget();
        Ok(Lease {
            pool: self.clone(),
            kept: None,
            user: user.clone(),
        })
    }

    /// Opens a connection for a lease that found no idle one; its TLS handshake is noted in
    /// `user_tls` (once the server accepts it), so the user whose request waited records it.
    pub(crate) async fn connect(
        &self,
        endpoint: &Endpoint,
        user_tls: Option<&UserTls>,
    ) -> Result<Kept, OpError> {
        // Dealt when the connect starts: two leases connecting at once take different addresses.
        let n = self.dealt.get();
        self.dealt.set(n + 1);
        let source = match self.sources.len() {
            0 => None,
            len => self.sources.get((n % len as u64) as usize).copied(),
        };
        // Boxed, as a user's own connect is (`HttpClient::own_request`): rare, and large.
        let connect = Kept::connect(
            endpoint,
            source,
            self.tls.as_deref(),
            Meter::default(),
            &self.count,
        );
        let mut kept = Box::pin(connect).await?;
        if let Some(user) = user_tls {
            kept.note_handshake_in(user);
        }
        // Counted now, not as `n + 1`: another lease may have opened one while this connected.
        self.opened.set(self.opened.get() + 1);
        Ok(kept)
    }

    /// A response's buffers, for the next response read on one of the pool's connections: the
    /// most recently released one, which read it (a step handles its response without awaiting
    /// anything, so no other request took that connection meanwhile; any idle one would do).
    /// Without it, every pooled request allocated and grew both buffers anew.
    pub fn reuse(&self, response: Response) {
        if let Some(kept) = self.idle.borrow_mut().back_mut() {
            kept.reuse(response);
        }
    }

    /// Closes the idle connections (at the end of the worker's run, so that its last interval
    /// counts none open).
    pub fn close_idle(&self) {
        self.idle.borrow_mut().clear();
    }
}

/// A request's slot in the pool, and the connection it uses. Dropped without [`Lease::release`]
/// (a failed or cut-off request), its connection is closed; either way the slot is freed.
pub struct Lease {
    pool: Rc<Pool>,
    kept: Option<Kept>,
    user: Meter,
}

impl Lease {
    /// The longest-idle connection the server has not closed, if any. Closed ones are let go
    /// (and counted, since a new one replaces them).
    pub(crate) fn idle(&mut self) -> Option<Kept> {
        loop {
            // Taken out first: no borrow of the queue is held across the wait below.
            let next = self.pool.idle.borrow_mut().pop_front();
            let mut kept = next?;
            if kept.usable() {
                return Some(kept);
            }
            kept.bytes_to(&self.user);
            let r = &self.pool.replaced;
            r.set(r.get() + 1);
        }
    }

    /// Holds `kept` for the request.
    pub(crate) fn hold(&mut self, kept: Kept) -> &mut Kept {
        self.kept.insert(kept)
    }

    /// The held connection was found closed by the server (its request went out as the server
    /// closed it): let go, and counted as one the server closed.
    pub(crate) fn let_closed_go(&mut self) {
        if let Some(kept) = self.kept.take() {
            kept.bytes_to(&self.user);
            let r = &self.pool.replaced;
            r.set(r.get() + 1);
        }
    }

    /// The request was answered: its connection goes back to the pool, kept alive — unless the
    /// server said it closes it (`Connection: close`): then it is let go now, and counted as
    /// one the server closed.
    pub fn release(mut self) {
        if let Some(kept) = self.kept.take() {
            kept.bytes_to(&self.user);
            if kept.reusable() {
                self.pool.idle.borrow_mut().push_back(kept);
            } else {
                let r = &self.pool.replaced;
                r.set(r.get() + 1);
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(kept) = self.kept.take() {
            kept.bytes_to(&self.user);
        }
        self.pool.slots.add_permits(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::response::Headers;
    use futures_util::FutureExt;

    /// A loopback listener whose accepted sockets are handed to the test, to hold or close.
    async fn listener() -> (
        Endpoint,
        tokio::sync::mpsc::UnboundedReceiver<tokio::net::TcpStream>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::task::spawn_local(async move {
            while let Ok((s, _)) = listener.accept().await {
                if tx.send(s).is_err() {
                    return;
                }
            }
        });
        let endpoint = Endpoint::plain(addr);
        (endpoint, rx)
    }

    async fn leased(pool: &Rc<Pool>, endpoint: &Endpoint, user: &Meter) -> Lease {
        let mut lease = pool.lease(user).await.expect("a slot");
        let kept = match lease.idle() {
            Some(k) => k,
            None => pool.connect(endpoint, None).await.expect("connect"),
        };
        lease.hold(kept);
        lease
    }

    #[tokio::test(flavor = "current_thread")]
    async fn connections_opened_at_the_same_time_are_each_counted() {
        tokio::task::LocalSet::new()
            .run_until(async {
                let (endpoint, _accepted) = listener().await;
                let count = OpenConnections::default();
                let pool = Rc::new(Pool::new(2, &endpoint, count.clone()));
                let user = Meter::default();
                // Both leases find no idle connection and connect at once, each awaiting its
                // connect while the other starts its own.
                let (a, b) = futures_util::future::join(
                    leased(&pool, &endpoint, &user),
                    leased(&pool, &endpoint, &user),
                )
                .await;
                assert_eq!((count.get(), pool.opened()), (2, (2, 0)));
                a.release();
                b.release();
            })
            .await;
    }

    /// A response's buffers go back to the connection released last (the one that read it),
    /// for the next response read on it; the other idle connection gets none.
    #[tokio::test(flavor = "current_thread")]
    async fn a_responses_buffers_go_to_the_connection_released_last() {
        tokio::task::LocalSet::new()
            .run_until(async {
                let (endpoint, _accepted) = listener().await;
                let pool = Rc::new(Pool::new(2, &endpoint, OpenConnections::default()));
                let user = Meter::default();
                let (first, last) = futures_util::future::join(
                    leased(&pool, &endpoint, &user),
                    leased(&pool, &endpoint, &user),
                )
                .await;
                first.release();
                last.release();
                let headers: Headers = [("content-length", "3")].into_iter().collect();
                let body = Vec::with_capacity(300);
                pool.reuse(Response {
                    status: 200,
                    headers,
                    body,
                });
                let mut lease = pool.lease(&user).await.expect("a slot");
                let longest_idle = lease.idle().expect("an idle connection");
                assert_eq!(longest_idle.spare_capacity(), (0, 0));
                let mut lease2 = pool.lease(&user).await.expect("a slot");
                let (lines, body) = lease2.idle().expect("the other").spare_capacity();
                assert!(lines >= "content-length: 3\r\n".len(), "{lines}");
                assert_eq!(body, 300);
                lease.hold(longest_idle);
            })
            .await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn at_most_share_connections_and_a_waiter_gets_the_one_let_go() {
        tokio::task::LocalSet::new()
            .run_until(async {
                let (endpoint, mut accepted) = listener().await;
                let count = OpenConnections::default();
                let pool = Rc::new(Pool::new(2, &endpoint, count.clone()));
                let user = Meter::default();
                let first = leased(&pool, &endpoint, &user).await;
                let second = leased(&pool, &endpoint, &user).await;
                assert_eq!((count.get(), pool.opened()), (2, (2, 0)));
                // Both slots are taken: a third request waits.
                let mut waiting = Box::pin(pool.lease(&user));
                assert!((&mut waiting).now_or_never().is_none());
                // An answered request puts its connection back; the waiter takes that one.
                first.release();
                let mut third = waiting.await.expect("the freed slot");
                let reused = third.idle().expect("the connection let go");
                third.hold(reused);
                assert_eq!((count.get(), pool.opened()), (2, (2, 0)));
                // A request cut off mid-way closes its connection and frees its slot.
                drop(second);
                assert_eq!(count.get(), 1);
                let fourth = leased(&pool, &endpoint, &user).await;
                assert_eq!((count.get(), pool.opened()), (2, (3, 0)));
                third.release();
                fourth.release();
                // The server closes the idle connections: they stay counted (the generator
                // holds them) until a request finds them closed and replaces them.
                for _ in 0..3 {
                    drop(accepted.recv().await.expect("an accepted socket"));
                }
                assert_eq!(count.get(), 2);
                // The ends reach the client's side of loopback at once; a loaded machine may
                // deliver them a little later.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let again = leased(&pool, &endpoint, &user).await;
                assert_eq!(
                    pool.opened(),
                    (4, 2),
                    "both idle ones were closed by the server"
                );
                assert_eq!(pool.take_counts(), (4, 2));
                assert_eq!(pool.take_counts(), (0, 0), "counted once");
                again.release();
                assert_eq!(count.get(), 1);
                pool.close_idle();
                assert_eq!(count.get(), 0);
            })
            .await;
    }
}
