//! WebSocket chat: the hub of online sockets and offline queues, and one task per socket.
//!
//! The hub is sharded by user so that relaying for different users rarely meets on one lock. A
//! user's online sockets and offline queue sit in the same shard, so connecting (flush the queue,
//! then go online) and relaying (push to sockets or queue) can never interleave out of order.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Notify};

use super::state::{bump, lock, stopped, user_id_string, Shared};

const SHARDS: usize = 16;
/// Per-user offline queue bound; on overflow the oldest message is dropped and counted.
pub(crate) const OFFLINE_LIMIT: usize = 1000;
/// Per-socket outgoing queue bound; a socket whose queue is full is closed as a slow consumer.
pub(crate) const SOCKET_QUEUE: usize = 1024;
/// Frames written to the socket before one flush.
const WRITE_BATCH: usize = 64;
/// How long a closing socket gets to take its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
const MAX_ID_CHARS: usize = 128;
const MAX_BODY_CHARS: usize = 4096;

struct ConnHandle {
    id: u64,
    tx: mpsc::Sender<Utf8Bytes>,
    kill: Arc<Notify>,
}

#[derive(Default)]
struct Shard {
    online: HashMap<u64, Vec<ConnHandle>>,
    offline: HashMap<u64, VecDeque<Utf8Bytes>>,
}

pub(crate) struct Hub {
    shards: Vec<Mutex<Shard>>,
    next_conn: AtomicU64,
}

/// What happened to one relayed message.
#[derive(Debug, PartialEq)]
enum Relayed {
    /// Pushed to this many open sockets.
    Online,
    /// Kept in the offline queue (`true` if that pushed out the oldest message).
    Queued { dropped_oldest: bool },
}

impl Hub {
    pub fn new() -> Hub {
        Hub {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            next_conn: AtomicU64::new(1),
        }
    }

    fn shard(&self, user: u64) -> &Mutex<Shard> {
        &self.shards[(user % SHARDS as u64) as usize]
    }

    /// Messages waiting in offline queues (for stats).
    pub fn offline_len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| lock(s).offline.values().map(VecDeque::len).sum::<usize>())
            .sum()
    }

    /// Messages held in `user`'s offline queue, delivered when it next connects.
    pub fn queued_for(&self, user: u64) -> usize {
        lock(self.shard(user))
            .offline
            .get(&user)
            .map_or(0, VecDeque::len)
    }

    /// Registers a socket for `user`, moving its offline queue into the socket's queue first.
    fn connect(&self, user: u64) -> (u64, mpsc::Receiver<Utf8Bytes>, Arc<Notify>) {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(SOCKET_QUEUE);
        let kill = Arc::new(Notify::new());
        let mut shard = lock(self.shard(user));
        if let Some(mut queued) = shard.offline.remove(&user) {
            while let Some(frame) = queued.pop_front() {
                if let Err(e) = tx.try_send(frame) {
                    // Cannot happen while OFFLINE_LIMIT < SOCKET_QUEUE; keep the rest queued.
                    queued.push_front(e.into_inner());
                    shard.offline.insert(user, queued);
                    break;
                }
            }
        }
        shard.online.entry(user).or_default().push(ConnHandle {
            id,
            tx,
            kill: kill.clone(),
        });
        (id, rx, kill)
    }

    /// Unregisters a socket. Frames it had not finished writing (`in_flight`, then its queue)
    /// go to the user's other sockets or, if none is open, back to the front of the offline
    /// queue in order (at-least-once: a frame cut off mid-write may arrive twice).
    fn disconnect(
        &self,
        stats: &super::state::Stats,
        user: u64,
        conn: u64,
        in_flight: Vec<Utf8Bytes>,
        rx: &mut mpsc::Receiver<Utf8Bytes>,
    ) {
        let mut leftover = in_flight;
        rx.close();
        while let Ok(frame) = rx.try_recv() {
            leftover.push(frame);
        }
        let mut shard = lock(self.shard(user));
        if let Some(conns) = shard.online.get_mut(&user) {
            conns.retain(|c| c.id != conn);
            if conns.is_empty() {
                shard.online.remove(&user);
            }
        }
        if leftover.is_empty() {
            return;
        }
        if shard.online.contains_key(&user) {
            drop(shard);
            for frame in leftover {
                self.relay(stats, user, frame);
            }
            return;
        }
        let queue = shard.offline.entry(user).or_default();
        for frame in leftover.into_iter().rev() {
            queue.push_front(frame);
        }
        while queue.len() > OFFLINE_LIMIT {
            queue.pop_front();
            bump(&stats.messages_dropped);
        }
    }

    /// Pushes `frame` to every open socket of `user`, or keeps it offline if none takes it.
    fn relay(&self, stats: &super::state::Stats, user: u64, frame: Utf8Bytes) -> Relayed {
        let mut shard = lock(self.shard(user));
        let mut pushed = 0u64;
        if let Some(conns) = shard.online.get_mut(&user) {
            conns.retain(|c| match c.tx.try_send(frame.clone()) {
                Ok(()) => {
                    pushed += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    c.kill.notify_one();
                    bump(&stats.slow_consumers_closed);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
            if conns.is_empty() {
                shard.online.remove(&user);
            }
        }
        if pushed > 0 {
            stats.messages_pushed.fetch_add(pushed, Ordering::Relaxed);
            return Relayed::Online;
        }
        let queue = shard.offline.entry(user).or_default();
        queue.push_back(frame);
        bump(&stats.messages_queued);
        let dropped_oldest = queue.len() > OFFLINE_LIMIT;
        if dropped_oldest {
            queue.pop_front();
            bump(&stats.messages_dropped);
        }
        Relayed::Queued { dropped_oldest }
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientFrame {
    Send {
        id: String,
        to: String,
        body: String,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ServerFrame<'a> {
    Ack {
        id: &'a str,
    },
    Message {
        id: &'a str,
        from: &'a str,
        body: &'a str,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        error: &'a str,
    },
}

impl ServerFrame<'_> {
    fn text(&self) -> Utf8Bytes {
        // Serialising plain strings cannot fail; fall back to a fixed error frame regardless.
        serde_json::to_string(self)
            .map(Utf8Bytes::from)
            .unwrap_or_else(|_| Utf8Bytes::from_static(r#"{"type":"error","error":"internal"}"#))
    }
}

fn error_frame(id: Option<&str>, error: &str) -> Utf8Bytes {
    ServerFrame::Error { id, error }.text()
}

/// Handles one client text frame; returns the reply for the sender.
fn handle_frame(shared: &Shared, from: &str, text: &str) -> Utf8Bytes {
    let (id, to, body) = match serde_json::from_str::<ClientFrame>(text) {
        Ok(ClientFrame::Send { id, to, body }) => (id, to, body),
        Err(e) => return error_frame(None, &format!("malformed frame: {e}")),
    };
    if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
        return error_frame(None, "id must be 1 to 128 characters");
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return error_frame(Some(&id), "body longer than 4096 characters");
    }
    let Some(recipient) = shared.parse_user_id(&to) else {
        return error_frame(Some(&id), "unknown recipient");
    };
    let frame = ServerFrame::Message {
        id: &id,
        from,
        body: &body,
    }
    .text();
    shared.hub.relay(&shared.stats, recipient, frame);
    bump(&shared.stats.messages_relayed);
    ServerFrame::Ack { id: &id }.text()
}

/// Serves one upgraded socket until it closes, the server shuts down or it is found too slow.
pub(crate) async fn run_socket(shared: Arc<Shared>, user: u64, mut socket: WebSocket) {
    let (conn, mut rx, kill) = shared.hub.connect(user);
    bump(&shared.stats.sockets_opened);
    shared.stats.online_sockets.fetch_add(1, Ordering::Relaxed);
    let from = user_id_string(user);
    let mut shutdown = shared.shutdown_signal();
    // Frames taken from the queue but not yet known to be written.
    let mut in_flight = Vec::with_capacity(WRITE_BATCH);
    let lifetime = shared.knobs.drop_sockets.map(lifetime);
    // Without the knob this timer is never polled (the branch below is disabled).
    let drop_at = tokio::time::sleep(lifetime.unwrap_or(Duration::from_secs(1 << 20)));
    tokio::pin!(drop_at);
    loop {
        tokio::select! {
            biased;
            _ = &mut drop_at, if lifetime.is_some() => {
                // No close frame: the client sees the connection vanish, as after a crash.
                bump(&shared.stats.sockets_dropped);
                break;
            }
            _ = kill.notified() => {
                let bye = socket.send(close(1008, "slow consumer"));
                let _ = tokio::time::timeout(CLOSE_GRACE, bye).await;
                break;
            }
            _ = stopped(&mut shutdown) => {
                let bye = socket.send(close(1001, "server shutting down"));
                let _ = tokio::time::timeout(CLOSE_GRACE, bye).await;
                break;
            }
            frame = rx.recv() => {
                let Some(frame) = frame else { break };
                in_flight.push(frame);
                while in_flight.len() < WRITE_BATCH {
                    match rx.try_recv() {
                        Ok(frame) => in_flight.push(frame),
                        Err(_) => break,
                    }
                }
                let write = write_batch(&mut socket, &mut in_flight);
                if !unless_interrupted(&kill, &mut shutdown, write).await {
                    break;
                }
            }
            incoming = socket.recv() => {
                let reply = match incoming {
                    None | Some(Err(_)) => break,
                    Some(Ok(Message::Text(text))) => {
                        shared.wait_out_stall().await;
                        handle_frame(&shared, &from, &text)
                    }
                    Some(Ok(Message::Binary(_))) => {
                        error_frame(None, "binary frames are not supported; send JSON text")
                    }
                    // Pings are answered and close handshakes completed by tungstenite itself.
                    Some(Ok(_)) => continue,
                };
                let write = socket.send(Message::Text(reply));
                if !unless_interrupted(&kill, &mut shutdown, write).await {
                    break;
                }
            }
        }
    }
    shared
        .hub
        .disconnect(&shared.stats, user, conn, in_flight, &mut rx);
    shared.stats.online_sockets.fetch_sub(1, Ordering::Relaxed);
}

/// A socket's lifetime under `drop_sockets`: exponential with that mean (memoryless, so drops
/// come at a steady rate however long sockets have been open).
fn lifetime(mean: Duration) -> Duration {
    use rand::RngExt;
    let u: f64 = rand::rng().random_range(0.0..1.0);
    mean.mul_f64(-(1.0 - u).ln()).min(mean * 50)
}

/// Runs a socket write unless the socket is declared a slow consumer or the server stops first
/// (a client that never reads must not pin its task in a blocked write). True if it completed.
async fn unless_interrupted(
    kill: &Notify,
    shutdown: &mut watch::Receiver<bool>,
    write: impl Future<Output = Result<(), axum::Error>>,
) -> bool {
    tokio::select! {
        biased;
        _ = kill.notified() => false,
        _ = stopped(shutdown) => false,
        done = write => done.is_ok(),
    }
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Writes `first` and whatever else is already queued (up to a batch), then flushes once.
/// `batch` is only cleared once written and flushed, so an interrupted batch can be handed back.
async fn write_batch(
    socket: &mut WebSocket,
    batch: &mut Vec<Utf8Bytes>,
) -> Result<(), axum::Error> {
    for frame in batch.iter() {
        socket.feed(Message::Text(frame.clone())).await?;
    }
    socket.flush().await?;
    batch.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::state::Stats;

    #[test]
    fn offline_queue_is_bounded_and_flushed_in_order() {
        let hub = Hub::new();
        let stats = Stats::default();
        for i in 0..OFFLINE_LIMIT + 5 {
            let r = hub.relay(&stats, 7, Utf8Bytes::from(i.to_string()));
            assert_eq!(
                r,
                Relayed::Queued {
                    dropped_oldest: i >= OFFLINE_LIMIT
                }
            );
        }
        assert_eq!(stats.messages_dropped.load(Ordering::Relaxed), 5);
        let (conn, mut rx, _kill) = hub.connect(7);
        assert_eq!(rx.try_recv().ok().as_deref(), Some("5"));
        let mut last = 5;
        while let Ok(f) = rx.try_recv() {
            let n: usize = f.parse().unwrap_or(0);
            assert_eq!(n, last + 1);
            last = n;
        }
        assert_eq!(last, OFFLINE_LIMIT + 4);
        assert_eq!(
            hub.relay(&stats, 7, Utf8Bytes::from_static("x")),
            Relayed::Online
        );
        hub.disconnect(&stats, 7, conn, Vec::new(), &mut rx);
        assert_eq!(
            hub.offline_len(),
            1,
            "the undelivered frame went back offline"
        );
    }

    #[test]
    fn full_socket_queue_closes_the_socket_and_keeps_the_message() {
        let hub = Hub::new();
        let stats = Stats::default();
        let (_conn, mut rx, kill) = hub.connect(3);
        for _ in 0..SOCKET_QUEUE {
            assert_eq!(
                hub.relay(&stats, 3, Utf8Bytes::from_static("m")),
                Relayed::Online
            );
        }
        let r = hub.relay(&stats, 3, Utf8Bytes::from_static("late"));
        assert_eq!(
            r,
            Relayed::Queued {
                dropped_oldest: false
            }
        );
        assert_eq!(stats.slow_consumers_closed.load(Ordering::Relaxed), 1);
        // The kill permit is stored, so the socket task will see it.
        let notified = std::pin::pin!(kill.notified());
        assert!(futures_util::FutureExt::now_or_never(notified).is_some());
        drop(rx.try_recv());
    }
}
