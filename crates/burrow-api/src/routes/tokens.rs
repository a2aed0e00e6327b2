//! Personal access tokens of the caller: create (the secret is answered once), list, revoke
//! (docs/accounts.md).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use burrow_store::{NewPersonalToken, PersonalToken};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::personal_token::{Scope, PREFIX};
use crate::auth::AuthUser;
use crate::domain;
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::projects::parse_id;
use crate::routes::reverse_tunnels::Message;
use crate::sharing::secret::new_secret;
use crate::AppState;

/// Days a token lives when the request does not say.
const DEFAULT_DAYS: i64 = 90;
/// At most this many live tokens per user (a bound on rows a loop can make).
const MAX_TOKENS: usize = 100;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "laptop", "scope": "full", "expires_in_days": 90}))]
pub struct CreateToken {
    /// 1-100 characters, no control characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// `read` (GET only) or `full`.
    #[schema(pattern = "^(read|full)$")]
    pub scope: String,
    /// 1-365 (default 90).
    #[schema(minimum = 1, maximum = 365)]
    pub expires_in_days: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub id: i64,
    pub name: String,
    pub scope: String,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: chrono::DateTime<chrono::Utc>,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<&PersonalToken> for TokenResponse {
    fn from(t: &PersonalToken) -> Self {
        TokenResponse {
            id: t.id,
            name: t.name.clone(),
            scope: t.scope.clone(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// A new token: its fields and, this once, the secret.
#[derive(Serialize, ToSchema)]
pub struct NewTokenResponse {
    #[serde(flatten)]
    pub info: TokenResponse,
    /// `bpat_...`: shown only in this answer; burrow keeps its SHA-256.
    pub token: String,
}

/// Create a personal access token for the caller.
#[utoipa::path(post, path = "/api/v1/auth/tokens", operation_id = "create_personal_token",
    tag = "auth", request_body = CreateToken,
    responses((status = 201, description = "the token; `token` is shown this once",
        body = NewTokenResponse),
        (status = 409, description = "too many live tokens")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ValidJson(req): ValidJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<NewTokenResponse>)> {
    let name = domain::plain_name("name", &req.name, 100)?;
    let scope = Scope::parse(&req.scope)
        .ok_or_else(|| ApiError::validation("scope", "scope must be read or full"))?;
    let days = req.expires_in_days.unwrap_or(DEFAULT_DAYS);
    if !(1..=365).contains(&days) {
        return Err(ApiError::validation(
            "expires_in_days",
            "expires_in_days must be 1-365",
        ));
    }
    if state.store.list_personal_tokens(user.id).await?.len() >= MAX_TOKENS {
        return Err(ApiError::Conflict(format!(
            "at most {MAX_TOKENS} live tokens; revoke one first"
        )));
    }
    let secret = new_secret(PREFIX);
    let now = chrono::Utc::now();
    let row = state
        .store
        .create_personal_token(NewPersonalToken {
            user_id: user.id,
            name,
            scope: scope.as_str().to_string(),
            token_hash: secret.hash,
            created_at: now,
            expires_at: now + chrono::Duration::days(days),
        })
        .await?;
    tracing::info!(
        user_id = user.id,
        token_id = row.id,
        "personal access token created"
    );
    Ok((
        StatusCode::CREATED,
        Json(NewTokenResponse {
            info: TokenResponse::from(&row),
            token: secret.secret,
        }),
    ))
}

/// The caller's live personal access tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/auth/tokens", operation_id = "list_personal_tokens",
    tag = "auth",
    responses((status = 200, description = "the caller's tokens", body = [TokenResponse])),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<Vec<TokenResponse>>> {
    let tokens = state.store.list_personal_tokens(user.id).await?;
    Ok(Json(tokens.iter().map(TokenResponse::from).collect()))
}

/// Revoke one of the caller's tokens; it is refused from the next request on.
#[utoipa::path(delete, path = "/api/v1/auth/tokens/{id}", operation_id = "revoke_personal_token",
    tag = "auth", params(("id" = i64, Path, description = "The token's id", example = 1)),
    responses((status = 200, description = "revoked", body = Message),
        (status = 404, description = "no such live token of the caller")),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Message>> {
    let id = parse_id(&id).map_err(|_| ApiError::NotFound("token"))?;
    state
        .store
        .revoke_personal_token(user.id, id, chrono::Utc::now())
        .await
        .map_err(|e| match e {
            burrow_store::StoreError::NotFound => ApiError::NotFound("token"),
            other => other.into(),
        })?;
    tracing::info!(
        user_id = user.id,
        token_id = id,
        "personal access token revoked"
    );
    Ok(Json(Message {
        message: "Token revoked successfully",
    }))
}
