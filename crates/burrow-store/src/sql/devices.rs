//! Fleet devices and their enrollment tokens.

/// `Store` methods: devices, enrollments. See [`impl_store!`](super).
macro_rules! devices_methods {
    ($ty:ty; [$($rest:ident),*]; $($acc:tt)*) => { store_chain! { $ty; [$($rest),*]; $($acc)*

    /// `Conflict` for a taken DSN; `NotFound` for a missing project.
    async fn create_device(&self, device: NewDevice) -> Result<Device> {
        Ok(sqlx::query_as(
            "INSERT INTO fleet_devices (project_id, dsn, name, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(device.project_id)
        .bind(&device.dsn)
        .bind(&device.name)
        .bind(now())
        .fetch_one(&self.pool)
        .await?)
    }

    async fn device_by_id(&self, id: i64) -> Result<Option<Device>> {
        Ok(sqlx::query_as("SELECT * FROM fleet_devices WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn device_by_dsn(&self, dsn: &str) -> Result<Option<Device>> {
        Ok(sqlx::query_as("SELECT * FROM fleet_devices WHERE dsn = $1")
            .bind(dsn)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The devices of every project the user is a member of (any role), by id.
    async fn list_devices_for_user(&self, user_id: i64) -> Result<Vec<Device>> {
        Ok(sqlx::query_as(
            "SELECT d.* FROM fleet_devices d \
             JOIN project_members m ON m.project_id = d.project_id \
             WHERE m.user_id = $1 ORDER BY d.id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn list_devices_in_project(&self, project_id: i64) -> Result<Vec<Device>> {
        Ok(sqlx::query_as("SELECT * FROM fleet_devices WHERE project_id = $1 ORDER BY id")
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Cascades to the device's reverse tunnels (and their access log) and enrollments.
    /// `NotFound` when there is no such device.
    async fn delete_device(&self, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM fleet_devices WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())
    }

    async fn rename_device(&self, id: i64, name: &str) -> Result<Device> {
        sqlx::query_as("UPDATE fleet_devices SET name = $2 WHERE id = $1 RETURNING *")
            .bind(id)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn touch_device(&self, id: i64, at: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE fleet_devices SET last_seen_at = $1 WHERE id = $2")
            .bind(micros(at))
            .bind(id)
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())
    }

    async fn set_device_certificate(
        &self,
        id: i64,
        serial: &str,
        not_after: Timestamp,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE fleet_devices SET cert_serial = $1, cert_not_after = $2, revoked_at = NULL \
             WHERE id = $3",
        )
        .bind(serial)
        .bind(micros(not_after))
        .bind(id)
        .execute(&self.pool)
        .await?;
        found(done.rows_affected())
    }

    /// Also cancels the device's unused enrollment tokens (they expire at `at`).
    async fn revoke_device(&self, id: i64, at: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE fleet_devices SET revoked_at = $1 WHERE id = $2")
            .bind(micros(at))
            .bind(id)
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())?;
        sqlx::query(
            "UPDATE enrollments SET expires_at = $1 \
             WHERE device_id = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(micros(at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `Conflict` for a token hash already stored; `NotFound` for a missing device. The
    /// device's older unused tokens are cancelled (they expire now): one live token at a time.
    async fn create_enrollment(
        &self,
        device_id: i64,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<Enrollment> {
        sqlx::query(
            "UPDATE enrollments SET expires_at = $1 \
             WHERE device_id = $2 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now())
        .bind(device_id)
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query_as(
            "INSERT INTO enrollments (device_id, token_hash, expires_at, created_at) \
             VALUES ($1, $2, $3, $4) RETURNING *",
        )
        .bind(device_id)
        .bind(token_hash)
        .bind(micros(expires_at))
        .bind(now())
        .fetch_one(&self.pool)
        .await?)
    }

    /// One conditional `UPDATE ... WHERE used_at IS NULL AND expires_at > now RETURNING`:
    /// the database serialises concurrent calls on the row, so exactly one caller gets the
    /// device id and every other (concurrent or later) gets `None`.
    async fn consume_enrollment(&self, token_hash: &str, now: Timestamp) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "UPDATE enrollments SET used_at = $1 \
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
             RETURNING device_id",
        )
        .bind(micros(now))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?)
    }

    } };
}
