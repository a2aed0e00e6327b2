//! The PostgreSQL backend: production, and several burrow nodes sharing one database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::sql::prelude::*; // what the shared method bodies (`impl_store!`) name

/// The database the shared SQL is compiled for here (see `crate::sql`).
type Db = sqlx::Postgres;

/// [`crate::Store`] on PostgreSQL. Several nodes (each with its own pool) may share one
/// database: the single-use updates and `claim_job` are single statements that PostgreSQL's
/// row locks make atomic across all of them.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `postgres://...` and runs the PostgreSQL migrations (sqlx takes an
    /// advisory lock around them, so nodes starting together do not race).
    pub async fn connect(url: &str) -> Result<Self> {
        let options =
            PgConnectOptions::from_str(url).map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// The underlying pool (for backend-specific needs such as advisory locks; prefer the
    /// `Store` methods).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl_store!(PgStore, "postgres");
