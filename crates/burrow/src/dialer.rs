//! The edge reaches devices through the broker, in process, as each tunnel's source peer; in
//! a cluster, a device connected to another node is reached through that node's link.

use std::sync::Arc;

use async_trait::async_trait;
use burrow_broker::{Broker, BrokerError};
use burrow_edge::{DialError, TunnelDialer, TunnelIo};
use tokio_rustls::TlsConnector;

use crate::cluster::{link, presence::Presence};
use crate::succession::Succession;

pub struct BrokerDialer {
    pub broker: Arc<Broker>,
    pub succession: Succession,
    /// Set on a cluster node with a link: where other nodes' devices are found.
    pub cluster: Option<Remote>,
}

/// The other nodes: who holds which tunnel, and the link to them.
#[derive(Clone)]
pub struct Remote {
    pub presence: Arc<Presence>,
    pub connector: TlsConnector,
}

/// A route through another node is `<tunnel_id>@<node>`: the edge pools keep-alive
/// connections per route, so when the device moves to another node, new requests stop
/// reusing connections through the old one (which then closes them as idle).
fn split_route(route: &str) -> &str {
    route.split_once('@').map_or(route, |(id, _)| id)
}

impl BrokerDialer {
    /// The route for `tunnel_id` when held somewhere: itself here, `id@node` elsewhere.
    async fn held_route(&self, tunnel_id: &str) -> Option<String> {
        if self.broker.is_destination_connected(tunnel_id) {
            return Some(tunnel_id.to_string());
        }
        let holder = self.cluster.as_ref()?.presence.locate(tunnel_id).await?;
        Some(format!("{tunnel_id}@{}", holder.node))
    }

    async fn held_anywhere(&self, tunnel_id: &str) -> bool {
        if self.broker.is_destination_connected(tunnel_id) {
            return true;
        }
        match &self.cluster {
            Some(remote) => remote.presence.locate(tunnel_id).await.is_some(),
            None => false,
        }
    }
}

#[async_trait]
impl TunnelDialer for BrokerDialer {
    async fn dial(&self, route: &str, service: &str) -> Result<Box<dyn TunnelIo>, DialError> {
        let tunnel_id = split_route(route);
        match self.broker.connect_source(tunnel_id, service).await {
            Ok(stream) => return Ok(Box::new(stream)),
            Err(BrokerError::NotConnected) => {}
            Err(e) => return Err(DialError::Other(e.to_string())),
        }
        let Some(remote) = &self.cluster else {
            return Err(DialError::DeviceOffline);
        };
        let Some(holder) = remote.presence.locate(tunnel_id).await else {
            return Err(DialError::DeviceOffline);
        };
        let dialed = link::dial(&remote.connector, &holder.addr, tunnel_id, service).await;
        if let Err(e) = &dialed {
            // A node that died or lost the device: look again next time.
            remote.presence.forget(tunnel_id);
            tracing::debug!(node = %holder.node, tunnel = tunnel_id, error = %e,
                "cluster: dial through the holding node failed");
        }
        dialed
    }

    async fn is_connected(&self, route: &str) -> bool {
        self.held_anywhere(split_route(route)).await
    }

    /// Itself once its destination is connected, else the tunnel it replaced while that one
    /// still drains (rotation without downtime); `@node` when held by another node.
    async fn route(&self, tunnel_id: &str) -> String {
        if let Some(route) = self.held_route(tunnel_id).await {
            return route;
        }
        if let Some(old) = self.succession.predecessor(tunnel_id) {
            if let Some(route) = self.held_route(&old).await {
                return route;
            }
        }
        tunnel_id.to_string()
    }
}
