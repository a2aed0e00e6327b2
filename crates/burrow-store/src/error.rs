use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

/// Database errors (not conflicts or missing rows) since the process started, all stores
/// together: what `/metrics` reports as `burrow_database_errors_total`.
static DATABASE_ERRORS: AtomicU64 = AtomicU64::new(0);

pub fn database_errors() -> u64 {
    DATABASE_ERRORS.load(Ordering::Relaxed)
}

#[derive(Debug, Error)]
pub enum StoreError {
    /// A unique constraint was violated (duplicate email, DSN, public URL, member...).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("invalid database url: {0}")]
    InvalidUrl(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            // A row referenced by the write is missing (project, device, user...).
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => {
                DATABASE_ERRORS.fetch_add(1, Ordering::Relaxed);
                StoreError::Database(e)
            }
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
