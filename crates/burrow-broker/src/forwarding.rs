//! Source peers in a cluster: a source (`burrow connect`, the AWS local proxy) may land on a
//! node that does not hold the tunnel's destination. The broker then hands its WebSocket to
//! a [`SourceForwarder`] (the binary's cluster link), which carries it to the holding node,
//! where [`Broker::link_router`] attaches it as the tunnel's source. The link route takes no
//! token: the handshake was authorized (and the token spent) on the receiving node, and only
//! a node of the cluster can reach the link.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::ws::WebSocket;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use burrow_proto::{Role, Subprotocol, MAX_WS_FRAME};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::Deserialize;

use crate::hub::PeerKind;
use crate::Broker;

/// The path of the link-only route (never merged into a public router).
pub const LINK_SOURCE_PATH: &str = "/link/source";

#[async_trait]
pub trait SourceForwarder: Send + Sync + 'static {
    /// Whether another node holds `tunnel_id`'s destination.
    async fn held_elsewhere(&self, tunnel_id: &str) -> bool;
    /// Carries the source's WebSocket to the node holding `tunnel_id` until either ends.
    async fn forward(&self, tunnel_id: String, subprotocol: Subprotocol, socket: WebSocket);
}

#[derive(Deserialize)]
struct LinkSource {
    tunnel: String,
}

impl Broker {
    /// Sources for tunnels held by other nodes go to `forwarder` (set once).
    pub fn forward_sources_with(&self, forwarder: Arc<dyn SourceForwarder>) {
        let _ = self.forwarder.set(forwarder);
    }

    pub(crate) fn forwarder(&self) -> Option<&Arc<dyn SourceForwarder>> {
        self.forwarder.get()
    }

    /// `GET /link/source?tunnel=ID`: a source another node authorized, attached here. Serve
    /// it on the cluster link only.
    pub fn link_router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(LINK_SOURCE_PATH, get(link_source))
            .with_state(self.clone())
    }
}

async fn link_source(
    State(broker): State<Arc<Broker>>,
    Query(q): Query<LinkSource>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let offered = headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let Some(subprotocol) = Subprotocol::negotiate(offered) else {
        return (StatusCode::BAD_REQUEST, "no supported subprotocol").into_response();
    };
    let tunnel = match broker.load_open(&q.tunnel).await {
        Ok(t) => t,
        Err(_) => return (StatusCode::GONE, "tunnel is closed").into_response(),
    };
    if !broker.is_destination_connected(&tunnel.tunnel_id) {
        return (StatusCode::NOT_FOUND, "destination not here").into_response();
    }
    let mut ws = ws
        .max_message_size(MAX_WS_FRAME)
        .max_frame_size(MAX_WS_FRAME);
    ws.set_selected_protocol(HeaderValue::from_static(subprotocol.as_str()));
    ws.on_upgrade(move |socket| async move {
        let Some((hub, attached)) = broker
            .attach(&tunnel, Role::Source, subprotocol, PeerKind::WebSocket)
            .await
        else {
            return;
        };
        let peer = attached.peer.clone();
        crate::ws::run(hub.clone(), peer.clone(), attached.rx, socket).await;
        broker.detach(&hub, &peer).await;
        tracing::info!(tunnel = %hub.id, "forwarded source disconnected");
    })
}
