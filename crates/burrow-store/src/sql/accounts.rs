//! Accounts an organisation runs: disabling and deleting users, password changes,
//! invitations by email, personal access tokens (docs/accounts.md).

/// `Store` methods: user administration, invitations, personal tokens. See
/// [`impl_store!`](super).
macro_rules! accounts_methods {
    ($ty:ty; [$($rest:ident),*]; $($acc:tt)*) => { store_chain! { $ty; [$($rest),*]; $($acc)*

    async fn set_user_disabled(&self, id: i64, disabled: bool) -> Result<User> {
        sqlx::query_as("UPDATE users SET disabled = $2 WHERE id = $1 RETURNING *")
            .bind(id)
            .bind(disabled)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn set_user_password(&self, id: i64, password_hash: &str) -> Result<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(id)
            .bind(password_hash)
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())
    }

    /// Refused while the user is some project's only owner: that project would be left
    /// without anyone who may manage it.
    async fn delete_user(&self, id: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // A write first: it takes SQLite's write lock at once (a read-then-write transaction
        // fails with "database is locked" when another write came in between) and locks the
        // user's row on PostgreSQL.
        found(
            sqlx::query("UPDATE users SET disabled = disabled WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
        )?;
        let orphaned: Option<i64> = sqlx::query_scalar(
            "SELECT m.project_id FROM project_members m \
             WHERE m.user_id = $1 AND m.role = 'owner' AND NOT EXISTS \
             (SELECT 1 FROM project_members o WHERE o.project_id = m.project_id \
              AND o.role = 'owner' AND o.user_id <> $1) \
             ORDER BY m.project_id LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(project) = orphaned {
            return Err(StoreError::Conflict(format!(
                "the user is the last owner of project {project}"
            )));
        }
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Ok(tx.commit().await?)
    }

    async fn create_invitation(&self, inv: NewInvitation) -> Result<Invitation> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM project_invitations \
             WHERE project_id = $1 AND email = $2 AND accepted_at IS NULL",
        )
        .bind(inv.project_id)
        .bind(inv.email.to_lowercase())
        .execute(&mut *tx)
        .await?;
        let row: Invitation = sqlx::query_as(
            "INSERT INTO project_invitations (project_id, email, role, token_hash, invited_by, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        )
        .bind(inv.project_id)
        .bind(inv.email.to_lowercase())
        .bind(&inv.role)
        .bind(&inv.token_hash)
        .bind(inv.invited_by)
        .bind(micros(inv.created_at))
        .bind(micros(inv.expires_at))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn list_invitations(&self, project_id: i64, now: Timestamp) -> Result<Vec<Invitation>> {
        Ok(sqlx::query_as(
            "SELECT * FROM project_invitations WHERE project_id = $1 \
             AND accepted_at IS NULL AND expires_at > $2 ORDER BY created_at, id",
        )
        .bind(project_id)
        .bind(micros(now))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn delete_invitation(&self, project_id: i64, id: i64) -> Result<()> {
        let done = sqlx::query(
            "DELETE FROM project_invitations \
             WHERE project_id = $1 AND id = $2 AND accepted_at IS NULL",
        )
        .bind(project_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        found(done.rows_affected())
    }

    async fn invitation_by_hash(&self, token_hash: &str) -> Result<Option<Invitation>> {
        Ok(sqlx::query_as("SELECT * FROM project_invitations WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The invitation is spent by an update guarded on its state, so of two acceptances at
    /// once only one succeeds; a failed membership insert rolls the spending back.
    async fn accept_invitation(
        &self,
        token_hash: &str,
        user_id: i64,
        now: Timestamp,
    ) -> Result<ProjectMember> {
        let at = micros(now);
        let mut tx = self.pool.begin().await?;
        let spent: Option<(i64, String)> = sqlx::query_as(
            "UPDATE project_invitations SET accepted_at = $2, accepted_by = $3 \
             WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2 \
             AND email = (SELECT email FROM users WHERE id = $3) \
             RETURNING project_id, role",
        )
        .bind(token_hash)
        .bind(at)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (project_id, role) = spent.ok_or(StoreError::NotFound)?;
        let member: ProjectMember = sqlx::query_as(
            "INSERT INTO project_members (project_id, user_id, role, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(&role)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(member)
    }

    async fn sign_up_by_invitation(
        &self,
        token_hash: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<(User, ProjectMember)> {
        let at = micros(now);
        let mut tx = self.pool.begin().await?;
        // Spent first (a write takes SQLite's write lock at once); a failure below rolls it
        // back with the rest.
        let spent: Option<(i64, String, i64, String)> = sqlx::query_as(
            "UPDATE project_invitations SET accepted_at = $2 \
             WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2 \
             RETURNING id, email, project_id, role",
        )
        .bind(token_hash)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await?;
        let (invitation_id, email, project_id, role) = spent.ok_or(StoreError::NotFound)?;
        let user: User = sqlx::query_as(
            "INSERT INTO users (email, password_hash, is_admin, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(&email)
        .bind(password_hash)
        .bind(false)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("UPDATE project_invitations SET accepted_by = $2 WHERE id = $1")
            .bind(invitation_id)
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        let member: ProjectMember = sqlx::query_as(
            "INSERT INTO project_members (project_id, user_id, role, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(project_id)
        .bind(user.id)
        .bind(&role)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((user, member))
    }

    async fn create_personal_token(&self, t: NewPersonalToken) -> Result<PersonalToken> {
        Ok(sqlx::query_as(
            "INSERT INTO personal_tokens (user_id, name, scope, token_hash, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        )
        .bind(t.user_id)
        .bind(&t.name)
        .bind(&t.scope)
        .bind(&t.token_hash)
        .bind(micros(t.created_at))
        .bind(micros(t.expires_at))
        .fetch_one(&self.pool)
        .await?)
    }

    async fn list_personal_tokens(&self, user_id: i64) -> Result<Vec<PersonalToken>> {
        Ok(sqlx::query_as(
            "SELECT * FROM personal_tokens WHERE user_id = $1 AND revoked_at IS NULL \
             ORDER BY created_at DESC, id DESC",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn personal_token_by_hash(&self, token_hash: &str) -> Result<Option<PersonalToken>> {
        Ok(sqlx::query_as("SELECT * FROM personal_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn revoke_personal_token(&self, user_id: i64, id: i64, at: Timestamp) -> Result<()> {
        let done = sqlx::query(
            "UPDATE personal_tokens SET revoked_at = $3 \
             WHERE user_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(id)
        .bind(micros(at))
        .execute(&self.pool)
        .await?;
        found(done.rows_affected())
    }

    /// Skips the write when the last recorded use is under a minute old.
    async fn touch_personal_token(&self, id: i64, at: Timestamp) -> Result<()> {
        let at = micros(at);
        sqlx::query(
            "UPDATE personal_tokens SET last_used_at = $2 WHERE id = $1 \
             AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(id)
        .bind(at)
        .bind(at - chrono::Duration::seconds(60))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    } };
}
