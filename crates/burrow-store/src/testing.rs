//! Test helpers for burrow's crates (cargo feature `testing`): a store on a temporary SQLite
//! file, and a store on a fresh PostgreSQL database, so a suite can run on both backends.
//!
//! PostgreSQL: the admin URL comes from `BURROW_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`); each call creates a database
//! `burrow_test_<unix time>_<uuid>` there. An unreachable server is a test failure (panic),
//! not a skip, unless `BURROW_SKIP_POSTGRES=1` (check [`skip_postgres`] first).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection};

use crate::{PgStore, SqliteStore, Store};

/// Default admin URL when `BURROW_TEST_POSTGRES_URL` is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Test databases older than this are dropped when a new one is made (left over by killed
/// runs, or by [`postgres_fresh`], which has no guard).
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Keeps the temporary directory of [`sqlite_temp`] alive; deletes it on drop.
pub struct TempDirGuard {
    dir: tempfile::TempDir,
    url: String,
}

impl TempDirGuard {
    /// `sqlite://...` URL of the database file (open it again for a second store instance).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A store on a new SQLite file in a temporary directory (WAL, pooled: like production).
pub async fn sqlite_temp() -> (Arc<dyn Store>, TempDirGuard) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("burrow.db").display());
    let store = SqliteStore::connect(&url).await.expect("open sqlite store");
    (Arc::new(store), TempDirGuard { dir, url })
}

/// True when `BURROW_SKIP_POSTGRES=1`: PostgreSQL tests should return early.
pub fn skip_postgres() -> bool {
    std::env::var("BURROW_SKIP_POSTGRES").is_ok_and(|v| v == "1")
}

/// The PostgreSQL admin URL (`BURROW_TEST_POSTGRES_URL` or [`DEFAULT_POSTGRES_URL`]).
pub fn postgres_admin_url() -> String {
    std::env::var("BURROW_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
}

/// A fresh PostgreSQL database with burrow's migrations applied. The database is left in
/// place (no guard; a later call drops databases over an hour old). Panics when PostgreSQL
/// is unreachable. Use [`postgres_db`] to get a guard that drops it, or its URL.
pub async fn postgres_fresh() -> Arc<dyn Store> {
    let db = postgres_db().await;
    let store = db.store().await;
    // Leave the database to the stale sweep: the store outlives this function.
    std::mem::forget(db);
    store
}

/// A fresh, empty PostgreSQL database, dropped (best effort) when the guard is dropped.
pub struct PgTestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl PgTestDb {
    /// `postgres://...` URL of the fresh database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens a new store (its own pool) on this database; migrations run on first open.
    pub async fn store(&self) -> Arc<dyn Store> {
        Arc::new(
            PgStore::connect(&self.url)
                .await
                .expect("open postgres store"),
        )
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime: do the async work on a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(mut conn) = admin_connect(&admin_url).await {
                        let _ = drop_database(&mut conn, &name).await;
                        let _ = conn.close().await;
                    }
                });
            }
        })
        .join();
    }
}

/// Creates a fresh database on the server of [`postgres_admin_url`]. Panics when PostgreSQL
/// is unreachable (CI has it; set `BURROW_SKIP_POSTGRES=1` to skip instead).
pub async fn postgres_db() -> PgTestDb {
    let admin_url = postgres_admin_url();
    let mut conn = admin_connect(&admin_url).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL unreachable at {admin_url}: {e} \
             (set BURROW_TEST_POSTGRES_URL, or BURROW_SKIP_POSTGRES=1 to skip)"
        )
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    sweep_stale(&mut conn, now).await;
    let name = format!("burrow_test_{now}_{}", uuid::Uuid::new_v4().simple());
    let mut attempt = 0;
    loop {
        match sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
        {
            Ok(_) => break,
            // Concurrent CREATE DATABASE can trip over the template being in use: retry.
            Err(e) if attempt < 5 => {
                attempt += 1;
                tracing::debug!("CREATE DATABASE {name}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            Err(e) => panic!("CREATE DATABASE {name}: {e}"),
        }
    }
    let _ = conn.close().await;
    let url = with_database(&admin_url, &name);
    PgTestDb {
        admin_url,
        name,
        url,
    }
}

async fn admin_connect(admin_url: &str) -> Result<PgConnection, sqlx::Error> {
    PgConnection::connect(admin_url).await
}

async fn drop_database(conn: &mut PgConnection, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Drops `burrow_test_<secs>_*` databases made more than [`STALE_AFTER`] ago (best effort).
async fn sweep_stale(conn: &mut PgConnection, now: u64) {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database WHERE datname LIKE 'burrow\\_test\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for name in names {
        let made = name
            .strip_prefix("burrow_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if made.is_some_and(|made| made + STALE_AFTER.as_secs() < now) {
            let _ = drop_database(conn, &name).await;
        }
    }
}

/// `admin_url` with its database (path) replaced by `name`, query string kept.
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_replaced_in_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
