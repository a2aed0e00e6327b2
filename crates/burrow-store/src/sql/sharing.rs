//! Sharing a tunnel: per-tunnel API keys, share links and their visitors, the audit log.

/// `Store` methods: tunnel keys, share links, sharing audit. See [`impl_store!`](super).
macro_rules! sharing_methods {
    ($ty:ty; [$($rest:ident),*]; $($acc:tt)*) => { store_chain! { $ty; [$($rest),*]; $($acc)*

    /// `NotFound` for a missing tunnel; `Conflict` for a key hash already stored.
    async fn create_tunnel_key(&self, key: NewTunnelKey) -> Result<TunnelKey> {
        let row: TunnelKeyRow = sqlx::query_as(
            "INSERT INTO tunnel_keys (reverse_tunnel_id, name, prefix, key_hash, methods, \
             expires_at, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING *",
        )
        .bind(key.reverse_tunnel_id)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(&key.key_hash)
        .bind(Json(&key.methods))
        .bind(opt_micros(key.expires_at))
        .bind(key.created_by)
        .bind(now())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    /// Revoked and expired keys included, oldest first.
    async fn list_tunnel_keys(&self, reverse_tunnel_id: i64) -> Result<Vec<TunnelKey>> {
        let rows: Vec<TunnelKeyRow> = sqlx::query_as(
            "SELECT * FROM tunnel_keys WHERE reverse_tunnel_id = $1 ORDER BY id",
        )
        .bind(reverse_tunnel_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn tunnel_key_by_hash(&self, key_hash: &str) -> Result<Option<TunnelKey>> {
        let row: Option<TunnelKeyRow> =
            sqlx::query_as("SELECT * FROM tunnel_keys WHERE key_hash = $1")
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(Into::into))
    }

    /// Revokes key `id` of tunnel `reverse_tunnel_id` (keeps the first revocation time);
    /// answers the key. `NotFound` when the tunnel has no such key.
    async fn revoke_tunnel_key(
        &self,
        reverse_tunnel_id: i64,
        id: i64,
        at: Timestamp,
    ) -> Result<TunnelKey> {
        let row: Option<TunnelKeyRow> = sqlx::query_as(
            "UPDATE tunnel_keys SET revoked_at = COALESCE(revoked_at, $1) \
             WHERE id = $2 AND reverse_tunnel_id = $3 RETURNING *",
        )
        .bind(micros(at))
        .bind(id)
        .bind(reverse_tunnel_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Into::into).ok_or(StoreError::NotFound)
    }

    /// Records a use: `last_used_at` only moves forward.
    async fn touch_tunnel_key(&self, id: i64, at: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE tunnel_keys SET last_used_at = $1 \
             WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
        )
        .bind(micros(at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `NotFound` for a missing tunnel; `Conflict` for a secret hash already stored.
    async fn create_share_link(&self, link: NewShareLink) -> Result<ShareLink> {
        let row: ShareLinkRow = sqlx::query_as(
            "INSERT INTO share_links (reverse_tunnel_id, prefix, secret_hash, note, methods, \
             max_uses, uses, expires_at, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9) RETURNING *",
        )
        .bind(link.reverse_tunnel_id)
        .bind(&link.prefix)
        .bind(&link.secret_hash)
        .bind(&link.note)
        .bind(Json(&link.methods))
        .bind(link.max_uses)
        .bind(micros(link.expires_at))
        .bind(link.created_by)
        .bind(now())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    /// Revoked and expired links included, oldest first.
    async fn list_share_links(&self, reverse_tunnel_id: i64) -> Result<Vec<ShareLink>> {
        let rows: Vec<ShareLinkRow> = sqlx::query_as(
            "SELECT * FROM share_links WHERE reverse_tunnel_id = $1 ORDER BY id",
        )
        .bind(reverse_tunnel_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn share_link_by_hash(&self, secret_hash: &str) -> Result<Option<ShareLink>> {
        let row: Option<ShareLinkRow> =
            sqlx::query_as("SELECT * FROM share_links WHERE secret_hash = $1")
                .bind(secret_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(Into::into))
    }

    async fn share_link_by_id(&self, id: i64) -> Result<Option<ShareLink>> {
        let row: Option<ShareLinkRow> = sqlx::query_as("SELECT * FROM share_links WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
    }

    /// Revokes link `id` of tunnel `reverse_tunnel_id` (keeps the first revocation time);
    /// answers the link. `NotFound` when the tunnel has no such link.
    async fn revoke_share_link(
        &self,
        reverse_tunnel_id: i64,
        id: i64,
        at: Timestamp,
    ) -> Result<ShareLink> {
        let row: Option<ShareLinkRow> = sqlx::query_as(
            "UPDATE share_links SET revoked_at = COALESCE(revoked_at, $1) \
             WHERE id = $2 AND reverse_tunnel_id = $3 RETURNING *",
        )
        .bind(micros(at))
        .bind(id)
        .bind(reverse_tunnel_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(Into::into).ok_or(StoreError::NotFound)
    }

    /// In one transaction: a visitor already counted is `Known`; a new one is counted only
    /// while `uses < max_uses` (a conditional `UPDATE`, whose row lock makes concurrent new
    /// visitors queue and re-check), else `Full` and nothing is written.
    async fn admit_share_link_visitor(
        &self,
        link_id: i64,
        visitor: &str,
        at: Timestamp,
    ) -> Result<VisitorAdmission> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO share_link_visitors (link_id, visitor, first_seen) \
             SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM share_links WHERE id = $1) \
             ON CONFLICT (link_id, visitor) DO NOTHING",
        )
        .bind(link_id)
        .bind(visitor)
        .bind(micros(at))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            let known: Option<i64> = sqlx::query_scalar(
                "SELECT link_id FROM share_link_visitors WHERE link_id = $1 AND visitor = $2",
            )
            .bind(link_id)
            .bind(visitor)
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(if known.is_some() {
                VisitorAdmission::Known
            } else {
                VisitorAdmission::Full
            });
        }
        let counted = sqlx::query(
            "UPDATE share_links SET uses = uses + 1 \
             WHERE id = $1 AND (max_uses IS NULL OR uses < max_uses)",
        )
        .bind(link_id)
        .execute(&mut *tx)
        .await?;
        if counted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(VisitorAdmission::Full);
        }
        tx.commit().await?;
        Ok(VisitorAdmission::New)
    }

    async fn insert_sharing_audit(&self, entry: NewSharingAuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO sharing_audit (project_id, reverse_tunnel_id, actor_user_id, \
             actor_email, action, object_id, detail, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(entry.project_id)
        .bind(entry.reverse_tunnel_id)
        .bind(entry.actor_user_id)
        .bind(&entry.actor_email)
        .bind(&entry.action)
        .bind(entry.object_id)
        .bind(&entry.detail)
        .bind(micros(entry.at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Newest first.
    async fn list_sharing_audit(
        &self,
        project_id: i64,
        limit: i64,
    ) -> Result<Vec<SharingAuditEntry>> {
        Ok(sqlx::query_as(
            "SELECT * FROM sharing_audit WHERE project_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(project_id)
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?)
    }

    } };
}
