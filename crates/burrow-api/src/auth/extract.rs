use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use burrow_store::User;

use crate::error::ApiError;
use crate::AppState;

/// The authenticated user of a request (`Authorization: Bearer <jwt>`).
#[derive(Debug, Clone)]
pub struct AuthUser(pub User);

/// The client's address, when the server put it in the request (`ConnectInfo`).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientIp(peer))
    }
}

/// An authenticated user who is an administrator (403 otherwise).
#[derive(Debug, Clone)]
pub struct AdminUser(pub User);

pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?;
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let user = state
            .user_for_token(token)
            .await?
            .ok_or(ApiError::Unauthorized("invalid or expired token"))?;
        Ok(AuthUser(user))
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin {
            return Err(ApiError::Forbidden("administrator only"));
        }
        Ok(AdminUser(user))
    }
}
