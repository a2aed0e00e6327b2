//! burrow's tunnel broker: AWS IoT Secure Tunneling compatible tunnels.
//!
//! - Control operations (open, close, rotate, describe, list, ensure, expiry): [`Broker`]'s
//!   methods in `service.rs`, persisted through [`burrow_store::Store`].
//! - The data plane: `GET /tunnel` ([`Broker::router`]), a WebSocket relay between a source and
//!   a destination peer speaking the wire protocol of `burrow_proto`.
//! - The in-process source ([`Broker::connect_source`]) the edge uses to reach a device.
//!
//! `docs/broker.md` describes the token scheme, replacement, backpressure and flow control.

mod clock;
mod error;
mod forwarding;
mod handshake;
mod hub;
mod info;
mod lifecycle;
mod pipe;
mod queue;
mod relay;
mod service;
mod source;
mod token;
mod validate;
mod ws;

use std::sync::{Arc, Weak};

use burrow_store::Store;

pub use burrow_store::{BrokerTunnelFilter, Tag, TunnelStatus};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::BrokerError;
pub use forwarding::{SourceForwarder, LINK_SOURCE_PATH};
pub use info::{ConnectionState, Ensured, OpenRequest, Opened, RotateMode, Rotated, TunnelInfo};
pub use source::TunnelStream;
pub use token::{serialize_exposed, serialize_exposed_opt, AccessToken, TokenKey};

/// Default cap of bytes the broker buffers for one tunnel (both directions together).
pub const DEFAULT_PER_TUNNEL_BUFFER: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Used in tunnel ARNs only.
    pub region: String,
    /// Used in tunnel ARNs only.
    pub account_id: String,
    /// Lifetime of a tunnel opened without one (1..=720).
    pub default_lifetime_minutes: i64,
    /// Most bytes of tunnel frames the broker holds for one tunnel, split evenly between the
    /// two directions (each at least one maximal frame). See docs/broker.md.
    pub per_tunnel_buffer: usize,
    /// Whether rotating a mode's token also disconnects that mode's live peer. Default: no,
    /// rotation only invalidates new handshakes.
    pub rotation_closes_live: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            default_lifetime_minutes: 720,
            per_tunnel_buffer: DEFAULT_PER_TUNNEL_BUFFER,
            rotation_closes_live: false,
        }
    }
}

impl BrokerConfig {
    /// Cap of one peer's outbound queue: half the tunnel budget, but at least one maximal
    /// tunnel frame, or a large frame could never be queued.
    pub fn queue_cap(&self) -> usize {
        (self.per_tunnel_buffer / 2).max(burrow_proto::MAX_MESSAGE + 2)
    }
}

/// Live statistics of one tunnel on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelStats {
    pub source_connected: bool,
    pub destination_connected: bool,
    /// Bytes of frames queued for the tunnel's peers right now.
    pub buffered_bytes: usize,
    /// Connections open through the tunnel now (what a rotation's drain waits for).
    pub open_connections: usize,
}

pub struct Broker {
    store: Arc<dyn Store>,
    key: TokenKey,
    config: BrokerConfig,
    clock: Arc<dyn Clock>,
    registry: hub::Registry,
    /// Serialises read-modify-write of one tunnel's row (rotate, close, spend, states): the
    /// store overwrites whole rows, so two unserialised updates could undo each other.
    locks: Vec<tokio::sync::Mutex<()>>,
    /// Told of every tunnel this node closes (a cluster tells the other nodes).
    on_closed: std::sync::OnceLock<ClosedHook>,
    /// Carries sources of tunnels held by other nodes there (a cluster).
    forwarder: std::sync::OnceLock<Arc<dyn SourceForwarder>>,
    me: Weak<Broker>,
}

/// See [`Broker::on_closed`].
pub type ClosedHook = Arc<dyn Fn(&str) + Send + Sync>;

const LOCK_STRIPES: usize = 64;

impl Broker {
    pub fn new(
        store: Arc<dyn Store>,
        key: TokenKey,
        config: BrokerConfig,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        let registry = hub::Registry::new(config.queue_cap());
        Arc::new_cyclic(|me| Broker {
            store,
            key,
            config,
            clock,
            registry,
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            on_closed: std::sync::OnceLock::new(),
            forwarder: std::sync::OnceLock::new(),
            me: me.clone(),
        })
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// The `GET /tunnel` data plane, to be merged into the server's router.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        handshake::router(self.clone())
    }

    /// Bytes of tunnel frames this node holds in its relay queues, all tunnels together.
    pub fn buffered_bytes(&self) -> usize {
        self.registry.total_buffered()
    }

    /// Live statistics of one tunnel on this node; `None` when no peer is attached.
    pub fn tunnel_stats(&self, tunnel_id: &str) -> Option<TunnelStats> {
        let hub = self.registry.get(tunnel_id)?;
        Some(TunnelStats {
            source_connected: hub.peer(burrow_proto::Role::Source).is_some(),
            destination_connected: hub.peer(burrow_proto::Role::Destination).is_some(),
            buffered_bytes: hub.buffered_bytes(),
            open_connections: hub.open_connections(),
        })
    }

    /// The tunnels whose destination peer (the device) is connected to this node: what a
    /// cluster node advertises as held.
    pub fn destination_tunnels(&self) -> Vec<String> {
        self.registry.destination_ids()
    }

    /// Calls `hook` with the id of every tunnel this node closes, after its own peers are
    /// disconnected (set once; a cluster relays it so that every node disconnects its own).
    pub fn on_closed(&self, hook: ClosedHook) {
        let _ = self.on_closed.set(hook);
    }

    /// Disconnects the peers of `tunnel_id` on this node only (another node closed it).
    pub fn disconnect_local(&self, tunnel_id: &str) {
        self.registry
            .close(tunnel_id, hub::CLOSE_NORMAL, "tunnel closed");
    }

    pub(crate) fn closed(&self, tunnel_id: &str) {
        if let Some(hook) = self.on_closed.get() {
            hook(tunnel_id);
        }
    }

    /// Disconnects every peer on this node with a "going away" close (a draining node's
    /// last step: the tunnels stay open, their peers reconnect to another node).
    pub fn disconnect_all(&self) {
        self.registry.close_all(1001, "server node shutting down");
    }

    /// How many tunnels have their destination peer (the device) connected to this node.
    pub fn destinations_connected(&self) -> usize {
        self.registry.destinations()
    }

    /// Tunnels with a peer attached on this node, and the peers (sources and destinations).
    pub fn census(&self) -> (usize, usize) {
        self.registry.census()
    }

    /// Whether a destination peer is attached to the tunnel on this node.
    pub fn is_destination_connected(&self, tunnel_id: &str) -> bool {
        self.registry
            .get(tunnel_id)
            .is_some_and(|hub| hub.peer(burrow_proto::Role::Destination).is_some())
    }

    async fn lock_tunnel(&self, tunnel_id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        // FNV-1a: a stable, cheap spread of ids over the stripes.
        let h = tunnel_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        self.locks[(h % LOCK_STRIPES as u64) as usize].lock().await
    }
}
