//! Share links: `POST/GET .../reverse-tunnels/{id}/share-links` and
//! `DELETE .../share-links/{link_id}`. The `url` (with the link's secret) is in the creation
//! answer only; opening it on the tunnel host gives a browser a session for that one tunnel
//! until the link expires or is revoked (see the edge's `share.rs`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use burrow_store::{NewShareLink, ShareLink, StoreError};
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
use crate::sharing::{new_secret, parse_methods, HttpMethod, LINK_PREFIX};
use crate::AppState;

type Ts = chrono::DateTime<chrono::Utc>;

/// The path on a tunnel host that redeems a share link: `<SHARE_PATH><secret>`.
pub const SHARE_PATH: &str = "/__burrow/share/";

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"expires_in_minutes": 120, "max_uses": 1, "note": "for ACME"}))]
pub struct CreateShareLink {
    /// 1 up to the server's `share_link_max_minutes` (default 10080: 7 days).
    #[schema(minimum = 1, maximum = 10080)]
    pub expires_in_minutes: i64,
    /// Distinct visitors (browsers) the link admits; none: no limit.
    #[schema(minimum = 1, maximum = 1000000)]
    pub max_uses: Option<i64>,
    /// HTTP methods visitors may use; none or empty: every method.
    #[schema(value_type = Option<Vec<HttpMethod>>, max_items = 14)]
    pub methods: Option<Vec<String>>,
    /// At most 500 characters.
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

/// A link as listed (never its secret).
#[derive(Serialize, ToSchema)]
pub struct ShareLinkResponse {
    pub id: i64,
    /// The secret's first characters, to tell links apart.
    pub prefix: String,
    pub note: Option<String>,
    pub methods: Vec<String>,
    pub max_uses: Option<i64>,
    /// Distinct visitors so far.
    pub uses: i64,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Ts,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Ts,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<Ts>,
    pub created_by: Option<i64>,
}

/// The answer of creation: the only time `url` is shown.
#[derive(Serialize, ToSchema)]
pub struct CreatedShareLink {
    /// Open it in a browser: a session for this tunnel only, until `expires_at`.
    pub url: String,
    #[serde(flatten)]
    pub link: ShareLinkResponse,
}

#[derive(Serialize, ToSchema)]
pub struct ShareLinkList {
    pub items: Vec<ShareLinkResponse>,
    pub total: usize,
}

fn respond(l: ShareLink) -> ShareLinkResponse {
    ShareLinkResponse {
        id: l.id,
        prefix: l.prefix,
        note: l.note,
        methods: l.methods,
        max_uses: l.max_uses,
        uses: l.uses,
        expires_at: l.expires_at,
        created_at: l.created_at,
        revoked_at: l.revoked_at,
        created_by: l.created_by,
    }
}

fn note(raw: Option<String>) -> ApiResult<Option<String>> {
    match raw.map(|n| n.trim().to_string()) {
        Some(n) if n.chars().count() > 500 || n.chars().any(char::is_control) => Err(
            ApiError::validation("note", "note must be at most 500 characters"),
        ),
        Some(n) if n.is_empty() => Ok(None),
        other => Ok(other),
    }
}

fn tunnel_origin(state: &AppState, host: &str) -> String {
    state.config.tunnel_origin(host)
}

#[utoipa::path(post,
    path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/share-links",
    operation_id = "create_share_link", tag = "sharing",
    params(("dsn" = String, Path, description = "The device serial number", example = "SHARE1"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 2)),
    request_body = CreateShareLink,
    responses((status = 201, description = "the new link; its url is shown this once",
            body = CreatedShareLink),
        (status = 422, description = "a bad duration, max_uses, method or note")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id)): Path<(String, String)>,
    ValidJson(req): ValidJson<CreateShareLink>,
) -> ApiResult<(StatusCode, Json<CreatedShareLink>)> {
    let device = visible_device(&state, &user, &dsn, Action::Share).await?;
    let t = tunnel_of(&state, &device, &id).await?;
    let max_minutes = state.config.share_link_max_minutes;
    if !(1..=max_minutes).contains(&req.expires_in_minutes) {
        return Err(ApiError::validation(
            "expires_in_minutes",
            format!("expires_in_minutes must be 1-{max_minutes}"),
        ));
    }
    if req.max_uses.is_some_and(|m| !(1..=1_000_000).contains(&m)) {
        return Err(ApiError::validation(
            "max_uses",
            "max_uses must be 1-1000000 (or left out: no limit)",
        ));
    }
    let methods = parse_methods(req.methods)?;
    let note = note(req.note)?;
    let secret = new_secret(LINK_PREFIX);
    let expires_at = chrono::Utc::now() + chrono::Duration::minutes(req.expires_in_minutes);
    let l = state
        .store
        .create_share_link(NewShareLink {
            reverse_tunnel_id: t.id,
            prefix: secret.prefix,
            secret_hash: secret.hash,
            note,
            methods,
            max_uses: req.max_uses,
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
            action: "share_link.create",
            tunnel_id: t.id,
            object_id: Some(l.id),
            detail: l.note.clone(),
            device: &device,
            actor: &user,
        },
    )
    .await?;
    let url = format!(
        "{}{SHARE_PATH}{}",
        tunnel_origin(&state, &t.public_url),
        secret.secret
    );
    Ok((
        StatusCode::CREATED,
        Json(CreatedShareLink {
            url,
            link: respond(l),
        }),
    ))
}

#[utoipa::path(get,
    path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/share-links",
    operation_id = "list_share_links", tag = "sharing",
    params(("dsn" = String, Path, description = "The device serial number", example = "SHARE1"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 2)),
    responses((status = 200, description = "the tunnel's links, revoked and expired included",
        body = ShareLinkList)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id)): Path<(String, String)>,
) -> ApiResult<Json<ShareLinkList>> {
    let device = visible_device(&state, &user, &dsn, Action::View).await?;
    let t = tunnel_of(&state, &device, &id).await?;
    let items: Vec<_> = state
        .store
        .list_share_links(t.id)
        .await?
        .into_iter()
        .map(respond)
        .collect();
    let total = items.len();
    Ok(Json(ShareLinkList { items, total }))
}

#[utoipa::path(delete,
    path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/share-links/{link_id}",
    operation_id = "revoke_share_link", tag = "sharing",
    params(("dsn" = String, Path, description = "The device serial number", example = "SHARE1"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 2),
        ("link_id" = i64, Path, description = "The link's id", example = 1)),
    responses((status = 200,
            description = "the link, revoked: its sessions end within seconds",
            body = ShareLinkResponse),
        (status = 404, description = "the tunnel has no such link")),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id, link_id)): Path<(String, String, String)>,
) -> ApiResult<Json<ShareLinkResponse>> {
    let device = visible_device(&state, &user, &dsn, Action::Share).await?;
    let t = tunnel_of(&state, &device, &id).await?;
    let link_id = parse_id(&link_id)?;
    let l = state
        .store
        .revoke_share_link(t.id, link_id, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound("share link"),
            other => other.into(),
        })?;
    record(
        &state,
        Audited {
            action: "share_link.revoke",
            tunnel_id: t.id,
            object_id: Some(l.id),
            detail: l.note.clone(),
            device: &device,
            actor: &user,
        },
    )
    .await?;
    Ok(Json(respond(l)))
}
