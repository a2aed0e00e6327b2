use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use burrow_store::{NewUser, StoreError, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{hash_password, AdminUser};
use crate::domain;
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "operator@example.com", "password": "a-long-password"}))]
pub struct CreateUser {
    /// A valid address (stored lower case).
    pub email: String,
    /// 8-1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// Default false.
    #[serde(default)]
    pub is_admin: bool,
}

#[derive(Serialize, ToSchema)]
pub struct UserResponse {
    pub id: i64,
    pub email: String,
    pub is_admin: bool,
    /// A disabled user cannot sign in (administrators' `PATCH /api/v1/users/{id}`).
    pub disabled: bool,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<&User> for UserResponse {
    fn from(u: &User) -> Self {
        UserResponse {
            id: u.id,
            email: u.email.clone(),
            is_admin: u.is_admin,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

/// Create a user (administrators only).
#[utoipa::path(post, path = "/api/v1/users", operation_id = "create_user", tag = "users",
    request_body = CreateUser,
    responses((status = 201, description = "the new user", body = UserResponse),
        (status = 403, description = "the caller is no administrator"),
        (status = 409, description = "a user with this email exists")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
    ValidJson(req): ValidJson<CreateUser>,
) -> ApiResult<(StatusCode, Json<UserResponse>)> {
    let email = domain::email(&req.email)?;
    let password = domain::password(&req.password)?.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let user = state
        .store
        .create_user(NewUser {
            email,
            password_hash: hash,
            is_admin: req.is_admin,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict("a user with this email exists".into()),
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(UserResponse::from(&user))))
}

/// List users (administrators only).
#[utoipa::path(get, path = "/api/v1/users", operation_id = "list_users", tag = "users",
    responses((status = 200, description = "every user", body = [UserResponse]),
        (status = 403, description = "the caller is no administrator")),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
) -> ApiResult<Json<Vec<UserResponse>>> {
    let users = state.store.list_users().await?;
    Ok(Json(users.iter().map(UserResponse::from).collect()))
}
