//! Traffic analytics: rollup rows, the filtered access log, and retention.

/// `Store` methods: `insert_traffic_rollups`, `list_traffic_rollups`,
/// `project_tunnel_usage`, `add_principal_usage`, `project_principal_usage`,
/// `list_access_log_filtered`, `prune_traffic`. See [`impl_store!`](super).
macro_rules! traffic_methods {
    ($ty:ty; [$($rest:ident),*]; $($acc:tt)*) => { store_chain! { $ty; [$($rest),*]; $($acc)*

    /// In one transaction; rows of tunnels deleted meanwhile are dropped, not an error.
    async fn insert_traffic_rollups(&self, rows: &[TrafficRollup]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO traffic_rollups (reverse_tunnel_id, resolution_secs, bucket_start, \
                 requests, status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, \
                 bytes_in, bytes_out, distinct_clients, latency) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 \
                 WHERE EXISTS (SELECT 1 FROM reverse_tunnels WHERE id = $1)",
            )
            .bind(r.reverse_tunnel_id)
            .bind(r.resolution_secs)
            .bind(micros(r.bucket_start))
            .bind(r.requests)
            .bind(r.by_class[0])
            .bind(r.by_class[1])
            .bind(r.by_class[2])
            .bind(r.by_class[3])
            .bind(r.by_class[4])
            .bind(r.bytes_in)
            .bind(r.bytes_out)
            .bind(r.distinct_clients)
            .bind(Json(&r.latency))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Rows of buckets starting in `[from, to)`, oldest first (several per bucket possible).
    async fn list_traffic_rollups(
        &self,
        reverse_tunnel_id: i64,
        resolution_secs: i64,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<TrafficRollup>> {
        let rows: Vec<TrafficRollupRow> = sqlx::query_as(
            "SELECT * FROM traffic_rollups WHERE reverse_tunnel_id = $1 \
             AND resolution_secs = $2 AND bucket_start >= $3 AND bucket_start < $4 \
             ORDER BY bucket_start, id",
        )
        .bind(reverse_tunnel_id)
        .bind(resolution_secs)
        .bind(micros(from))
        .bind(micros(to))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn project_tunnel_usage(
        &self,
        project_id: i64,
        from: Timestamp,
        to: Timestamp,
        limit: i64,
    ) -> Result<Vec<TunnelUsage>> {
        Ok(sqlx::query_as(
            "SELECT r.reverse_tunnel_id, t.name AS tunnel_name, t.device_id, d.dsn, \
             CAST(SUM(r.requests) AS BIGINT) AS requests, \
             CAST(SUM(r.status_4xx + r.status_5xx) AS BIGINT) AS errors, \
             CAST(SUM(r.bytes_in) AS BIGINT) AS bytes_in, \
             CAST(SUM(r.bytes_out) AS BIGINT) AS bytes_out \
             FROM traffic_rollups r \
             JOIN reverse_tunnels t ON t.id = r.reverse_tunnel_id \
             JOIN fleet_devices d ON d.id = t.device_id \
             WHERE d.project_id = $1 AND r.resolution_secs = $2 \
             AND r.bucket_start >= $3 AND r.bucket_start < $4 \
             GROUP BY r.reverse_tunnel_id, t.name, t.device_id, d.dsn \
             ORDER BY requests DESC, r.reverse_tunnel_id LIMIT $5",
        )
        .bind(project_id)
        .bind(MINUTE)
        .bind(micros(from))
        .bind(micros(to))
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn add_principal_usage(&self, rows: &[PrincipalUsage]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO traffic_principal_usage (reverse_tunnel_id, bucket_start, \
                 principal_kind, principal_id, requests, errors, bytes_in, bytes_out) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                 WHERE EXISTS (SELECT 1 FROM reverse_tunnels WHERE id = $1) \
                 ON CONFLICT (reverse_tunnel_id, bucket_start, principal_kind, principal_id) \
                 DO UPDATE SET requests = traffic_principal_usage.requests + excluded.requests, \
                 errors = traffic_principal_usage.errors + excluded.errors, \
                 bytes_in = traffic_principal_usage.bytes_in + excluded.bytes_in, \
                 bytes_out = traffic_principal_usage.bytes_out + excluded.bytes_out",
            )
            .bind(r.reverse_tunnel_id)
            .bind(micros(r.bucket_start))
            .bind(r.kind.as_str())
            .bind(r.principal_id)
            .bind(r.requests)
            .bind(r.errors)
            .bind(r.bytes_in)
            .bind(r.bytes_out)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn project_principal_usage(
        &self,
        project_id: i64,
        from: Timestamp,
        to: Timestamp,
        limit: i64,
    ) -> Result<Vec<DevicePrincipalUsage>> {
        Ok(sqlx::query_as(
            "SELECT t.device_id, u.principal_kind, u.principal_id, \
             CASE u.principal_kind WHEN 'user' THEN us.email WHEN 'key' THEN k.name \
             WHEN 'share' THEN s.prefix END AS label, \
             CAST(SUM(u.requests) AS BIGINT) AS requests, \
             CAST(SUM(u.errors) AS BIGINT) AS errors, \
             CAST(SUM(u.bytes_in) AS BIGINT) AS bytes_in, \
             CAST(SUM(u.bytes_out) AS BIGINT) AS bytes_out \
             FROM traffic_principal_usage u \
             JOIN reverse_tunnels t ON t.id = u.reverse_tunnel_id \
             JOIN fleet_devices d ON d.id = t.device_id \
             LEFT JOIN users us ON u.principal_kind = 'user' AND us.id = u.principal_id \
             LEFT JOIN tunnel_keys k ON u.principal_kind = 'key' AND k.id = u.principal_id \
             LEFT JOIN share_links s ON u.principal_kind = 'share' AND s.id = u.principal_id \
             WHERE d.project_id = $1 AND u.bucket_start >= $2 AND u.bucket_start < $3 \
             GROUP BY t.device_id, u.principal_kind, u.principal_id, us.email, k.name, s.prefix \
             ORDER BY requests DESC, t.device_id, u.principal_kind, u.principal_id LIMIT $4",
        )
        .bind(project_id)
        .bind(micros(from))
        .bind(micros(to))
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Newest first, with the filter's optional bounds.
    async fn list_access_log_filtered(
        &self,
        f: &AccessLogFilter,
    ) -> Result<Vec<AccessLogEntry>> {
        Ok(sqlx::query_as(
            "SELECT * FROM access_log WHERE reverse_tunnel_id = $1 \
             AND ($2 IS NULL OR at >= $2) AND ($3 IS NULL OR at < $3) \
             AND ($4 IS NULL OR status >= $4) AND ($5 IS NULL OR status <= $5) \
             AND ($6 IS NULL OR client_ip = $6) \
             ORDER BY id DESC LIMIT $7",
        )
        .bind(f.reverse_tunnel_id)
        .bind(opt_micros(f.from))
        .bind(opt_micros(f.to))
        .bind(f.status_min)
        .bind(f.status_max)
        .bind(&f.client_ip)
        .bind(f.limit.max(0))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn prune_traffic(&self, c: &TrafficCutoffs) -> Result<PrunedRows> {
        let access_log = sqlx::query("DELETE FROM access_log WHERE at < $1")
            .bind(micros(c.access_log_before))
            .execute(&self.pool)
            .await?
            .rows_affected();
        let prune = |resolution: i64, before: Timestamp| {
            sqlx::query(
                "DELETE FROM traffic_rollups WHERE resolution_secs = $1 AND bucket_start < $2",
            )
            .bind(resolution)
            .bind(micros(before))
            .execute(&self.pool)
        };
        let minute = prune(MINUTE, c.minute_before).await?.rows_affected();
        let hour = prune(HOUR, c.hour_before).await?.rows_affected();
        let principal_usage =
            sqlx::query("DELETE FROM traffic_principal_usage WHERE bucket_start < $1")
                .bind(micros(c.hour_before))
                .execute(&self.pool)
                .await?
                .rows_affected();
        Ok(PrunedRows {
            access_log,
            minute,
            hour,
            principal_usage,
        })
    }
    }};
}
