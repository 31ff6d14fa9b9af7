//! An HTTP/1.1 request head as a kept-alive connection writes it: rendered straight into the
//! connection's reused write buffer, each part checked as it is copied (a flow can render
//! anything into a path or a header, and HTTP cannot carry a line break in either).
//!
//! Header names go out lowercased and in the flow's order after `host` (as hyper sent them),
//! then the body's `content-type` unless the flow set one, then `content-length`. A `Host` the
//! flow sets replaces the target's (as curl, k6 and Go do): two would be a 400 (RFC 9112 §3.2).

use std::io::Write;

use http::Method;

use crate::clients::{Endpoint, OpError};
use crate::metrics::ErrorClass;

/// What the head says of the exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent {
    /// A HEAD request: its response has no body, whatever its headers say.
    pub head_request: bool,
    /// The flow asked for `Connection: close`: the connection is not reused after it.
    pub close: bool,
}

fn bad(what: impl std::fmt::Display) -> OpError {
    OpError::new(ErrorClass::Protocol, format!("bad request: {what}"))
}

/// Writes the request head into `out` (cleared first), ending with its blank line; the body
/// (`content_type`, `len` bytes) follows it on the wire.
pub(crate) fn write_head(
    out: &mut Vec<u8>,
    endpoint: &Endpoint,
    method: &Method,
    path: &str,
    headers: &[(String, String)],
    body: Option<(&str, usize)>,
) -> Result<Sent, OpError> {
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    let start = out.len();
    target(out, &endpoint.prefix)?;
    target(out, path)?;
    if out.len() == start {
        return Err(bad("an empty path"));
    }
    out.extend_from_slice(b" HTTP/1.1\r\n");
    // First, as RFC 9112 asks of a client: the flow's own Host, else the target's.
    let mut own_host = headers.iter().filter(|(n, _)| is_host(n));
    match own_host.next() {
        Some((name, value)) => header(out, name, value)?,
        None => out.extend_from_slice(endpoint.host.line()?),
    }
    if own_host.next().is_some() {
        return Err(bad("more than one host header"));
    }
    let (mut own_type, mut own_length, mut close) = (false, false, false);
    for (name, value) in headers {
        if is_host(name) {
            continue;
        }
        header(out, name, value)?;
        if name.eq_ignore_ascii_case("content-type") {
            own_type = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            own_length = true;
        } else if name.eq_ignore_ascii_case("connection") {
            close |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // The body goes out whole with its length; a flow's own framing would contradict it.
            return Err(bad("transfer-encoding is set by inrush"));
        }
    }
    if let Some((content_type, len)) = body {
        if !own_type {
            header(out, "content-type", content_type)?;
        }
        if !own_length {
            // Writing into a Vec cannot fail.
            let _ = write!(out, "content-length: {len}\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(Sent {
        head_request: *method == Method::HEAD,
        close,
    })
}

/// A path (with its query) as the request target: visible ASCII only, a fragment left out (it
/// is the client's, never sent).
fn target(out: &mut Vec<u8>, path: &str) -> Result<(), OpError> {
    let Ok(end) = sendable_len(path) else {
        let path = path.split_once('#').map_or(path, |(p, _)| p);
        return Err(bad(format!("invalid path {path:?}")));
    };
    out.extend_from_slice(&path.as_bytes()[..end]);
    Ok(())
}

/// Where `path` holds the first byte a request line cannot carry (a space, a control character,
/// anything but visible ASCII) before its fragment, if it does: the check every request's path
/// passes at run time, and `validate` runs on a flow's literal paths and the target's prefix.
pub fn unsendable(path: &str) -> Option<usize> {
    sendable_len(path).err()
}

/// How much of `path` a request line carries (up to its fragment, never sent), or where the
/// first byte it cannot carry is: one pass, on every request's path.
fn sendable_len(path: &str) -> Result<usize, usize> {
    let bytes = path.as_bytes();
    match bytes
        .iter()
        .position(|&b| b == b'#' || !b.is_ascii_graphic())
    {
        None => Ok(bytes.len()),
        Some(i) if bytes[i] == b'#' => Ok(i),
        Some(i) => Err(i),
    }
}

/// `name: value\r\n`: the name a token (lowercased), the value without control characters
/// (what `http::HeaderValue` accepts: tab, visible ASCII, space, bytes of other encodings).
fn header(out: &mut Vec<u8>, name: &str, value: &str) -> Result<(), OpError> {
    if name.is_empty() || !name.bytes().all(is_token) {
        return Err(bad(format!("invalid header name {name:?}")));
    }
    if !value
        .bytes()
        .all(|b| b == b'\t' || (b >= b' ' && b != 0x7f))
    {
        return Err(bad(format!("invalid value of header {name:?}")));
    }
    out.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
    Ok(())
}

fn is_host(name: &str) -> bool {
    name.eq_ignore_ascii_case("host")
}

/// RFC 9110 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(prefix: &str) -> Endpoint {
        named("127.0.0.1:9", prefix)
    }

    /// An endpoint on 127.0.0.1:9 whose authority (its Host) is `authority`.
    fn named(authority: &str, prefix: &str) -> Endpoint {
        let loopback = ([127, 0, 0, 1], 9).into();
        Endpoint::new(loopback, authority.into(), prefix.into(), Vec::new(), None)
    }

    fn head(
        e: &Endpoint,
        method: Method,
        path: &str,
        headers: &[(String, String)],
        body: Option<(&str, usize)>,
    ) -> Result<String, OpError> {
        let mut out = b"left over from the last request".to_vec();
        write_head(&mut out, e, &method, path, headers, body)?;
        Ok(String::from_utf8(out).expect("ASCII"))
    }

    #[test]
    fn writes_the_request_as_the_flow_rendered_it() {
        let headers = vec![("X-A".to_string(), "1".to_string())];
        let h = head(
            &endpoint("/api"),
            Method::POST,
            "/v1/x?y=1",
            &headers,
            Some(("application/json", 2)),
        )
        .expect("a valid request");
        assert_eq!(
            h,
            "POST /api/v1/x?y=1 HTTP/1.1\r\nhost: 127.0.0.1:9\r\nx-a: 1\r\n\
             content-type: application/json\r\ncontent-length: 2\r\n\r\n"
        );
        // The flow's own content type wins; without a prefix the path is the target; a GET
        // without a body says no length.
        let own = vec![("Content-Type".to_string(), "text/csv".to_string())];
        let h = head(&endpoint(""), Method::PUT, "/x", &own, Some(("a/b", 0)))
            .expect("a valid request");
        assert_eq!(
            h,
            "PUT /x HTTP/1.1\r\nhost: 127.0.0.1:9\r\ncontent-type: text/csv\r\ncontent-length: 0\r\n\r\n"
        );
        let h = head(&endpoint(""), Method::GET, "/x#frag", &[], None).expect("valid");
        assert_eq!(h, "GET /x HTTP/1.1\r\nhost: 127.0.0.1:9\r\n\r\n");
        let mut out = Vec::new();
        let sent =
            write_head(&mut out, &endpoint(""), &Method::HEAD, "/", &[], None).expect("valid");
        assert!(sent.head_request && !sent.close);
        let close = vec![("Connection".to_string(), "Close".to_string())];
        let sent =
            write_head(&mut out, &endpoint(""), &Method::GET, "/", &close, None).expect("valid");
        assert!(sent.close && !sent.head_request);
    }

    #[test]
    fn a_host_the_flow_sets_replaces_the_targets_in_first_place() {
        let headers = vec![
            ("X-A".to_string(), "1".to_string()),
            ("HOST".to_string(), "api.example.com".to_string()),
        ];
        let h = head(&endpoint(""), Method::GET, "/x", &headers, None).expect("valid");
        assert_eq!(
            h,
            "GET /x HTTP/1.1\r\nhost: api.example.com\r\nx-a: 1\r\n\r\n"
        );
        // An authority HTTP cannot carry does not matter when the flow names the host.
        let broken = named("a\r\nb", "");
        let h = head(&broken, Method::GET, "/", &headers[1..], None).expect("valid");
        assert_eq!(h, "GET / HTTP/1.1\r\nhost: api.example.com\r\n\r\n");
        // Two of them would be the server's 400: the flow is told instead.
        let two = vec![
            ("host".to_string(), "a.example".to_string()),
            ("Host".to_string(), "b.example".to_string()),
        ];
        let e = head(&endpoint(""), Method::GET, "/", &two, None).expect_err("two hosts");
        assert_eq!(e.reason, "bad request: more than one host header");
    }

    #[test]
    fn what_http_cannot_carry_is_a_protocol_error() {
        let cases: Vec<(&str, Vec<(String, String)>)> = vec![
            ("/", vec![("x-b".into(), "line\nbreak".into())]),
            ("/", vec![("x-b".into(), "cr\rhere".into())]),
            ("/", vec![("x-b".into(), "nul\0".into())]),
            ("/", vec![("x b".into(), "1".into())]),
            ("/", vec![("x:b".into(), "1".into())]),
            ("/", vec![("".into(), "1".into())]),
            ("/", vec![("transfer-encoding".into(), "chunked".into())]),
            ("/", vec![("host".into(), "a\r\nx: y".into())]),
            ("/a b", vec![]),
            ("/a\r\nx: y", vec![]),
            ("", vec![]),
        ];
        for (path, headers) in cases {
            let e = head(&endpoint(""), Method::GET, path, &headers, None)
                .expect_err("not a valid request");
            assert_eq!(e.class, ErrorClass::Protocol, "{path:?} {headers:?}");
            assert!(e.reason.starts_with("bad request: "), "{}", e.reason);
        }
        let broken = named("a\r\nb", "");
        let e = head(&broken, Method::GET, "/", &[], None).expect_err("a broken host");
        assert!(
            e.reason.starts_with("bad request: invalid host"),
            "{}",
            e.reason
        );
        // Values may carry tabs, spaces and other encodings' bytes.
        let fine = vec![("x-c".to_string(), "a\tb c é".to_string())];
        head(&endpoint(""), Method::GET, "/", &fine, None).expect("a valid value");
    }
}
