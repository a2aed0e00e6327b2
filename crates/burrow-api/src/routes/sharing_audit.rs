//! The audit log of sharing: every create and revoke of a tunnel's API keys and share links,
//! and every change of its IP rules (who, what, when), readable by the project's owners and
//! administrators: `GET /api/v1/projects/{id}/sharing-audit`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use burrow_store::{Device, NewSharingAuditEntry, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Action;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::routes::projects::parse_id;
use crate::routes::visible_project;
use crate::AppState;

type Ts = chrono::DateTime<chrono::Utc>;

/// What was done, for [`record`].
pub(crate) struct Audited<'a> {
    pub action: &'static str,
    pub tunnel_id: i64,
    pub object_id: Option<i64>,
    pub detail: Option<String>,
    pub device: &'a Device,
    pub actor: &'a User,
}

/// Writes one audit entry (a failure fails the request: nothing shared goes unrecorded).
pub(crate) async fn record(state: &AppState, a: Audited<'_>) -> ApiResult<()> {
    state
        .store
        .insert_sharing_audit(NewSharingAuditEntry {
            project_id: a.device.project_id,
            reverse_tunnel_id: Some(a.tunnel_id),
            actor_user_id: Some(a.actor.id),
            actor_email: Some(a.actor.email.clone()),
            action: a.action.to_string(),
            object_id: a.object_id,
            detail: a.detail,
            at: chrono::Utc::now(),
        })
        .await?;
    Ok(())
}

#[derive(Serialize, ToSchema)]
pub struct SharingAuditItem {
    pub id: i64,
    pub reverse_tunnel_id: Option<i64>,
    pub actor_user_id: Option<i64>,
    pub actor_email: Option<String>,
    /// `api_key.create`, `api_key.revoke`, `share_link.create`, `share_link.revoke`,
    /// `ip_rules.update`.
    pub action: String,
    /// The key's or link's id.
    pub object_id: Option<i64>,
    /// The key's name, the link's note, or the new IP rules.
    pub detail: Option<String>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Ts,
}

#[derive(Serialize, ToSchema)]
pub struct SharingAuditList {
    pub items: Vec<SharingAuditItem>,
    pub total: usize,
}

/// Kept as text so a bad value is our JSON 422.
#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<String>,
}

/// The project's sharing audit log, newest first (`?limit=`, default 100, at most 1000).
#[utoipa::path(get, path = "/api/v1/projects/{id}/sharing-audit",
    operation_id = "list_sharing_audit", tag = "sharing",
    params(("id" = i64, Path, description = "The project's id", example = 1),
        ("limit" = Option<i64>, Query,
            description = "How many entries (default 100; clamped to 1-1000)")),
    responses((status = 200, description = "the newest entries first", body = SharingAuditList),
        (status = 403, description = "the caller's role is neither owner nor admin"),
        (status = 422, description = "limit is not one whole number")),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult<Json<SharingAuditList>> {
    let id = parse_id(&id)?;
    let project = visible_project(&state, &user, id, Action::Share).await?;
    let q = query
        .map_err(|_| ApiError::validation("limit", "expected at most one limit=N"))?
        .0;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| ApiError::validation("limit", "limit must be a whole number"))?
            .clamp(1, 1000),
    };
    let items: Vec<SharingAuditItem> = state
        .store
        .list_sharing_audit(project.id, limit)
        .await?
        .into_iter()
        .map(|e| SharingAuditItem {
            id: e.id,
            reverse_tunnel_id: e.reverse_tunnel_id,
            actor_user_id: e.actor_user_id,
            actor_email: e.actor_email,
            action: e.action,
            object_id: e.object_id,
            detail: e.detail,
            at: e.at,
        })
        .collect();
    let total = items.len();
    Ok(Json(SharingAuditList { items, total }))
}
