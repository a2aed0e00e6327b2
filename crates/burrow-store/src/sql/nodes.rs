//! Cluster nodes and their heartbeat leases.

/// `Store` methods: `claim_node`, `renew_node`, `release_node`, `list_nodes`. See
/// [`impl_store!`](super).
macro_rules! nodes_methods {
    ($ty:ty; [$($rest:ident),*]; $($acc:tt)*) => { store_chain! { $ty; [$($rest),*]; $($acc)*

    /// One conditional upsert, atomic on the row of `claim.name` (and, with `exclusive`, on
    /// SQLite's single writer): it writes only when the name is free, held by this very
    /// instance, left, or lapsed — and, when exclusive, no other node is alive. Otherwise it
    /// answers the live node in the way.
    async fn claim_node(&self, claim: &NodeClaim, now: Timestamp) -> Result<Option<Node>> {
        let now = micros(now);
        let stale = micros(now - chrono::Duration::seconds(NODE_LEASE_SECS));
        let done = sqlx::query(
            "INSERT INTO nodes (name, instance_id, region, roles, cluster_url, started_at, \
             heartbeat_at, left_at, tunnels_held) \
             SELECT $1, $2, $3, $4, $5, $6, $6, NULL, 0 \
             WHERE $7 = FALSE OR NOT EXISTS (SELECT 1 FROM nodes WHERE name <> $1 \
               AND left_at IS NULL AND heartbeat_at > $8) \
             ON CONFLICT (name) DO UPDATE SET instance_id = excluded.instance_id, \
             region = excluded.region, roles = excluded.roles, \
             cluster_url = excluded.cluster_url, started_at = excluded.started_at, \
             heartbeat_at = excluded.heartbeat_at, left_at = NULL, tunnels_held = 0 \
             WHERE nodes.instance_id = excluded.instance_id OR nodes.left_at IS NOT NULL \
             OR nodes.heartbeat_at <= $8",
        )
        .bind(&claim.name)
        .bind(&claim.instance_id)
        .bind(&claim.region)
        .bind(&claim.roles)
        .bind(&claim.cluster_url)
        .bind(now)
        .bind(claim.exclusive)
        .bind(stale)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(None);
        }
        let nodes: Vec<Node> = sqlx::query_as("SELECT * FROM nodes ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let live = |n: &&Node| n.left_at.is_none() && n.heartbeat_at > stale;
        let same_name = nodes.iter().filter(live).find(|n| n.name == claim.name);
        let other = nodes.iter().filter(live).find(|n| n.name != claim.name);
        match same_name.or(other) {
            Some(holder) => Ok(Some(holder.clone())),
            // The holder lapsed between the two statements: the caller claims again.
            None => Err(StoreError::Conflict("node lease changed hands; retry".into())),
        }
    }

    /// Renews the lease of `name` held by `instance_id`: false when it is no longer ours
    /// (it lapsed and another instance took it, or it was released).
    async fn renew_node(
        &self,
        name: &str,
        instance_id: &str,
        now: Timestamp,
        tunnels_held: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE nodes SET heartbeat_at = $3, tunnels_held = $4 \
             WHERE name = $1 AND instance_id = $2 AND left_at IS NULL",
        )
        .bind(name)
        .bind(instance_id)
        .bind(micros(now))
        .bind(tunnels_held)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks the lease of `name` left (graceful stop), if `instance_id` still holds it.
    async fn release_node(&self, name: &str, instance_id: &str, now: Timestamp) -> Result<()> {
        sqlx::query("UPDATE nodes SET left_at = $3 WHERE name = $1 AND instance_id = $2")
            .bind(name)
            .bind(instance_id)
            .bind(micros(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every node ever registered (alive or not), by name.
    async fn list_nodes(&self) -> Result<Vec<Node>> {
        Ok(sqlx::query_as("SELECT * FROM nodes ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    } };
}
