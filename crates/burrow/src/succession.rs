//! Make-before-break rotation at the edge. While a rotated tunnel's device moves over,
//! requests for the new tunnel go to the old one; once the device's agent is connected to the
//! new tunnel, new requests go there, and the old tunnel stays open until the connections it
//! carries (a long download, a WebSocket) have ended — bounded — and is closed then.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use burrow_broker::Broker;
use burrow_edge::Edge;

use crate::dialer::Remote;

/// How long the new tunnel's destination may take to connect; a device offline at rotation
/// gets the new tunnel when it comes back, and the old one closes after this.
pub const CONNECT_WAIT: Duration = Duration::from_secs(30);
/// Requests that picked the old tunnel just before the switch are still opening their
/// connection on it: they get this long before the drain starts counting.
pub const GRACE: Duration = Duration::from_secs(2);
/// The longest a rotated-out tunnel drains; connections still open then are cut.
pub const DRAIN_MAX: Duration = Duration::from_secs(3600);
const POLL: Duration = Duration::from_millis(100);

/// A hand-over step, told to every node of a cluster (see `cluster::tunnel_events`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `new` replaces `old`: route requests for `new` to `old` until `new` is held.
    Begin { new: String, old: String },
    /// The switch is made: forget the pair, close idle connections to `old`.
    End { new: String, old: String },
}

pub type StepHook = Arc<dyn Fn(&Step) + Send + Sync>;

/// How long every node keeps closing parked connections to a rotated-out tunnel.
const SWEEP: Duration = Duration::from_secs(30);

#[derive(Clone, Default)]
pub struct Succession {
    predecessors: Arc<Mutex<HashMap<String, String>>>,
    /// The edge whose idle keep-alive connections to a rotated-out tunnel are closed (set
    /// once the edge exists; the lifecycle is built before it).
    edge: Arc<OnceLock<Weak<Edge>>>,
    /// In a cluster: where devices held by other nodes are, and how to ask those nodes.
    remote: Arc<OnceLock<Remote>>,
    /// In a cluster: tells the other nodes each step.
    publish: Arc<OnceLock<StepHook>>,
}

impl Succession {
    pub fn set_edge(&self, edge: &Arc<Edge>) {
        let _ = self.edge.set(Arc::downgrade(edge));
    }

    pub fn set_remote(&self, remote: Remote) {
        let _ = self.remote.set(remote);
    }

    pub fn publish_to(&self, hook: StepHook) {
        let _ = self.publish.set(hook);
    }

    /// `new` replaces `old`; `old` stays usable until [`Succession::end`].
    pub fn begin(&self, new: &str, old: &str) {
        let step = Step::Begin {
            new: new.to_string(),
            old: old.to_string(),
        };
        self.apply(&step);
        self.tell(&step);
    }

    pub fn end(&self, new: &str, old: &str) {
        let step = Step::End {
            new: new.to_string(),
            old: old.to_string(),
        };
        self.apply(&step);
        self.tell(&step);
    }

    fn tell(&self, step: &Step) {
        if let Some(publish) = self.publish.get() {
            publish(step);
        }
    }

    /// A step of this node's, or one another node told.
    pub fn apply(&self, step: &Step) {
        match step {
            Step::Begin { new, old } => {
                self.map().insert(new.clone(), old.clone());
            }
            Step::End { new, old } => {
                let known = self.map().remove(new).is_some();
                // Requests that picked `old` just before the switch park their connections
                // when done; close them as they come, on every node, for a while.
                if known || self.remote.get().is_some() {
                    let this = self.clone();
                    let old = old.clone();
                    tokio::spawn(async move {
                        let until = tokio::time::Instant::now() + SWEEP;
                        while tokio::time::Instant::now() < until {
                            this.evict_idle(&old);
                            tokio::time::sleep(POLL).await;
                        }
                    });
                }
            }
        }
    }

    /// Whether `tunnel_id`'s device is connected here or, in a cluster, to another node.
    async fn held(&self, broker: &Broker, tunnel_id: &str) -> bool {
        if broker.is_destination_connected(tunnel_id) {
            return true;
        }
        match self.remote.get() {
            Some(r) => r.presence.locate(tunnel_id).await.is_some(),
            None => false,
        }
    }

    /// Connections open through `tunnel_id` where its device is held (here, or asked of
    /// the holding node over the link); `None` when it is held nowhere.
    async fn open_connections(&self, broker: &Broker, tunnel_id: &str) -> Option<usize> {
        if let Some(s) = broker
            .tunnel_stats(tunnel_id)
            .filter(|s| s.destination_connected)
        {
            return Some(s.open_connections);
        }
        let remote = self.remote.get()?;
        let holder = remote.presence.locate(tunnel_id).await?;
        match crate::cluster::link::open_connections(&remote.connector, &holder.addr, tunnel_id)
            .await
        {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::debug!(tunnel = tunnel_id, error = %e, "rotation: asking the holder failed");
                remote.presence.forget(tunnel_id);
                Some(1)
            }
        }
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
        let mut held = self.held(&broker, &new).await;
        while tokio::time::Instant::now() < deadline && !held {
            tokio::time::sleep(POLL).await;
            held = self.held(&broker, &new).await;
        }
        if held {
            // The edge routes new requests to `new` from now on (see `BrokerDialer::route`);
            // other nodes' cached routes to `old` expire within the grace.
            tokio::time::sleep(GRACE).await;
            self.end(&new, &old);
            let drained = self.drain(&broker, &old).await;
            if !drained {
                tracing::warn!(tunnel = %old, "rotation: connections still open after the drain limit are cut");
            }
        } else {
            self.end(&new, &old);
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
            let open = self.open_connections(broker, old).await.unwrap_or(0);
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
