//! burrow's persistent state.
//!
//! One [`Store`] trait, two backends: SQLite (embedded, the default) and PostgreSQL
//! (production, several nodes). Each backend has its own migrations; one conformance suite
//! (`tests/conformance.rs`) runs against both.

mod error;
mod model;
#[macro_use]
mod sql;
mod postgres;
mod sqlite;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::StoreError;
pub use model::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use store::{connect, Store};
