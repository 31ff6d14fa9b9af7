//! WebSocket connections of simulated users: small buffers, because a surge holds many sockets
//! open and idle (tungstenite's default read buffer alone is 128 KiB per socket).

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

use super::{Endpoint, OpError};
use crate::metrics::ErrorClass;

pub type Socket = WebSocketStream<TcpStream>;

pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(512)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// Opens a WebSocket with extra headers and offered subprotocols.
pub async fn connect_with(
    endpoint: &Endpoint,
    path_and_query: &str,
    headers: &[(String, String)],
    subprotocols: &[String],
) -> Result<Socket, OpError> {
    let url = format!(
        "ws://{}{}{}",
        endpoint.authority, endpoint.prefix, path_and_query
    );
    // The URL may carry a token: errors say what is wrong, never the URL itself.
    let mut request = url
        .into_client_request()
        .map_err(|_| OpError::new(ErrorClass::Protocol, "bad websocket url"))?;
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
    let stream = TcpStream::connect(endpoint.addr)
        .await
        .map_err(|e| OpError::new(ErrorClass::Connect, format!("connect: {e}")))?;
    let _ = stream.set_nodelay(true);
    let (socket, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(client_config()))
            .await
            .map_err(|e| {
                // A refusal with a status (429, 503 + Retry-After) says so, for retry policies.
                let refused = match &e {
                    tokio_tungstenite::tungstenite::Error::Http(resp) => {
                        let retry_after = resp
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| {
                                super::retry::parse_retry_after(v, std::time::SystemTime::now())
                            });
                        Some((resp.status().as_u16(), retry_after))
                    }
                    _ => None,
                };
                let err = OpError::new(ErrorClass::Connect, format!("websocket handshake: {e}"));
                match refused {
                    Some((status, retry_after)) => err.with_status(status, retry_after),
                    None => err,
                }
            })?;
    Ok(socket)
}
