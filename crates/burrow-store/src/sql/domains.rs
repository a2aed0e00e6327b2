//! Custom domains, ACME certificates and challenge answers (docs/custom-domains.md).

/// `Store` methods of custom domains and certificates. See [`impl_store!`](super).
macro_rules! domains_methods {
    ($ty:ty; [$($rest:ident),*]; $($acc:tt)*) => { store_chain! { $ty; [$($rest),*]; $($acc)*

    async fn create_custom_domain(&self, d: NewCustomDomain) -> Result<CustomDomain> {
        let at = micros(d.created_at);
        Ok(sqlx::query_as(
            "INSERT INTO custom_domains (reverse_tunnel_id, hostname, verification_value, \
             status, next_check_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $5) RETURNING *",
        )
        .bind(d.reverse_tunnel_id)
        .bind(d.hostname.to_lowercase())
        .bind(&d.verification_value)
        .bind(domain_status::PENDING_VERIFICATION)
        .bind(at)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn list_custom_domains(&self, reverse_tunnel_id: i64) -> Result<Vec<CustomDomain>> {
        Ok(sqlx::query_as(
            "SELECT * FROM custom_domains WHERE reverse_tunnel_id = $1 ORDER BY id",
        )
        .bind(reverse_tunnel_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn custom_domain_by_id(&self, id: i64) -> Result<Option<CustomDomain>> {
        Ok(sqlx::query_as("SELECT * FROM custom_domains WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn custom_domain_by_hostname(&self, hostname: &str) -> Result<Option<CustomDomain>> {
        Ok(sqlx::query_as("SELECT * FROM custom_domains WHERE hostname = $1")
            .bind(hostname.to_lowercase())
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn delete_custom_domain(&self, id: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let hostname: Option<String> =
            sqlx::query_scalar("DELETE FROM custom_domains WHERE id = $1 RETURNING hostname")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(hostname) = hostname else {
            return Err(StoreError::NotFound);
        };
        sqlx::query("DELETE FROM certificates WHERE name = $1")
            .bind(&hostname)
            .execute(&mut *tx)
            .await?;
        Ok(tx.commit().await?)
    }

    async fn served_custom_domains(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT hostname FROM custom_domains WHERE verified_at IS NOT NULL ORDER BY hostname",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn reverse_tunnel_by_custom_domain(
        &self,
        hostname: &str,
    ) -> Result<Option<ReverseTunnel>> {
        let row: Option<ReverseTunnelRow> = sqlx::query_as(
            "SELECT t.* FROM reverse_tunnels t JOIN custom_domains d \
             ON d.reverse_tunnel_id = t.id \
             WHERE d.hostname = $1 AND d.verified_at IS NOT NULL",
        )
        .bind(hostname.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn claim_due_custom_domains(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> Result<Vec<CustomDomain>> {
        let due: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM custom_domains WHERE next_check_at <= $1 \
             ORDER BY next_check_at, id LIMIT $2",
        )
        .bind(micros(now))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for id in due {
            // Moving the due time is the lease: of two nodes, only one sees it still due.
            let row: Option<CustomDomain> = sqlx::query_as(
                "UPDATE custom_domains SET next_check_at = $3 \
                 WHERE id = $1 AND next_check_at <= $2 RETURNING *",
            )
            .bind(id)
            .bind(micros(now))
            .bind(micros(lease_until))
            .fetch_optional(&self.pool)
            .await?;
            claimed.extend(row);
        }
        Ok(claimed)
    }

    async fn update_custom_domain_state(&self, id: i64, s: &DomainState) -> Result<CustomDomain> {
        sqlx::query_as(
            "UPDATE custom_domains SET status = $2, status_reason = $3, verified_at = $4, \
             checked_at = $5, next_check_at = $6, failures = $7, updated_at = $8 \
             WHERE id = $1 RETURNING *",
        )
        .bind(id)
        .bind(&s.status)
        .bind(&s.status_reason)
        .bind(opt_micros(s.verified_at))
        .bind(opt_micros(s.checked_at))
        .bind(micros(s.next_check_at))
        .bind(s.failures)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }

    async fn check_custom_domain_now(&self, id: i64, at: Timestamp) -> Result<CustomDomain> {
        sqlx::query_as(
            "UPDATE custom_domains SET next_check_at = $2, failures = 0 WHERE id = $1 RETURNING *",
        )
        .bind(id)
        .bind(micros(at))
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound)
    }

    async fn put_certificate(&self, c: &StoredCertificate) -> Result<()> {
        sqlx::query(
            "INSERT INTO certificates (name, chain_pem, key_sealed, not_before, not_after, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET \
             chain_pem = excluded.chain_pem, key_sealed = excluded.key_sealed, \
             not_before = excluded.not_before, not_after = excluded.not_after, \
             updated_at = excluded.updated_at",
        )
        .bind(&c.name)
        .bind(&c.chain_pem)
        .bind(&c.key_sealed)
        .bind(micros(c.not_before))
        .bind(micros(c.not_after))
        .bind(micros(c.updated_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn certificate(&self, name: &str) -> Result<Option<StoredCertificate>> {
        Ok(sqlx::query_as("SELECT * FROM certificates WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn delete_certificate(&self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM certificates WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn certificate_stamps(&self) -> Result<Vec<(String, Timestamp)>> {
        Ok(sqlx::query_as("SELECT name, updated_at FROM certificates ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn put_acme_challenge(&self, key: &str, value: &str, expires_at: Timestamp) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM acme_challenges WHERE expires_at <= $1")
            .bind(now())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO acme_challenges (key, value, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, \
             expires_at = excluded.expires_at",
        )
        .bind(key)
        .bind(value)
        .bind(micros(expires_at))
        .execute(&mut *tx)
        .await?;
        Ok(tx.commit().await?)
    }

    async fn acme_challenge(&self, key: &str, now: Timestamp) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT value FROM acme_challenges WHERE key = $1 AND expires_at > $2",
        )
        .bind(key)
        .bind(micros(now))
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn delete_acme_challenge(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM acme_challenges WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    } };
}
