//! The broker-backed [`Lifecycle`] of reverse tunnels (the seed's "Creation" step and its
//! close-on-disable/delete), and the [`TunnelProvisioner`] the device config endpoint uses.

use std::sync::Arc;

use async_trait::async_trait;
use burrow_api::{ApiError, ApiResult, Lifecycle, TunnelState};
use burrow_broker::{Broker, BrokerError, OpenRequest};
use burrow_device::{
    service_name, ConfigNotifier, DeviceLocks, ProvisionRequest, ProvisionedTunnel, Secret,
    TunnelProvisioner,
};
use burrow_store::{BrokerLink, Device, ReverseTunnel, Store, TunnelStatus};

use crate::succession::Succession;

pub struct BrokerLifecycle {
    pub store: Arc<dyn Store>,
    pub broker: Arc<Broker>,
    pub notifier: ConfigNotifier,
    /// Shared with the edge's dialer: a rotated tunnel's predecessor while it drains.
    pub succession: Succession,
    /// Shared with the device config endpoint: one opener of a device's tunnels at a time.
    pub locks: DeviceLocks,
    pub enrollment_ttl: chrono::Duration,
}

fn broker_error(e: BrokerError) -> ApiError {
    match e {
        BrokerError::Invalid(m) => ApiError::Validation {
            field: None,
            message: m,
        },
        other => ApiError::internal(other),
    }
}

impl BrokerLifecycle {
    /// Opens a broker tunnel for `tunnel` and records it on the row.
    async fn open_for(&self, device: &Device, tunnel: &ReverseTunnel) -> ApiResult<ReverseTunnel> {
        let opened = self
            .broker
            .open(OpenRequest {
                project_id: Some(device.project_id),
                description: Some(format!("reverse tunnel {} of {}", tunnel.id, device.dsn)),
                thing_name: Some(device.dsn.clone()),
                services: vec![service_name(&tunnel.protocol, tunnel.local_port)],
                lifetime_minutes: None,
                tags: Vec::new(),
            })
            .await
            .map_err(broker_error)?;
        let link = BrokerLink {
            tunnel_id: Some(opened.tunnel.tunnel_id),
            tunnel_arn: Some(opened.tunnel.tunnel_arn),
            expires_at: Some(opened.tunnel.expires_at),
        };
        Ok(self
            .store
            .set_reverse_tunnel_broker(tunnel.id, link, chrono::Utc::now())
            .await?)
    }

    /// Closes the broker tunnel of `tunnel`, if any; a tunnel already gone is fine.
    async fn close_for(&self, tunnel_id: Option<&str>, delete: bool) -> ApiResult<()> {
        if let Some(id) = tunnel_id {
            match self.broker.close(id, delete).await {
                Ok(()) | Err(BrokerError::NotFound) => {}
                Err(e) => return Err(ApiError::internal(e)),
            }
        }
        Ok(())
    }

    async fn unlink(&self, tunnel: &ReverseTunnel) -> ApiResult<ReverseTunnel> {
        Ok(self
            .store
            .set_reverse_tunnel_broker(tunnel.id, BrokerLink::default(), chrono::Utc::now())
            .await?)
    }

    /// Make-before-break rotation: open the new broker tunnel, point the row at it and tell
    /// the agent (config watch); [`Succession::hand_over`] moves the edge over once the agent
    /// is on the new tunnel, and closes the old one when its connections have ended.
    pub async fn rotate(&self, device: &Device, tunnel: ReverseTunnel) -> ApiResult<ReverseTunnel> {
        let guard = self.locks.lock(device.id).await;
        let tunnel = self.fresh(tunnel).await?;
        let old = tunnel.tunnel_id.clone();
        let rotated = self.open_for(device, &tunnel).await?;
        drop(guard);
        self.notifier.device_changed(device.id);
        if let (Some(old), Some(new)) = (old, rotated.tunnel_id.clone()) {
            tokio::spawn(
                self.succession
                    .clone()
                    .hand_over(self.broker.clone(), old, new),
            );
        }
        Ok(rotated)
    }

    /// The row as stored now (others may have linked a broker tunnel since it was read).
    async fn fresh(&self, tunnel: ReverseTunnel) -> ApiResult<ReverseTunnel> {
        Ok(self
            .store
            .reverse_tunnel_by_id(tunnel.id)
            .await?
            .unwrap_or(tunnel))
    }

    /// Closes every broker tunnel of a device (revocation, deletion).
    async fn close_all(&self, device: &Device, delete: bool) -> ApiResult<()> {
        for t in self.store.list_reverse_tunnels(device.id).await? {
            self.close_for(t.tunnel_id.as_deref(), delete).await?;
            if !delete {
                self.unlink(&t).await?;
            }
        }
        self.notifier.device_changed(device.id);
        Ok(())
    }
}

#[async_trait]
impl Lifecycle for BrokerLifecycle {
    async fn tunnel_created(
        &self,
        device: &Device,
        tunnel: ReverseTunnel,
    ) -> ApiResult<ReverseTunnel> {
        let _guard = self.locks.lock(device.id).await;
        // The agent's config poll may have opened the tunnel since the row was inserted.
        let tunnel = self.fresh(tunnel).await?;
        let tunnel = if tunnel.is_enabled && tunnel.tunnel_id.is_none() {
            self.open_for(device, &tunnel).await?
        } else {
            tunnel
        };
        self.notifier.device_changed(device.id);
        Ok(tunnel)
    }

    async fn tunnel_updated(
        &self,
        device: &Device,
        before: &ReverseTunnel,
        after: ReverseTunnel,
    ) -> ApiResult<ReverseTunnel> {
        let _guard = self.locks.lock(device.id).await;
        let service_changed =
            before.protocol != after.protocol || before.local_port != after.local_port;
        let seen = after.tunnel_id.clone();
        let after = self.fresh(after).await?;
        // A config poll replaced the tunnel meanwhile (under this lock): it already matches.
        let service_changed = service_changed && after.tunnel_id == seen;
        let after = if !after.is_enabled {
            self.close_for(after.tunnel_id.as_deref(), false).await?;
            if after.tunnel_id.is_some() {
                self.unlink(&after).await?
            } else {
                after
            }
        } else if after.tunnel_id.is_none() || service_changed {
            // The broker tunnel names its one service after protocol and port: a new target
            // needs a new tunnel.
            let old = after.tunnel_id.clone();
            let reopened = self.open_for(device, &after).await?;
            self.close_for(old.as_deref(), false).await?;
            reopened
        } else {
            after
        };
        self.notifier.device_changed(device.id);
        Ok(after)
    }

    async fn tunnel_deleted(&self, device: &Device, tunnel: &ReverseTunnel) -> ApiResult<()> {
        self.close_for(tunnel.tunnel_id.as_deref(), true).await?;
        self.notifier.device_changed(device.id);
        Ok(())
    }

    async fn tunnel_rotate(
        &self,
        device: &Device,
        tunnel: ReverseTunnel,
    ) -> ApiResult<Option<ReverseTunnel>> {
        Ok(Some(self.rotate(device, tunnel).await?))
    }

    async fn tunnel_describe(
        &self,
        tunnel: &ReverseTunnel,
    ) -> ApiResult<Option<serde_json::Value>> {
        let Some(id) = tunnel.tunnel_id.as_deref() else {
            return Ok(None);
        };
        let info = match self.broker.describe(id).await {
            Ok(info) => info,
            Err(BrokerError::NotFound) => return Ok(None),
            Err(e) => return Err(ApiError::internal(e)),
        };
        let state = |c: &burrow_broker::ConnectionState| {
            serde_json::json!({
                "status": if c.connected { "CONNECTED" } else { "DISCONNECTED" },
                "last_updated_at": c.last_updated_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            })
        };
        let ts =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Ok(Some(serde_json::json!({
            "tunnel_id": info.tunnel_id,
            "tunnel_arn": info.tunnel_arn,
            "status": info.status.as_str(),
            "services": info.services,
            "source_connection_state": state(&info.source),
            "destination_connection_state": state(&info.destination),
            "created_at": ts(info.created_at),
            "expires_at": ts(info.expires_at),
        })))
    }

    async fn tunnel_state(&self, tunnel: &ReverseTunnel) -> TunnelState {
        let Some(id) = tunnel.tunnel_id.as_deref() else {
            return TunnelState::default();
        };
        match self.broker.describe(id).await {
            Ok(info) => TunnelState {
                status: Some(info.status.as_str().to_string()),
                agent_connected: info.status == TunnelStatus::Open && info.destination.connected,
            },
            Err(_) => TunnelState::default(),
        }
    }

    async fn issue_enrollment(&self, device: &Device) -> ApiResult<String> {
        let token =
            burrow_device::enrollment::issue(self.store.as_ref(), device.id, self.enrollment_ttl)
                .await
                .map_err(ApiError::internal)?;
        Ok(token.expose().to_string())
    }

    async fn device_revoked(&self, device: &Device) -> ApiResult<()> {
        self.close_all(device, false).await
    }

    async fn device_deleted(&self, device: &Device) -> ApiResult<()> {
        self.close_all(device, true).await
    }
}

/// The broker, as the device config endpoint sees it.
pub struct BrokerProvisioner(pub Arc<Broker>);

#[async_trait]
impl TunnelProvisioner for BrokerProvisioner {
    async fn ensure_active(
        &self,
        current: Option<&str>,
        req: ProvisionRequest,
        threshold: chrono::Duration,
    ) -> anyhow::Result<ProvisionedTunnel> {
        // A tunnel whose service no longer matches the row is replaced like an expiring one.
        let current = match current {
            Some(id) => match self.0.describe(id).await {
                Ok(info) if info.services == req.services => Some(id),
                _ => None,
            },
            None => None,
        };
        let e = self
            .0
            .ensure_active(
                current,
                OpenRequest {
                    project_id: req.project_id,
                    description: req.description,
                    thing_name: req.thing_name,
                    services: req.services,
                    lifetime_minutes: req.lifetime_minutes,
                    tags: Vec::new(),
                },
                threshold,
            )
            .await?;
        Ok(ProvisionedTunnel {
            tunnel_id: e.tunnel.tunnel_id,
            tunnel_arn: e.tunnel.tunnel_arn,
            expires_at: e.tunnel.expires_at,
            replaced: e.replaced,
        })
    }

    async fn destination_token(&self, tunnel_id: &str) -> anyhow::Result<Secret> {
        Ok(Secret::new(
            self.0.destination_token(tunnel_id).await?.into_exposed(),
        ))
    }

    async fn close(&self, tunnel_id: &str, delete: bool) -> anyhow::Result<()> {
        Ok(self.0.close(tunnel_id, delete).await?)
    }
}
