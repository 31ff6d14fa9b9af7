//! The run's closer: a low-priority thread that closes the sockets of the HTTP connections the
//! workers let go, so that `close()` is not on a worker's hot path.
//!
//! With a new connection per arrival (`connections = "per_user"`), closing a socket is a good
//! part of a worker's kernel time (on loopback the FIN is processed for both ends inside the
//! `close()`; bench/README.md, "Schedule lag with a new connection per arrival"), and an arrival
//! due meanwhile waits behind it. Handed here, the close happens when the generator's core has
//! nothing better to do: the thread runs under `SCHED_IDLE`, so a worker that wakes preempts it,
//! and it takes what was handed over in batches (a pause between them), so that a hand-over
//! rarely has to wake it.
//!
//! What the target sees is unchanged: the same `close()` of the same socket (a FIN, or a reset
//! when unread bytes are left, exactly as when the worker closed it), a little later. Nothing is
//! lost: the queue is bounded, and a socket that finds it full (or the closer gone) is closed
//! where it was let go; whatever is still queued when the thread ends is closed as the queue is
//! dropped. The run starts the closer before its workers and joins it after them
//! ([`Closer::finish`]), so every socket is closed before the report is written.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Sockets waiting to be closed, at most: a few milliseconds' worth at 100 000 connections a
/// second, and a bound on the descriptors held beyond the generator's own count of open
/// connections (the open-file limit is shared with them).
pub const QUEUE: usize = 1024;

/// The closer's pause after each batch: a socket handed over meanwhile waits at most this long
/// (plus a busy core's own work) and wakes nobody.
const PAUSE: Duration = Duration::from_millis(1);

enum Msg {
    Close(std::net::TcpStream),
    Stop,
}

/// The closer thread, owned by the run: stopped and joined by [`Closer::finish`] (or when
/// dropped).
pub struct Closer {
    tx: SyncSender<Msg>,
    thread: Option<JoinHandle<()>>,
}

/// Where a worker hands a socket it lets go.
#[derive(Clone)]
pub struct CloserHandle(SyncSender<Msg>);

impl std::fmt::Debug for CloserHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CloserHandle")
    }
}

impl Closer {
    /// Starts the closer thread; `None` where it cannot run below the workers' priority (not
    /// Linux, or the thread could not be started): sockets are then closed where they are let go.
    pub fn start() -> Option<Closer> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let (tx, rx) = sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("inrush-closer".into())
            .spawn(move || {
                // Without the idle policy the closer would compete with the workers for their
                // core: then it stops at once, and every socket is closed inline.
                if lower_priority() {
                    close_all(&rx);
                }
            })
            .ok()?;
        Some(Closer {
            tx,
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> CloserHandle {
        CloserHandle(self.tx.clone())
    }

    /// Closes what is still queued and ends the thread. Call it once the workers have ended:
    /// a socket handed over after it is closed inline.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            // Blocks only while the queue is full, which the closer is emptying.
            let _ = self.tx.send(Msg::Stop);
            let _ = thread.join();
        }
    }
}

impl Drop for Closer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl CloserHandle {
    /// Closes `stream` on the closer thread, or here and now when its queue is full or it has
    /// ended. The stream leaves the worker's reactor here either way.
    pub fn close(&self, stream: tokio::net::TcpStream) {
        let Ok(stream) = stream.into_std() else {
            // Could not leave the reactor: dropped (closed) here.
            return;
        };
        match self.0.try_send(Msg::Close(stream)) {
            Ok(()) => {}
            Err(TrySendError::Full(m)) | Err(TrySendError::Disconnected(m)) => drop(m),
        }
    }
}

/// Closes what comes through `rx` in batches until told to stop or every sender is gone; what
/// is left in the queue is closed as `rx` is dropped.
fn close_all(rx: &Receiver<Msg>) {
    loop {
        match rx.recv() {
            Ok(Msg::Close(s)) => drop(s),
            Ok(Msg::Stop) | Err(_) => return,
        }
        loop {
            match rx.try_recv() {
                Ok(Msg::Close(s)) => drop(s),
                Ok(Msg::Stop) | Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => break,
            }
        }
        std::thread::sleep(PAUSE);
    }
}

/// Puts the calling thread under `SCHED_IDLE`: it runs only when its core has nothing else to
/// run. Whether it did.
#[cfg(target_os = "linux")]
fn lower_priority() -> bool {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; the parameter is initialised and valid for
    // SCHED_IDLE (priority 0).
    unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A socket handed over is closed: the peer reads the end of its stream, within a bound far
    /// above the closer's pause.
    #[test]
    fn a_socket_handed_over_is_closed() {
        let Some(closer) = Closer::start() else {
            return; // not Linux: nothing is handed over
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let handle = closer.handle();
        let mut peers = Vec::new();
        rt.block_on(async {
            for _ in 0..50 {
                let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let (peer, _) = listener.accept().expect("accept");
                handle.close(s);
                peers.push(peer);
            }
        });
        for mut peer in peers {
            peer.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut buf = [0u8; 1];
            // 0 bytes: the FIN came; a timeout (an error) would mean the socket stayed open.
            assert_eq!(peer.read(&mut buf).expect("closed within 5 s"), 0);
        }
        closer.finish();
    }

    /// Sockets still queued when the run finishes the closer are closed too, and one handed
    /// over after that is closed inline.
    #[test]
    fn finishing_closes_what_is_queued_and_later_ones_inline() {
        let Some(closer) = Closer::start() else {
            return;
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let handle = closer.handle();
        let mut peers = Vec::new();
        rt.block_on(async {
            for _ in 0..20 {
                let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
                peers.push(listener.accept().expect("accept").0);
                handle.close(s);
            }
        });
        closer.finish();
        let late = rt.block_on(async {
            let s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            peers.push(listener.accept().expect("accept").0);
            s
        });
        rt.block_on(async { handle.close(late) });
        for mut peer in peers {
            // Already closed: no wait needed, but bounded in case it is not.
            peer.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut buf = [0u8; 1];
            assert_eq!(peer.read(&mut buf).expect("closed"), 0);
        }
    }
}
