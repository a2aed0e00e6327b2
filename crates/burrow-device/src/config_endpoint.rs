//! `GET /api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels-config`: the seed's device
//! config endpoint. The device is whoever its certificate says, never the path; the call
//! records presence, makes sure each enabled tunnel has an active broker tunnel, and hands
//! out destination tokens. `?wait=S&version=V` long-polls for a change.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use burrow_store::{BrokerLink, Device, ReverseTunnel};
use chrono::Utc;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

pub use burrow_identity::wire::{DeviceConfigResponse, TunnelConfig};

use crate::auth::{authenticate, authorize};
use crate::device_url::DeviceUrls;
use crate::identity::DeviceIdentity;
use crate::provisioner::{service_name, ProvisionRequest};
use crate::state::{error, DeviceState, Refusal};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfigQuery {
    /// Seconds to wait for a change (at most 3600; the server may answer sooner, at its own
    /// cap, `DeviceConfig::max_wait`).
    #[param(maximum = 3600)]
    pub wait: Option<u64>,
    /// The `version` the device already has.
    pub version: Option<String>,
}

/// The largest `wait=` accepted (the document's maximum).
const MAX_WAIT_PARAM: u64 = 3600;

/// The device's tunnels, with destination access tokens for the enabled ones (the seed's
/// device config endpoint). Served on the device listener (mTLS): the device is whoever its
/// client certificate names, and must be the `{dsn}` of the path.
#[utoipa::path(get, path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels-config",
    operation_id = "get_device_config", tag = "device-agent",
    params(("dsn" = String, Path, description = "The device serial number (the certificate's)"),
        ConfigQuery),
    responses((status = 200, description = "the device's tunnels", body = DeviceConfigResponse),
        (status = 400, description = "the query is not `wait=SECONDS&version=V`"),
        (status = 401, description = "no valid device certificate"),
        (status = 403, description = "the certificate names another device, or the device is \
            unknown or revoked"),
        (status = 503, description = "this server node is shutting down: the agent moves to \
            its next device URL")),
    security(("device_certificate" = [])))]
pub(crate) async fn get_config(
    State(state): State<DeviceState>,
    Path(dsn): Path<String>,
    query: Result<Query<ConfigQuery>, QueryRejection>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    let Some(query) = query
        .ok()
        .map(|Query(q)| q)
        .filter(|q| q.wait.is_none_or(|w| w <= MAX_WAIT_PARAM))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid query: expected wait=SECONDS (at most 3600)&version=V",
        );
    };
    let identity = match authenticate(&state, &headers, &extensions) {
        Ok(id) => id,
        Err(refusal) => return refusal.into_response(),
    };
    if identity.dsn != dsn {
        // Never serve another device's config, whatever the path says.
        return error(
            StatusCode::FORBIDDEN,
            "certificate does not belong to this device",
        );
    }
    match respond(&state, &identity, query).await {
        Ok(cfg) => Json(cfg).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn respond(
    state: &DeviceState,
    identity: &DeviceIdentity,
    query: ConfigQuery,
) -> Result<DeviceConfigResponse, Refusal> {
    let st = &state.inner;
    let draining = || {
        st.notifier.is_draining().then_some(Refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "this server node is shutting down: use another device URL",
        ))
    };
    if let Some(refusal) = draining() {
        return Err(refusal);
    }
    let mut device = authorize(state, identity).await?;
    touch(state, &device).await;
    // Subscribe before reading, so a change made while we build is not missed.
    let mut changes = st.notifier.subscribe(device.id);
    let mut cfg = build(state, &device).await?;
    let (Some(wait), Some(known)) = (query.wait, query.version) else {
        return Ok(cfg);
    };
    if wait == 0 || cfg.version != known {
        return Ok(cfg);
    }
    let deadline = Instant::now() + Duration::from_secs(wait).min(st.config.max_wait);
    loop {
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    // Channel gone (should not happen): fall back to a plain timed wait.
                    tokio::time::sleep_until(deadline).await;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {}
        }
        if let Some(refusal) = draining() {
            return Err(refusal);
        }
        // Re-check the device record: it may have been revoked or re-enrolled meanwhile.
        device = authorize(state, identity).await?;
        cfg = build(state, &device).await?;
        if cfg.version != known || Instant::now() >= deadline {
            break;
        }
    }
    touch(state, &device).await;
    Ok(cfg)
}

/// Presence is best effort: a store hiccup must not cost the device its config.
async fn touch(state: &DeviceState, device: &Device) {
    if let Err(e) = state.inner.store.touch_device(device.id, Utc::now()).await {
        tracing::warn!(device_id = device.id, error = %e, "could not record device contact");
    }
}

async fn build(state: &DeviceState, device: &Device) -> Result<DeviceConfigResponse, Refusal> {
    let st = &state.inner;
    let _guard = state.ensure_lock(device.id).await;
    let mut tunnels = st
        .store
        .list_reverse_tunnels(device.id)
        .await
        .map_err(|e| {
            tracing::error!(device_id = device.id, error = %e, "listing reverse tunnels failed");
            Refusal(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        })?;
    tunnels.sort_by_key(|t| t.id);
    let mut entries = Vec::with_capacity(tunnels.len());
    for t in tunnels {
        entries.push(tunnel_entry(state, device, t).await);
    }
    let urls = &st.config.device_urls;
    let version = version_of(&entries, urls);
    Ok(DeviceConfigResponse {
        tunnels: entries,
        version,
        // For agents that predate `device_urls`: the broker on the first device URL.
        broker_url: Some(urls.first().broker_url()),
        device_urls: Some(urls.clone()),
    })
}

/// One tunnel's entry. Broker failures degrade to `tunnel_id: null` for that tunnel (the
/// seed's agent skips such entries) so that the device's other tunnels keep working.
async fn tunnel_entry(state: &DeviceState, device: &Device, t: ReverseTunnel) -> TunnelConfig {
    let st = &state.inner;
    let service = service_name(&t.protocol, t.local_port);
    let mut entry = TunnelConfig {
        id: t.id,
        name: t.name.clone(),
        is_enabled: t.is_enabled,
        local_port: t.local_port,
        protocol: t.protocol.clone(),
        tunnel_id: t.tunnel_id.clone(),
        tunnel_arn: t.tunnel_arn.clone(),
        destination_access_token: None,
        public_url: t.public_url.clone(),
        expires_at: t.expires_at,
        service: service.clone(),
    };
    if !t.is_enabled {
        return entry;
    }
    entry.tunnel_id = None;
    entry.tunnel_arn = None;
    entry.expires_at = None;
    let req = ProvisionRequest {
        project_id: Some(device.project_id),
        description: Some(format!("reverse tunnel {} ({})", t.id, t.name)),
        thing_name: Some(device.dsn.clone()),
        services: vec![service],
        lifetime_minutes: None,
    };
    let current = t.tunnel_id.as_deref();
    let active = match st
        .provisioner
        .ensure_active(current, req, st.config.rotate_threshold)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(reverse_tunnel_id = t.id, error = %e, "could not ensure broker tunnel");
            return entry;
        }
    };
    // Stored timestamps may lose sub-second precision: compare whole seconds.
    let recorded = current == Some(active.tunnel_id.as_str())
        && t.tunnel_arn.as_deref() == Some(active.tunnel_arn.as_str())
        && t.expires_at.map(|e| e.timestamp()) == Some(active.expires_at.timestamp());
    if !recorded {
        let link = BrokerLink {
            tunnel_id: Some(active.tunnel_id.clone()),
            tunnel_arn: Some(active.tunnel_arn.clone()),
            expires_at: Some(active.expires_at),
        };
        if let Err(e) = st
            .store
            .set_reverse_tunnel_broker(t.id, link, Utc::now())
            .await
        {
            tracing::error!(reverse_tunnel_id = t.id, error = %e, "could not record broker tunnel");
            if active.replaced {
                // Unrecorded, the new tunnel would leak until it expires: close it now.
                let _ = st.provisioner.close(&active.tunnel_id, true).await;
            }
            return entry;
        }
    }
    if active.replaced {
        if let Some(old) = current.filter(|old| *old != active.tunnel_id) {
            if let Err(e) = st.provisioner.close(old, false).await {
                tracing::warn!(tunnel_id = old, error = %e, "could not close replaced broker tunnel");
            }
        }
    }
    entry.tunnel_id = Some(active.tunnel_id.clone());
    entry.tunnel_arn = Some(active.tunnel_arn);
    entry.expires_at = Some(active.expires_at);
    match st.provisioner.destination_token(&active.tunnel_id).await {
        Ok(token) => entry.destination_access_token = Some(token.expose().to_string()),
        Err(e) => tracing::warn!(tunnel_id = %active.tunnel_id, error = %e, "no destination token"),
    }
    entry
}

/// A digest of everything the device sees (tokens included, so a token rotation is a
/// change); the tokens cannot be recovered from it.
fn version_of(tunnels: &[TunnelConfig], urls: &DeviceUrls) -> String {
    let json = serde_json::to_vec(&(tunnels, urls)).expect("config serializes");
    hex::encode(&Sha256::digest(&json)[..16])
}
