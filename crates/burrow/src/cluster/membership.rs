//! This node's entry in the `nodes` table: claimed at start, renewed every second with the
//! number of tunnels it holds, released on a graceful stop. A node silent for
//! [`NODE_LEASE_SECS`] is dead to the others; a killed node's name is free again after that.
//! On SQLite the claim is exclusive: a second server on the same database is refused.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use burrow_store::{Node, NodeClaim, Store, StoreError, NODE_LEASE_SECS};
use chrono::Utc;

use crate::config::Config;

/// How often the lease is renewed (well inside [`NODE_LEASE_SECS`]).
pub const HEARTBEAT: Duration = Duration::from_secs(1);

pub struct Membership {
    store: Arc<dyn Store>,
    claim: NodeClaim,
}

impl Membership {
    /// Claims this node's lease. A live holder in the way may be this node's own previous
    /// process, killed less than a lease ago: wait (bounded) for its lease to lapse, then
    /// refuse with a message naming it.
    /// `cluster_url` is what the other nodes dial for this node's link (the bound address);
    /// `instance_id` is new for each process (see [`Membership::new_instance_id`]).
    pub async fn join(
        store: Arc<dyn Store>,
        config: &Config,
        cluster_url: Option<String>,
        instance_id: String,
    ) -> anyhow::Result<Membership> {
        let claim = NodeClaim {
            name: config.node_name(),
            instance_id,
            region: config.node_region.clone(),
            roles: config.roles().joined(),
            cluster_url,
            exclusive: store.backend() == "sqlite",
        };
        let deadline = tokio::time::Instant::now()
            + Duration::from_secs(NODE_LEASE_SECS as u64)
            + Duration::from_millis(1500);
        let mut told = false;
        loop {
            match store.claim_node(&claim, Utc::now()).await {
                Ok(None) => break,
                Ok(Some(holder)) => {
                    if tokio::time::Instant::now() >= deadline {
                        bail!(refusal(&claim, &holder));
                    }
                    if !told {
                        tracing::warn!(node = %holder.name,
                            "a live node holds the lease in the way; waiting up to {}s for it \
                             to lapse (a previous process of this node, killed?)",
                            NODE_LEASE_SECS + 1);
                        told = true;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(StoreError::Conflict(_)) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(node = %claim.name, region = %claim.region, "joined as a node");
        Ok(Membership { store, claim })
    }

    pub fn new_instance_id() -> String {
        uuid::Uuid::new_v4().to_string()
    }

    pub fn name(&self) -> &str {
        &self.claim.name
    }

    /// Renews the lease every [`HEARTBEAT`] until `stop`, recording `tunnels_held()`; then
    /// releases it. A lease found lost (this process stalled past the lease) is claimed again.
    pub async fn run(
        self: Arc<Self>,
        tunnels_held: impl Fn() -> usize + Send,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = tick.tick() => self.renew(tunnels_held()).await,
            }
        }
        self.leave().await;
    }

    async fn renew(&self, tunnels: usize) {
        let held = i64::try_from(tunnels).unwrap_or(i64::MAX);
        let c = &self.claim;
        match self
            .store
            .renew_node(&c.name, &c.instance_id, Utc::now(), held)
            .await
        {
            Ok(true) => {}
            Ok(false) => match self.store.claim_node(c, Utc::now()).await {
                Ok(None) => tracing::warn!(node = %c.name, "node lease had lapsed; claimed again"),
                Ok(Some(holder)) => tracing::error!(node = %c.name, holder = %holder.name,
                    "node lease lost to another process; this node is no longer registered"),
                Err(e) => tracing::warn!(error = %e, "node lease: claiming again failed"),
            },
            Err(e) => tracing::warn!(error = %e, "node heartbeat failed"),
        }
    }

    /// Frees the lease at once (graceful stop).
    pub async fn leave(&self) {
        let c = &self.claim;
        if let Err(e) = self
            .store
            .release_node(&c.name, &c.instance_id, Utc::now())
            .await
        {
            tracing::warn!(error = %e, "releasing the node lease failed");
        }
    }
}

fn refusal(claim: &NodeClaim, holder: &Node) -> String {
    let ago = (Utc::now() - holder.heartbeat_at).num_milliseconds() as f64 / 1000.0;
    if claim.exclusive {
        format!(
            "refusing to start: another burrow server (node {:?}, last heartbeat {ago:.1}s ago) \
             is running on this SQLite database. SQLite is single-node: run one server per \
             database, or use PostgreSQL (database_url = postgres://..., cluster_key_file) for \
             several nodes. If that server is gone, start again in {NODE_LEASE_SECS}s",
            holder.name
        )
    } else {
        format!(
            "refusing to start: node name {:?} is in use by a live node (last heartbeat \
             {ago:.1}s ago). Give each node its own node_name (env BURROW_NODE_NAME)",
            holder.name
        )
    }
}
