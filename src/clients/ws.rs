//! WebSocket connections of simulated users: small buffers, because a surge holds many sockets
//! open and idle (tungstenite's default read buffer alone is 128 KiB per socket).

use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

use crate::clients::read_ahead::{ReadAhead, PARSER_READ};
use crate::clients::stream::{Meter, Stream};
use crate::clients::tls::UserTls;
use crate::clients::{Endpoint, OpError};
use crate::metrics::ErrorClass;

pub type Socket = WebSocketStream<ReadAhead<Stream>>;

/// The largest frame (and message) a user accepts from the target: 1 MiB, as a browser's
/// typical limits go. A larger one is refused with a `protocol` error.
pub const MAX_FRAME: usize = 1 << 20;

/// The most bytes that may wait to go out on one socket — data frames and the pongs tungstenite
/// owes for the peer's pings — once the kernel's buffers are full. A peer that sends but does
/// not read would otherwise grow this queue without end (a ping flood did: 2 GiB for 15 users).
pub const OUT_QUEUE: usize = 1 << 20;

/// The most bytes of frames fed without a flush (a burst) that wait before tungstenite writes
/// them: a burst of small frames goes out in one write instead of one each. Every plain send
/// flushes at once, so it changes nothing else; the buffer grows only for a burst.
pub const WRITE_BATCH: usize = 4 * 1024;

pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(PARSER_READ)
        .write_buffer_size(WRITE_BATCH)
        .max_write_buffer_size(OUT_QUEUE)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
}

/// Opens a WebSocket with extra headers and offered subprotocols (`wss://` when the user has
/// TLS).
pub async fn connect_with(
    endpoint: &Endpoint,
    path_and_query: &str,
    headers: &[(String, String)],
    subprotocols: &[String],
    source: Option<std::net::IpAddr>,
    tls: Option<&UserTls>,
    meter: Meter,
) -> Result<Socket, OpError> {
    let url = format!(
        "{}://{}{}{}",
        if tls.is_some() { "wss" } else { "ws" },
        endpoint.authority,
        endpoint.prefix,
        path_and_query
    );
    // The same check as a request's path (`validate` runs it on the flow's literal paths): a
    // URL cannot carry a space or a byte beyond visible ASCII either.
    if [endpoint.prefix.as_str(), path_and_query]
        .iter()
        .any(|p| crate::clients::request::unsendable(p).is_some())
    {
        return Err(OpError::new(
            ErrorClass::Protocol,
            "bad websocket url: its path holds a space, a control character or a character \
             beyond ASCII",
        ));
    }
    // The URL may carry a token: errors say what is wrong, never the URL itself.
    let mut request = url
        .into_client_request()
        .map_err(|_| OpError::new(ErrorClass::Protocol, "bad websocket url"))?;
    // One Host, as on a request: the flow's replaces the URL's (`insert` below), and two of
    // the flow's own are the step's error, not the last one silently.
    if headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
        .count()
        > 1
    {
        return Err(OpError::new(
            ErrorClass::Protocol,
            "two Host headers in the step's headers: a request carries one (RFC 9112 §3.2)",
        ));
    }
    for (name, value) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| OpError::new(ErrorClass::Protocol, format!("bad header name `{name}`")))?;
        let value = tokio_tungstenite::tungstenite::http::HeaderValue::from_str(value)
            .map_err(|_| OpError::new(ErrorClass::Protocol, "bad header value"))?;
        request.headers_mut().insert(name, value);
    }
    if !subprotocols.is_empty() {
        let offered = subprotocols.join(", ");
        let value = tokio_tungstenite::tungstenite::http::HeaderValue::from_str(&offered)
            .map_err(|_| OpError::new(ErrorClass::Protocol, "bad subprotocol"))?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", value);
    }
    let stream = crate::clients::stream::open(endpoint, source, tls, meter).await?;
    handshake(stream, &request).await
}

/// A failed handshake: a connect error, as a failed TCP connect is.
fn refused(reason: impl std::fmt::Display) -> OpError {
    OpError::new(
        ErrorClass::Connect,
        format!("websocket handshake: {reason}"),
    )
}

/// Largest handshake response accepted: a load generator must stay bounded.
const MAX_HANDSHAKE: usize = 16 * 1024;

/// The client's upgrade handshake, done here rather than by tungstenite because tungstenite keeps
/// its 4 KiB handshake buffer as the socket's read buffer for the socket's whole life; with the
/// bytes that followed the response handed over instead, an idle user's socket costs the
/// configured [`PARSER_READ`] bytes (see bench/README.md, connected users).
async fn handshake(
    mut stream: Stream,
    request: &tokio_tungstenite::tungstenite::handshake::client::Request,
) -> Result<Socket, OpError> {
    use tokio::io::AsyncWriteExt;
    let key = request
        .headers()
        .get("sec-websocket-key")
        .and_then(|k| k.to_str().ok())
        .ok_or_else(|| refused("no key in the request"))?
        .to_string();
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!("GET {path} HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        head.push_str(name.as_str());
        head.push_str(": ");
        // Header values were checked when the request was built (no CR or LF).
        head.push_str(&String::from_utf8_lossy(value.as_bytes()));
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    if let Err(e) = stream.write_all(head.as_bytes()).await {
        // A server that rejected the TLS handshake has its alert waiting to be read.
        return Err(stream
            .rejection()
            .unwrap_or_else(|| refused(format!("sending the upgrade: {e}"))));
    }

    let (buf, end) = read_head(&mut stream).await?;
    let mut headers = [httparse::EMPTY_HEADER; crate::clients::response::MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    response
        .parse(&buf[..end])
        .map_err(|e| refused(format!("malformed response: {e}")))?;
    match response.code {
        Some(101) => {}
        Some(code) => {
            // A refusal with a status (429, 503 + Retry-After) says so, for retry policies.
            let retry_after = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("retry-after"))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .and_then(|v| {
                    crate::clients::retry_after::parse_retry_after(v, std::time::SystemTime::now())
                });
            return Err(refused(format!("HTTP error: {code}")).with_status(code, retry_after));
        }
        None => return Err(refused("HTTP error: no status")),
    }
    upgraded(response.headers)?;
    let accept = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|h| h.value);
    let expected = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    if accept != Some(expected.as_bytes()) {
        return Err(refused("wrong or missing Sec-WebSocket-Accept"));
    }
    chosen_subprotocol(request, response.headers)?;
    // Frames the server sent right behind its answer (e.g. messages held while offline).
    let rest = buf[end..].to_vec();
    Ok(WebSocketStream::from_partially_read(
        ReadAhead::new(stream),
        rest,
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        Some(client_config()),
    )
    .await)
}

/// The most of a server's text an error quotes: it is the target's, and reports keep it.
const QUOTE_AT_MOST: usize = 64;

/// RFC 6455 §4.1: a client MUST fail the connection when the 101 lacks `Upgrade: websocket` or
/// a `Connection` header holding the `upgrade` token (both case-insensitive): a server that
/// switched to something else, or a proxy that answered for it, is not speaking WebSocket.
fn upgraded(answer: &[httparse::Header<'_>]) -> Result<(), OpError> {
    let values = |name: &'static str| {
        answer
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value))
    };
    let upgrade: Vec<_> = values("upgrade").collect();
    if !upgrade
        .iter()
        .any(|v| v.trim().eq_ignore_ascii_case("websocket"))
    {
        return Err(refused(match upgrade.first() {
            None => "the 101 has no `Upgrade: websocket`".to_string(),
            Some(v) => format!("the 101 upgrades to {}, not websocket", quoted(v)),
        }));
    }
    let connection: Vec<_> = values("connection").collect();
    let has_token = connection.iter().any(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !has_token {
        return Err(refused(match connection.first() {
            None => "the 101 has no `Connection: upgrade`".to_string(),
            Some(v) => format!("the 101's Connection is {}, without upgrade", quoted(v)),
        }));
    }
    Ok(())
}

/// The target's `text` as an error quotes it ([`crate::clients::quote`]).
fn quoted(text: &str) -> String {
    let (text, _) = crate::clients::quote::target_text(text, QUOTE_AT_MOST);
    format!("{text:?}")
}

/// Checks the server's `Sec-WebSocket-Protocol`: absent, or one of those the request offered
/// (RFC 6455 §4.1: a client MUST fail the connection otherwise, also when it offered none). A
/// server that picks none of those offered is accepted, as OkHttp and most clients do. A wrong
/// one is the target's `protocol` error: it answered, with what the client cannot speak.
fn chosen_subprotocol(
    request: &tokio_tungstenite::tungstenite::handshake::client::Request,
    answer: &[httparse::Header<'_>],
) -> Result<(), OpError> {
    let mut chosen = answer
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-protocol"));
    let Some(first) = chosen.next() else {
        return Ok(());
    };
    let offered: Vec<&str> = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let name = String::from_utf8_lossy(first.value);
    let name = name.trim();
    let why = if chosen.next().is_some() {
        "the server chose more than one subprotocol".to_string()
    } else if offered.contains(&name) {
        return Ok(());
    } else {
        let name: String = name.chars().take(QUOTE_AT_MOST).collect();
        match offered.is_empty() {
            true => format!("the server chose subprotocol {name:?}, but none was offered"),
            false => format!(
                "the server chose subprotocol {name:?}, which was not offered ({})",
                offered.join(", ")
            ),
        }
    };
    Err(OpError::new(
        ErrorClass::Protocol,
        format!("websocket handshake: {why}"),
    ))
}

/// Reads the response head, up to its blank line; returns what was read (the head and any bytes
/// behind it) and where the head ends.
async fn read_head(stream: &mut Stream) -> Result<(Vec<u8>, usize), OpError> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::with_capacity(512);
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok((buf, i + 4));
        }
        if buf.len() >= MAX_HANDSHAKE {
            return Err(refused(format!(
                "response head larger than {MAX_HANDSHAKE} bytes"
            )));
        }
        let n = stream.read_buf(&mut buf).await.map_err(|e| {
            // The server's rejection of the TLS handshake arrives with the first read.
            crate::clients::tls::rejection(&e)
                .unwrap_or_else(|| refused(format!("reading the response: {e}")))
        })?;
        if n == 0 {
            return Err(refused("the server closed the connection"));
        }
    }
}
