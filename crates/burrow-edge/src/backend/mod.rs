//! What the edge needs from storage, as narrow traits of its own, one per role: resolving a
//! host to its tunnel, the users and memberships of `require_auth`, one-time login codes,
//! API keys and share links, and the sink for usage and the access log. The hot path sees only
//! these, so it is tested against `memory::MemoryBackend` (feature `testing`) with no
//! database; the server wires in the SQL store through [`SqlBackend`] (`Edge::new` takes an
//! `Arc<dyn Store>` as before and converts it). `crates/burrow/tests/edge_backend.rs` runs
//! one script against both, so the two answer alike.
//!
//! Row types and [`StoreError`] still come from `burrow-store`: they are plain data, and the
//! same rows the API serves.

use std::sync::Arc;

use async_trait::async_trait;
use burrow_store::{
    Device, LoginCode, NewAccessLogEntry, PrincipalUsage, ReverseTunnel, ShareLink, Store,
    StoreError, TrafficRollup, TunnelKey, UsageDelta, User, VisitorAdmission,
};

#[cfg(any(test, feature = "testing"))]
pub mod memory;
mod sql;

pub use sql::SqlBackend;

type Result<T> = std::result::Result<T, StoreError>;

/// Host → tunnel: the routing lookup of every request (behind the edge's short cache).
#[async_trait]
pub trait TunnelLookup: Send + Sync {
    /// The tunnel whose `public_url` is `host`, with its device; `None` if there is none (or
    /// its device is gone).
    async fn tunnel_by_host(&self, host: &str) -> Result<Option<(ReverseTunnel, Device)>>;
}

/// Who may use a `require_auth` tunnel, and who signs in on the edge's login form.
#[async_trait]
pub trait UserDirectory: Send + Sync {
    async fn user_by_id(&self, id: i64) -> Result<Option<User>>;
    /// Emails compare case-insensitively.
    async fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    /// Unix second up to which the user's credentials are revoked ("sign out everywhere").
    async fn sessions_valid_after(&self, user_id: i64) -> Result<Option<i64>>;
    async fn is_member(&self, project_id: i64, user_id: i64) -> Result<bool>;
}

/// One-time login codes, shared by every node of a cluster.
#[async_trait]
pub trait LoginCodes: Send + Sync {
    /// Stores `code`, dropping that user's oldest beyond `keep_per_user`.
    async fn insert_login_code(&self, code: &LoginCode, keep_per_user: i64) -> Result<()>;
    /// Removes and answers the code with this hash: single use, atomic across nodes.
    async fn take_login_code(&self, code_hash: &str) -> Result<Option<LoginCode>>;
}

/// A tunnel's API keys and share links, as the edge checks them.
#[async_trait]
pub trait Credentials: Send + Sync {
    async fn tunnel_key_by_hash(&self, key_hash: &str) -> Result<Option<TunnelKey>>;
    async fn touch_tunnel_key(&self, id: i64, at: chrono::DateTime<chrono::Utc>) -> Result<()>;
    async fn share_link_by_hash(&self, secret_hash: &str) -> Result<Option<ShareLink>>;
    async fn share_link_by_id(&self, id: i64) -> Result<Option<ShareLink>>;
    /// Counts `visitor` against the link's visitor cap (a known visitor is admitted again).
    async fn admit_share_link_visitor(
        &self,
        link_id: i64,
        visitor: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<VisitorAdmission>;
}

/// Where the edge's batched counters go: each call is one flush of one kind.
#[async_trait]
pub trait UsageSink: Send + Sync {
    async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<()>;
    async fn insert_access_log(&self, entries: &[NewAccessLogEntry]) -> Result<()>;
    async fn insert_traffic_rollups(&self, rows: &[TrafficRollup]) -> Result<()>;
    async fn add_principal_usage(&self, rows: &[PrincipalUsage]) -> Result<()>;
}

/// Everything the edge reads and writes, one implementation per role (often one value
/// behind all of them: see [`EdgeBackend::of`]).
#[derive(Clone)]
pub struct EdgeBackend {
    pub tunnels: Arc<dyn TunnelLookup>,
    pub users: Arc<dyn UserDirectory>,
    pub codes: Arc<dyn LoginCodes>,
    pub credentials: Arc<dyn Credentials>,
    pub usage: Arc<dyn UsageSink>,
}

impl EdgeBackend {
    /// Every role served by `backend`.
    pub fn of<B>(backend: Arc<B>) -> EdgeBackend
    where
        B: TunnelLookup + UserDirectory + LoginCodes + Credentials + UsageSink + 'static,
    {
        EdgeBackend {
            tunnels: backend.clone(),
            users: backend.clone(),
            codes: backend.clone(),
            credentials: backend.clone(),
            usage: backend,
        }
    }
}

/// The server's wiring: every role served by the SQL store.
impl From<Arc<dyn Store>> for EdgeBackend {
    fn from(store: Arc<dyn Store>) -> EdgeBackend {
        EdgeBackend::of(Arc::new(SqlBackend::new(store)))
    }
}
