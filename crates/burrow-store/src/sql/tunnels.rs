//! Reverse tunnels (the seed's table), their usage counters and access log.

/// `Store` methods: reverse tunnels, usage, access log. See [`impl_store!`](super).
macro_rules! tunnels_methods {
    ($ty:ty; [$($rest:ident),*]; $($acc:tt)*) => { store_chain! { $ty; [$($rest),*]; $($acc)*

    /// The public URL (host name) is stored lower case; a taken one answers `Conflict`, a
    /// missing device `NotFound`. The seed's token columns stay NULL.
    async fn create_reverse_tunnel(&self, tunnel: NewReverseTunnel) -> Result<ReverseTunnel> {
        let row: ReverseTunnelRow = sqlx::query_as(
            "INSERT INTO reverse_tunnels (device_id, name, description, public_url, is_enabled, \
             local_port, protocol, require_auth, allowed_user_ids, ip_allow, ip_deny, \
             total_requests, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12) RETURNING *",
        )
        .bind(tunnel.device_id)
        .bind(&tunnel.name)
        .bind(&tunnel.description)
        .bind(tunnel.public_url.to_lowercase())
        .bind(tunnel.is_enabled)
        .bind(tunnel.local_port)
        .bind(&tunnel.protocol)
        .bind(tunnel.require_auth)
        .bind(Json(&tunnel.allowed_user_ids))
        .bind(Json(&tunnel.ip_allow))
        .bind(Json(&tunnel.ip_deny))
        .bind(now())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    async fn reverse_tunnel_by_id(&self, id: i64) -> Result<Option<ReverseTunnel>> {
        let row: Option<ReverseTunnelRow> =
            sqlx::query_as("SELECT * FROM reverse_tunnels WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(Into::into))
    }

    async fn reverse_tunnel_by_public_url(
        &self,
        public_url: &str,
    ) -> Result<Option<ReverseTunnel>> {
        let row: Option<ReverseTunnelRow> =
            sqlx::query_as("SELECT * FROM reverse_tunnels WHERE public_url = $1")
                .bind(public_url.to_lowercase())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(Into::into))
    }

    async fn list_reverse_tunnels(&self, device_id: i64) -> Result<Vec<ReverseTunnel>> {
        let rows = sqlx::query_as("SELECT * FROM reverse_tunnels WHERE device_id = $1 ORDER BY id")
            .bind(device_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(reverse_tunnels(rows))
    }

    async fn list_all_reverse_tunnels(&self) -> Result<Vec<ReverseTunnel>> {
        let rows = sqlx::query_as("SELECT * FROM reverse_tunnels ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(reverse_tunnels(rows))
    }

    /// Tunnels without `expires_at` (no broker tunnel) are not listed.
    async fn list_reverse_tunnels_expiring_before(
        &self,
        before: Timestamp,
    ) -> Result<Vec<ReverseTunnel>> {
        let rows = sqlx::query_as(
            "SELECT * FROM reverse_tunnels \
             WHERE expires_at IS NOT NULL AND expires_at < $1 ORDER BY expires_at, id",
        )
        .bind(micros(before))
        .fetch_all(&self.pool)
        .await?;
        Ok(reverse_tunnels(rows))
    }

    /// One statement: each column is `COALESCE(new, old)`, so only the `Some` fields of the
    /// patch change (`description` has a flag: `Some(None)` clears it); `updated_at = now`.
    async fn update_reverse_tunnel(
        &self,
        id: i64,
        patch: ReverseTunnelPatch,
        now: Timestamp,
    ) -> Result<ReverseTunnel> {
        let row: Option<ReverseTunnelRow> = sqlx::query_as(
            "UPDATE reverse_tunnels SET \
             name = COALESCE($1, name), \
             description = CASE WHEN $2 THEN $3 ELSE description END, \
             is_enabled = COALESCE($4, is_enabled), \
             local_port = COALESCE($5, local_port), \
             protocol = COALESCE($6, protocol), \
             require_auth = COALESCE($7, require_auth), \
             allowed_user_ids = COALESCE($8, allowed_user_ids), \
             ip_allow = COALESCE($11, ip_allow), \
             ip_deny = COALESCE($12, ip_deny), \
             traffic_limits = COALESCE($13, traffic_limits), \
             updated_at = $9 \
             WHERE id = $10 RETURNING *",
        )
        .bind(patch.name)
        .bind(patch.description.is_some())
        .bind(patch.description.flatten())
        .bind(patch.is_enabled)
        .bind(patch.local_port)
        .bind(patch.protocol)
        .bind(patch.require_auth)
        .bind(patch.allowed_user_ids.map(Json))
        .bind(micros(now))
        .bind(id)
        .bind(patch.ip_allow.map(Json))
        .bind(patch.ip_deny.map(Json))
        .bind(patch.limits.map(Json))
        .fetch_optional(&self.pool)
        .await?;
        row.map(Into::into).ok_or(StoreError::NotFound)
    }

    /// Sets `tunnel_id`, `tunnel_arn` and `expires_at` as given (all `None` clears them).
    async fn set_reverse_tunnel_broker(
        &self,
        id: i64,
        link: BrokerLink,
        now: Timestamp,
    ) -> Result<ReverseTunnel> {
        let row: Option<ReverseTunnelRow> = sqlx::query_as(
            "UPDATE reverse_tunnels SET tunnel_id = $1, tunnel_arn = $2, expires_at = $3, \
             updated_at = $4 WHERE id = $5 RETURNING *",
        )
        .bind(link.tunnel_id)
        .bind(link.tunnel_arn)
        .bind(opt_micros(link.expires_at))
        .bind(micros(now))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Into::into).ok_or(StoreError::NotFound)
    }

    /// Cascades to the tunnel's access log. `NotFound` when there is no such tunnel.
    async fn delete_reverse_tunnel(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM reverse_tunnels WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())
    }

    /// One `UPDATE` per delta, in one transaction: `total_requests + n` and
    /// `last_accessed_at = max(last_accessed_at, delta's)` computed by the database, so
    /// concurrent flushes from several nodes add up. Deltas of deleted tunnels are dropped.
    async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for d in deltas {
            sqlx::query(
                "UPDATE reverse_tunnels SET total_requests = total_requests + $1, \
                 last_accessed_at = CASE \
                 WHEN last_accessed_at IS NULL OR last_accessed_at < $2 THEN $2 \
                 ELSE last_accessed_at END \
                 WHERE id = $3",
            )
            .bind(d.requests)
            .bind(micros(d.last_accessed_at))
            .bind(d.reverse_tunnel_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// In one transaction, up to 500 rows per statement: a flush under load carries
    /// thousands, and one round trip each kept the database's thread (and a runtime worker
    /// waiting on it) waking per request. Entries of tunnels deleted meanwhile are dropped,
    /// not an error.
    async fn insert_access_log(&self, entries: &[NewAccessLogEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        // 11 parameters a row: far below SQLite's 32,766 and PostgreSQL's 65,535.
        for chunk in entries.chunks(500) {
            let mut q = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO access_log (reverse_tunnel_id, at, user_id, method, path, status, \
                 bytes_in, bytes_out, duration_ms, client_ip, user_agent) \
                 SELECT column1, column2, column3, column4, column5, column6, column7, \
                 column8, column9, column10, column11 FROM (",
            );
            q.push_values(chunk.iter().zip(0i64..), |mut row, (e, ordinal)| {
                row.push_bind(e.reverse_tunnel_id)
                    .push_bind(micros(e.at))
                    .push_bind(e.user_id)
                    .push_bind(e.method.clone())
                    .push_bind(e.path.clone())
                    .push_bind(e.status)
                    .push_bind(e.bytes_in)
                    .push_bind(e.bytes_out)
                    .push_bind(e.duration_ms)
                    .push_bind(e.client_ip.clone())
                    .push_bind(e.user_agent.clone())
                    .push_bind(ordinal);
            });
            // Both databases name a VALUES list's columns column1, column2, ...; the ids
            // follow the batch's order (the log lists by id).
            q.push(
                ") AS v WHERE EXISTS (SELECT 1 FROM reverse_tunnels WHERE id = v.column1) \
                 ORDER BY column12",
            );
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Newest first (by id, i.e. insertion order).
    async fn list_access_log(
        &self,
        reverse_tunnel_id: i64,
        limit: i64,
    ) -> Result<Vec<AccessLogEntry>> {
        Ok(sqlx::query_as(
            "SELECT * FROM access_log WHERE reverse_tunnel_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(reverse_tunnel_id)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?)
    }

    } };
}
