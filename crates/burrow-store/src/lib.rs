//! burrow's persistent state.
//!
//! One [`Store`] trait, two backends: SQLite (embedded, the default) and PostgreSQL
//! (production, several nodes). Each backend has its own migrations; one conformance suite
//! (`tests/conformance.rs`) runs against both.

mod domains;
mod error;
mod model;
#[macro_use]
mod sql;
mod postgres;
mod sqlite;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod traffic;

pub use domains::*;
pub use error::{database_errors, StoreError};
pub use model::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use store::{connect, Store};
pub use traffic::*;
