//! `[run] source_addresses`: the local addresses users' connections are bound to.

use toml::Spanned;

use crate::scenario::Problems;

/// Most source addresses a scenario may list (after expanding ranges).
const MAX_SOURCES: usize = 1024;

/// `[run] source_addresses`: each entry an address or an IPv4 range, each one an address of
/// this machine (checked by binding it, port 0 — nothing is sent), so a typo fails before any
/// traffic instead of as thousands of connect errors.
pub(super) fn compile(
    spec: &Option<Spanned<Vec<Spanned<String>>>>,
    problems: &mut Problems,
) -> Vec<std::net::IpAddr> {
    let Some(list) = spec else {
        return Vec::new();
    };
    let mut out: Vec<std::net::IpAddr> = Vec::new();
    for entry in list.get_ref() {
        let text = entry.get_ref();
        match crate::os_limits::parse_addresses(text, MAX_SOURCES) {
            Ok(ips) => {
                for ip in ips {
                    if let Err(e) = crate::os_limits::is_local(ip) {
                        problems.add(entry.span(), e);
                        break;
                    }
                    if !out.contains(&ip) {
                        out.push(ip);
                    }
                }
            }
            Err(e) => problems.add(entry.span(), e),
        }
    }
    if out.len() > MAX_SOURCES {
        problems.add(
            list.span(),
            format!("at most {MAX_SOURCES} source addresses"),
        );
    }
    if list.get_ref().is_empty() {
        problems.add(
            list.span(),
            "source_addresses is empty: leave it out to let the system choose",
        );
    }
    out
}
