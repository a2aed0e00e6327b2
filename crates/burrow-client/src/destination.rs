//! The destination peer: accepts the streams and connections the source opens and dials the
//! matching local target for each (what `localproxy -d` does).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use burrow_proto::{Message, MessageType, Role, Subprotocol};
use tokio::net::TcpStream;

use crate::config::ClientConfig;
use crate::conn::{new_conn, pipe, ConnKey, Pending, Wire};
use crate::error::{ClientError, CloseReason};
use crate::session::{lock, start, Shared};

/// The addresses one service's connections go to, tried in order (`localhost` is
/// `127.0.0.1` then `::1`, as a resolver would answer).
type Target = Arc<[SocketAddr]>;

/// Where each service's connections go.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    services: HashMap<String, Target>,
    default: Option<Target>,
}

impl Targets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Connections for `service_id` go to `addr`.
    pub fn service(self, service_id: impl Into<String>, addr: SocketAddr) -> Self {
        self.service_addrs(service_id, &[addr])
    }

    /// Connections for `service_id` go to the first of `addrs` that accepts.
    pub fn service_addrs(mut self, service_id: impl Into<String>, addrs: &[SocketAddr]) -> Self {
        self.services.insert(service_id.into(), addrs.into());
        self
    }

    /// Connections without a serviceId (V1, or a tunnel without services) go to `addr`.
    pub fn default_target(self, addr: SocketAddr) -> Self {
        self.default_addrs(&[addr])
    }

    /// Like [`Targets::default_target`], trying `addrs` in order.
    pub fn default_addrs(mut self, addrs: &[SocketAddr]) -> Self {
        self.default = Some(addrs.into());
        self
    }

    fn resolve(&self, service_id: &str) -> Option<Target> {
        match service_id {
            "" => self.default.clone().or_else(|| {
                // One service and a peer that does not name it: there is only one choice.
                let mut only = self.services.values();
                match (only.next(), only.next()) {
                    (Some(addrs), None) => Some(addrs.clone()),
                    _ => None,
                }
            }),
            id => self.services.get(id).or(self.default.as_ref()).cloned(),
        }
    }
}

/// A connected destination peer.
pub struct DestinationClient {
    shared: Arc<Shared>,
}

impl DestinationClient {
    /// Connects as the destination and returns once the broker sent SERVICE_IDS.
    pub async fn connect(config: ClientConfig, targets: Targets) -> Result<Self, ClientError> {
        let shared = start(config, Role::Destination, targets).await?;
        let services = shared.services();
        if let Some(missing) = services
            .iter()
            .find(|s| shared.targets.resolve(s).is_none())
        {
            // localproxy fails here; serving the other services is more useful.
            tracing::warn!(service = %missing, "no local target for a service of the tunnel");
        }
        Ok(DestinationClient { shared })
    }

    pub fn subprotocol(&self) -> Subprotocol {
        self.shared.subprotocol
    }

    /// The tunnel's services, from SERVICE_IDS.
    pub fn services(&self) -> Vec<String> {
        self.shared.services()
    }

    /// Waits for the session to end: `Ok` with the close frame when the broker closed it
    /// (tunnel closed, expired, or this peer replaced), `Err` otherwise.
    pub async fn wait(&self) -> Result<CloseReason, ClientError> {
        self.shared.wait().await
    }

    /// Closes the session with a close frame (1000).
    pub fn close(&self) {
        self.shared.close();
    }

    /// Starts draining: each connection the source starts from now on is refused (reset),
    /// the open ones go on. For a graceful stop: [`DestinationClient::drained`], then
    /// [`DestinationClient::close`].
    pub fn drain(&self) {
        self.shared.draining.store(true, Ordering::SeqCst);
    }

    /// Connections open through the session now.
    pub fn open_connections(&self) -> usize {
        lock(&self.shared.state).conns.len()
    }

    /// Resolves once no connection is open, or the session has ended.
    pub async fn drained(&self) {
        // Connections end in several places (either side's close, a reset, a failed dial);
        // a short poll on this stop-only path beats threading a notification through each.
        const POLL: Duration = Duration::from_millis(20);
        while self.open_connections() > 0 {
            tokio::select! {
                _ = self.shared.ended.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

impl Drop for DestinationClient {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// STREAM_START / CONNECTION_START from the source: register the connection, then dial.
pub(crate) async fn on_start(shared: &Arc<Shared>, msg: &Message, kind: MessageType) {
    let service = msg.service_id.clone();
    let sid = msg.stream_id;
    // A STREAM_START without connectionId comes from a V1/V2 source: answer in its format.
    let wire = if msg.connection_id == 0 {
        Wire::Stream
    } else {
        Wire::V3
    };
    let key = (service.clone(), sid, msg.effective_connection_id());
    let refuse = match wire {
        Wire::V3 => Message::connection_reset(sid, service.clone(), msg.connection_id),
        Wire::Stream => Message::stream_reset(sid, service.clone(), 0),
    };
    if shared.draining.load(Ordering::SeqCst) {
        // Checked before `register`: a refused STREAM_START must not replace the stream
        // whose connections are finishing.
        tracing::info!(service = %service, "refusing a connection: draining");
        shared.send(&refuse).await;
        return;
    }
    let target = shared.targets.resolve(&service);
    let pending = register(shared, &key, kind, wire, target.is_some());
    let (Some(pending), Some(target)) = (pending, target) else {
        tracing::warn!(service = %service, "refusing a connection (no target, inactive stream or duplicate)");
        shared.send(&refuse).await;
        return;
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        let dialed =
            tokio::time::timeout(shared.config.dial_timeout, TcpStream::connect(&target[..])).await;
        match dialed {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                pipe(shared, key, wire, tcp, pending).await;
            }
            _ => {
                tracing::info!(target = ?target, "local target refused the connection");
                let known = {
                    let mut state = lock(&shared.state);
                    let known = state.conns.remove(&key).is_some();
                    if known && wire == Wire::Stream && state.active.get(&key.0) == Some(&sid) {
                        state.active.remove(&key.0);
                    }
                    known
                };
                if known {
                    shared.send(&refuse).await;
                }
            }
        }
    });
}

/// Records a started connection; `None` when it must be refused: CONNECTION_START on a
/// stream that is not active, a duplicate connectionId, or no local target.
fn register(
    shared: &Shared,
    key: &ConnKey,
    kind: MessageType,
    wire: Wire,
    has_target: bool,
) -> Option<Pending> {
    let (service, sid) = (&key.0, key.1);
    let mut state = lock(&shared.state);
    if kind == MessageType::StreamStart {
        // The new stream replaces the service's previous one (spec section 5).
        if let Some(old) = state.active.insert(service.clone(), sid) {
            state.close_where(|k| k.0 == *service && k.1 == old);
        }
        state.close_where(|k| k == key);
    } else if state.active.get(service) != Some(&sid) || state.conns.contains_key(key) {
        return None;
    }
    if !has_target {
        if wire == Wire::Stream {
            state.active.remove(service);
        }
        return None;
    }
    let (conn, pending) = new_conn(shared.subprotocol.has_flow_control());
    state.conns.insert(key.clone(), conn);
    Some(pending)
}
