//! The floor under fire-and-forget WebSocket messages on this machine (`bench/peers.sh`'s
//! `ws-send` with `FLOOR=1`; issue 16): a generator that does nothing but the system calls a
//! tracked message cannot do without — one `write` of the frame, one `read` that takes its echo
//! (the ack) — and no user-space work beyond them: no parsing, no ids, no timing per message, one
//! frame built once, no poller. A single thread wakes every TICK (625 µs, the spacing inrush's
//! clock settles to when deadlines come faster than its wake-up budget), writes one frame to each
//! socket whose send is due, then reads once each socket written on the tick before.
//!
//! The same load as `bench/peers-ws-send.toml`: USERS sockets, each a message every PERIOD (the
//! sockets' sends spread evenly over the period, as ramped-up users' are), for SECONDS. What it
//! does per CPU-second bounds any generator that writes each message at its own time and reads
//! its echo on this kernel, so it tells how far a goal per CPU-second is reachable at all (on
//! loopback the kernel's share of each write includes the receiving side's TCP work).
//!
//! ```sh
//! cargo build --release --example ws_floor
//! target/release/examples/ws_floor 127.0.0.1:PORT 50 2ms 10s [625us]   # prints counts as JSON
//! ```

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A message of inrush's `ws-send` shape and size (`{"type":"m","id":"<sender>-<n>-<µs>"}`).
const PAYLOAD: &[u8] = br#"{"type":"m","id":"17-2345-1234567"}"#;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

type Error = Box<dyn std::error::Error>;

const USAGE: &str = "usage: ws_floor ADDR USERS PERIOD SECONDS [TICK] \
                     (e.g. 127.0.0.1:9000 50 2ms 10s 625us)";

fn main() {
    if let Err(e) = run() {
        eprintln!("ws_floor: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, users, period, seconds, tick) = match args.as_slice() {
        [a, u, p, s] => (a, u, p, s, "625us"),
        [a, u, p, s, t] => (a, u, p, s, t.as_str()),
        _ => return Err(USAGE.into()),
    };
    let users: usize = users.parse().map_err(|e| format!("USERS {users:?}: {e}"))?;
    let period =
        humantime::parse_duration(period).map_err(|e| format!("PERIOD {period:?}: {e}"))?;
    let length =
        humantime::parse_duration(seconds).map_err(|e| format!("SECONDS {seconds:?}: {e}"))?;
    let tick = humantime::parse_duration(tick).map_err(|e| format!("TICK {tick:?}: {e}"))?;
    let ip = addr.split(':').next().unwrap_or_default();
    if !ip.starts_with("127.") {
        return Err(format!("{addr}: a bench target is on loopback (127.0.0.0/8)").into());
    }

    let mut sockets = Vec::with_capacity(users);
    for _ in 0..users {
        sockets.push(open(addr)?);
    }
    let frame = frame();
    let echo_len = (2 + PAYLOAD.len()) as u64;
    let mut buf = [0u8; 16 * 1024];
    let (mut sent, mut echoed_bytes, mut blocked) = (0u64, 0u64, 0u64);

    // Socket i sends at i·PERIOD/USERS + k·PERIOD: spread evenly, as users that ramped up are.
    let start = Instant::now();
    let phase = period / users.max(1) as u32;
    let mut due: Vec<Instant> = (0..users).map(|i| start + phase * i as u32).collect();
    // The sockets written on the last tick, whose echoes the next tick reads.
    let (mut written, mut last): (Vec<usize>, Vec<usize>) =
        (Vec::with_capacity(users), Vec::with_capacity(users));
    let mut next = start;
    while next.duration_since(start) < length {
        next += tick;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let now = Instant::now();
        for (i, s) in sockets.iter_mut().enumerate() {
            if due[i] > now {
                continue;
            }
            due[i] += period;
            match s.write(&frame) {
                Ok(n) if n == frame.len() => sent += 1,
                Ok(_) => return Err("a short write of a 40-byte frame".into()),
                Err(e) if e.kind() == ErrorKind::WouldBlock => blocked += 1,
                Err(e) => return Err(format!("write: {e}").into()),
            }
            written.push(i);
        }
        for &i in &last {
            match sockets[i].read(&mut buf) {
                Ok(n) => echoed_bytes += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(format!("read: {e}").into()),
            }
        }
        std::mem::swap(&mut written, &mut last);
        written.clear();
    }
    // The last echoes: whatever has come back 200 ms after the last write.
    std::thread::sleep(Duration::from_millis(200));
    for s in &mut sockets {
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => echoed_bytes += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(format!("read: {e}").into()),
            }
        }
    }
    println!(
        "{{\"sent\": {sent}, \"echoed\": {}, \"blocked_writes\": {blocked}}}",
        echoed_bytes / echo_len
    );
    Ok(())
}

/// A WebSocket to `addr` after its handshake, non-blocking, without Nagle's delay (as inrush's).
fn open(addr: &str) -> Result<TcpStream, Error> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 || head.len() > 4096 {
            return Err(format!("{addr}: no WebSocket handshake answer").into());
        }
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        return Err(format!("{addr}: the handshake was refused").into());
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// A masked text frame of `PAYLOAD`, as a client sends it.
fn frame() -> Vec<u8> {
    let mut f = vec![0x81, 0x80 | PAYLOAD.len() as u8];
    f.extend_from_slice(&MASK);
    f.extend(PAYLOAD.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    f
}
