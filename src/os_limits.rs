//! The operating system's limits on one generator: open files (every socket is one) and the
//! ephemeral ports of a source address (every connection to one target address takes one).
//! `plan` reports them before a run; `run` raises what it can and warns about the rest.

use std::net::IpAddr;

/// Memory the kernel says it could give new work now without swapping (`MemAvailable` in
/// /proc/meminfo), bytes; `None` where the system does not say.
pub fn memory_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The open-file limit of this process (RLIMIT_NOFILE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpenFiles {
    /// What the process may open now.
    pub soft: u64,
    /// How far an unprivileged process may raise `soft`.
    pub hard: u64,
}

/// `RLIM_INFINITY` and absurd values are reported as this (no machine has more descriptors).
const UNLIMITED: u64 = 1 << 40;

fn clamp(v: libc::rlim_t) -> u64 {
    if v == libc::RLIM_INFINITY {
        UNLIMITED
    } else {
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
        (v as u64).min(UNLIMITED)
    }
}

/// The current open-file limit, `None` if the system does not say.
pub fn open_files() -> Option<OpenFiles> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    Some(OpenFiles {
        soft: clamp(lim.rlim_cur),
        hard: clamp(lim.rlim_max),
    })
}

/// What raising the open-file limit at the start of a run achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raised {
    pub before: OpenFiles,
    pub now: OpenFiles,
    /// Why the soft limit could not be raised to the hard one, when it could not.
    pub failure: Option<String>,
}

/// Raises the soft open-file limit to the hard limit, as wrk and k6 advise users to do by hand:
/// a surge of idle sockets hits the default soft limit (often 1024) long before anything else.
pub fn raise_open_files() -> Option<Raised> {
    let before = open_files()?;
    if before.soft >= before.hard {
        return Some(Raised {
            before,
            now: before,
            failure: None,
        });
    }
    let lim = libc::rlimit {
        rlim_cur: before.hard as libc::rlim_t,
        rlim_max: before.hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass; raising the soft limit up to the hard one
    // is always permitted or fails cleanly with an errno.
    let failure = (unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0)
        .then(|| std::io::Error::last_os_error().to_string());
    Some(Raised {
        before,
        now: open_files().unwrap_or(before),
        failure,
    })
}

/// The local port range the kernel picks ephemeral ports from (Linux; inclusive), with the
/// usual default when it cannot be read.
pub fn ephemeral_ports() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|v| v.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .filter(|(lo, hi)| lo <= hi)
        .unwrap_or((32768, 60999))
}

/// How many ports that range holds.
pub fn port_count((lo, hi): (u16, u16)) -> u64 {
    u64::from(hi.saturating_sub(lo)) + 1
}

/// How long Linux keeps a connection that this side closed first in TIME_WAIT, holding its
/// 4-tuple (source ip:port → target ip:port): `TCP_TIMEWAIT_LEN`, fixed in the kernel (not
/// `tcp_fin_timeout`, which times FIN_WAIT_2).
pub const TIME_WAIT_S: f64 = 60.0;

/// How this machine lets a new connection take a port still in TIME_WAIT
/// (`net.ipv4.tcp_tw_reuse`, Linux): `None` where it cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimeWait {
    /// 0: never; 1: always (for connections with TCP timestamps, as Linux's are by default);
    /// 2: only towards loopback addresses (the default since Linux 4.19).
    pub reuse: u8,
    /// `net.ipv4.tcp_max_tw_buckets`: beyond this many TIME_WAIT sockets on the host the kernel
    /// drops new ones at once (their ports are free again).
    pub max_buckets: u64,
}

/// This machine's TIME_WAIT settings; `None` where /proc does not have them.
pub fn time_wait() -> Option<TimeWait> {
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some(TimeWait {
        reuse: u8::try_from(read("tcp_tw_reuse")?).ok()?,
        max_buckets: read("tcp_max_tw_buckets")?,
    })
}

impl TimeWait {
    /// Whether a connection towards a loopback (`loopback`) or remote target may reuse a port
    /// in TIME_WAIT, so that closed connections hold no port for long.
    pub fn reused_towards(&self, loopback: bool) -> bool {
        match self.reuse {
            1 => true,
            2 => loopback,
            _ => false,
        }
    }
}

/// Whether a target host (a name or an address, IPv6 possibly in brackets) is this machine's
/// loopback: an address in 127.0.0.0/8 or ::1, or `localhost`. Other names are taken as remote.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The ports of a source address that connections to one target can hold before connecting
/// slows down: Linux looks for a connecting socket's port in the even half of the range first
/// (the odd half is left to `bind`), and once that half is taken every connect searches the
/// rest of the range, in the generator's own CPU time. Measured (bench/README.md, "Source
/// ports"): at 600 connections/s one source address fell seconds behind when ~14 000 of its
/// 28 232 ports were taken, open or in TIME_WAIT.
pub fn connect_ports(range: u64) -> u64 {
    (range / 2).max(1)
}

/// Whether `ip` belongs to this machine: it can be bound (port 0, nothing is sent or listened).
pub fn is_local(ip: IpAddr) -> Result<(), String> {
    std::net::UdpSocket::bind((ip, 0))
        .map(drop)
        .map_err(|e| format!("{ip} is not an address of this machine ({e})"))
}

/// Descriptors a generator process holds besides its sockets: stdio, the runtimes' epoll and
/// event descriptors (a few per worker thread), the hlog and report files, the target's listener.
pub const BASE_DESCRIPTORS: u64 = 64;

/// How many generator processes `needed` descriptors take under a per-process `limit`, leaving
/// [`BASE_DESCRIPTORS`] of every process for its own use.
pub fn processes_for_descriptors(needed: u64, limit: u64) -> u64 {
    let usable_per_process = limit.saturating_sub(BASE_DESCRIPTORS).max(1);
    needed
        .saturating_sub(BASE_DESCRIPTORS)
        .div_ceil(usable_per_process)
        .max(1)
}

/// How many source addresses `connections` concurrent connections to one target address need
/// with `ports` ephemeral ports per address (one 4-tuple each: source ip:port → target ip:port).
pub fn addresses_for_connections(connections: u64, ports: u64) -> u64 {
    connections.div_ceil(ports.max(1)).max(1)
}

/// Expands `"127.0.0.2"` or an inclusive IPv4 range `"127.0.0.2-127.0.0.9"`; at most `max`
/// addresses.
pub fn parse_addresses(text: &str, max: usize) -> Result<Vec<IpAddr>, String> {
    let text = text.trim();
    let parse = |s: &str| {
        s.trim()
            .parse::<IpAddr>()
            .map_err(|_| format!("`{}` is not an IP address", s.trim()))
    };
    let Some((a, b)) = text.split_once('-') else {
        return Ok(vec![parse(text)?]);
    };
    let (IpAddr::V4(a), IpAddr::V4(b)) = (parse(a)?, parse(b)?) else {
        return Err("a range of addresses must be IPv4, e.g. \"127.0.0.2-127.0.0.9\"".into());
    };
    let (lo, hi) = (u32::from(a), u32::from(b));
    if hi < lo {
        return Err(format!("range `{text}` ends before it starts"));
    }
    if (hi - lo) as usize >= max {
        return Err(format!("range `{text}` holds more than {max} addresses"));
    }
    Ok((lo..=hi)
        .map(|v| IpAddr::V4(std::net::Ipv4Addr::from(v)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_arithmetic() {
        // 15 000 sockets in one process under a 20 000 limit: one process.
        assert_eq!(processes_for_descriptors(15_064, 20_000), 1);
        // 40 000 sockets: 19 936 usable per process → 3 processes (2 hold 39 872).
        assert_eq!(processes_for_descriptors(40_064, 20_000), 3);
        assert_eq!(processes_for_descriptors(39_872 + 64, 20_000), 2);
        assert_eq!(processes_for_descriptors(0, 20_000), 1);
        // A limit below the base overhead still gives a finite answer.
        assert_eq!(processes_for_descriptors(100, 10), 36);
    }

    #[test]
    fn port_arithmetic() {
        let ports = port_count((32768, 60999));
        assert_eq!(ports, 28_232);
        assert_eq!(addresses_for_connections(28_232, ports), 1);
        assert_eq!(addresses_for_connections(28_233, ports), 2);
        assert_eq!(addresses_for_connections(100_000, ports), 4);
        assert_eq!(addresses_for_connections(0, ports), 1);
        assert_eq!(port_count((5, 5)), 1);
    }

    #[test]
    fn time_wait_reuse_follows_the_sysctl() {
        let tw = |reuse| TimeWait {
            reuse,
            max_buckets: 131_072,
        };
        assert!(!tw(0).reused_towards(true));
        assert!(tw(1).reused_towards(false));
        assert!(tw(2).reused_towards(true) && !tw(2).reused_towards(false));
        for host in ["127.0.0.1", "127.3.4.5", "[::1]", "::1", "LocalHost"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "10.0.0.1",
            "staging.example.com",
            "[2001:db8::1]",
            "localhost.example",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
        // Linux has both settings.
        let here = time_wait().expect("Linux has tcp_tw_reuse and tcp_max_tw_buckets");
        assert!(here.reuse <= 2, "{here:?}");
    }

    #[test]
    fn address_ranges() {
        let v = parse_addresses("127.0.0.2-127.0.0.9", 1024).expect("range");
        assert_eq!(v.len(), 8);
        assert_eq!(v[7], "127.0.0.9".parse::<IpAddr>().expect("ip"));
        assert_eq!(parse_addresses(" ::1 ", 8).expect("v6").len(), 1);
        assert!(parse_addresses("127.0.0.9-127.0.0.2", 8).is_err());
        assert!(parse_addresses("10.0.0.0-10.1.0.0", 1024).is_err());
        assert!(parse_addresses("localhost", 8).is_err());
    }

    #[test]
    fn limits_are_readable_here() {
        let l = open_files().expect("getrlimit works on Linux");
        assert!(l.soft >= 1 && l.soft <= l.hard, "{l:?}");
        assert!(is_local("127.0.0.1".parse().expect("ip")).is_ok());
        assert!(is_local("192.0.2.1".parse().expect("ip")).is_err());
    }
}
