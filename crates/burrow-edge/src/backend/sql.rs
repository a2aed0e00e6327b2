//! The edge's traits over the SQL store: each method is one `Store` call (the revocation
//! time is the API's setting), so the server behaves exactly as when the edge called the
//! store itself.

use std::sync::Arc;

use async_trait::async_trait;
use burrow_store::{
    Device, LoginCode, NewAccessLogEntry, PrincipalUsage, ReverseTunnel, ShareLink, Store,
    StoreError, TrafficRollup, TunnelKey, UsageDelta, User, VisitorAdmission,
};
use chrono::{DateTime, Utc};

use super::{Credentials, LoginCodes, TunnelLookup, UsageSink, UserDirectory};

type Result<T> = std::result::Result<T, StoreError>;

pub struct SqlBackend {
    store: Arc<dyn Store>,
}

impl SqlBackend {
    pub fn new(store: Arc<dyn Store>) -> SqlBackend {
        SqlBackend { store }
    }
}

#[async_trait]
impl TunnelLookup for SqlBackend {
    async fn tunnel_by_host(&self, host: &str) -> Result<Option<(ReverseTunnel, Device)>> {
        let tunnel = match self.store.reverse_tunnel_by_public_url(host).await? {
            Some(t) => t,
            // A custom domain, served only while its ownership is proven.
            None => match self.store.reverse_tunnel_by_custom_domain(host).await? {
                Some(t) => t,
                None => return Ok(None),
            },
        };
        let device = self.store.device_by_id(tunnel.device_id).await?;
        Ok(device.map(|d| (tunnel, d)))
    }
}

#[async_trait]
impl UserDirectory for SqlBackend {
    async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        self.store.user_by_id(id).await
    }
    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.store.user_by_email(email).await
    }
    async fn sessions_valid_after(&self, user_id: i64) -> Result<Option<i64>> {
        burrow_api::sessions_valid_after(self.store.as_ref(), user_id).await
    }
    async fn is_member(&self, project_id: i64, user_id: i64) -> Result<bool> {
        self.store.is_member(project_id, user_id).await
    }
}

#[async_trait]
impl LoginCodes for SqlBackend {
    async fn insert_login_code(&self, code: &LoginCode, keep_per_user: i64) -> Result<()> {
        self.store.insert_login_code(code, keep_per_user).await
    }
    async fn take_login_code(&self, code_hash: &str) -> Result<Option<LoginCode>> {
        self.store.take_login_code(code_hash).await
    }
}

#[async_trait]
impl Credentials for SqlBackend {
    async fn tunnel_key_by_hash(&self, key_hash: &str) -> Result<Option<TunnelKey>> {
        self.store.tunnel_key_by_hash(key_hash).await
    }
    async fn touch_tunnel_key(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        self.store.touch_tunnel_key(id, at).await
    }
    async fn share_link_by_hash(&self, secret_hash: &str) -> Result<Option<ShareLink>> {
        self.store.share_link_by_hash(secret_hash).await
    }
    async fn share_link_by_id(&self, id: i64) -> Result<Option<ShareLink>> {
        self.store.share_link_by_id(id).await
    }
    async fn admit_share_link_visitor(
        &self,
        link_id: i64,
        visitor: &str,
        at: DateTime<Utc>,
    ) -> Result<VisitorAdmission> {
        self.store
            .admit_share_link_visitor(link_id, visitor, at)
            .await
    }
}

#[async_trait]
impl UsageSink for SqlBackend {
    async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<()> {
        self.store.add_usage(deltas).await
    }
    async fn insert_access_log(&self, entries: &[NewAccessLogEntry]) -> Result<()> {
        self.store.insert_access_log(entries).await
    }
    async fn insert_traffic_rollups(&self, rows: &[TrafficRollup]) -> Result<()> {
        self.store.insert_traffic_rollups(rows).await
    }
    async fn add_principal_usage(&self, rows: &[PrincipalUsage]) -> Result<()> {
        self.store.add_principal_usage(rows).await
    }
}
