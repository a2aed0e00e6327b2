//! The SQL both backends share.
//!
//! Every query below is written once and compiled twice: the group macros (`users_methods!`,
//! `devices_methods!`, ...) each hold some of the `Store` methods, and [`impl_store!`] chains
//! them into one `#[async_trait] impl Store` per backend (`SqliteStore`, `PgStore`). The
//! methods use `self.pool`, which is a `SqlitePool` or a `PgPool`; everything else (the SQL
//! text with `$n` placeholders, the binds, the row mapping through the generic
//! `#[derive(sqlx::FromRow)]`) is identical for both databases.
//!
//! Portable SQL only: `RETURNING`, `ON CONFLICT ... DO UPDATE ... WHERE`, `COALESCE`,
//! `CASE` (instead of the scalar `max()` / `GREATEST()` that differ). Timestamps are truncated
//! to microseconds before they are written, so what is read back equals what was written on
//! both backends (PostgreSQL keeps microseconds; SQLite keeps the RFC 3339 text). SQLite
//! compares those texts, which orders instants correctly because burrow writes all of them in
//! UTC, in the one format sqlx uses.
//!
//! Backend specifics (pool setup, WAL, migrations) live in `sqlite.rs` and `postgres.rs`.

mod rows;

#[macro_use]
mod accounts;
#[macro_use]
mod broker;
#[macro_use]
mod devices;
#[macro_use]
mod domains;
#[macro_use]
mod login_codes;
#[macro_use]
mod misc;
#[macro_use]
mod nodes;
#[macro_use]
mod sharing;
#[macro_use]
mod traffic;
#[macro_use]
mod tunnels;
#[macro_use]
mod users;

/// What the generated method bodies name; glob-imported by the backend modules (the macro
/// bodies resolve their paths where they are expanded).
pub(crate) mod prelude {
    pub(crate) use super::rows::{
        broker_tunnels, reverse_tunnels, BrokerTunnelRow, ReverseTunnelRow, ShareLinkRow,
        TrafficRollupRow, TunnelKeyRow,
    };
    pub(crate) use super::{found, micros, now, opt_micros};
    pub(crate) use crate::domains::*;
    pub(crate) use crate::error::{Result, StoreError};
    pub(crate) use crate::model::*;
    pub(crate) use crate::traffic::*;
    pub(crate) use sqlx::types::Json;
}

use crate::model::Timestamp;
use chrono::SubsecRound;

/// `t` truncated to whole microseconds (PostgreSQL's precision), as every written timestamp.
pub(crate) fn micros(t: Timestamp) -> Timestamp {
    t.trunc_subsecs(6)
}

pub(crate) fn opt_micros(t: Option<Timestamp>) -> Option<Timestamp> {
    t.map(micros)
}

/// Statements on a row that must exist: `NotFound` when none was affected.
pub(crate) fn found(rows_affected: u64) -> crate::error::Result<()> {
    if rows_affected == 0 {
        Err(crate::error::StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// The current time, truncated to microseconds.
pub(crate) fn now() -> Timestamp {
    micros(chrono::Utc::now())
}

/// Chains the group macros into one `#[async_trait] impl Store for $ty`.
///
/// Each group macro receives `($ty; [remaining groups]; methods so far)` and hands the list on
/// with its own methods appended; the last step emits the impl. The methods must all be in
/// the token stream before `#[async_trait]` sees the impl (it does not expand inner macros).
macro_rules! store_chain {
    ($ty:ty; []; $($acc:tt)*) => {
        #[async_trait::async_trait]
        impl $crate::Store for $ty {
            $($acc)*
        }
    };
    ($ty:ty; [$next:ident $(, $rest:ident)*]; $($acc:tt)*) => {
        $next! { $ty; [$($rest),*]; $($acc)* }
    };
}

/// Implements [`crate::Store`] for a struct with a `pool` field (`SqlitePool` or `PgPool`).
/// The expansion site must `use crate::sql::prelude::*` and define `type Db` (the
/// `sqlx::Database` of the pool), which the dynamic queries name.
macro_rules! impl_store {
    ($ty:ty, $backend:literal) => {
        store_chain! {
            $ty;
            [users_methods, devices_methods, tunnels_methods, broker_methods, misc_methods,
             login_codes_methods, nodes_methods, sharing_methods, traffic_methods,
             accounts_methods, domains_methods];
            fn backend(&self) -> &'static str {
                $backend
            }
        }
    };
}
