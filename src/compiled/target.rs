//! The service under test: the built-in messenger with its knobs, or a base URL.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::clients::tls::{self, TlsOptions};
use crate::scenario::{self, Problems};
use crate::target::Knobs;

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Start the built-in messenger in-process with these knobs.
    Builtin(Knobs),
    /// An already running service.
    Url(BaseUrl),
}

/// `http(s)://host:port/prefix` — where the API lives. Its WebSocket is `ws://` below an
/// `http://` base and `wss://` below an `https://` one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash, e.g. `` or `/api`.
    pub prefix: String,
    /// `https://` (or `wss://`): every connection speaks TLS.
    pub tls: bool,
}

impl BaseUrl {
    /// Parses `http://`, `https://`, and the WebSocket forms `ws://` and `wss://` (the same
    /// server, so the same base).
    pub fn parse(text: &str) -> Result<BaseUrl, String> {
        // A URL holding an `@` may hold a password (`http://ci:pa/ss@host`, its `/` unescaped):
        // a message about it repeats no part of it before the last `@`, since it reaches the
        // terminal and CI logs.
        BaseUrl::parse_text(text).map_err(|e| match text.rsplit_once('@') {
            Some((_, after)) => {
                let scheme = text.split_once("://").map_or("", |(s, _)| s);
                format!(
                    "`{scheme}://…@{after}` is not a URL inrush can use: credentials in the \
                     target URL are not supported; send them in a header from the \
                     environment, e.g. authorization = \"Basic {{{{ base64('user:' + \
                     env.PASSWORD) }}}}\""
                )
            }
            None => e,
        })
    }

    fn parse_text(text: &str) -> Result<BaseUrl, String> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!("`{text}` is not an http:// or https:// URL"));
        };
        let authority = rest.find('/').map_or(rest, |i| &rest[..i]);
        if let Some((_, host)) = authority.rsplit_once('@') {
            // The password is not repeated: this message reaches the terminal and CI logs.
            return Err(format!(
                "`{scheme}://…@{host}`: credentials in the target URL are not supported; send \
                 them in a header from the environment, e.g. authorization = \"Basic {{{{ \
                 base64('user:' + env.PASSWORD) }}}}\""
            ));
        }
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => false,
            "https" | "wss" => true,
            _ => {
                return Err(format!(
                    "`{text}`: the scheme `{scheme}` is not http, https, ws or wss"
                ))
            }
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("`{text}` has no host"));
        }
        let default_port = if tls { 443 } else { 80 };
        let port_of = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| format!("`{text}`: `{p}` is not a port number"))
        };
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            // An IPv6 address: `[::1]` or `[::1]:8080`.
            let (address, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("`{text}`: the IPv6 address has no closing `]`"))?;
            let port = match after {
                "" => default_port,
                _ => match after.strip_prefix(':') {
                    Some(p) => port_of(p)?,
                    None => return Err(format!("`{text}`: `{after}` after the IPv6 address")),
                },
            };
            (format!("[{address}]"), port)
        } else {
            match authority.split_once(':') {
                Some((_, p)) if p.contains(':') => {
                    return Err(format!(
                        "`{text}`: an IPv6 address goes in brackets, e.g. http://[::1]:8080"
                    ))
                }
                Some((h, p)) => (h.to_string(), port_of(p)?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("`{text}` has no host"));
        }
        // Every request's path starts with the prefix: one a request line cannot carry would
        // fail every request at run time, as the target's fault.
        if let Some(i) = crate::clients::request::unsendable(path) {
            let c = path[i..].chars().next().unwrap_or(' ');
            return Err(format!("`{text}`: its path holds {}", unsendable_char(c)));
        }
        Ok(BaseUrl {
            host,
            port,
            prefix: path.trim_end_matches('/').to_string(),
            tls,
        })
    }

    /// The authority for Host headers: `host:port`.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A character a request line cannot carry, in words, and what to write instead:
/// `a space, which a request cannot carry; percent-encode it: `%20``.
pub fn unsendable_char(c: char) -> String {
    let what = match c {
        ' ' => "a space".to_string(),
        c if c.is_control() => format!("the control character {c:?}"),
        c => format!("`{c}` (beyond ASCII)"),
    };
    let mut encoded = String::new();
    crate::compiled::flow::template::percent_encode(c.encode_utf8(&mut [0u8; 4]), &mut encoded);
    format!("{what}, which a request cannot carry; percent-encode it: `{encoded}`")
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.prefix)
    }
}

impl Target {
    /// Whether the run's connections speak TLS.
    pub fn speaks_tls(&self) -> bool {
        matches!(self, Target::Url(u) if u.tls)
    }
}

/// `[target]`'s TLS settings: `ca`, `cert` + `key`, `insecure`. Files are read here too, so that
/// `inrush validate` names an unreadable or malformed one at its position. They apply whenever
/// the run's URL is `https://` — the file's or `--target`'s — and are unused otherwise (so a
/// scenario can keep its staging CA and still run against a local plain target).
pub(super) fn compile_tls(
    scenario: &Path,
    section: &scenario::TargetSection,
    problems: &mut Problems,
) -> TlsOptions {
    let dir = scenario.parent().unwrap_or(Path::new("."));
    let mut file = |f: &Option<Spanned<String>>, read: &dyn Fn(&Path) -> Result<(), String>| {
        let f = f.as_ref()?;
        let path = dir.join(f.get_ref());
        if let Err(e) = read(&path) {
            problems.add(f.span(), e);
        }
        Some(path)
    };
    let ca = file(&section.ca, &|p| tls::read_roots(p).map(drop));
    let cert = file(&section.cert, &|p| tls::read_chain(p).map(drop));
    let key = file(&section.key, &|p| tls::read_key(p).map(drop));
    let insecure = section.insecure.as_ref().is_some_and(|i| *i.get_ref());
    let client_cert = match (cert, key) {
        (Some(c), Some(k)) => {
            // Only when each file read well: their own problems are said already.
            if let (Ok(()), Some(at)) = (
                tls::read_chain(&c).and(tls::read_key(&k)).map(drop),
                &section.key,
            ) {
                if let Err(e) = tls::check_client_pair(&c, &k) {
                    problems.add(at.span(), e);
                }
            }
            Some((c, k))
        }
        (None, None) => None,
        _ => {
            let (span, missing) = match (&section.cert, &section.key) {
                (Some(c), None) => (c.span(), "key"),
                (None, Some(k)) => (k.span(), "cert"),
                _ => (0..0, ""),
            };
            problems.add(
                span,
                format!("a client certificate needs both `cert` and `key`: `{missing}` is missing"),
            );
            None
        }
    };
    if let (Some(ca), Some(i)) = (&section.ca, &section.insecure) {
        if *i.get_ref() {
            problems.add(
                ca.span(),
                "`insecure = true` accepts any certificate, so `ca` would not be used: keep one of them",
            );
        }
    }
    TlsOptions {
        ca,
        client_cert,
        insecure,
    }
}

/// `[target]`: exactly one of `builtin = { ... }` or `url = "..."`.
pub(super) fn compile(
    section: &Spanned<scenario::TargetSection>,
    problems: &mut Problems,
) -> Target {
    let t = section.get_ref();
    match (&t.builtin, &t.url) {
        (Some(knobs), None) => {
            match Knobs::deserialize(toml::Value::Table(knobs.get_ref().clone())) {
                Ok(k) => {
                    if let Err(e) = k.validate() {
                        problems.add(knobs.span(), format!("builtin target: {e}"));
                    }
                    Target::Builtin(k)
                }
                Err(e) => {
                    problems.add(
                        knobs.span(),
                        format!("builtin target: {}", e.message().trim()),
                    );
                    Target::Builtin(Knobs::default())
                }
            }
        }
        (None, Some(url)) => match BaseUrl::parse(url.get_ref()) {
            Ok(u) => Target::Url(u),
            Err(e) => {
                problems.add(url.span(), e);
                Target::Builtin(Knobs::default())
            }
        },
        _ => {
            problems.add(
                section.span(),
                "target needs exactly one of `builtin = { ... }` or `url = \"http(s)://...\"`",
            );
            Target::Builtin(Knobs::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_forms() {
        assert_eq!(BaseUrl::parse("http://localhost").map(|u| u.port), Ok(80));
        let https = BaseUrl::parse("https://example.test/api/").expect("https parses");
        assert_eq!(
            (https.port, https.tls, https.prefix.as_str()),
            (443, true, "/api")
        );
        assert_eq!(https.to_string(), "https://example.test:443/api");
        let wss = BaseUrl::parse("wss://[::1]:8443").expect("wss parses");
        assert_eq!(
            (wss.host.as_str(), wss.port, wss.tls),
            ("[::1]", 8443, true)
        );
        assert_eq!(
            BaseUrl::parse("ws://h").map(|u| (u.port, u.tls)),
            Ok((80, false))
        );
        assert!(BaseUrl::parse("ftp://x").is_err());
        assert!(BaseUrl::parse("localhost:80").is_err());
        assert!(BaseUrl::parse("http://:80").is_err());
        assert!(BaseUrl::parse("http://h:99999").is_err());
    }

    #[test]
    fn an_ipv6_address_without_a_port_takes_the_schemes() {
        let u = BaseUrl::parse("http://[::1]/api").expect("parses");
        assert_eq!(
            (u.host.as_str(), u.port, u.prefix.as_str()),
            ("[::1]", 80, "/api")
        );
        assert_eq!(BaseUrl::parse("https://[::1]").map(|u| u.port), Ok(443));
        assert!(BaseUrl::parse("http://[::1").is_err());
        assert!(BaseUrl::parse("http://[::1]x").is_err());
        let bare = BaseUrl::parse("http://::1").expect_err("a bare IPv6 address");
        assert!(bare.contains("brackets"), "{bare}");
    }

    #[test]
    fn credentials_in_the_url_are_refused_without_repeating_the_password() {
        let e = BaseUrl::parse("http://ci:s3cretPW@127.0.0.1:1/x").expect_err("refused");
        assert!(!e.contains("s3cretPW"), "{e}");
        assert!(e.contains("127.0.0.1:1") && e.contains("env."), "{e}");
        // A `/` in the password ends the authority early: still no part of it is repeated.
        let e = BaseUrl::parse("http://ci:pa/ss@api.example.test").expect_err("refused");
        assert!(!e.contains("pa") && !e.contains("ss@"), "{e}");
        // An `@` in a path of a URL that parses is a path.
        let u = BaseUrl::parse("http://h:8080/users/@me").expect("parses");
        assert_eq!(u.prefix, "/users/@me");
    }
}
