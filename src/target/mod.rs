//! The built-in reference messenger: a real, small, in-memory messaging service that inrush
//! load-tests out of the box (`inrush serve`) and that inrush's own tests run against.
//!
//! Everything is JSON; every error body is `{"error": "<what>"}`.
//!
//! | Method + path | Request | Success | Errors |
//! |---|---|---|---|
//! | `POST /v1/register` | `{"phone": "+15550000001"}` | `202 {"verification_id"}` and an SMS with a 6-digit code | `400` phone not `^\+[0-9]{6,15}$` or bad JSON, `409` already registered, `503` SMS gateway overloaded (with `Retry-After`) |
//! | `GET /v1/test/sms/{phone}?wait_ms=10000` | — (the `+` arrives as `%2B`) | `200 {"phone","code"}` once the latest code for that phone is delivered | `404` none delivered within `wait_ms` (default 10 000, max 60 000), `400` bad phone or query |
//! | `POST /v1/verify` | `{"verification_id","code"}` | `201 {"user_id","token"}` (the id is single-use) | `400` bad JSON, `401` wrong code, `404` unknown or expired id, `409` phone registered meanwhile, `429` over `verify_capacity` (`Retry-After: 1`) |
//! | `POST /v1/login` | `Authorization: Bearer <token>` (the token `verify` gave) | `200 {"user_id","queued"}`: `queued` messages are held for the user and delivered when its socket connects | `401` missing or bad token |
//! | `POST /v1/contacts/sync` | `Authorization: Bearer <token>`, `{"phones": [...]}` (≤ 1000) | `200 {"found": [{"phone","user_id"}]}` for registered phones (minus the `contacts_drop` fraction) | `400` too many phones or bad JSON, `401` missing or bad token |
//! | `GET /v1/ws` | WebSocket; `Authorization: Bearer <token>` or `?token=` | `101`, then frames below | `401` before the upgrade |
//! | `GET /healthz` | — | `200 {"status":"ok"}` | — |
//! | `GET /v1/stats` | — | `200 {...counters...}` | — |
//! | anything else | | | `404` (`405` wrong method, `413` body over 64 KiB) |
//!
//! WebSocket frames (text, JSON). Client → server:
//! `{"type":"send","id":"<≤128 chars>","to":"<user_id>","body":"<≤4096 chars>"}`.
//! Server → sender: `{"type":"ack","id"}`, or `{"type":"error","id","error":"unknown recipient"}`,
//! or `{"type":"error","error":"..."}` for a malformed frame (the socket stays open).
//! Server → every open socket of the recipient: `{"type":"message","id","from","body"}`.
//! A recipient with no open socket gets the message from a per-user offline queue (at most
//! 1000, oldest dropped and counted) flushed in order when it connects. Each socket has a bounded
//! outgoing queue (1024 frames); a socket whose queue is full is closed as a slow consumer (close
//! code 1008) and the message goes to the offline queue instead. Frames still queued for a socket
//! that closes are handed back to the user's other sockets or to the offline queue, so delivery is
//! at-least-once: nothing accepted is silently lost. Frames and messages are limited to 64 KiB.
//!
//! [`Knobs`] make the service struggle on purpose: added latency, an SMS gateway with a delay and
//! a throughput, a verification capacity, an injected failure rate, periodic stalls and contact
//! discovery that leaves some contacts out, and sockets dropped after a random lifetime
//! (`drop_sockets`, no close frame). Latency, failure rate and stalls apply to the service
//! endpoints (`register`, `verify`, `login`, `contacts/sync` and the `ws` handshake); stalls also hold
//! WebSocket relaying. `/healthz`, `/v1/stats` and the SMS sink (it stands for the user's phone,
//! not the service) are never slowed down or failed. A stall occupies the last `stall_for` of
//! every `stall_every` period counted from server start (every 10 s for 1 s → 9–10 s, 19–20 s, …);
//! whatever arrives inside a stall waits until it ends.
//!
//! Ids: user ids are `u1`, `u2`, … in registration order; verification ids and tokens are random
//! hex. Pending verifications expire after 10 minutes; five wrong codes discard one.

mod http;
mod knobs;
mod sms;
mod state;
pub mod tls;
mod ws;

pub use knobs::Knobs;
pub use tls::TlsServer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A reference messenger running on the current tokio runtime.
pub struct RunningTarget {
    /// The address it actually listens on (useful after binding port 0).
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    shared: Arc<state::Shared>,
    /// The TLS handshakes it completed, when it serves TLS.
    pub tls: Option<Arc<tls::HandshakeCounts>>,
}

impl std::fmt::Debug for RunningTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningTarget")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningTarget {
    /// Stops accepting, closes open WebSockets (close code 1001) and waits for the server to
    /// finish (at most a few seconds; a connection that will not close is then abandoned).
    pub async fn shutdown(self) {
        self.shared.begin_shutdown();
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// Binds `listen`, spawns the server on the current tokio runtime, returns once it accepts
/// connections. Invalid knobs are refused with `ErrorKind::InvalidInput`.
pub async fn start(listen: SocketAddr, knobs: Knobs) -> std::io::Result<RunningTarget> {
    start_with(listen, knobs, None).await
}

/// [`start`], serving HTTPS and WSS when `tls` is given.
pub async fn start_with(
    listen: SocketAddr,
    knobs: Knobs,
    tls: Option<&TlsServer>,
) -> std::io::Result<RunningTarget> {
    knobs
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (app, shared) = build(knobs);
    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    };
    // `serve` only returns on shutdown; accept errors are retried inside axum.
    let (task, counts) = match tls {
        None => {
            let listener = listener.tap_io(|tcp| {
                // Best effort: a socket that refuses NODELAY still works, only a little slower.
                let _ = tcp.set_nodelay(true);
            });
            let server = axum::serve(listener, app).with_graceful_shutdown(stopped);
            (tokio::spawn(async move { drop(server.await) }), None)
        }
        Some(tls) => {
            let counts = Arc::new(tls::HandshakeCounts::default());
            let listener = tls::listen(listener, tls, counts.clone())?;
            let server = axum::serve(listener, app).with_graceful_shutdown(stopped);
            (
                tokio::spawn(async move { drop(server.await) }),
                Some(counts),
            )
        }
    };
    Ok(RunningTarget {
        addr,
        stop,
        task,
        shared,
        tls: counts,
    })
}

/// Builds the axum Router (for embedding/tests). Stall timing is measured from this call.
/// Knobs are expected to be validated ([`Knobs::validate`]); out-of-range values are made safe
/// here (a bad rate means unlimited, fractions are clamped, an impossible stall is dropped).
pub fn router(knobs: Knobs) -> axum::Router {
    build(knobs).0
}

fn build(knobs: Knobs) -> (axum::Router, Arc<state::Shared>) {
    let shared = Arc::new(state::Shared::new(knobs.sanitized()));
    (http::routes(shared.clone()), shared)
}
