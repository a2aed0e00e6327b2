//! Source peers that reach a node other than the one holding their tunnel's device: the
//! broker hands over the authorized WebSocket, and this carries it, message by message, to
//! the holding node's link route (`/link/source`), where it is attached as the tunnel's
//! source. Each direction awaits the other side's send, so the relay holds at most one
//! message per direction.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::ws::{CloseFrame as AxumClose, Message as AxumMessage, WebSocket};
use burrow_broker::{SourceForwarder, LINK_SOURCE_PATH};
use burrow_proto::{Subprotocol, MAX_WS_FRAME};
use futures_util::{SinkExt, StreamExt};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;

use super::link;
use super::presence::Presence;

pub struct LinkSources {
    pub presence: Arc<Presence>,
    pub connector: TlsConnector,
}

#[async_trait]
impl SourceForwarder for LinkSources {
    async fn held_elsewhere(&self, tunnel_id: &str) -> bool {
        self.presence.locate(tunnel_id).await.is_some()
    }

    async fn forward(&self, tunnel_id: String, subprotocol: Subprotocol, mut socket: WebSocket) {
        if let Err(e) = self.relay(&tunnel_id, subprotocol, &mut socket).await {
            tracing::info!(tunnel = %tunnel_id, error = %format!("{e:#}"), "forwarded source ended");
            self.presence.forget(&tunnel_id);
            let _ = socket
                .send(AxumMessage::Close(Some(AxumClose {
                    code: 1011,
                    reason: "the node holding the tunnel is unreachable".into(),
                })))
                .await;
        }
    }
}

impl LinkSources {
    async fn relay(
        &self,
        tunnel_id: &str,
        subprotocol: Subprotocol,
        socket: &mut WebSocket,
    ) -> anyhow::Result<()> {
        let holder = self
            .presence
            .locate(tunnel_id)
            .await
            .ok_or_else(|| anyhow::anyhow!("no node holds the tunnel now"))?;
        let conn = link::http(&self.connector, &holder.addr).await?;
        let mut req = format!("ws://{}{LINK_SOURCE_PATH}?tunnel={tunnel_id}", holder.node)
            .into_client_request()?;
        req.headers_mut().insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static(subprotocol.as_str()),
        );
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_WS_FRAME))
            .max_frame_size(Some(MAX_WS_FRAME));
        let (remote, _) =
            tokio_tungstenite::client_async_with_config(req, conn, Some(config)).await?;
        let (mut remote_tx, mut remote_rx) = remote.split();
        let (mut local_tx, mut local_rx) = socket.split();
        let up = async {
            while let Some(Ok(m)) = local_rx.next().await {
                let close = matches!(m, AxumMessage::Close(_));
                if remote_tx.send(to_remote(m)).await.is_err() || close {
                    break;
                }
            }
            let _ = remote_tx.close().await;
        };
        let down = async {
            while let Some(Ok(m)) = remote_rx.next().await {
                let Some(m) = to_local(m) else { continue };
                let close = matches!(m, AxumMessage::Close(_));
                if local_tx.send(m).await.is_err() || close {
                    break;
                }
            }
            let _ = local_tx.close().await;
        };
        // Either side ending ends the relay.
        tokio::select! {
            () = up => {}
            () = down => {}
        }
        Ok(())
    }
}

fn to_remote(m: AxumMessage) -> Message {
    match m {
        AxumMessage::Text(t) => Message::text(t.as_str()),
        AxumMessage::Binary(b) => Message::Binary(b),
        AxumMessage::Ping(b) => Message::Ping(b),
        AxumMessage::Pong(b) => Message::Pong(b),
        AxumMessage::Close(c) => Message::Close(c.map(|c| CloseFrame {
            code: c.code.into(),
            reason: c.reason.as_str().into(),
        })),
    }
}

fn to_local(m: Message) -> Option<AxumMessage> {
    Some(match m {
        Message::Text(t) => AxumMessage::Text(t.as_str().into()),
        Message::Binary(b) => AxumMessage::Binary(b),
        Message::Ping(b) => AxumMessage::Ping(b),
        Message::Pong(b) => AxumMessage::Pong(b),
        Message::Close(c) => AxumMessage::Close(c.map(|c| AxumClose {
            code: c.code.into(),
            reason: c.reason.as_str().into(),
        })),
        Message::Frame(_) => return None,
    })
}
