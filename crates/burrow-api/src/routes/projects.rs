use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use burrow_store::{Project, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::{Action, Role};
use crate::auth::AuthUser;
use crate::domain;
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::{project_with_role, role_in, visible_project};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "robots"}))]
pub struct CreateProject {
    /// 1-255 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct ProjectResponse {
    pub id: i64,
    pub name: String,
    /// The caller's role in the project: owner, admin, member or viewer (docs/accounts.md).
    #[schema(example = "owner")]
    pub role: Option<String>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl ProjectResponse {
    pub fn new(p: Project, role: Role) -> Self {
        ProjectResponse {
            id: p.id,
            name: p.name,
            role: Some(role.as_str().to_string()),
            created_at: p.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_id": 2, "role": "member"}))]
pub struct AddMember {
    pub user_id: i64,
    /// "owner", "admin", "member" (default) or "viewer".
    #[serde(default)]
    #[schema(pattern = "^(owner|admin|member|viewer)$")]
    pub role: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MemberResponse {
    pub project_id: i64,
    pub user_id: i64,
    pub email: String,
    pub role: String,
}

/// Create a project; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/projects", operation_id = "create_project", tag = "projects",
    request_body = CreateProject,
    responses((status = 201, description = "the new project", body = ProjectResponse)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ValidJson(req): ValidJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<ProjectResponse>)> {
    let name = domain::plain_name("name", &req.name, 255)?;
    let project = state.store.create_project(&name, user.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(ProjectResponse::new(project, Role::Owner)),
    ))
}

/// Projects the caller is a member of.
#[utoipa::path(get, path = "/api/v1/projects", operation_id = "list_projects", tag = "projects",
    responses((status = 200, description = "the caller's projects", body = [ProjectResponse])),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<Vec<ProjectResponse>>> {
    let projects = state.store.list_projects_for_user(user.id).await?;
    let mut out = Vec::with_capacity(projects.len());
    for p in projects {
        // Listed because a member; a role row removed meanwhile reads as the least role.
        let role = role_in(&state, &user, p.id).await?.unwrap_or(Role::Viewer);
        out.push(ProjectResponse::new(p, role));
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}", operation_id = "get_project", tag = "projects",
    params(("id" = i64, Path, description = "The project's id", example = 1)),
    responses((status = 200, description = "the project", body = ProjectResponse)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ProjectResponse>> {
    let id = parse_id(&id)?;
    let (project, role) = project_with_role(&state, &user, id, Action::View).await?;
    Ok(Json(ProjectResponse::new(project, role)))
}

/// Add an existing user to a project directly (server administrators only; everyone else
/// invites by email, which tells nothing about which accounts exist).
#[utoipa::path(post, path = "/api/v1/projects/{id}/members", operation_id = "add_project_member",
    tag = "projects", request_body = AddMember,
    params(("id" = i64, Path, description = "The project's id", example = 1)),
    responses((status = 201, description = "the new member", body = MemberResponse),
        (status = 403, description = "the caller is no server administrator"),
        (status = 409, description = "already a member")),
    security(("bearer" = [])))]
pub async fn add_member(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<AddMember>,
) -> ApiResult<(StatusCode, Json<MemberResponse>)> {
    if !user.is_admin {
        return Err(ApiError::Forbidden(
            "only server administrators add users directly; invite them instead \
             (POST /api/v1/projects/{id}/invitations)",
        ));
    }
    let project = state
        .store
        .project_by_id(parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("project"))?;
    let role = match req.role.as_deref() {
        None => Role::Member,
        Some(r) => Role::parse(r).ok_or_else(|| {
            ApiError::validation("role", "role must be owner, admin, member or viewer")
        })?,
    };
    let member_user = state
        .store
        .user_by_id(req.user_id)
        .await?
        .ok_or_else(|| ApiError::validation("user_id", "no such user"))?;
    let m = state
        .store
        .add_member(project.id, member_user.id, role.as_str())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict("already a member".into()),
            other => other.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(MemberResponse {
            project_id: m.project_id,
            user_id: m.user_id,
            email: member_user.email,
            role: m.role,
        }),
    ))
}

/// Members of a project (for choosing `allowed_user_ids`).
#[utoipa::path(get, path = "/api/v1/projects/{id}/members", operation_id = "list_project_members",
    tag = "projects", params(("id" = i64, Path, description = "The project's id", example = 1)),
    responses((status = 200, description = "the project's members", body = [MemberResponse])),
    security(("bearer" = [])))]
pub async fn members(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<MemberResponse>>> {
    let id = parse_id(&id)?;
    let project = visible_project(&state, &user, id, Action::View).await?;
    let mut out = Vec::new();
    for m in state.store.list_members(project.id).await? {
        let email = state
            .store
            .user_by_id(m.user_id)
            .await?
            .map(|u| u.email)
            .unwrap_or_default();
        out.push(MemberResponse {
            project_id: m.project_id,
            user_id: m.user_id,
            email,
            role: m.role,
        });
    }
    Ok(Json(out))
}

/// Ids in paths: anything that is not a positive integer names nothing (404, not 422/500).
pub fn parse_id(s: &str) -> ApiResult<i64> {
    s.parse::<i64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or(ApiError::NotFound("resource"))
}
