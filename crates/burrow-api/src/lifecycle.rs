//! What happens to tunnels and devices beyond the API's own rows. The binary plugs in the
//! broker-backed implementation; [`BasicLifecycle`] (no broker) serves tests of the API alone.

use async_trait::async_trait;
use base64::Engine;
use burrow_store::{Device, ReverseTunnel, Store};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;

use crate::error::ApiResult;

/// Live state of a reverse tunnel, for responses.
#[derive(Debug, Clone, Default)]
pub struct TunnelState {
    /// The broker tunnel's status ("OPEN" / "CLOSED"), `None` without one.
    pub status: Option<String>,
    /// Whether the device's agent is connected to the broker tunnel.
    pub agent_connected: bool,
}

#[async_trait]
pub trait Lifecycle: Send + Sync + 'static {
    /// A tunnel row was created; open what it needs and answer the row as it now is.
    async fn tunnel_created(
        &self,
        device: &Device,
        tunnel: ReverseTunnel,
    ) -> ApiResult<ReverseTunnel> {
        let _ = device;
        Ok(tunnel)
    }
    /// A tunnel row was changed (enabled, disabled, port...).
    async fn tunnel_updated(
        &self,
        device: &Device,
        before: &ReverseTunnel,
        after: ReverseTunnel,
    ) -> ApiResult<ReverseTunnel> {
        let _ = (device, before);
        Ok(after)
    }
    /// A tunnel row is about to be deleted.
    async fn tunnel_deleted(&self, device: &Device, tunnel: &ReverseTunnel) -> ApiResult<()> {
        let _ = (device, tunnel);
        Ok(())
    }
    /// Manual rotation; `None` when this server has no broker.
    async fn tunnel_rotate(
        &self,
        device: &Device,
        tunnel: ReverseTunnel,
    ) -> ApiResult<Option<ReverseTunnel>> {
        let _ = (device, tunnel);
        Ok(None)
    }
    /// What `describe` shows for troubleshooting (the seed's `describe_tunnel`): status,
    /// connection states and expiry of the broker tunnel. `None` without a broker tunnel.
    async fn tunnel_describe(
        &self,
        tunnel: &ReverseTunnel,
    ) -> ApiResult<Option<serde_json::Value>> {
        let _ = tunnel;
        Ok(None)
    }
    async fn tunnel_state(&self, tunnel: &ReverseTunnel) -> TunnelState {
        TunnelState {
            status: tunnel.tunnel_id.as_ref().map(|_| "OPEN".to_string()),
            agent_connected: false,
        }
    }
    /// A device was registered or re-enrolled: answer its one-time enrollment token.
    async fn issue_enrollment(&self, device: &Device) -> ApiResult<String>;
    /// A device's certificate was revoked: cut its agent off.
    async fn device_revoked(&self, device: &Device) -> ApiResult<()> {
        let _ = device;
        Ok(())
    }
    /// A device is about to be deleted (revoke, close its tunnels).
    async fn device_deleted(&self, device: &Device) -> ApiResult<()> {
        let _ = device;
        Ok(())
    }
}

/// Lifecycle without a broker: enrollment tokens only.
pub struct BasicLifecycle {
    pub store: Arc<dyn Store>,
    pub enrollment_ttl: chrono::Duration,
}

#[async_trait]
impl Lifecycle for BasicLifecycle {
    async fn issue_enrollment(&self, device: &Device) -> ApiResult<String> {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let hash = hex::encode(Sha256::digest(token.as_bytes()));
        let expires = chrono::Utc::now() + self.enrollment_ttl;
        self.store
            .create_enrollment(device.id, &hash, expires)
            .await?;
        Ok(token)
    }
}
