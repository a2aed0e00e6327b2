//! A node's graceful stop (SIGTERM): before the listeners close, the devices connected here
//! move to another node while their tunnels keep working through this one, and the
//! connections this node carries end by themselves. Bounded at every step: a device that
//! cannot move (one device URL, an old agent) is cut when the wait runs out.

use std::sync::Arc;
use std::time::Duration;

use burrow_broker::Broker;
use burrow_device::ConfigNotifier;
use burrow_edge::Edge;
use tokio::time::Instant;

use crate::cluster::link_streams::LinkStreams;
use crate::cluster::presence::{Presence, FOUND_TTL};

/// How long the devices get to move to another node.
const MOVE_MAX: Duration = Duration::from_secs(20);
/// How long the connections still open through this node get to end.
const FINISH_MAX: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);
/// A keep-alive connection quiet this long is parked, not in the middle of a request.
const PARKED: Duration = Duration::from_secs(1);

/// What a drain acts on.
pub struct Draining<'a> {
    pub broker: &'a Arc<Broker>,
    pub edge: &'a Edge,
    pub notifier: &'a ConfigNotifier,
    pub presence: Option<&'a Presence>,
    pub link_streams: Option<&'a LinkStreams>,
}

pub async fn drain(d: Draining<'_>) {
    let Draining {
        broker,
        edge,
        notifier,
        presence,
        link_streams,
    } = d;
    // Agents' config polls here answer 503 now: each moves to its next device URL and opens
    // its tunnels there, keeping the sessions it has here until this node closes them.
    notifier.drain();
    let held = broker.destination_tunnels().len();
    if held == 0 {
        broker.disconnect_all();
        return;
    }
    tracing::info!(held, "draining: devices move to other nodes");
    if let Some(presence) = presence {
        let deadline = Instant::now() + MOVE_MAX;
        loop {
            match presence.held_here().await {
                Ok(0) => {
                    // Other nodes may still route here from their caches for a moment.
                    tokio::time::sleep(FOUND_TTL + Duration::from_millis(500)).await;
                    break;
                }
                Ok(n) if Instant::now() >= deadline => {
                    tracing::warn!(still_here = n, "draining: devices did not all move in time");
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "draining: presence unreadable; not waiting");
                    break;
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }
    let deadline = Instant::now() + FINISH_MAX;
    loop {
        // Parked keep-alive connections would hold the tunnels open forever: this node's
        // own, and those other nodes' edges keep through the link (closed when quiet; a
        // request that races the close is retried by that edge on a new connection).
        for t in broker.destination_tunnels() {
            edge.evict_idle(&t);
        }
        if let Some(streams) = link_streams {
            streams.close_idle(PARKED);
        }
        let open: usize = broker
            .destination_tunnels()
            .iter()
            .filter_map(|t| broker.tunnel_stats(t))
            .map(|s| s.open_connections)
            .sum();
        if open == 0 {
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(open, "draining: connections still open are cut");
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    // The retired sessions the agents keep here end now; the listeners can close.
    broker.disconnect_all();
    tracing::info!("drained");
}
