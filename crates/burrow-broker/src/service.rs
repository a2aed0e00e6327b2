//! The tunnel operations of the control plane (tunnel-control-api.md, section 3).

use burrow_store::{BrokerTunnel, BrokerTunnelFilter, Tag, TokenMode, TokenSlot, TunnelStatus};
use chrono::Duration;

use crate::error::{invalid, BrokerError};
use crate::hub::CLOSE_NORMAL;
use crate::info::{Ensured, OpenRequest, Opened, RotateMode, Rotated, TunnelInfo};
use crate::token::{mint, AccessToken};
use crate::{validate, Broker};

/// A slot with a fresh token; keeps the connection state, drops use and client-token binding.
fn fresh_slot(old: &TokenSlot, hash: String, nonce: String) -> TokenSlot {
    TokenSlot {
        hash: Some(hash),
        nonce: Some(nonce),
        used_at: None,
        client_token_hash: None,
        connected: old.connected,
        state_updated_at: old.state_updated_at,
    }
}

impl Broker {
    pub async fn open(&self, req: OpenRequest) -> Result<Opened, BrokerError> {
        let lifetime =
            validate::lifetime(req.lifetime_minutes, self.config.default_lifetime_minutes)?;
        validate::services(&req.services)?;
        validate::thing_name(req.thing_name.as_deref())?;
        validate::description(req.description.as_deref())?;
        validate::tags(&req.tags)?;
        let now = self.clock.now();
        let tunnel_id = uuid::Uuid::new_v4().to_string();
        let source = mint(&self.key, &tunnel_id, TokenMode::Source);
        let destination = mint(&self.key, &tunnel_id, TokenMode::Destination);
        let tunnel = BrokerTunnel {
            tunnel_arn: format!(
                "arn:aws:iot:{}:{}:tunnel/{}",
                self.config.region, self.config.account_id, tunnel_id
            ),
            tunnel_id,
            project_id: req.project_id,
            status: TunnelStatus::Open,
            description: req.description,
            thing_name: req.thing_name,
            services: req.services,
            tags: req.tags,
            max_lifetime_minutes: lifetime,
            source: fresh_slot(&TokenSlot::default(), source.hash, source.nonce),
            destination: fresh_slot(&TokenSlot::default(), destination.hash, destination.nonce),
            created_at: now,
            last_updated_at: now,
            expires_at: now + Duration::minutes(lifetime),
        };
        self.store.insert_broker_tunnel(&tunnel).await?;
        tracing::info!(tunnel = %tunnel.tunnel_id, "tunnel opened");
        Ok(Opened {
            tunnel: TunnelInfo::from(&tunnel),
            source_token: source.token,
            destination_token: destination.token,
        })
    }

    /// Sets the tunnel CLOSED and sends a close frame (1000) to both live peers. `delete`
    /// removes the row as well (describe then answers NotFound). Closing a closed tunnel is
    /// not an error.
    pub async fn close(&self, tunnel_id: &str, delete: bool) -> Result<(), BrokerError> {
        let _guard = self.lock_tunnel(tunnel_id).await;
        let mut tunnel = self.load(tunnel_id).await?;
        if tunnel.status == TunnelStatus::Open {
            tunnel.status = TunnelStatus::Closed;
            tunnel.last_updated_at = self.clock.now();
            self.store.update_broker_tunnel(&tunnel).await?;
        }
        // Store first, then the live side: a handshake racing with us either sees CLOSED in
        // the store or attaches before we look at the registry (see lifecycle.rs).
        self.registry
            .close(tunnel_id, CLOSE_NORMAL, "tunnel closed");
        self.closed(tunnel_id);
        if delete {
            self.store.delete_broker_tunnel(tunnel_id).await?;
        }
        tracing::info!(tunnel = %tunnel_id, delete, "tunnel closed");
        Ok(())
    }

    /// Revokes the current token(s) of `mode` and issues new ones. Never extends the lifetime.
    /// `services` / `thing_name` (the destinationConfig) are only allowed with a mode that
    /// includes DESTINATION.
    pub async fn rotate(
        &self,
        tunnel_id: &str,
        mode: RotateMode,
        services: Option<Vec<String>>,
        thing_name: Option<String>,
    ) -> Result<Rotated, BrokerError> {
        if !mode.destination() && (services.is_some() || thing_name.is_some()) {
            return Err(invalid(
                "destinationConfig is not allowed with clientMode SOURCE",
            ));
        }
        if let Some(services) = &services {
            validate::services(services)?;
        }
        validate::thing_name(thing_name.as_deref())?;
        let _guard = self.lock_tunnel(tunnel_id).await;
        self.rotate_locked(tunnel_id, mode, services, thing_name)
            .await
    }

    async fn rotate_locked(
        &self,
        tunnel_id: &str,
        mode: RotateMode,
        services: Option<Vec<String>>,
        thing_name: Option<String>,
    ) -> Result<Rotated, BrokerError> {
        let mut tunnel = self.load_open(tunnel_id).await?;
        let (mut source_token, mut destination_token) = (None, None);
        if mode.source() {
            let m = mint(&self.key, tunnel_id, TokenMode::Source);
            tunnel.source = fresh_slot(&tunnel.source, m.hash, m.nonce);
            source_token = Some(m.token);
        }
        if mode.destination() {
            let m = mint(&self.key, tunnel_id, TokenMode::Destination);
            tunnel.destination = fresh_slot(&tunnel.destination, m.hash, m.nonce);
            destination_token = Some(m.token);
        }
        if let Some(services) = services {
            tunnel.services = services;
        }
        if thing_name.is_some() {
            tunnel.thing_name = thing_name;
        }
        tunnel.last_updated_at = self.clock.now();
        self.store.update_broker_tunnel(&tunnel).await?;
        self.after_rotation(&tunnel, mode);
        tracing::info!(tunnel = %tunnel_id, ?mode, "tokens rotated");
        Ok(Rotated {
            tunnel: TunnelInfo::from(&tunnel),
            source_token,
            destination_token,
        })
    }

    pub async fn describe(&self, tunnel_id: &str) -> Result<TunnelInfo, BrokerError> {
        Ok(TunnelInfo::from(&self.load(tunnel_id).await?))
    }

    /// Newest first. A `limit` of 0 or less means 100.
    pub async fn list(
        &self,
        mut filter: BrokerTunnelFilter,
    ) -> Result<Vec<TunnelInfo>, BrokerError> {
        if filter.limit <= 0 {
            filter.limit = 100;
        }
        let tunnels = self.store.list_broker_tunnels(&filter).await?;
        Ok(tunnels.iter().map(TunnelInfo::from).collect())
    }

    /// Keeps a tunnel usable: answers `current` when it is open and not expiring within
    /// `threshold`; otherwise opens a new one from `req` (`replaced: true`). Closing the old
    /// tunnel is the caller's job, once it has switched over (make-before-break).
    pub async fn ensure_active(
        &self,
        current: Option<&str>,
        req: OpenRequest,
        threshold: Duration,
    ) -> Result<Ensured, BrokerError> {
        if let Some(id) = current {
            if let Some(t) = self.store.broker_tunnel(id).await? {
                if t.status == TunnelStatus::Open && t.expires_at > self.clock.now() + threshold {
                    return Ok(Ensured {
                        tunnel: TunnelInfo::from(&t),
                        replaced: false,
                    });
                }
            }
        }
        let opened = self.open(req).await?;
        Ok(Ensured {
            tunnel: opened.tunnel,
            replaced: true,
        })
    }

    /// The current destination token, re-derived with the server key. If it was already
    /// spent and no destination is connected here, the destination token is rotated first,
    /// so that a device can always fetch a token that works.
    pub async fn destination_token(&self, tunnel_id: &str) -> Result<AccessToken, BrokerError> {
        let _guard = self.lock_tunnel(tunnel_id).await;
        let tunnel = self.load_open(tunnel_id).await?;
        let slot = &tunnel.destination;
        let usable = slot.used_at.is_none() || self.is_destination_connected(tunnel_id);
        if let (true, Some(nonce)) = (usable, slot.nonce.as_deref()) {
            return Ok(self.key.derive(tunnel_id, TokenMode::Destination, nonce));
        }
        let rotated = self
            .rotate_locked(tunnel_id, RotateMode::Destination, None, None)
            .await?;
        rotated
            .destination_token
            .ok_or_else(|| invalid("rotation issued no destination token"))
    }

    /// Closes every OPEN tunnel whose lifetime has run out (disconnecting its peers) and
    /// answers their ids. The scheduler calls it periodically; each live tunnel also has a
    /// timer of its own.
    pub async fn expire_due(&self) -> Result<Vec<String>, BrokerError> {
        // Strictly-earlier in the store; one millisecond covers "expires exactly now".
        let cutoff = self.clock.now() + Duration::milliseconds(1);
        let due = self
            .store
            .list_open_broker_tunnels_expiring_before(cutoff)
            .await?;
        let mut closed = Vec::with_capacity(due.len());
        for t in due {
            if self.expire_one(&t.tunnel_id).await? {
                closed.push(t.tunnel_id);
            }
        }
        Ok(closed)
    }

    /// Closes the tunnel if it is open and past its lifetime; true if it did.
    pub(crate) async fn expire_one(&self, tunnel_id: &str) -> Result<bool, BrokerError> {
        let _guard = self.lock_tunnel(tunnel_id).await;
        let Some(mut tunnel) = self.store.broker_tunnel(tunnel_id).await? else {
            return Ok(false);
        };
        let now = self.clock.now();
        if tunnel.status != TunnelStatus::Open || tunnel.expires_at > now {
            return Ok(false);
        }
        tunnel.status = TunnelStatus::Closed;
        tunnel.last_updated_at = now;
        self.store.update_broker_tunnel(&tunnel).await?;
        self.registry
            .close(tunnel_id, CLOSE_NORMAL, "tunnel expired");
        tracing::info!(tunnel = %tunnel_id, "tunnel expired");
        Ok(true)
    }

    /// Edits a tunnel's tags under the tunnel's lock, so a concurrent connect, rotation or
    /// close is not overwritten by the whole-row write. `edit` answers an error to refuse.
    pub async fn update_tags(
        &self,
        tunnel_id: &str,
        edit: impl FnOnce(&mut Vec<Tag>) -> Result<(), BrokerError>,
    ) -> Result<TunnelInfo, BrokerError> {
        let _guard = self.lock_tunnel(tunnel_id).await;
        let mut tunnel = self.load(tunnel_id).await?;
        edit(&mut tunnel.tags)?;
        validate::tags(&tunnel.tags)?;
        self.store.update_broker_tunnel(&tunnel).await?;
        Ok(TunnelInfo::from(&tunnel))
    }

    pub(crate) async fn load(&self, tunnel_id: &str) -> Result<BrokerTunnel, BrokerError> {
        self.store
            .broker_tunnel(tunnel_id)
            .await?
            .ok_or(BrokerError::NotFound)
    }

    /// The tunnel, if it is open and not past its lifetime.
    pub(crate) async fn load_open(&self, tunnel_id: &str) -> Result<BrokerTunnel, BrokerError> {
        let tunnel = self.load(tunnel_id).await?;
        if tunnel.status != TunnelStatus::Open || tunnel.expires_at <= self.clock.now() {
            return Err(BrokerError::Closed);
        }
        Ok(tunnel)
    }
}
