//! The live side of tunnels: which peers are connected to which tunnel right now.
//!
//! One [`Hub`] per tunnel with at least one live peer; the [`Registry`] maps tunnel ids to
//! hubs. A hub holds at most one peer per role: a newer peer for a role replaces the older one
//! (spec section 7.6). Everything here is in memory and local to this node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use burrow_proto::{Message, PeerState, Role, Subprotocol};
use bytes::{Bytes, BytesMut};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

use crate::queue::{frame_queue, Gauge, QueueClosed, QueueRx, QueueTx};
use crate::source::InProcess;

/// Close code sent to peers when their tunnel closes, expires or they are replaced.
pub(crate) const CLOSE_NORMAL: u16 = 1000;
/// Close code for a peer that broke the protocol.
pub(crate) const CLOSE_PROTOCOL: u16 = 1002;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves consistent data behind (every
    // critical section is a few assignments), so poisoning is not worth propagating.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What kind of endpoint a peer is.
pub(crate) enum PeerKind {
    /// A client over the `/tunnel` WebSocket.
    WebSocket,
    /// The broker's own in-process source (`Broker::connect_source`).
    InProcess(Arc<InProcess>),
}

/// One connected peer of a tunnel.
pub(crate) struct Peer {
    pub role: Role,
    pub generation: u64,
    pub subprotocol: Subprotocol,
    pub kind: PeerKind,
    /// The peer's protocol state (spec section 6 checks, active streams).
    pub state: Mutex<PeerState>,
    tx: QueueTx,
    /// Cancelled when the peer must go (tunnel closed, replaced, protocol violation).
    pub kick: CancellationToken,
    close: Mutex<Option<(u16, &'static str)>>,
}

impl Peer {
    /// Whether this peer takes part in WINDOW_UPDATE flow control.
    pub fn flow_control(&self) -> bool {
        self.subprotocol.has_flow_control()
    }

    /// Asks the peer to go, with the close frame to send it (the first reason wins).
    pub fn kick(&self, code: u16, reason: &'static str) {
        lock(&self.close).get_or_insert((code, reason));
        self.kick.cancel();
    }

    pub fn close_reason(&self) -> Option<(u16, &'static str)> {
        *lock(&self.close)
    }

    /// Records `msg` in the peer's state and queues its frame, waiting for room. Answers
    /// false when the peer is gone. Messages the peer's subprotocol cannot take (WINDOW_UPDATE
    /// to an AWS peer) are filtered here and count as delivered.
    pub async fn deliver(&self, raw: Bytes, msg: &Message) -> bool {
        if lock(&self.state).on_outbound(msg) == burrow_proto::Verdict::Drop {
            return true;
        }
        match &self.kind {
            PeerKind::WebSocket => self.tx.send(raw).await.is_ok(),
            // Straight to the connection's stream, in the sender's task: no queue, no
            // demultiplexer task to wake, no second decode.
            PeerKind::InProcess(ip) => {
                if self.kick.is_cancelled() {
                    return false;
                }
                tokio::select! {
                    biased;
                    _ = self.kick.cancelled() => false,
                    _ = crate::pipe::dispatch(ip, msg) => true,
                }
            }
        }
    }

    /// Encodes and delivers a message the broker generates.
    pub async fn send(&self, msg: &Message) -> bool {
        match encode(msg) {
            Some(raw) => self.deliver(raw, msg).await,
            None => false,
        }
    }

    fn try_send(&self, msg: &Message) -> Result<(), QueueClosed> {
        let raw = encode(msg).ok_or(QueueClosed)?;
        let _ = lock(&self.state).on_outbound(msg);
        self.tx.try_send(raw)
    }

    pub fn active_streams(&self) -> Vec<Message> {
        lock(&self.state).stream_resets()
    }
}

pub(crate) fn encode(msg: &Message) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    burrow_proto::encode(msg, &mut buf).ok()?;
    Some(buf.freeze())
}

#[derive(Default)]
struct Slots {
    closed: bool,
    services: Vec<String>,
    source: Option<Arc<Peer>>,
    destination: Option<Arc<Peer>>,
    next_generation: u64,
}

impl Slots {
    fn slot(&mut self, role: Role) -> &mut Option<Arc<Peer>> {
        match role {
            Role::Source => &mut self.source,
            Role::Destination => &mut self.destination,
        }
    }
}

/// The live state of one tunnel.
pub(crate) struct Hub {
    pub id: String,
    slots: Mutex<Slots>,
    gauge: Gauge,
    /// Bytes each peer's outbound queue may hold.
    queue_cap: usize,
    timer: Mutex<Option<AbortHandle>>,
}

/// A peer just attached, with the receiving end of its queue and the peer it replaced.
pub(crate) struct Attached {
    pub peer: Arc<Peer>,
    pub rx: QueueRx,
    pub replaced: Option<Arc<Peer>>,
}

impl Hub {
    pub fn peer(&self, role: Role) -> Option<Arc<Peer>> {
        lock(&self.slots).slot(role).clone()
    }

    pub fn buffered_bytes(&self) -> usize {
        self.gauge.tunnel.load(Ordering::Relaxed)
    }

    /// Connections the source side has open through the tunnel now: the in-process source's
    /// connections, or the streams a WebSocket source has active.
    pub fn open_connections(&self) -> usize {
        let Some(source) = self.peer(Role::Source) else {
            return 0;
        };
        match &source.kind {
            PeerKind::InProcess(ip) => lock(&ip.inner).conns.len(),
            PeerKind::WebSocket => source.active_streams().len(),
        }
    }

    pub fn services(&self) -> Vec<String> {
        lock(&self.slots).services.clone()
    }

    pub fn set_services(&self, services: Vec<String>) {
        lock(&self.slots).services = services;
    }

    /// Makes a new peer the current one for `role`. SERVICE_IDS is queued first (WebSocket
    /// peers only), before the peer is visible to the other side, so that it is always the
    /// first frame the peer receives. `None` when the tunnel was closed meanwhile.
    fn attach(&self, role: Role, subprotocol: Subprotocol, kind: PeerKind) -> Option<Attached> {
        let mut slots = lock(&self.slots);
        if slots.closed {
            return None;
        }
        slots.next_generation += 1;
        let (tx, rx) = frame_queue(self.queue_cap, self.gauge.clone());
        let send_ids = matches!(kind, PeerKind::WebSocket);
        let peer = Arc::new(Peer {
            role,
            generation: slots.next_generation,
            subprotocol,
            kind,
            state: Mutex::new(PeerState::new(role, subprotocol, slots.services.clone())),
            tx,
            kick: CancellationToken::new(),
            close: Mutex::new(None),
        });
        if send_ids {
            let ids = Message::service_ids(slots.services.clone());
            // A fresh queue always has room for one frame; failing here means a broken
            // invariant, and the peer would just see its first frame missing.
            if peer.try_send(&ids).is_err() {
                tracing::warn!(tunnel = %self.id, "could not queue SERVICE_IDS");
            }
        }
        let replaced = slots.slot(role).replace(peer.clone());
        Some(Attached { peer, rx, replaced })
    }

    /// Whether `peer` is still the current one for its role.
    pub fn is_current(&self, peer: &Peer) -> bool {
        lock(&self.slots)
            .slot(peer.role)
            .as_ref()
            .is_some_and(|p| p.generation == peer.generation)
    }

    /// Removes `peer` if it is still the current one for its role (it may have been replaced).
    pub fn detach(&self, peer: &Peer) -> bool {
        let mut slots = lock(&self.slots);
        let slot = slots.slot(peer.role);
        match slot {
            Some(current) if current.generation == peer.generation => {
                *slot = None;
                true
            }
            _ => false,
        }
    }

    /// Closes the tunnel's live side: every peer gets a close frame, no peer can attach.
    pub fn close(&self, code: u16, reason: &'static str) {
        // The peers stay in their slots: their own detach records DISCONNECTED.
        let peers = {
            let mut slots = lock(&self.slots);
            slots.closed = true;
            [slots.source.clone(), slots.destination.clone()]
        };
        for peer in peers.into_iter().flatten() {
            peer.kick(code, reason);
        }
        if let Some(timer) = lock(&self.timer).take() {
            timer.abort();
        }
    }

    fn is_idle(&self) -> bool {
        let slots = lock(&self.slots);
        slots.closed || (slots.source.is_none() && slots.destination.is_none())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(timer) = lock(&self.timer).take() {
            timer.abort();
        }
    }
}

/// All live hubs of this node.
pub(crate) struct Registry {
    hubs: Mutex<HashMap<String, Arc<Hub>>>,
    total: Arc<AtomicUsize>,
    queue_cap: usize,
}

impl Registry {
    pub fn new(queue_cap: usize) -> Self {
        Registry {
            hubs: Mutex::new(HashMap::new()),
            total: Arc::new(AtomicUsize::new(0)),
            queue_cap,
        }
    }

    pub fn get(&self, tunnel_id: &str) -> Option<Arc<Hub>> {
        lock(&self.hubs).get(tunnel_id).cloned()
    }

    /// Attaches a peer to the hub of `tunnel_id`, creating the hub (with `services`) if there
    /// is none. Done under the registry lock so that a hub being dropped as idle can never
    /// take a just-attached peer with it. The bool says whether the hub was created (the
    /// caller then arms its expiry timer).
    pub fn attach(
        &self,
        tunnel_id: &str,
        services: &[String],
        role: Role,
        subprotocol: Subprotocol,
        kind: PeerKind,
    ) -> Option<(Arc<Hub>, Attached, bool)> {
        let mut hubs = lock(&self.hubs);
        let (hub, created) = match hubs.get(tunnel_id) {
            Some(hub) => (hub.clone(), false),
            None => {
                let hub = Arc::new(Hub {
                    id: tunnel_id.to_owned(),
                    slots: Mutex::new(Slots {
                        services: services.to_vec(),
                        ..Slots::default()
                    }),
                    gauge: Gauge {
                        tunnel: Arc::new(AtomicUsize::new(0)),
                        total: self.total.clone(),
                    },
                    queue_cap: self.queue_cap,
                    timer: Mutex::new(None),
                });
                hubs.insert(tunnel_id.to_owned(), hub.clone());
                (hub, true)
            }
        };
        let attached = hub.attach(role, subprotocol, kind)?;
        Some((hub, attached, created))
    }

    pub fn set_timer(&self, hub: &Hub, timer: AbortHandle) {
        if let Some(old) = lock(&hub.timer).replace(timer) {
            old.abort();
        }
    }

    /// Drops the hub from the map once nothing is attached (or it was closed), so that an
    /// idle tunnel costs no memory.
    pub fn remove_if_idle(&self, hub: &Arc<Hub>) {
        let mut hubs = lock(&self.hubs);
        if hub.is_idle() {
            if let Some(current) = hubs.get(&hub.id) {
                if Arc::ptr_eq(current, hub) {
                    hubs.remove(&hub.id);
                }
            }
        }
    }

    /// Closes the tunnel's hub, if it has one, and forgets it.
    pub fn close(&self, tunnel_id: &str, code: u16, reason: &'static str) {
        let hub = lock(&self.hubs).remove(tunnel_id);
        if let Some(hub) = hub {
            hub.close(code, reason);
        }
    }

    /// Closes every hub of this node (the node is stopping; the tunnels stay open in the
    /// store, for the peers to reconnect elsewhere).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        let hubs: Vec<Arc<Hub>> = lock(&self.hubs).drain().map(|(_, h)| h).collect();
        for hub in hubs {
            hub.close(code, reason);
        }
    }

    /// How many tunnels have their destination peer connected to this node.
    pub fn destinations(&self) -> usize {
        lock(&self.hubs)
            .values()
            .filter(|h| h.peer(Role::Destination).is_some())
            .count()
    }

    /// The tunnels whose destination peer is connected to this node.
    pub fn destination_ids(&self) -> Vec<String> {
        lock(&self.hubs)
            .values()
            .filter(|h| h.peer(Role::Destination).is_some())
            .map(|h| h.id.clone())
            .collect()
    }

    /// Live hubs (tunnels with a peer attached on this node) and the peers attached to them.
    pub fn census(&self) -> (usize, usize) {
        let hubs = lock(&self.hubs);
        let peers = hubs
            .values()
            .map(|h| {
                usize::from(h.peer(Role::Source).is_some())
                    + usize::from(h.peer(Role::Destination).is_some())
            })
            .sum();
        (hubs.len(), peers)
    }

    pub fn total_buffered(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}
