//! `GET /api/v1/auth/config`: the ways to sign in, for login pages.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::Sso;

/// How to sign in here (for login pages).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"password_login": true,
    "oidc": {"enabled": true, "label": "Sign in with SSO"}}))]
pub struct AuthConfig {
    /// Whether `POST /api/v1/auth/login` (email and password) is open.
    pub password_login: bool,
    pub oidc: OidcConfig,
}

#[derive(Serialize, ToSchema)]
pub struct OidcConfig {
    /// Whether single sign-on (`GET /api/v1/auth/oidc/start`) is configured.
    pub enabled: bool,
    /// The SSO button's text.
    pub label: String,
}

/// The ways to sign in on this server: email and password, single sign-on, or both.
#[utoipa::path(get, path = "/api/v1/auth/config", operation_id = "get_auth_config", tag = "auth",
    responses((status = 200, description = "the sign-in options", body = AuthConfig)))]
pub async fn auth_config(State(sso): State<Sso>) -> Json<AuthConfig> {
    Json(AuthConfig {
        password_login: sso.settings.password_login,
        oidc: OidcConfig {
            enabled: sso.settings.oidc.is_some(),
            label: sso
                .settings
                .label()
                .unwrap_or(super::settings::DEFAULT_LABEL)
                .to_string(),
        },
    })
}
