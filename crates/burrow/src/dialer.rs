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
pub struct Remote {
    pub presence: Arc<Presence>,
    pub connector: TlsConnector,
}

impl BrokerDialer {
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
    async fn dial(&self, tunnel_id: &str, service: &str) -> Result<Box<dyn TunnelIo>, DialError> {
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

    async fn is_connected(&self, tunnel_id: &str) -> bool {
        self.held_anywhere(tunnel_id).await
    }

    /// Itself once its destination is connected, else the tunnel it replaced while that one
    /// still drains (rotation without downtime).
    async fn route(&self, tunnel_id: &str) -> String {
        if !self.held_anywhere(tunnel_id).await {
            if let Some(old) = self.succession.predecessor(tunnel_id) {
                if self.held_anywhere(&old).await {
                    return old;
                }
            }
        }
        tunnel_id.to_string()
    }
}
