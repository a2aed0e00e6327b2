//! Per-tunnel API keys: `POST/GET .../reverse-tunnels/{id}/api-keys` and
//! `DELETE .../api-keys/{key_id}`. The key is in the creation answer only; the store keeps its
//! SHA-256. A machine sends it to the tunnel host as `Authorization: Bearer` or `X-Burrow-Key`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use burrow_store::{NewTunnelKey, StoreError, TunnelKey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Action;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::projects::parse_id;
use crate::routes::reverse_tunnels::tunnel_of;
use crate::routes::sharing_audit::{record, Audited};
use crate::routes::visible_device;
use crate::sharing::{new_secret, parse_methods, HttpMethod, KEY_PREFIX};
use crate::AppState;

type Ts = chrono::DateTime<chrono::Utc>;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "monitoring", "methods": ["GET", "HEAD"],
    "expires_at": "2030-01-01T00:00:00Z"}))]
pub struct CreateTunnelKey {
    /// 1-100 characters, not only spaces.
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    pub name: String,
    /// RFC 3339, in the future; none: the key does not expire.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// HTTP methods the key may use (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS); none or
    /// empty: every method.
    #[schema(value_type = Option<Vec<HttpMethod>>, max_items = 14)]
    pub methods: Option<Vec<String>>,
}

/// A key as listed (never the key itself).
#[derive(Serialize, ToSchema)]
pub struct TunnelKeyResponse {
    pub id: i64,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub methods: Vec<String>,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Ts>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Ts,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Ts>,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Ts>,
    pub created_by: Option<i64>,
}

/// The answer of creation: the only time `key` is shown.
#[derive(Serialize, ToSchema)]
pub struct CreatedTunnelKey {
    pub id: i64,
    pub name: String,
    /// The key (`bk_...`): send it as `Authorization: Bearer <key>` or `X-Burrow-Key: <key>`.
    pub key: String,
    pub prefix: String,
    pub methods: Vec<String>,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Ts>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Ts,
}

#[derive(Serialize, ToSchema)]
pub struct TunnelKeyList {
    pub items: Vec<TunnelKeyResponse>,
    pub total: usize,
}

fn respond(k: TunnelKey) -> TunnelKeyResponse {
    TunnelKeyResponse {
        id: k.id,
        name: k.name,
        prefix: k.prefix,
        methods: k.methods,
        expires_at: k.expires_at,
        created_at: k.created_at,
        last_used_at: k.last_used_at,
        revoked_at: k.revoked_at,
        created_by: k.created_by,
    }
}

fn key_name(name: &str) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "name",
            "name must be 1-100 characters, not only spaces",
        ));
    }
    Ok(name.to_string())
}

fn expiry(raw: Option<&str>) -> ApiResult<Option<Ts>> {
    let Some(raw) = raw else { return Ok(None) };
    let at = chrono::DateTime::parse_from_rfc3339(raw)
        .map_err(|_| ApiError::validation("expires_at", "expires_at must be RFC 3339"))?
        .with_timezone(&chrono::Utc);
    if at <= chrono::Utc::now() {
        return Err(ApiError::validation(
            "expires_at",
            "expires_at must be in the future",
        ));
    }
    if at.timestamp() > 253_402_300_799 {
        return Err(ApiError::validation("expires_at", "expires_at is too far"));
    }
    Ok(Some(at))
}

#[utoipa::path(post, path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/api-keys",
    operation_id = "create_tunnel_api_key", tag = "sharing",
    params(("dsn" = String, Path, description = "The device serial number", example = "SHARE1"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 2)),
    request_body = CreateTunnelKey,
    responses((status = 201, description = "the new key, shown this once", body = CreatedTunnelKey),
        (status = 422, description = "a bad name, expiry or method")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id)): Path<(String, String)>,
    ValidJson(req): ValidJson<CreateTunnelKey>,
) -> ApiResult<(StatusCode, Json<CreatedTunnelKey>)> {
    let device = visible_device(&state, &user, &dsn, Action::MintKeys).await?;
    let t = tunnel_of(&state, &device, &id).await?;
    let name = key_name(&req.name)?;
    let expires_at = expiry(req.expires_at.as_deref())?;
    let methods = parse_methods(req.methods)?;
    let secret = new_secret(KEY_PREFIX);
    let k = state
        .store
        .create_tunnel_key(NewTunnelKey {
            reverse_tunnel_id: t.id,
            name,
            prefix: secret.prefix,
            key_hash: secret.hash,
            methods,
            expires_at,
            created_by: Some(user.id),
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound("reverse tunnel"),
            other => other.into(),
        })?;
    record(
        &state,
        Audited {
            action: "api_key.create",
            tunnel_id: t.id,
            object_id: Some(k.id),
            detail: Some(k.name.clone()),
            device: &device,
            actor: &user,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTunnelKey {
            id: k.id,
            name: k.name,
            key: secret.secret,
            prefix: k.prefix,
            methods: k.methods,
            expires_at: k.expires_at,
            created_at: k.created_at,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/api-keys",
    operation_id = "list_tunnel_api_keys", tag = "sharing",
    params(("dsn" = String, Path, description = "The device serial number", example = "SHARE1"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 2)),
    responses((status = 200, description = "the tunnel's keys, revoked ones included",
        body = TunnelKeyList)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id)): Path<(String, String)>,
) -> ApiResult<Json<TunnelKeyList>> {
    let device = visible_device(&state, &user, &dsn, Action::View).await?;
    let t = tunnel_of(&state, &device, &id).await?;
    let items: Vec<_> = state
        .store
        .list_tunnel_keys(t.id)
        .await?
        .into_iter()
        .map(respond)
        .collect();
    let total = items.len();
    Ok(Json(TunnelKeyList { items, total }))
}

#[utoipa::path(delete,
    path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/api-keys/{key_id}",
    operation_id = "revoke_tunnel_api_key", tag = "sharing",
    params(("dsn" = String, Path, description = "The device serial number", example = "SHARE1"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 2),
        ("key_id" = i64, Path, description = "The key's id", example = 1)),
    responses((status = 200, description = "the key, revoked (at once)", body = TunnelKeyResponse),
        (status = 404, description = "the tunnel has no such key")),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id, key_id)): Path<(String, String, String)>,
) -> ApiResult<Json<TunnelKeyResponse>> {
    let device = visible_device(&state, &user, &dsn, Action::MintKeys).await?;
    let t = tunnel_of(&state, &device, &id).await?;
    let key_id = parse_id(&key_id)?;
    let k = state
        .store
        .revoke_tunnel_key(t.id, key_id, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound("api key"),
            other => other.into(),
        })?;
    record(
        &state,
        Audited {
            action: "api_key.revoke",
            tunnel_id: t.id,
            object_id: Some(k.id),
            detail: Some(k.name.clone()),
            device: &device,
            actor: &user,
        },
    )
    .await?;
    Ok(Json(respond(k)))
}
