use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{verify_password, AuthUser};
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::UserResponse;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "admin@example.com", "password": "change-me-please"}))]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    pub access_token: String,
    /// Always `bearer`.
    #[schema(value_type = String, example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// Exchange email and password for a bearer JWT.
#[utoipa::path(post, path = "/api/v1/auth/login", operation_id = "login", tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, description = "a bearer token", body = LoginResponse),
        (status = 401, description = "wrong email or password")))]
pub async fn login(
    State(state): State<AppState>,
    ValidJson(req): ValidJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let email = req.email.trim().to_ascii_lowercase();
    let user = state.store.user_by_email(&email).await?;
    let password = req.password;
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    // argon2 is deliberately slow: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, phc.as_deref()))
        .await
        .map_err(ApiError::internal)?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => return Err(ApiError::Unauthorized("invalid email or password")),
    };
    let token = state
        .jwt
        .issue(user.id, &user.email, chrono::Utc::now())
        .map_err(ApiError::internal)?;
    Ok(Json(LoginResponse {
        access_token: token,
        token_type: "bearer",
        expires_in: state.jwt.ttl().num_seconds(),
    }))
}

/// The user the bearer token belongs to.
#[utoipa::path(get, path = "/api/v1/auth/me", operation_id = "get_me", tag = "auth",
    responses((status = 200, description = "the caller", body = UserResponse)),
    security(("bearer" = [])))]
pub async fn me(AuthUser(user): AuthUser) -> Json<UserResponse> {
    Json(UserResponse::from(&user))
}
