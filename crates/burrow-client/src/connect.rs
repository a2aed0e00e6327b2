//! The WebSocket upgrade to `/tunnel` (spec section 1).

use burrow_proto::{Role, Subprotocol, MAX_WS_FRAME};
use http::HeaderValue;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::config::ClientConfig;
use crate::error::ClientError;

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Bytes the WebSocket layer reads per call.
const WS_READ_BUFFER: usize = 16 * 1024;

fn header(value: &str) -> Result<HeaderValue, ClientError> {
    HeaderValue::from_str(value).map_err(|_| ClientError::Config("header value not allowed".into()))
}

/// Upgrades to the tunnel WebSocket; answers the socket and the subprotocol the broker chose.
pub(crate) async fn connect(
    config: &ClientConfig,
    role: Role,
) -> Result<(Ws, Subprotocol), ClientError> {
    if config.protocols.is_empty() {
        return Err(ClientError::Config("no subprotocol to offer".into()));
    }
    let (url, tls) = config.tunnel_url(role)?;
    let mut request = url
        .into_client_request()
        .map_err(|e| ClientError::Config(e.to_string()))?;
    let headers = request.headers_mut();
    headers.insert("access-token", header(config.token.expose())?);
    let offered: Vec<&str> = config.protocols.iter().map(|p| p.as_str()).collect();
    headers.insert("sec-websocket-protocol", header(&offered.join(", "))?);
    if let Some(client_token) = &config.client_token {
        headers.insert("client-token", header(client_token)?);
    }
    let connector = match config.tls_config()? {
        Some(tls_config) => Some(Connector::Rustls(tls_config)),
        None if tls => {
            // The default connector builds its rustls config from the process-wide provider.
            let _ = rustls::crypto::ring::default_provider().install_default();
            None
        }
        None => Some(Connector::Plain),
    };
    let mut ws_config = WebSocketConfig::default();
    ws_config.max_message_size = Some(MAX_WS_FRAME);
    ws_config.max_frame_size = Some(MAX_WS_FRAME);
    // The default 128 KiB read buffer is zero-filled up front: an idle tunnel would hold it
    // all. A message larger than this still gets room for all of it.
    ws_config.read_buffer_size = WS_READ_BUFFER;
    let connecting =
        tokio_tungstenite::connect_async_tls_with_config(request, Some(ws_config), true, connector);
    let (ws, response) = tokio::time::timeout(config.connect_timeout, connecting)
        .await
        .map_err(|_| ClientError::Connect("timed out".into()))?
        .map_err(handshake_error)?;
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .and_then(Subprotocol::parse)
        .filter(|p| config.protocols.contains(p))
        .ok_or_else(|| ClientError::Protocol("the broker chose no offered subprotocol".into()))?;
    Ok((ws, chosen))
}

fn handshake_error(err: WsError) -> ClientError {
    match err {
        WsError::Http(response) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            if status.is_client_error() {
                ClientError::HandshakeRejected {
                    status: status.as_u16(),
                    body,
                }
            } else {
                ClientError::Connect(format!("{status}: {body}"))
            }
        }
        other => ClientError::Connect(other.to_string()),
    }
}
