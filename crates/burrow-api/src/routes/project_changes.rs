//! Changing a project after it exists: renaming and deleting it (owners), removing members
//! and changing their roles (owners and admins; only owners touch the owner role); any member
//! may remove itself (leave). A project never loses its last owner (the store checks that in
//! the same transaction as the change).

use axum::extract::{Path, State};
use axum::Json;
use burrow_store::{Project, StoreError};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::access::{Action, Role};
use crate::auth::AuthUser;
use crate::domain;
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::projects::{parse_id, MemberResponse, ProjectResponse};
use crate::routes::reverse_tunnels::Message;
use crate::routes::{project_with_role, visible_project};
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
    #[schema(pattern = "^(owner|admin|member|viewer)$")]
    pub role: String,
}

/// Making or unmaking an owner needs the owner role; other role changes need admin.
fn check_owner_change(
    caller: Role,
    target_before: Role,
    target_after: Option<Role>,
) -> ApiResult<()> {
    let touches_owner = target_before == Role::Owner || target_after == Some(Role::Owner);
    if touches_owner && !caller.may(Action::ManageProject) {
        return Err(ApiError::Forbidden(
            "only owners make, change or remove owners",
        ));
    }
    Ok(())
}

async fn member_role(state: &AppState, project: &Project, user_id: i64) -> ApiResult<Role> {
    crate::access::role_of(state.store.as_ref(), project.id, user_id)
        .await?
        .ok_or(ApiError::NotFound("member"))
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

/// Rename a project (owners).
#[utoipa::path(patch, path = "/api/v1/projects/{id}", operation_id = "update_project",
    tag = "projects", request_body = Rename,
    params(("id" = i64, Path, description = "The project's id", example = 1)),
    responses((status = 200, description = "the project, renamed", body = ProjectResponse),
        (status = 403, description = "the caller's role does not allow it")),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<Rename>,
) -> ApiResult<Json<ProjectResponse>> {
    let (project, role) =
        project_with_role(&state, &user, parse_id(&id)?, Action::ManageProject).await?;
    let name = domain::plain_name("name", &req.name, 255)?;
    let renamed = state.store.rename_project(project.id, &name).await?;
    Ok(Json(ProjectResponse::new(renamed, role)))
}

/// Delete a project (owners): its devices are revoked and their tunnels
/// closed first, then the project and everything in it is removed.
#[utoipa::path(delete, path = "/api/v1/projects/{id}", operation_id = "delete_project",
    tag = "projects",
    params(("id" = i64, Path, description = "The project's id", example = 1)),
    responses((status = 200, description = "deleted", body = Message),
        (status = 403, description = "the caller's role does not allow it")),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Message>> {
    let project = visible_project(&state, &user, parse_id(&id)?, Action::ManageProject).await?;
    for device in state.store.list_devices_in_project(project.id).await? {
        state.lifecycle.device_deleted(&device).await?;
    }
    state.store.delete_project(project.id).await?;
    Ok(Json(Message {
        message: "Project deleted successfully",
    }))
}

/// Change a member's role (owners and admins; only owners touch the owner role); the last
/// owner keeps the role.
#[utoipa::path(patch, path = "/api/v1/projects/{id}/members/{user_id}",
    operation_id = "update_project_member", tag = "projects", request_body = UpdateMember,
    params(("id" = i64, Path, description = "The project's id", example = 1),
        ("user_id" = i64, Path, description = "The member's user id", example = 2)),
    responses((status = 200, description = "the member, with the new role", body = MemberResponse),
        (status = 403, description = "the caller's role does not allow it"),
        (status = 409, description = "the project's last owner")),
    security(("bearer" = [])))]
pub async fn update_member(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, member)): Path<(String, String)>,
    ValidJson(req): ValidJson<UpdateMember>,
) -> ApiResult<Json<MemberResponse>> {
    let (project, caller) =
        project_with_role(&state, &user, parse_id(&id)?, Action::ManageMembers).await?;
    let member = parse_id(&member).map_err(|_| ApiError::NotFound("member"))?;
    let new_role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::validation("role", "role must be owner, admin, member or viewer")
    })?;
    let before = member_role(&state, &project, member).await?;
    check_owner_change(caller, before, Some(new_role))?;
    let m = state
        .store
        .set_member_role(project.id, member, new_role.as_str())
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

/// Remove a member (owners and admins; only owners remove owners), or leave a project (any member, itself);
/// never the last owner.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/members/{user_id}",
    operation_id = "remove_project_member", tag = "projects",
    params(("id" = i64, Path, description = "The project's id", example = 1),
        ("user_id" = i64, Path, description = "The member's user id", example = 2)),
    responses((status = 200, description = "removed", body = Message),
        (status = 403, description = "the caller's role does not allow it"),
        (status = 409, description = "the project's last owner")),
    security(("bearer" = [])))]
pub async fn remove_member(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((id, member)): Path<(String, String)>,
) -> ApiResult<Json<Message>> {
    let member = parse_id(&member).map_err(|_| ApiError::NotFound("member"))?;
    let project = if member == user.id {
        visible_project(&state, &user, parse_id(&id)?, Action::View).await?
    } else {
        let (project, caller) =
            project_with_role(&state, &user, parse_id(&id)?, Action::ManageMembers).await?;
        let before = member_role(&state, &project, member).await?;
        check_owner_change(caller, before, None)?;
        project
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
