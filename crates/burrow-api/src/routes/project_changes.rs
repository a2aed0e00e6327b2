//! Changing a project after it exists: renaming and deleting it, removing members and
//! changing their roles. Project owners and administrators may do all of it; a member may
//! remove itself (leave). A project never loses its last owner (the store checks that in
//! the same transaction as the change).

use axum::extract::{Path, State};
use axum::Json;
use burrow_store::{Project, StoreError, User};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::domain;
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::projects::{parse_id, MemberResponse, ProjectResponse};
use crate::routes::reverse_tunnels::Message;
use crate::routes::visible_project;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "rovers"}))]
/// A new name for a project or a device.
pub struct Rename {
    /// 1-255 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "owner"}))]
pub struct UpdateMember {
    #[schema(pattern = "^(member|owner)$")]
    pub role: String,
}

/// The project, when `user` owns it or is an administrator (403 for other members, 404 for
/// everyone else).
async fn owned_project(state: &AppState, user: &User, id: &str) -> ApiResult<Project> {
    let project = visible_project(state, user, parse_id(id)?).await?;
    if user.is_admin || is_owner(state, &project, user.id).await? {
        Ok(project)
    } else {
        Err(ApiError::Forbidden("only the project's owners can do this"))
    }
}

async fn is_owner(state: &AppState, project: &Project, user_id: i64) -> ApiResult<bool> {
    Ok(state
        .store
        .list_members(project.id)
        .await?
        .iter()
        .any(|m| m.user_id == user_id && m.role == "owner"))
}

fn last_owner(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => ApiError::Conflict(
            "the project's last owner cannot leave or lose the role; make another member owner first"
                .into(),
        ),
        StoreError::NotFound => ApiError::NotFound("member"),
        other => other.into(),
    }
}

/// Rename a project (owners and administrators).
#[utoipa::path(patch, path = "/api/v1/projects/{id}", operation_id = "update_project",
    tag = "projects", request_body = Rename,
    params(("id" = i64, Path, description = "The project's id", example = 1)),
    responses((status = 200, description = "the project, renamed", body = ProjectResponse),
        (status = 403, description = "the caller is a member but not an owner")),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<Rename>,
) -> ApiResult<Json<ProjectResponse>> {
    let project = owned_project(&state, &user, &id).await?;
    let name = domain::plain_name("name", &req.name, 255)?;
    Ok(Json(
        state.store.rename_project(project.id, &name).await?.into(),
    ))
}

/// Delete a project (owners and administrators): its devices are revoked and their tunnels
/// closed first, then the project and everything in it is removed.
#[utoipa::path(delete, path = "/api/v1/projects/{id}", operation_id = "delete_project",
    tag = "projects",
    params(("id" = i64, Path, description = "The project's id", example = 1)),
    responses((status = 200, description = "deleted", body = Message),
        (status = 403, description = "the caller is a member but not an owner")),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Message>> {
    let project = owned_project(&state, &user, &id).await?;
    for device in state.store.list_devices_in_project(project.id).await? {
        state.lifecycle.device_deleted(&device).await?;
    }
    state.store.delete_project(project.id).await?;
    Ok(Json(Message {
        message: "Project deleted successfully",
    }))
}

/// Change a member's role (owners and administrators); the last owner keeps the role.
#[utoipa::path(patch, path = "/api/v1/projects/{id}/members/{user_id}",
    operation_id = "update_project_member", tag = "projects", request_body = UpdateMember,
    params(("id" = i64, Path, description = "The project's id", example = 1),
        ("user_id" = i64, Path, description = "The member's user id", example = 2)),
    responses((status = 200, description = "the member, with the new role", body = MemberResponse),
        (status = 403, description = "the caller is a member but not an owner"),
        (status = 409, description = "the project's last owner")),
    security(("bearer" = [])))]
pub async fn update_member(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, member)): Path<(String, String)>,
    ValidJson(req): ValidJson<UpdateMember>,
) -> ApiResult<Json<MemberResponse>> {
    let project = owned_project(&state, &user, &id).await?;
    let member = parse_id(&member).map_err(|_| ApiError::NotFound("member"))?;
    if !matches!(req.role.as_str(), "member" | "owner") {
        return Err(ApiError::validation("role", "role must be member or owner"));
    }
    let m = state
        .store
        .set_member_role(project.id, member, &req.role)
        .await
        .map_err(last_owner)?;
    let email = state
        .store
        .user_by_id(m.user_id)
        .await?
        .map(|u| u.email)
        .unwrap_or_default();
    Ok(Json(MemberResponse {
        project_id: m.project_id,
        user_id: m.user_id,
        email,
        role: m.role,
    }))
}

/// Remove a member (owners and administrators), or leave a project (any member, itself);
/// never the last owner.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/members/{user_id}",
    operation_id = "remove_project_member", tag = "projects",
    params(("id" = i64, Path, description = "The project's id", example = 1),
        ("user_id" = i64, Path, description = "The member's user id", example = 2)),
    responses((status = 200, description = "removed", body = Message),
        (status = 403, description = "the caller is a member but not an owner"),
        (status = 409, description = "the project's last owner")),
    security(("bearer" = [])))]
pub async fn remove_member(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, member)): Path<(String, String)>,
) -> ApiResult<Json<Message>> {
    let member = parse_id(&member).map_err(|_| ApiError::NotFound("member"))?;
    let project = if member == user.id {
        visible_project(&state, &user, parse_id(&id)?).await?
    } else {
        owned_project(&state, &user, &id).await?
    };
    state
        .store
        .remove_member(project.id, member)
        .await
        .map_err(last_owner)?;
    Ok(Json(Message {
        message: "Member removed successfully",
    }))
}
