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
    source: Option<std::net::IpAddr>,
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
    let stream = super::connect::tcp(endpoint, source).await?;
    let (socket, _response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(client_config()))
            .await
            .map_err(|e| OpError::new(ErrorClass::Connect, format!("websocket handshake: {e}")))?;
    Ok(socket)
}
