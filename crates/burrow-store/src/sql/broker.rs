//! The broker's tunnels (the AWS IoT Secure Tunnel equivalent).

/// All columns of `broker_tunnels`, in the order [`bind_broker_tunnel!`] binds them ($1..$24).
macro_rules! broker_insert_sql {
    () => {
        "INSERT INTO broker_tunnels (tunnel_id, tunnel_arn, project_id, status, description, \
         thing_name, services, tags, max_lifetime_minutes, \
         source_token_hash, source_token_nonce, source_token_used_at, \
         source_client_token_hash, source_connected, source_state_updated_at, \
         destination_token_hash, destination_token_nonce, destination_token_used_at, \
         destination_client_token_hash, destination_connected, destination_state_updated_at, \
         created_at, last_updated_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22, $23, $24)"
    };
}

/// Overwrites every column but the key, with the same binds as [`broker_insert_sql!`].
macro_rules! broker_update_sql {
    () => {
        "UPDATE broker_tunnels SET tunnel_arn = $2, project_id = $3, status = $4, \
         description = $5, thing_name = $6, services = $7, tags = $8, \
         max_lifetime_minutes = $9, \
         source_token_hash = $10, source_token_nonce = $11, source_token_used_at = $12, \
         source_client_token_hash = $13, source_connected = $14, \
         source_state_updated_at = $15, \
         destination_token_hash = $16, destination_token_nonce = $17, \
         destination_token_used_at = $18, destination_client_token_hash = $19, \
         destination_connected = $20, destination_state_updated_at = $21, \
         created_at = $22, last_updated_at = $23, expires_at = $24 \
         WHERE tunnel_id = $1"
    };
}

/// Binds a `&BrokerTunnel` as $1..$24 (see [`broker_insert_sql!`]).
macro_rules! bind_broker_tunnel {
    ($query:expr, $t:expr) => {{
        let t: &BrokerTunnel = $t;
        $query
            .bind(&t.tunnel_id)
            .bind(&t.tunnel_arn)
            .bind(t.project_id)
            .bind(t.status.as_str())
            .bind(&t.description)
            .bind(&t.thing_name)
            .bind(Json(&t.services))
            .bind(Json(&t.tags))
            .bind(t.max_lifetime_minutes)
            .bind(&t.source.hash)
            .bind(&t.source.nonce)
            .bind(opt_micros(t.source.used_at))
            .bind(&t.source.client_token_hash)
            .bind(t.source.connected)
            .bind(opt_micros(t.source.state_updated_at))
            .bind(&t.destination.hash)
            .bind(&t.destination.nonce)
            .bind(opt_micros(t.destination.used_at))
            .bind(&t.destination.client_token_hash)
            .bind(t.destination.connected)
            .bind(opt_micros(t.destination.state_updated_at))
            .bind(micros(t.created_at))
            .bind(micros(t.last_updated_at))
            .bind(micros(t.expires_at))
    }};
}

/// `Store` methods: broker tunnels. See [`impl_store!`](super).
macro_rules! broker_methods {
    ($ty:ty; [$($rest:ident),*]; $($acc:tt)*) => { store_chain! { $ty; [$($rest),*]; $($acc)*

    /// `Conflict` for a taken tunnel id or token hash.
    async fn insert_broker_tunnel(&self, tunnel: &BrokerTunnel) -> Result<()> {
        bind_broker_tunnel!(sqlx::query(broker_insert_sql!()), tunnel)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn broker_tunnel(&self, tunnel_id: &str) -> Result<Option<BrokerTunnel>> {
        let row: Option<BrokerTunnelRow> =
            sqlx::query_as("SELECT * FROM broker_tunnels WHERE tunnel_id = $1")
                .bind(tunnel_id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(BrokerTunnel::try_from).transpose()
    }

    async fn broker_tunnel_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<(BrokerTunnel, TokenMode)>> {
        let row: Option<BrokerTunnelRow> = sqlx::query_as(
            "SELECT * FROM broker_tunnels \
             WHERE source_token_hash = $1 OR destination_token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let mode = row.mode_of(token_hash).ok_or(StoreError::NotFound)?;
                Ok(Some((BrokerTunnel::try_from(row)?, mode)))
            }
        }
    }

    /// Newest first by `(created_at, tunnel_id)`; `before` is an exclusive cursor on that
    /// pair (the last row of the previous page). A `limit` of 0 or less means no limit.
    async fn list_broker_tunnels(&self, filter: &BrokerTunnelFilter) -> Result<Vec<BrokerTunnel>> {
        let mut q = sqlx::QueryBuilder::<Db>::new("SELECT * FROM broker_tunnels WHERE 1 = 1");
        if let Some(project_id) = filter.project_id {
            q.push(" AND project_id = ").push_bind(project_id);
        }
        if let Some(thing_name) = &filter.thing_name {
            q.push(" AND thing_name = ").push_bind(thing_name.clone());
        }
        if let Some((created_at, tunnel_id)) = &filter.before {
            let created_at = micros(*created_at);
            q.push(" AND (created_at < ").push_bind(created_at);
            q.push(" OR (created_at = ").push_bind(created_at);
            q.push(" AND tunnel_id < ").push_bind(tunnel_id.clone()).push("))");
        }
        q.push(" ORDER BY created_at DESC, tunnel_id DESC");
        if filter.limit > 0 {
            q.push(" LIMIT ").push_bind(filter.limit);
        }
        let rows: Vec<BrokerTunnelRow> = q.build_query_as().fetch_all(&self.pool).await?;
        broker_tunnels(rows)
    }

    async fn list_open_broker_tunnels_expiring_before(
        &self,
        before: Timestamp,
    ) -> Result<Vec<BrokerTunnel>> {
        let rows = sqlx::query_as(
            "SELECT * FROM broker_tunnels WHERE status = 'OPEN' AND expires_at < $1 \
             ORDER BY expires_at, tunnel_id",
        )
        .bind(micros(before))
        .fetch_all(&self.pool)
        .await?;
        broker_tunnels(rows)
    }

    /// `NotFound` when absent; `Conflict` when a new token hash is taken by another tunnel.
    async fn update_broker_tunnel(&self, tunnel: &BrokerTunnel) -> Result<()> {
        let done = bind_broker_tunnel!(sqlx::query(broker_update_sql!()), tunnel)
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())
    }

    /// One conditional `UPDATE ... WHERE <mode>_token_hash = $hash AND <mode>_token_used_at
    /// IS NULL`: of concurrent handshakes with the same token exactly one gets `true`.
    /// `client_token_hash: None` keeps the slot's current client token hash.
    async fn spend_token(
        &self,
        tunnel_id: &str,
        mode: TokenMode,
        token_hash: &str,
        client_token_hash: Option<&str>,
        at: Timestamp,
    ) -> Result<bool> {
        // `m` is one of two constant column prefixes, never user input.
        let m = mode.as_str();
        let sql = format!(
            "UPDATE broker_tunnels SET {m}_token_used_at = $1, \
             {m}_client_token_hash = COALESCE($2, {m}_client_token_hash) \
             WHERE tunnel_id = $3 AND {m}_token_hash = $4 AND {m}_token_used_at IS NULL"
        );
        let done = sqlx::query(&sql)
            .bind(micros(at))
            .bind(client_token_hash)
            .bind(tunnel_id)
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets the slot's `connected` flag and `state_updated_at = at` (not the tunnel's
    /// `last_updated_at`). `NotFound` when the tunnel is absent.
    async fn set_connection_state(
        &self,
        tunnel_id: &str,
        mode: TokenMode,
        connected: bool,
        at: Timestamp,
    ) -> Result<()> {
        let m = mode.as_str();
        let sql = format!(
            "UPDATE broker_tunnels SET {m}_connected = $1, {m}_state_updated_at = $2 \
             WHERE tunnel_id = $3"
        );
        let done = sqlx::query(&sql)
            .bind(connected)
            .bind(micros(at))
            .bind(tunnel_id)
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())
    }

    /// `NotFound` when absent.
    async fn delete_broker_tunnel(&self, tunnel_id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM broker_tunnels WHERE tunnel_id = $1")
            .bind(tunnel_id)
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())
    }

    } };
}
