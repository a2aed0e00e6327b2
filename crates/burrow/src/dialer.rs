//! The edge reaches devices through the broker, in process, as each tunnel's source peer.

use std::sync::Arc;

use async_trait::async_trait;
use burrow_broker::{Broker, BrokerError};
use burrow_edge::{DialError, TunnelDialer, TunnelIo};

pub struct BrokerDialer(pub Arc<Broker>);

#[async_trait]
impl TunnelDialer for BrokerDialer {
    async fn dial(&self, tunnel_id: &str, service: &str) -> Result<Box<dyn TunnelIo>, DialError> {
        match self.0.connect_source(tunnel_id, service).await {
            Ok(stream) => Ok(Box::new(stream)),
            Err(BrokerError::NotConnected) => Err(DialError::DeviceOffline),
            Err(e) => Err(DialError::Other(e.to_string())),
        }
    }

    fn is_connected(&self, tunnel_id: &str) -> bool {
        self.0.is_destination_connected(tunnel_id)
    }
}
