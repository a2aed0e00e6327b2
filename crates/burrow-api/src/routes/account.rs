//! The caller's account (password change) and the administrators' list of users: disable,
//! reset a password, delete (docs/accounts.md).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use burrow_store::StoreError;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{hash_password, issue_at, revoke_sessions, AdminUser, AuthUser, ClientIp};
use crate::domain;
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::auth::LoginResponse;
use crate::routes::projects::parse_id;
use crate::routes::reverse_tunnels::Message;
use crate::routes::UserResponse;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"current_password": "change-me-please",
    "new_password": "a-new-long-password"}))]
pub struct ChangePassword {
    pub current_password: String,
    /// 8-1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"new_password": "a-new-long-password"}))]
pub struct ResetPassword {
    /// 8-1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"disabled": true}))]
pub struct UpdateUser {
    /// A disabled user cannot sign in; their sessions and tokens stop working.
    pub disabled: bool,
}

async fn hashed(password: &str) -> ApiResult<String> {
    let password = domain::password(password)?.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

/// Change the caller's password (the current one is required). Every other session and edge
/// login of the caller is signed out; the answer is a fresh session.
#[utoipa::path(post, path = "/api/v1/auth/password", operation_id = "change_password",
    tag = "auth", request_body = ChangePassword,
    responses((status = 200, description = "changed; a new session", body = LoginResponse),
        (status = 403, description = "the current password is wrong"),
        (status = 429, description = "too many wrong passwords", headers(("retry-after" = u64)))),
    security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    AuthUser(user): AuthUser,
    ValidJson(req): ValidJson<ChangePassword>,
) -> ApiResult<Json<LoginResponse>> {
    // Validated first: a bad new password spends no verification.
    let new_hash_input = domain::password(&req.new_password)?.to_string();
    state.login_guard.check_address(ip)?;
    state.login_guard.check_account(user.id)?;
    let ok = state
        .login_guard
        .verify(req.current_password, Some(user.password_hash.clone()))
        .await?;
    if !ok {
        state.login_guard.failed(ip, Some(user.id))?;
        return Err(ApiError::Forbidden("the current password is wrong"));
    }
    let hash = hashed(&new_hash_input).await?;
    state.store.set_user_password(user.id, &hash).await?;
    let now = chrono::Utc::now();
    revoke_sessions(state.store.as_ref(), user.id, now.timestamp()).await?;
    let at = issue_at(state.store.as_ref(), user.id, now).await?;
    let token = state
        .jwt
        .issue(user.id, &user.email, at)
        .map_err(ApiError::internal)?;
    tracing::info!(
        user_id = user.id,
        "password changed; other sessions signed out"
    );
    Ok(Json(LoginResponse {
        access_token: token,
        token_type: "bearer",
        expires_in: state.jwt.ttl().num_seconds(),
    }))
}

fn user_id(id: &str) -> ApiResult<i64> {
    parse_id(id).map_err(|_| ApiError::NotFound("user"))
}

fn missing_user(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("user"),
        other => other.into(),
    }
}

/// Disable or enable a user (administrators; not yourself).
#[utoipa::path(patch, path = "/api/v1/users/{id}", operation_id = "update_user", tag = "users",
    request_body = UpdateUser,
    params(("id" = i64, Path, description = "The user's id", example = 2)),
    responses((status = 200, description = "the user", body = UserResponse),
        (status = 403, description = "the caller is no administrator"),
        (status = 409, description = "administrators cannot disable themselves")),
    security(("bearer" = [])))]
pub async fn update_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<UpdateUser>,
) -> ApiResult<Json<UserResponse>> {
    let id = user_id(&id)?;
    if id == admin.id && req.disabled {
        return Err(ApiError::Conflict("you cannot disable yourself".into()));
    }
    let user = state
        .store
        .set_user_disabled(id, req.disabled)
        .await
        .map_err(missing_user)?;
    if req.disabled {
        revoke_sessions(state.store.as_ref(), id, chrono::Utc::now().timestamp()).await?;
    }
    tracing::info!(
        user_id = id,
        disabled = req.disabled,
        by = admin.id,
        "user updated"
    );
    Ok(Json(UserResponse::from(&user)))
}

/// Set another user's password (administrators); that user's sessions are signed out.
#[utoipa::path(post, path = "/api/v1/users/{id}/password", operation_id = "reset_password",
    tag = "users", request_body = ResetPassword,
    params(("id" = i64, Path, description = "The user's id", example = 2)),
    responses((status = 204, description = "reset"),
        (status = 403, description = "the caller is no administrator")),
    security(("bearer" = [])))]
pub async fn reset_password(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<ResetPassword>,
) -> ApiResult<StatusCode> {
    let id = user_id(&id)?;
    let hash = hashed(&req.new_password).await?;
    state
        .store
        .set_user_password(id, &hash)
        .await
        .map_err(missing_user)?;
    revoke_sessions(state.store.as_ref(), id, chrono::Utc::now().timestamp()).await?;
    tracing::info!(
        user_id = id,
        by = admin.id,
        "password reset by an administrator"
    );
    Ok(StatusCode::NO_CONTENT)
}

/// Delete a user (administrators; not yourself): refused while they are a project's last
/// owner.
#[utoipa::path(delete, path = "/api/v1/users/{id}", operation_id = "delete_user", tag = "users",
    params(("id" = i64, Path, description = "The user's id", example = 2)),
    responses((status = 200, description = "deleted", body = Message),
        (status = 403, description = "the caller is no administrator"),
        (status = 409, description = "yourself, or the last owner of a project")),
    security(("bearer" = [])))]
pub async fn delete_user(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Message>> {
    let id = user_id(&id)?;
    if id == admin.id {
        return Err(ApiError::Conflict("you cannot delete yourself".into()));
    }
    state.store.delete_user(id).await.map_err(|e| match e {
        StoreError::Conflict(why) => ApiError::Conflict(format!(
            "{why}: make another member owner or delete the project first"
        )),
        other => missing_user(other),
    })?;
    tracing::info!(user_id = id, by = admin.id, "user deleted");
    Ok(Json(Message {
        message: "User deleted successfully",
    }))
}
