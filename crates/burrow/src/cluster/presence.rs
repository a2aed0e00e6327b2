//! Which node holds each tunnel's device. Every node records the tunnels whose destination
//! peer is connected to its broker in `tunnel_presence` (a diff every [`PUBLISH_EVERY`]),
//! under its lease: a row counts only while the node's `nodes` entry of the same instance is
//! live, so a killed node's rows stop counting when its lease lapses, and an agent that
//! reconnects elsewhere takes its rows over at once (newest wins).
//!
//! Lookups are cached briefly: a public request does not cost a database round trip per
//! connection, and a failed dial drops the entry so the next request looks again.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use burrow_broker::Broker;
use burrow_store::NODE_LEASE_SECS;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::link::NodeAddr;

/// How often this node's held tunnels are compared with what it last recorded.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// How long a found holder is trusted without asking again.
pub const FOUND_TTL: Duration = Duration::from_secs(2);
/// How long "held by no live node" is trusted (short: an agent may be connecting now).
const ABSENT_TTL: Duration = Duration::from_millis(250);
/// Cached lookups kept at most (a cache, not a copy of the table).
const CACHE_MAX: usize = 65_536;

/// A live node holding a tunnel's device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub node: String,
    pub region: String,
    pub addr: NodeAddr,
}

pub struct Presence {
    pool: PgPool,
    node: String,
    instance_id: String,
    cache: Mutex<HashMap<String, (Instant, Option<Holder>)>>,
}

impl Presence {
    /// Connects, and drops what an earlier process of this node left behind.
    pub async fn connect(
        database_url: &str,
        node: &str,
        instance_id: &str,
    ) -> anyhow::Result<Arc<Presence>> {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect(database_url)
            .await
            .context("connecting the presence registry")?;
        sqlx::query("DELETE FROM tunnel_presence WHERE node_name = $1 AND instance_id <> $2")
            .bind(node)
            .bind(instance_id)
            .execute(&pool)
            .await
            .context("clearing this node's old presence")?;
        Ok(Arc::new(Presence {
            pool,
            node: node.to_string(),
            instance_id: instance_id.to_string(),
            cache: Mutex::new(HashMap::new()),
        }))
    }

    /// Records the tunnels held by `broker` until `stop`, then withdraws them all.
    pub async fn publish(self: Arc<Self>, broker: Arc<Broker>, stop: impl Future<Output = ()>) {
        let mut recorded: HashSet<String> = HashSet::new();
        let mut tick = tokio::time::interval(PUBLISH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = tick.tick() => {}
            }
            let held: HashSet<String> = broker.destination_tunnels().into_iter().collect();
            let gained: Vec<String> = held.difference(&recorded).cloned().collect();
            let lost: Vec<String> = recorded.difference(&held).cloned().collect();
            if gained.is_empty() && lost.is_empty() {
                continue;
            }
            match self.record(&gained, &lost).await {
                Ok(()) => recorded = held,
                // Tried again at the next tick: `recorded` still says what the table has.
                Err(e) => tracing::warn!(error = %e, "presence: recording held tunnels failed"),
            }
        }
        if let Err(e) = self
            .record(&[], &recorded.into_iter().collect::<Vec<_>>())
            .await
        {
            tracing::warn!(error = %e, "presence: withdrawing held tunnels failed");
        }
    }

    async fn record(&self, gained: &[String], lost: &[String]) -> sqlx::Result<()> {
        if !gained.is_empty() {
            sqlx::query(
                "INSERT INTO tunnel_presence (tunnel_id, node_name, instance_id, since) \
                 SELECT t, $2, $3, now() FROM UNNEST($1::text[]) AS t \
                 ON CONFLICT (tunnel_id) DO UPDATE SET node_name = EXCLUDED.node_name, \
                 instance_id = EXCLUDED.instance_id, since = EXCLUDED.since",
            )
            .bind(gained)
            .bind(&self.node)
            .bind(&self.instance_id)
            .execute(&self.pool)
            .await?;
        }
        if !lost.is_empty() {
            // Only our own rows: an agent that moved to another node is that node's now.
            sqlx::query(
                "DELETE FROM tunnel_presence WHERE tunnel_id = ANY($1) \
                 AND node_name = $2 AND instance_id = $3",
            )
            .bind(lost)
            .bind(&self.node)
            .bind(&self.instance_id)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// How many tunnels the table says this process holds (a drain waits for 0).
    pub async fn held_here(&self) -> sqlx::Result<i64> {
        sqlx::query_scalar(
            "SELECT count(*) FROM tunnel_presence WHERE node_name = $1 AND instance_id = $2",
        )
        .bind(&self.node)
        .bind(&self.instance_id)
        .fetch_one(&self.pool)
        .await
    }

    /// The live node, other than this one, holding `tunnel_id`'s device.
    pub async fn locate(&self, tunnel_id: &str) -> Option<Holder> {
        if let Some((at, found)) = self.cache().get(tunnel_id) {
            let ttl = if found.is_some() {
                FOUND_TTL
            } else {
                ABSENT_TTL
            };
            if at.elapsed() < ttl {
                return found.clone();
            }
        }
        let found = match self.query(tunnel_id).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "presence: lookup failed");
                return None;
            }
        };
        let mut cache = self.cache();
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(tunnel_id.to_string(), (Instant::now(), found.clone()));
        found
    }

    /// Drops a cached holder that failed a dial: the next lookup asks the database.
    pub fn forget(&self, tunnel_id: &str) {
        self.cache().remove(tunnel_id);
    }

    async fn query(&self, tunnel_id: &str) -> sqlx::Result<Option<Holder>> {
        let row: Option<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT n.name, n.region, n.cluster_url FROM tunnel_presence p \
             JOIN nodes n ON n.name = p.node_name AND n.instance_id = p.instance_id \
             WHERE p.tunnel_id = $1 AND n.name <> $2 AND n.left_at IS NULL \
             AND n.heartbeat_at > now() - make_interval(secs => $3)",
        )
        .bind(tunnel_id)
        .bind(&self.node)
        .bind(NODE_LEASE_SECS as f64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(node, region, url)| {
            let addr = url.as_deref().and_then(NodeAddr::parse);
            if addr.is_none() {
                tracing::warn!(node, "presence: the holding node has no usable cluster_url");
            }
            Some(Holder {
                node,
                region,
                addr: addr?,
            })
        }))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Option<Holder>)>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
