//! API keys, the scheduler's job claims, key/value settings.

/// `Store` methods: API keys, `claim_job`, settings. See [`impl_store!`](super).
macro_rules! misc_methods {
    ($ty:ty; [$($rest:ident),*]; $($acc:tt)*) => { store_chain! { $ty; [$($rest),*]; $($acc)*

    /// `Conflict` for a taken access key id; `NotFound` for a missing user or project.
    async fn create_api_key(&self, key: &ApiKey) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (access_key_id, user_id, project_id, nonce, description, \
             created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.access_key_id)
        .bind(key.user_id)
        .bind(key.project_id)
        .bind(&key.nonce)
        .bind(&key.description)
        .bind(micros(key.created_at))
        .bind(opt_micros(key.revoked_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_key(&self, access_key_id: &str) -> Result<Option<ApiKey>> {
        Ok(sqlx::query_as("SELECT * FROM api_keys WHERE access_key_id = $1")
            .bind(access_key_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Revoked keys included, oldest first.
    async fn list_api_keys_for_user(&self, user_id: i64) -> Result<Vec<ApiKey>> {
        Ok(sqlx::query_as(
            "SELECT * FROM api_keys WHERE user_id = $1 ORDER BY created_at, access_key_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Keeps the first revocation time when called again. `NotFound` when absent.
    async fn revoke_api_key(&self, access_key_id: &str, at: Timestamp) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE access_key_id = $2",
        )
        .bind(micros(at))
        .bind(access_key_id)
        .execute(&self.pool)
        .await?;
        found(done.rows_affected())
    }

    /// One upsert, atomic on the `job_runs` row:
    /// `INSERT ... ON CONFLICT (name) DO UPDATE SET last_started_at = now
    /// WHERE job_runs.last_started_at <= now - interval`. It touches a row (and answers
    /// true) only for the first claim or once the interval has passed; concurrent callers on
    /// one database, from any number of pools or nodes, queue on the row lock and re-check
    /// the condition against the winner's write, so exactly one of them gets true.
    async fn claim_job(
        &self,
        name: &str,
        now: Timestamp,
        interval: chrono::Duration,
    ) -> Result<bool> {
        let now = micros(now);
        let done = sqlx::query(
            "INSERT INTO job_runs (name, last_started_at) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET last_started_at = excluded.last_started_at \
             WHERE job_runs.last_started_at <= $3",
        )
        .bind(name)
        .bind(now)
        .bind(micros(now - interval))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Inserts or overwrites.
    async fn put_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Inserts unless `key` exists (then leaves it): true when this call inserted. Atomic,
    /// so of several nodes racing to create one value exactly one wins.
    async fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    } };
}
