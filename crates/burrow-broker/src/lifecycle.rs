//! Peers joining and leaving a tunnel's live side: replacement, stream resets, persisted
//! connection states, and the per-tunnel expiry timer.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use burrow_proto::{Role, Subprotocol};
use burrow_store::{BrokerTunnel, TokenMode, TunnelStatus};

use crate::hub::{Attached, Hub, Peer, PeerKind, CLOSE_NORMAL};
use crate::info::RotateMode;
use crate::Broker;

/// Longest a tunnel's timer sleeps before looking at the row again (the row may change, and
/// a long sleep should not outlive a tunnel that closed through another path).
const TIMER_MAX_SLEEP: StdDuration = StdDuration::from_secs(3600);

fn token_mode(role: Role) -> TokenMode {
    match role {
        Role::Source => TokenMode::Source,
        Role::Destination => TokenMode::Destination,
    }
}

impl Broker {
    /// Makes a peer current for `role` on `tunnel`: replaces (and closes) any older peer of
    /// that role, resets the other side's streams if it replaced one, persists CONNECTED
    /// (WebSocket peers only: DescribeTunnel reports WebSocket sessions).
    pub(crate) async fn attach(
        &self,
        tunnel: &BrokerTunnel,
        role: Role,
        subprotocol: Subprotocol,
        kind: PeerKind,
    ) -> Option<(Arc<Hub>, Attached)> {
        let persist = matches!(kind, PeerKind::WebSocket);
        let id = &tunnel.tunnel_id;
        let (hub, attached, created) =
            self.registry
                .attach(id, &tunnel.services, role, subprotocol, kind)?;
        if created {
            self.arm_timer(&hub);
        }
        if let Some(old) = &attached.replaced {
            old.kick(CLOSE_NORMAL, "replaced by a newer connection");
            tracing::info!(tunnel = %id, %role, "peer replaced");
            other_side_lost_its_peer(&hub, role).await;
        }
        // Re-read the row after attaching: a close that committed before we attached is seen
        // here; one that commits after will find our hub in the registry.
        let _guard = self.lock_tunnel(id).await;
        match self.store.broker_tunnel(id).await {
            Ok(Some(t)) if t.status == TunnelStatus::Open => {}
            Ok(_) => {
                drop(_guard);
                self.registry.close(id, CLOSE_NORMAL, "tunnel closed");
                return None;
            }
            // The handshake just read the row; a transient error now is no reason to drop
            // the tunnel's peers (the expiry timer and close still apply).
            Err(err) => tracing::warn!(tunnel = %id, %err, "could not re-check the tunnel"),
        }
        if persist {
            let now = self.clock.now();
            if let Err(err) = self
                .store
                .set_connection_state(id, token_mode(role), true, now)
                .await
            {
                tracing::warn!(tunnel = %id, %err, "could not record the connection state");
            }
        }
        Some((hub, attached))
    }

    /// Removes a peer that left. If it was still current (not replaced), persists
    /// DISCONNECTED and resets the other side's streams: its TCP connections cannot go
    /// anywhere any more (burrow's choice; AWS says nothing).
    pub(crate) async fn detach(&self, hub: &Arc<Hub>, peer: &Peer) {
        // Resets first, while the slot still holds the leaving peer: a successor attaching
        // later then sees the other side's streams already reset, and its own STREAM_START
        // cannot be overtaken by a reset meant for the old streams.
        if hub.is_current(peer) {
            other_side_lost_its_peer(hub, peer.role).await;
        }
        if hub.detach(peer) && matches!(peer.kind, PeerKind::WebSocket) {
            let _guard = self.lock_tunnel(&hub.id).await;
            let now = self.clock.now();
            let mode = token_mode(peer.role);
            if let Err(err) = self
                .store
                .set_connection_state(&hub.id, mode, false, now)
                .await
            {
                tracing::warn!(tunnel = %hub.id, %err, "could not record the connection state");
            }
        }
        self.registry.remove_if_idle(hub);
    }

    /// Applies a rotation to the live side: new services for peers that connect from now
    /// on, and, if configured, disconnection of the rotated modes' live peers.
    pub(crate) fn after_rotation(&self, tunnel: &BrokerTunnel, mode: RotateMode) {
        let Some(hub) = self.registry.get(&tunnel.tunnel_id) else {
            return;
        };
        hub.set_services(tunnel.services.clone());
        if self.config.rotation_closes_live {
            let roles = [
                (mode.source(), Role::Source),
                (mode.destination(), Role::Destination),
            ];
            for (rotated, role) in roles {
                if let (true, Some(peer)) = (rotated, hub.peer(role)) {
                    peer.kick(CLOSE_NORMAL, "access token rotated");
                }
            }
        }
    }

    /// Closes the tunnel when its lifetime runs out, even if no scheduler calls `expire_due`.
    fn arm_timer(&self, hub: &Arc<Hub>) {
        let me = self.me.clone();
        let id = hub.id.clone();
        // Boxed where it runs once: this task lives as long as the tunnel, at the size of its
        // largest step.
        let task = tokio::spawn(async move {
            loop {
                let Some(broker) = me.upgrade() else { return };
                // Only the expiry is kept: the row (strings, services, tags) is not held
                // through a sleep of up to an hour, once per open tunnel.
                let expires_at = match broker.store.broker_tunnel(&id).await {
                    Ok(Some(t)) if t.status == TunnelStatus::Open => t.expires_at,
                    Ok(_) => return,
                    Err(_) => {
                        drop(broker);
                        tokio::time::sleep(StdDuration::from_secs(5)).await;
                        continue;
                    }
                };
                let left = expires_at - broker.clock.now();
                let Ok(left) = left.to_std() else {
                    // Already due (to_std fails on negative durations).
                    let _ = Box::pin(broker.expire_one(&id)).await;
                    return;
                };
                if left.is_zero() {
                    let _ = Box::pin(broker.expire_one(&id)).await;
                    return;
                }
                drop(broker);
                tokio::time::sleep(left.min(TIMER_MAX_SLEEP)).await;
            }
        });
        self.registry.set_timer(hub, task.abort_handle());
    }
}

/// The peer of `role` went away or was replaced: the other side's streams are dead. An
/// in-process source is bound to the destination it was made for, so it goes as a whole;
/// any other peer gets STREAM_RESET for its active streams.
///
/// Awaited by the caller, before a successor's frames can flow, so that a reset for an old
/// stream never arrives after a new stream that reuses its id. Bounded: a peer that does not
/// read for RESET_GRACE gets the rest in the background.
pub(crate) async fn other_side_lost_its_peer(hub: &Hub, role: Role) {
    let Some(other) = hub.peer(role.peer()) else {
        return;
    };
    if matches!(other.kind, PeerKind::InProcess(_)) {
        hub.detach(&other);
        other.kick(CLOSE_NORMAL, "destination left");
        return;
    }
    let resets = other.active_streams();
    if resets.is_empty() {
        return;
    }
    let send_all = {
        let other = other.clone();
        async move {
            for msg in resets {
                if !other.send(&msg).await {
                    break;
                }
            }
        }
    };
    let mut task = tokio::spawn(send_all);
    if tokio::time::timeout(RESET_GRACE, &mut task).await.is_err() {
        tracing::warn!(tunnel = %hub.id, "peer slow to take its stream resets");
    }
}

/// How long a peer change waits for the other side to take its STREAM_RESETs.
const RESET_GRACE: StdDuration = StdDuration::from_secs(5);
