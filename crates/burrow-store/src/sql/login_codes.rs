//! One-time edge login codes, shared by every node (see `burrow-edge`'s `codes`).

/// `Store` methods: `insert_login_code`, `take_login_code`. See [`impl_store!`](super).
macro_rules! login_codes_methods {
    ($ty:ty; [$($rest:ident),*]; $($acc:tt)*) => { store_chain! { $ty; [$($rest),*]; $($acc)*

    /// Stores `code`; then drops every expired code and all but the newest `keep_per_user`
    /// of this user's, so one user minting codes in a loop only replaces their own.
    async fn insert_login_code(&self, code: &LoginCode, keep_per_user: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO edge_login_codes (code_hash, user_id, host, state_hash, expires_at, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&code.code_hash)
        .bind(code.user_id)
        .bind(&code.host)
        .bind(&code.state_hash)
        .bind(micros(code.expires_at))
        .bind(micros(code.created_at))
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM edge_login_codes WHERE expires_at <= $1")
            .bind(micros(code.created_at))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM edge_login_codes WHERE user_id = $1 AND code_hash NOT IN \
             (SELECT code_hash FROM edge_login_codes WHERE user_id = $1 \
              ORDER BY created_at DESC, code_hash LIMIT $2)",
        )
        .bind(code.user_id)
        .bind(keep_per_user)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the code and answers it: spent by this call whatever the caller then decides,
    /// and of two nodes taking one code at once only one gets it.
    async fn take_login_code(&self, code_hash: &str) -> Result<Option<LoginCode>> {
        Ok(sqlx::query_as("DELETE FROM edge_login_codes WHERE code_hash = $1 RETURNING *")
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    } };
}
