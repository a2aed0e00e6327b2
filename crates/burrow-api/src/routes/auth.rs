use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{issue_at, revoke_sessions, AuthUser, ClientIp};
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
        (status = 401, description = "wrong email or password"),
        (status = 403, description = "the account is disabled, or password sign-in is \
            disabled here (config `password_login = false`): sign in through SSO"),
        (status = 429, description = "too many failed logins from this client or for this \
            account; `Retry-After` says when to try again", headers(("retry-after" = u64))),
        (status = 503, description = "too many password checks at once; `Retry-After` says \
            when to try again", headers(("retry-after" = u64)))))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ValidJson(req): ValidJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    if !state.config.password_login {
        return Err(ApiError::Forbidden(
            "password sign-in is disabled on this server; sign in with SSO",
        ));
    }
    // Per address first: an attacker's own failures must not spend the account's quota.
    state.login_guard.check_address(ip)?;
    let email = req.email.trim().to_ascii_lowercase();
    let user = state.store.user_by_email(&email).await?;
    if let Some(u) = &user {
        state.login_guard.check_account(u.id)?;
    }
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    // argon2 is slow and big on purpose: bounded, on the guard's own threads.
    let ok = state.login_guard.verify(req.password, phc).await?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        (_, user) => {
            state.login_guard.failed(ip, user.map(|u| u.id))?;
            return Err(ApiError::Unauthorized("invalid email or password"));
        }
    };
    // Said only to whoever knows the password.
    if user.disabled {
        return Err(ApiError::Forbidden("this account is disabled"));
    }
    let at = issue_at(state.store.as_ref(), user.id, chrono::Utc::now()).await?;
    let token = state
        .jwt
        .issue(user.id, &user.email, at)
        .map_err(ApiError::internal)?;
    Ok(Json(LoginResponse {
        access_token: token,
        token_type: "bearer",
        expires_in: state.jwt.ttl().num_seconds(),
    }))
}

/// Sign out everywhere: every token and edge session issued to the caller until now stops
/// working (API tokens, tunnel sessions, open WebSockets within seconds).
#[utoipa::path(post, path = "/api/v1/auth/logout-all", operation_id = "logout_all", tag = "auth",
    responses((status = 204, description = "signed out everywhere")),
    security(("bearer" = [])))]
pub async fn logout_all(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<axum::http::StatusCode> {
    revoke_sessions(
        state.store.as_ref(),
        user.id,
        chrono::Utc::now().timestamp(),
    )
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The user the bearer token belongs to.
#[utoipa::path(get, path = "/api/v1/auth/me", operation_id = "get_me", tag = "auth",
    responses((status = 200, description = "the caller", body = UserResponse)),
    security(("bearer" = [])))]
pub async fn me(AuthUser(user): AuthUser) -> Json<UserResponse> {
    Json(UserResponse::from(&user))
}
