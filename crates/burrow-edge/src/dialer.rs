//! How the edge reaches a device: one byte stream per connection, opened through the broker
//! tunnel as its *source* peer. The edge does not know the broker; the binary plugs a
//! [`TunnelDialer`] in (backed by `Broker::connect_source`).

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

/// A byte stream to one service of a device, through its tunnel.
pub trait TunnelIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> TunnelIo for T {}

/// Why a tunnel connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The device's agent (destination peer) is not connected to the tunnel.
    #[error("device offline")]
    DeviceOffline,
    /// The device's agent refused the connection (its local service is not listening).
    #[error("connection refused by the device")]
    Refused,
    #[error("{0}")]
    Other(String),
}

#[async_trait]
pub trait TunnelDialer: Send + Sync + 'static {
    /// Opens one byte-stream connection to `service` of broker tunnel `tunnel_id` (the edge is
    /// the tunnel's SOURCE peer, in process).
    async fn dial(&self, tunnel_id: &str, service: &str) -> Result<Box<dyn TunnelIo>, DialError>;

    /// Whether the device end of `tunnel_id` is connected right now (to this node or, in a
    /// cluster, to another one).
    async fn is_connected(&self, tunnel_id: &str) -> bool;

    /// The route that carries traffic for `tunnel_id` right now: an opaque key that
    /// [`TunnelDialer::dial`] and [`TunnelDialer::is_connected`] take. During a
    /// make-before-break rotation it names the predecessor until the device has connected
    /// to the new tunnel; in a cluster it also names the node holding the device.
    /// Keep-alive connections are pooled under it, never across routes.
    async fn route(&self, tunnel_id: &str) -> String {
        tunnel_id.to_string()
    }
}

/// The tunnel service name of a reverse tunnel: `<PROTOCOL upper>-<local_port>`, e.g.
/// `HTTP-8080` (the seed's form).
pub fn service_name(protocol: &str, port: i64) -> String {
    format!("{}-{port}", protocol.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names() {
        assert_eq!(service_name("http", 8080), "HTTP-8080");
        assert_eq!(service_name("wss", 443), "WSS-443");
    }
}
