//! Opening a user's TCP connection: from the user's source address when the scenario spreads
//! users over several (`[run] source_addresses`), with errors that say which limit was hit.

use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

use crate::clients::{Endpoint, OpError};
use crate::metrics::ErrorClass;

/// Connects to the endpoint, bound to `source` when given.
pub async fn tcp(endpoint: &Endpoint, source: Option<IpAddr>) -> Result<TcpStream, OpError> {
    let addr = endpoint.addr;
    let stream = match source {
        None => TcpStream::connect(addr).await,
        Some(ip) => bound(ip, addr).await,
    }
    .map_err(|e| connect_error(&e, source))?;
    // Small request/response pairs: Nagle's algorithm would only add delay.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn bound(ip: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    defer_port_choice(&socket);
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(addr).await
}

/// Without IP_BIND_ADDRESS_NO_PORT, `bind(ip, 0)` picks the port before the destination is
/// known, so one source address could hold only one connection per port in the whole range
/// across all targets; with it the kernel chooses at `connect`, per 4-tuple, as it does for an
/// unbound socket.
#[cfg(target_os = "linux")]
fn defer_port_choice(socket: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int option value of the right size; a failure
    // only means the kernel picks the port at bind time.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn defer_port_choice(_socket: &TcpSocket) {}

/// A connect error with the limit behind it spelled out: these are the generator's limits, not
/// the target's, and a reader of the summary must be able to tell.
pub fn connect_error(e: &std::io::Error, source: Option<IpAddr>) -> OpError {
    let reason = match e.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => format!(
            "connect: the generator is out of file descriptors ({e}): its open-file limit \
             (ulimit -n) is reached; spread users over more generator processes (see `inrush plan`)"
        ),
        Some(libc::EADDRNOTAVAIL) | Some(libc::EADDRINUSE) => format!(
            "connect: the generator is out of ephemeral ports{} ({e}): open connections and \
             those it closed in the last minute (TIME_WAIT) hold them; add source addresses \
             ([run] source_addresses) or generator machines (see `inrush plan`)",
            source.map_or(String::new(), |ip| format!(" on source address {ip}"))
        ),
        _ => format!("connect: {e}"),
    };
    OpError::new(ErrorClass::Connect, reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_of_the_generator_are_named() {
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        let op = connect_error(&e, None);
        assert_eq!(op.class, ErrorClass::Connect);
        assert!(
            op.reason.contains("out of file descriptors"),
            "{}",
            op.reason
        );
        let e = std::io::Error::from_raw_os_error(libc::EADDRNOTAVAIL);
        let op = connect_error(&e, "127.0.0.2".parse().ok());
        assert!(
            op.reason
                .contains("out of ephemeral ports on source address 127.0.0.2"),
            "{}",
            op.reason
        );
        let e = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert!(!connect_error(&e, None).reason.contains("generator"));
    }
}
