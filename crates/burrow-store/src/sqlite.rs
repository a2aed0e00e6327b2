//! The SQLite backend: the embedded default (one file in the data directory, WAL).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::sql::prelude::*; // what the shared method bodies (`impl_store!`) name

/// The database the shared SQL is compiled for here (see `crate::sql`).
type Db = sqlx::Sqlite;

/// [`crate::Store`] on SQLite.
///
/// File databases are opened in WAL mode with foreign keys on and a 5 s busy timeout, behind
/// a small pool: readers run alongside the single writer, and concurrent writers wait for
/// each other (SQLite serialises them), which keeps the single-use updates atomic.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens `sqlite://PATH` (created if missing; `sqlite:///abs/path` or a relative path) and
    /// runs the SQLite migrations. `sqlite::memory:` gives a private in-memory database.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = if in_memory {
            // One connection that never closes: an in-memory database lives and dies with
            // its connection, and a second connection would see another (empty) database.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await?
        } else {
            SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(
                    options
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal),
                )
                .await?
        };
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// A fresh in-memory database (single connection), for tests.
    pub async fn in_memory() -> Result<Self> {
        Self::connect("sqlite::memory:").await
    }

    /// The underlying pool (for backend-specific needs; prefer the `Store` methods).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl_store!(SqliteStore, "sqlite");
