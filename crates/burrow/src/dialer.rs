//! The edge reaches devices through the broker, in process, as each tunnel's source peer.

use std::sync::Arc;

use async_trait::async_trait;
use burrow_broker::{Broker, BrokerError};
use burrow_edge::{DialError, TunnelDialer, TunnelIo};

use crate::succession::Succession;

pub struct BrokerDialer {
    pub broker: Arc<Broker>,
    pub succession: Succession,
}

#[async_trait]
impl TunnelDialer for BrokerDialer {
    async fn dial(&self, tunnel_id: &str, service: &str) -> Result<Box<dyn TunnelIo>, DialError> {
        match self.broker.connect_source(tunnel_id, service).await {
            Ok(stream) => Ok(Box::new(stream)),
            Err(BrokerError::NotConnected) => Err(DialError::DeviceOffline),
            Err(e) => Err(DialError::Other(e.to_string())),
        }
    }

    fn is_connected(&self, tunnel_id: &str) -> bool {
        self.broker.is_destination_connected(tunnel_id)
    }

    /// Itself once its destination is connected, else the tunnel it replaced while that one
    /// still drains (rotation without downtime).
    fn route(&self, tunnel_id: &str) -> String {
        if !self.broker.is_destination_connected(tunnel_id) {
            if let Some(old) = self.succession.predecessor(tunnel_id) {
                if self.broker.is_destination_connected(&old) {
                    return old;
                }
            }
        }
        tunnel_id.to_string()
    }
}
