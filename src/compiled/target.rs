//! The service under test: the built-in messenger with its knobs, or a base URL.

use serde::Deserialize;
use toml::Spanned;

use crate::scenario::{self, Problems};
use crate::target::Knobs;

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Start the built-in messenger in-process with these knobs.
    Builtin(Knobs),
    /// An already running service.
    Url(BaseUrl),
}

/// `http://host:port/prefix` — where the API lives. Plain HTTP and WebSocket (`ws://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash, e.g. `` or `/api`.
    pub prefix: String,
}

impl BaseUrl {
    pub fn parse(text: &str) -> Result<BaseUrl, String> {
        let rest = if let Some(rest) = text.strip_prefix("http://") {
            rest
        } else if text.starts_with("https://") {
            return Err(
                "https:// targets are not supported yet (no TLS in the client); use http:// or a TLS-terminating proxy"
                    .into(),
            );
        } else {
            return Err(format!("`{text}` is not an http:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("`{text}` has no host"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("`{p}` is not a port number"))?;
                (h.to_string(), port)
            }
            _ => (authority.to_string(), 80),
        };
        if host.is_empty() {
            return Err(format!("`{text}` has no host"));
        }
        Ok(BaseUrl {
            host,
            port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// The authority for Host headers: `host:port`.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.prefix)
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
                "target needs exactly one of `builtin = { ... }` or `url = \"http://...\"`",
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
        assert!(BaseUrl::parse("https://x").is_err());
        assert!(BaseUrl::parse("http://:80").is_err());
        assert!(BaseUrl::parse("http://h:99999").is_err());
    }
}
