//! burrow's tunnel peers: a source and a destination client of the tunnel WebSocket
//! protocol (`burrow_proto`), interchangeable with the AWS localproxy on either side.
//!
//! - [`DestinationClient`]: carries the connections a source opens to local targets.
//! - [`SourceClient`]: opens connections to the tunnel's services, for local TCP clients
//!   ([`SourceClient::listen`]) or in memory ([`SourceClient::open_stream`]).
//! - [`run_connect`]: `burrow connect`, a source on a local port.
//!
//! Both offer `burrow.tunnel-1.0` (AWS V3 plus per-connection flow control) first and
//! `aws.iot.securetunneling-3.0` second; [`ClientConfig::force_protocol`] makes them behave
//! like a localproxy of one version.

mod config;
mod conn;
mod connect;
mod destination;
mod error;
mod session;
mod source;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use burrow_proto::Subprotocol;
pub use config::{ClientConfig, Secret};
pub use destination::{DestinationClient, Targets};
pub use error::{ClientError, CloseReason};
pub use source::SourceClient;

/// `burrow connect`: listens on `listen` and carries each local TCP connection to `service`
/// (may be omitted for a tunnel with one service) through the tunnel, as its source. Runs
/// until the broker closes the session. `token` is the source access token; it should come
/// from a file or the environment, never from argv.
///
/// The port is bound before the token is used, so a busy port does not burn a single-use
/// token. A [`ClientError::HandshakeRejected`] means: do not retry with this token.
pub async fn run_connect(
    server_url: &str,
    token: impl Into<Secret>,
    listen: SocketAddr,
    service: Option<String>,
    ca: Option<PathBuf>,
) -> Result<CloseReason, ClientError> {
    let mut config = ClientConfig::new(server_url, token);
    if let Some(ca) = ca {
        config = config.with_ca_file(&ca)?;
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let client = SourceClient::connect(config).await?;
    tracing::info!(%listen, subprotocol = %client.subprotocol(), "tunnel source ready");
    client.listen(service.as_deref(), listener).await
}
