//! The seed's management endpoints, same paths and JSON shapes:
//! `GET/POST /api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels`,
//! `PUT/DELETE .../reverse-tunnels/{id}`; plus `GET .../{id}`, `POST .../{id}/rotate` and
//! `GET .../{id}/access-log`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use burrow_store::{Device, NewReverseTunnel, ReverseTunnel, ReverseTunnelPatch, StoreError};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::access::Action;
use crate::auth::AuthUser;
use crate::domain::{self, Dsn, Subdomain, TunnelProtocol};
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::public_url;
use crate::routes::projects::parse_id;
use crate::routes::sharing_audit::{record, Audited};
use crate::routes::tunnel_limits::{self, BandwidthLimitBody, RateLimitBody};
use crate::routes::{require, visible_device};
use crate::sharing::{parse_cidrs, Cidr};
use crate::AppState;

type Ts = chrono::DateTime<chrono::Utc>;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Web Dashboard", "description": "Robot control interface",
    "local_port": 8080, "protocol": "http", "require_auth": true}))]
pub struct CreateReverseTunnel {
    /// 1-255 characters, not only spaces.
    #[schema(min_length = 1, max_length = 255, pattern = r"\S")]
    pub name: String,
    /// At most 2048 characters.
    #[schema(max_length = 2048)]
    pub description: Option<String>,
    /// 1-65535, default 8080.
    #[schema(minimum = 1, maximum = 65535)]
    pub local_port: Option<i64>,
    /// Default http.
    #[schema(value_type = Option<TunnelProtocol>)]
    pub protocol: Option<String>,
    /// Default true.
    pub require_auth: Option<bool>,
    /// Default true.
    pub is_enabled: Option<bool>,
    /// When not empty, only these users (members of the device's project) may pass the edge.
    #[schema(max_items = 1000)]
    pub allowed_user_ids: Option<Vec<i64>>,
    /// Clients allowed (CIDRs, IPv4 or IPv6; empty: any). Others get 403 before any login.
    #[schema(value_type = Option<Vec<Cidr>>, max_items = 100)]
    pub ip_allow: Option<Vec<String>>,
    /// Clients refused (CIDRs); wins over `ip_allow`.
    #[schema(value_type = Option<Vec<Cidr>>, max_items = 100)]
    pub ip_deny: Option<Vec<String>>,
    /// Ask for a specific DNS label under the base domain (409 when taken).
    #[schema(pattern = "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")]
    pub subdomain: Option<String>,
    /// Requests per second admitted through the edge (none by default).
    pub rate_limit: Option<RateLimitBody>,
    /// Bytes per second each direction (none by default).
    pub bandwidth_limit: Option<BandwidthLimitBody>,
    /// Requests and WebSockets one client address may have open at once, 1-10000.
    #[schema(minimum = 1, maximum = 10000)]
    pub max_connections_per_client: Option<i64>,
}

/// Any subset of fields; `null` clears `description` and `allowed_user_ids`.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"is_enabled": false}))]
pub struct UpdateReverseTunnel {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 255, pattern = r"\S")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 2048)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i64, minimum = 1, maximum = 65535)]
    pub local_port: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = TunnelProtocol)]
    pub protocol: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub require_auth: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub is_enabled: Option<Option<bool>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<i64>>, max_items = 1000)]
    pub allowed_user_ids: Option<Option<Vec<i64>>>,
    /// `null` or `[]`: any client.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<Cidr>>, max_items = 100)]
    pub ip_allow: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<Cidr>>, max_items = 100)]
    pub ip_deny: Option<Option<Vec<String>>>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<RateLimitBody>)]
    pub rate_limit: Option<Option<RateLimitBody>>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<BandwidthLimitBody>)]
    pub bandwidth_limit: Option<Option<BandwidthLimitBody>>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 10000)]
    pub max_connections_per_client: Option<Option<i64>>,
}

/// Distinguishes a field sent as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The seed's `ReverseTunnelResponse`. Access tokens are never part of it.
#[derive(Serialize, ToSchema)]
pub struct ReverseTunnelResponse {
    pub id: i64,
    pub device_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub public_url: String,
    pub local_port: i64,
    #[schema(value_type = TunnelProtocol)]
    pub protocol: String,
    pub is_enabled: bool,
    pub require_auth: bool,
    pub allowed_user_ids: Vec<i64>,
    /// Clients allowed (CIDRs; empty: any).
    pub ip_allow: Vec<String>,
    /// Clients refused (CIDRs; wins over `ip_allow`).
    pub ip_deny: Vec<String>,
    pub tunnel_id: Option<String>,
    pub tunnel_arn: Option<String>,
    pub total_requests: i64,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_accessed_at: Option<Ts>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Ts,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<Ts>,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Ts>,
    /// The broker tunnel's status: OPEN, CLOSED, or null when none is open.
    pub status: Option<String>,
    /// Whether the device's agent is connected to the tunnel right now.
    pub agent_connected: bool,
    pub rate_limit: Option<RateLimitBody>,
    pub bandwidth_limit: Option<BandwidthLimitBody>,
    pub max_connections_per_client: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct ReverseTunnelList {
    pub items: Vec<ReverseTunnelResponse>,
    pub total: usize,
}

async fn respond(state: &AppState, t: ReverseTunnel) -> ReverseTunnelResponse {
    let live = state.lifecycle.tunnel_state(&t).await;
    let limits = tunnel_limits::view(&t.limits);
    ReverseTunnelResponse {
        id: t.id,
        device_id: t.device_id,
        name: t.name,
        description: t.description,
        public_url: t.public_url,
        local_port: t.local_port,
        protocol: t.protocol,
        is_enabled: t.is_enabled,
        require_auth: t.require_auth,
        allowed_user_ids: t.allowed_user_ids,
        ip_allow: t.ip_allow,
        ip_deny: t.ip_deny,
        tunnel_id: t.tunnel_id,
        tunnel_arn: t.tunnel_arn,
        total_requests: t.total_requests,
        last_accessed_at: t.last_accessed_at,
        created_at: t.created_at,
        updated_at: t.updated_at,
        expires_at: t.expires_at,
        status: live.status,
        agent_connected: live.agent_connected,
        rate_limit: limits.rate_limit,
        bandwidth_limit: limits.bandwidth_limit,
        max_connections_per_client: limits.max_connections_per_client,
    }
}

/// The tunnel `id` of `device` (404 if it belongs to another device).
pub(crate) async fn tunnel_of(
    state: &AppState,
    device: &Device,
    id: &str,
) -> ApiResult<ReverseTunnel> {
    let id = parse_id(id)?;
    match state.store.reverse_tunnel_by_id(id).await? {
        Some(t) if t.device_id == device.id => Ok(t),
        _ => Err(ApiError::NotFound("reverse tunnel")),
    }
}

/// `allowed_user_ids` must name members of the device's project.
async fn check_allowed(state: &AppState, device: &Device, ids: &[i64]) -> ApiResult<Vec<i64>> {
    if ids.len() > 1000 {
        return Err(ApiError::validation(
            "allowed_user_ids",
            "at most 1000 users",
        ));
    }
    let mut out: Vec<i64> = ids.to_vec();
    out.sort_unstable();
    out.dedup();
    for id in &out {
        if !state.store.is_member(device.project_id, *id).await? {
            return Err(ApiError::validation(
                "allowed_user_ids",
                format!("user {id} is not a member of the device's project"),
            ));
        }
    }
    Ok(out)
}

#[utoipa::path(get, path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels",
    operation_id = "list_reverse_tunnels", tag = "reverse-tunnels",
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123")),
    responses((status = 200, description = "the device's tunnels", body = ReverseTunnelList)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(dsn): Path<String>,
) -> ApiResult<Json<ReverseTunnelList>> {
    let device = visible_device(&state, &user, &dsn, Action::View).await?;
    let mut items = Vec::new();
    for t in state.store.list_reverse_tunnels(device.id).await? {
        items.push(respond(&state, t).await);
    }
    let total = items.len();
    Ok(Json(ReverseTunnelList { items, total }))
}

#[utoipa::path(post, path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels",
    operation_id = "create_reverse_tunnel", tag = "reverse-tunnels",
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123")),
    request_body = CreateReverseTunnel,
    responses((status = 201, description = "the new tunnel", body = ReverseTunnelResponse),
        (status = 409, description = "the subdomain is taken")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(dsn): Path<String>,
    ValidJson(req): ValidJson<CreateReverseTunnel>,
) -> ApiResult<(StatusCode, Json<ReverseTunnelResponse>)> {
    let device = visible_device(&state, &user, &dsn, Action::EditTunnels).await?;
    // A member's tunnel gets the default auth settings; setting them needs admin.
    let sets_auth = req.require_auth == Some(false)
        || req.allowed_user_ids.as_ref().is_some_and(|v| !v.is_empty())
        || req.ip_allow.as_ref().is_some_and(|v| !v.is_empty())
        || req.ip_deny.as_ref().is_some_and(|v| !v.is_empty());
    if sets_auth {
        require(&state, &user, device.project_id, Action::TunnelAuth).await?;
    }
    let name = domain::tunnel_name(&req.name)?;
    let description = domain::description(req.description)?;
    let local_port = domain::local_port(req.local_port.unwrap_or(8080))?;
    let protocol = TunnelProtocol::parse(req.protocol.as_deref().unwrap_or("http"))?;
    let allowed = check_allowed(&state, &device, &req.allowed_user_ids.unwrap_or_default()).await?;
    let ip_allow = parse_cidrs("ip_allow", &req.ip_allow.unwrap_or_default())?;
    let ip_deny = parse_cidrs("ip_deny", &req.ip_deny.unwrap_or_default())?;
    let requested = req.subdomain.as_deref().map(Subdomain::parse).transpose()?;
    let limits = tunnel_limits::on_create(
        req.rate_limit,
        req.bandwidth_limit,
        req.max_connections_per_client,
    )?;
    let base = &state.config.base_domain;
    let candidates = match &requested {
        Some(sub) => vec![public_url::requested(sub, base)],
        None => public_url::candidates(&Dsn::parse(&device.dsn)?, &name, base),
    };
    let mut created = None;
    for host in candidates {
        let row = NewReverseTunnel {
            device_id: device.id,
            name: name.clone(),
            description: description.clone(),
            public_url: host,
            is_enabled: req.is_enabled.unwrap_or(true),
            local_port,
            protocol: protocol.as_str().to_string(),
            require_auth: req.require_auth.unwrap_or(true),
            allowed_user_ids: allowed.clone(),
            ip_allow: ip_allow.clone(),
            ip_deny: ip_deny.clone(),
        };
        match state.store.create_reverse_tunnel(row).await {
            Ok(t) => {
                created = Some(t);
                break;
            }
            // Taken (possibly by a concurrent request): try the next name.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    let Some(mut tunnel) = created else {
        return Err(ApiError::Conflict(match requested {
            Some(_) => "this subdomain is already taken".into(),
            None => "could not allocate a unique public_url".into(),
        }));
    };
    if !limits.is_empty() {
        let patch = ReverseTunnelPatch {
            limits: Some(limits),
            ..ReverseTunnelPatch::default()
        };
        match state
            .store
            .update_reverse_tunnel(tunnel.id, patch, tunnel.created_at)
            .await
        {
            Ok(t) => tunnel = t,
            Err(e) => {
                let _ = state.store.delete_reverse_tunnel(tunnel.id).await;
                return Err(e.into());
            }
        }
    }
    let tunnel = match state
        .lifecycle
        .tunnel_created(&device, tunnel.clone())
        .await
    {
        Ok(t) => t,
        Err(e) => {
            // Keep API and broker consistent: no row without its tunnel.
            let _ = state.store.delete_reverse_tunnel(tunnel.id).await;
            return Err(e);
        }
    };
    Ok((StatusCode::CREATED, Json(respond(&state, tunnel).await)))
}

#[utoipa::path(get, path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}",
    operation_id = "get_reverse_tunnel", tag = "reverse-tunnels",
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 1)),
    responses((status = 200, description = "the tunnel", body = ReverseTunnelResponse)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id)): Path<(String, String)>,
) -> ApiResult<Json<ReverseTunnelResponse>> {
    let device = visible_device(&state, &user, &dsn, Action::View).await?;
    let t = tunnel_of(&state, &device, &id).await?;
    Ok(Json(respond(&state, t).await))
}

#[utoipa::path(put, path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}",
    operation_id = "update_reverse_tunnel", tag = "reverse-tunnels",
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 1)),
    request_body = UpdateReverseTunnel,
    responses((status = 200, description = "the tunnel, updated", body = ReverseTunnelResponse)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id)): Path<(String, String)>,
    ValidJson(req): ValidJson<UpdateReverseTunnel>,
) -> ApiResult<Json<ReverseTunnelResponse>> {
    let device = visible_device(&state, &user, &dsn, Action::EditTunnels).await?;
    let before = tunnel_of(&state, &device, &id).await?;
    let patch = build_patch(&state, &device, &before, req).await?;
    // Sending the current auth settings back (a whole-object PUT) is no change.
    let changes_auth = patch.require_auth.is_some_and(|v| v != before.require_auth)
        || patch
            .allowed_user_ids
            .as_ref()
            .is_some_and(|v| *v != before.allowed_user_ids)
        || patch
            .ip_allow
            .as_ref()
            .is_some_and(|v| *v != before.ip_allow)
        || patch.ip_deny.as_ref().is_some_and(|v| *v != before.ip_deny);
    if changes_auth {
        require(&state, &user, device.project_id, Action::TunnelAuth).await?;
    }
    let rules_changed = patch.ip_allow.is_some() || patch.ip_deny.is_some();
    let after = state
        .store
        .update_reverse_tunnel(before.id, patch, chrono::Utc::now())
        .await?;
    let after = state
        .lifecycle
        .tunnel_updated(&device, &before, after)
        .await?;
    if rules_changed && (after.ip_allow != before.ip_allow || after.ip_deny != before.ip_deny) {
        record(
            &state,
            Audited {
                action: "ip_rules.update",
                tunnel_id: after.id,
                object_id: None,
                detail: Some(format!(
                    "ip_allow={:?} ip_deny={:?}",
                    after.ip_allow, after.ip_deny
                )),
                device: &device,
                actor: &user,
            },
        )
        .await?;
    }
    Ok(Json(respond(&state, after).await))
}

fn required<T>(field: &str, v: Option<Option<T>>) -> ApiResult<Option<T>> {
    match v {
        Some(None) => Err(ApiError::validation(
            field,
            format!("{field} cannot be null"),
        )),
        Some(Some(v)) => Ok(Some(v)),
        None => Ok(None),
    }
}

async fn build_patch(
    state: &AppState,
    device: &Device,
    before: &ReverseTunnel,
    req: UpdateReverseTunnel,
) -> ApiResult<ReverseTunnelPatch> {
    let limits = tunnel_limits::on_update(
        &before.limits,
        req.rate_limit,
        req.bandwidth_limit,
        req.max_connections_per_client,
    )?;
    let allowed = match req.allowed_user_ids {
        None => None,
        Some(None) => Some(Vec::new()),
        Some(Some(ids)) => Some(check_allowed(state, device, &ids).await?),
    };
    Ok(ReverseTunnelPatch {
        name: required("name", req.name)?
            .map(|n| domain::tunnel_name(&n))
            .transpose()?,
        description: match req.description {
            None => None,
            Some(d) => Some(domain::description(d)?),
        },
        is_enabled: required("is_enabled", req.is_enabled)?,
        local_port: required("local_port", req.local_port)?
            .map(domain::local_port)
            .transpose()?,
        protocol: required("protocol", req.protocol)?
            .map(|p| TunnelProtocol::parse(&p).map(|p| p.as_str().to_string()))
            .transpose()?,
        require_auth: required("require_auth", req.require_auth)?,
        allowed_user_ids: allowed,
        ip_allow: req
            .ip_allow
            .map(|v| parse_cidrs("ip_allow", &v.unwrap_or_default()))
            .transpose()?,
        ip_deny: req
            .ip_deny
            .map(|v| parse_cidrs("ip_deny", &v.unwrap_or_default()))
            .transpose()?,
        limits,
    })
}

#[derive(Serialize, ToSchema)]
pub struct Message {
    pub message: &'static str,
}

#[utoipa::path(delete, path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}",
    operation_id = "delete_reverse_tunnel", tag = "reverse-tunnels",
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 1)),
    responses((status = 200, description = "deleted", body = Message)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id)): Path<(String, String)>,
) -> ApiResult<Json<Message>> {
    let device = visible_device(&state, &user, &dsn, Action::EditTunnels).await?;
    let t = tunnel_of(&state, &device, &id).await?;
    state.lifecycle.tunnel_deleted(&device, &t).await?;
    state.store.delete_reverse_tunnel(t.id).await?;
    Ok(Json(Message {
        message: "Reverse tunnel deleted successfully",
    }))
}

/// Rotate the tunnel now (the seed's troubleshooting step): a new broker tunnel and tokens,
/// answered as the tunnel with its new `tunnel_id` and `expires_at` (never a token).
#[utoipa::path(post, path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/rotate",
    operation_id = "rotate_reverse_tunnel", tag = "reverse-tunnels",
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 1)),
    responses((status = 200, description = "the tunnel with its new broker tunnel",
            body = ReverseTunnelResponse),
        (status = 409, description = "the tunnel is disabled"),
        (status = 503, description = "this server has no tunnel broker")),
    security(("bearer" = [])))]
pub async fn rotate(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id)): Path<(String, String)>,
) -> ApiResult<Json<ReverseTunnelResponse>> {
    let device = visible_device(&state, &user, &dsn, Action::Rotate).await?;
    let t = tunnel_of(&state, &device, &id).await?;
    if !t.is_enabled {
        return Err(ApiError::Conflict("the tunnel is disabled".into()));
    }
    let rotated = state
        .lifecycle
        .tunnel_rotate(&device, t)
        .await?
        .ok_or_else(|| ApiError::Unavailable("this server has no tunnel broker".into()))?;
    Ok(Json(respond(&state, rotated).await))
}

#[derive(Serialize, ToSchema)]
pub struct AccessLogItem {
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Ts,
    pub user_id: Option<i64>,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub duration_ms: i64,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AccessLogList {
    pub items: Vec<AccessLogItem>,
    pub total: usize,
}

/// Troubleshooting view of a tunnel (the seed's `describe_tunnel`): the broker tunnel's status,
/// source and destination connection states, expiry, and the device's last contact.
#[utoipa::path(get, path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/describe",
    operation_id = "describe_reverse_tunnel", tag = "reverse-tunnels",
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 1)),
    responses((status = 200, description = "status, connection states, expiry, last contact",
        body = TunnelDescription)),
    security(("bearer" = [])))]
pub async fn describe(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id)): Path<(String, String)>,
) -> ApiResult<Json<TunnelDescription>> {
    let device = visible_device(&state, &user, &dsn, Action::View).await?;
    let t = tunnel_of(&state, &device, &id).await?;
    let broker = state.lifecycle.tunnel_describe(&t).await?;
    let now = chrono::Utc::now();
    Ok(Json(TunnelDescription {
        id: t.id,
        name: t.name,
        public_url: t.public_url,
        is_enabled: t.is_enabled,
        tunnel_id: t.tunnel_id,
        expires_at: t.expires_at,
        tunnel: broker,
        device: DeviceContact {
            online: device.revoked_at.is_none()
                && device
                    .last_seen_at
                    .is_some_and(|s| now - s <= state.config.online_window),
            dsn: device.dsn,
            last_seen_at: device.last_seen_at,
        },
    }))
}

/// The answer of `describe`.
#[derive(Serialize, ToSchema)]
pub struct TunnelDescription {
    pub id: i64,
    pub name: String,
    pub public_url: String,
    pub is_enabled: bool,
    pub tunnel_id: Option<String>,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Ts>,
    /// The broker's view (AWS `DescribeTunnel`'s shape: status, connection states, expiry),
    /// or null when the tunnel has no broker tunnel.
    #[schema(value_type = Option<Object>)]
    pub tunnel: Option<serde_json::Value>,
    pub device: DeviceContact,
}

/// The device's last contact, as `describe` shows it.
#[derive(Serialize, ToSchema)]
pub struct DeviceContact {
    pub dsn: String,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<Ts>,
    pub online: bool,
}
