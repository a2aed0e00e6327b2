//! Make-before-break rotation at the edge. While a rotated tunnel's device moves over,
//! requests for the new tunnel go to the old one; once the device's agent is connected to the
//! new tunnel, new requests go there, and the old tunnel stays open until the connections it
//! carries (a long download, a WebSocket) have ended — bounded — and is closed then.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use burrow_broker::Broker;
use burrow_edge::Edge;

/// How long the new tunnel's destination may take to connect; a device offline at rotation
/// gets the new tunnel when it comes back, and the old one closes after this.
pub const CONNECT_WAIT: Duration = Duration::from_secs(30);
/// Requests that picked the old tunnel just before the switch are still opening their
/// connection on it: they get this long before the drain starts counting.
pub const GRACE: Duration = Duration::from_secs(2);
/// The longest a rotated-out tunnel drains; connections still open then are cut.
pub const DRAIN_MAX: Duration = Duration::from_secs(3600);
const POLL: Duration = Duration::from_millis(100);

#[derive(Clone, Default)]
pub struct Succession {
    predecessors: Arc<Mutex<HashMap<String, String>>>,
    /// The edge whose idle keep-alive connections to a rotated-out tunnel are closed (set
    /// once the edge exists; the lifecycle is built before it).
    edge: Arc<OnceLock<Weak<Edge>>>,
}

impl Succession {
    pub fn set_edge(&self, edge: &Arc<Edge>) {
        let _ = self.edge.set(Arc::downgrade(edge));
    }

    /// `new` replaces `old`; `old` stays usable until [`Succession::end`].
    pub fn begin(&self, new: &str, old: &str) {
        self.map().insert(new.to_string(), old.to_string());
    }

    pub fn end(&self, new: &str) {
        self.map().remove(new);
    }

    pub fn predecessor(&self, new: &str) -> Option<String> {
        self.map().get(new).cloned()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.predecessors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the edge's idle connections to `tunnel_id`, which no request will pick again.
    fn evict_idle(&self, tunnel_id: &str) {
        if let Some(edge) = self.edge.get().and_then(Weak::upgrade) {
            edge.evict_idle(tunnel_id);
        }
    }

    /// Runs one rotation's hand-over from `old` to `new` to its end (spawn it): wait for the
    /// device on `new`, switch, drain `old`, close `old`.
    pub async fn hand_over(self, broker: Arc<Broker>, old: String, new: String) {
        self.begin(&new, &old);
        let deadline = tokio::time::Instant::now() + CONNECT_WAIT;
        while tokio::time::Instant::now() < deadline && !broker.is_destination_connected(&new) {
            tokio::time::sleep(POLL).await;
        }
        if broker.is_destination_connected(&new) {
            // The edge routes new requests to `new` from now on (see `BrokerDialer::route`).
            tokio::time::sleep(GRACE).await;
            self.end(&new);
            let drained = self.drain(&broker, &old).await;
            if !drained {
                tracing::warn!(tunnel = %old, "rotation: connections still open after the drain limit are cut");
            }
        } else {
            self.end(&new);
        }
        if let Err(e) = broker.close(&old, false).await {
            tracing::warn!(tunnel = %old, error = %e, "closing the rotated-out tunnel");
        }
    }

    /// Waits until no connection is open through `old`: idle keep-alives are closed, the
    /// others finish. `false` if [`DRAIN_MAX`] passed first.
    async fn drain(&self, broker: &Broker, old: &str) -> bool {
        let deadline = tokio::time::Instant::now() + DRAIN_MAX;
        loop {
            // Connections that finished their response since the last look went back to the
            // edge's pool; close them too.
            self.evict_idle(old);
            let open = broker
                .tunnel_stats(old)
                .filter(|s| s.destination_connected)
                .map_or(0, |s| s.open_connections);
            if open == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
