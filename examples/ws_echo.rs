//! The WebSocket echo server of `bench/peers.sh` (its `ws` part): every text or binary frame a
//! client sends comes straight back, and the server counts what it read and wrote, so a
//! generator's message counts are checked against the target's own (issue 16).
//!
//! A bench-only target (an example: built with the crate's own dependencies, never part of the
//! `inrush` binary): one thread, so pinned to one core it is the target the bench measures
//! against, and lean — frames that arrived together go back in one write (fed, then flushed once).
//!
//! ```sh
//! cargo build --release --example ws_echo
//! target/release/examples/ws_echo 127.0.0.1:0 counts.json   # prints `listening 127.0.0.1:PORT`
//! ```
//!
//! On SIGTERM or SIGINT it writes its counts (`connections`, `frames_received`, `frames_sent`)
//! as JSON to the given file and to stdout, and exits.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Frames echoed before one flush at most: a client that never pauses still gets its echoes.
const BATCH: usize = 64;

#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    received: AtomicU64,
    sent: AtomicU64,
}

impl Counts {
    fn json(&self) -> String {
        format!(
            "{{\"connections\": {}, \"frames_received\": {}, \"frames_sent\": {}}}",
            self.connections.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
            self.sent.load(Ordering::Relaxed)
        )
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_string());
    let counts_path = args.next();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(&addr, counts_path.as_deref()))
}

async fn serve(addr: &str, counts_path: Option<&str>) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let counts = Arc::new(Counts::default());
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                // A failed accept (a client gone before it was taken) is the client's problem.
                let Ok((stream, _)) = accepted else { continue };
                tokio::spawn(echo(stream, counts.clone()));
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let text = counts.json();
    println!("{text}");
    if let Some(path) = counts_path {
        std::fs::write(path, format!("{text}\n"))?;
    }
    Ok(())
}

/// One client: each frame read is fed back; once no further frame is ready (or after
/// [`BATCH`]), the echoes go out in one flush.
async fn echo(stream: TcpStream, counts: Arc<Counts>) {
    let _ = stream.set_nodelay(true);
    // Buffers sized for small frames; tungstenite's defaults (128 KiB read buffer) would not
    // change the echo, only the server's memory.
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    counts.connections.fetch_add(1, Ordering::Relaxed);
    let mut open = true;
    while open {
        let Some(Ok(first)) = ws.next().await else {
            return;
        };
        let mut next = Some(first);
        let mut fed = 0;
        while let Some(m) = next.take() {
            if m.is_text() || m.is_binary() {
                counts.received.fetch_add(1, Ordering::Relaxed);
                if ws.feed(m).await.is_err() {
                    return;
                }
                fed += 1;
            }
            if fed >= BATCH {
                break;
            }
            // Another frame already read (or readable without waiting) joins this flush.
            next = match ws.next().now_or_never() {
                Some(Some(Ok(m))) => Some(m),
                // The stream ended or failed: what was fed still goes out.
                Some(_) => {
                    open = false;
                    None
                }
                None => None,
            };
        }
        if ws.flush().await.is_err() {
            return;
        }
        counts.sent.fetch_add(fed as u64, Ordering::Relaxed);
    }
}
