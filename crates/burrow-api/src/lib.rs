//! burrow's REST API: the seed's endpoints (same paths, same JSON), plus users, projects and
//! devices. Handlers parse input into domain types, check project membership, and call the
//! [`Store`]; what happens to tunnels beyond the database (broker tunnels, agents, enrollment)
//! goes through the [`Lifecycle`] the binary plugs in.

pub mod access;
mod auth;
mod domain;
mod error;
mod hostname;
mod json;
mod lifecycle;
pub mod mail;
mod openapi;
mod public_url;
mod routes;
pub mod sharing;
mod time;

use std::sync::Arc;

use axum::Router;
use burrow_store::{Store, User};

pub use auth::{
    client_key, forwarded_client, hash_password, issued_after, revoke_sessions,
    sessions_valid_after, verify_password, Claims, ClientIp, ForwardedClient, GuessGuard,
    GuessLimits, JwtKeys, LoginGuard, LoginLimits, LoginRefused,
};
pub use error::{retry_after_secs, ApiError, ApiResult, ErrorBody};
pub use json::ValidJson;
pub use lifecycle::{BasicLifecycle, Lifecycle, TunnelState};
pub use openapi::openapi;
pub use routes::auth::LoginResponse;
pub use routes::projects::parse_id;
pub use routes::share_links::SHARE_PATH;

/// Settings the API needs from burrow's configuration.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Tunnels get `public_url`s below this domain (`localhost` in development).
    pub base_domain: String,
    /// A device counts as online when its agent was seen within this window.
    pub online_window: chrono::Duration,
    /// The API's URL as devices reach it, for the enrollment command.
    pub enroll_server_url: String,
    /// SHA-256 of the device CA (hex), pinned by the enrollment command.
    pub device_ca_sha256: String,
    /// How browsers reach tunnel hosts (`http` or `https`), for share link URLs.
    pub tunnel_scheme: String,
    /// The port browsers reach tunnel hosts on (`None`: the scheme's default).
    pub tunnel_port: Option<u16>,
    /// The longest lifetime of a share link (config `share_link_max_minutes`).
    pub share_link_max_minutes: i64,
    /// The API's origin as browsers reach it (the web UI's too), for invitation links.
    pub api_origin: String,
    /// Whether `POST /auth/login` takes email and password (config `password_login`;
    /// `false` when everyone signs in through SSO).
    pub password_login: bool,
}

impl ApiConfig {
    /// `scheme://host[:port]` of a tunnel host (its own or a custom domain), as browsers
    /// reach it.
    pub fn tunnel_origin(&self, host: &str) -> String {
        match self.tunnel_port {
            Some(p) => format!("{}://{host}:{p}", self.tunnel_scheme),
            None => format!("{}://{host}", self.tunnel_scheme),
        }
    }

    pub fn custom_domain_url(&self, hostname: &str) -> String {
        self.tunnel_origin(hostname)
    }
}

/// Default `share_link_max_minutes`: 7 days.
pub const DEFAULT_SHARE_LINK_MAX_MINUTES: i64 = 7 * 24 * 60;

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            base_domain: "localhost".to_string(),
            online_window: chrono::Duration::seconds(90),
            enroll_server_url: "http://localhost:8700".to_string(),
            device_ca_sha256: String::new(),
            tunnel_scheme: "http".to_string(),
            tunnel_port: None,
            share_link_max_minutes: DEFAULT_SHARE_LINK_MAX_MINUTES,
            api_origin: "http://localhost:8700".to_string(),
            password_login: true,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub jwt: JwtKeys,
    pub config: Arc<ApiConfig>,
    pub lifecycle: Arc<dyn Lifecycle>,
    /// Throttles password logins; share one with the edge's login form.
    pub login_guard: Arc<LoginGuard>,
    /// Sends invitation links when SMTP is configured.
    pub mailer: Option<Arc<mail::Mailer>>,
    /// Woken when a custom domain is added, removed or asked to be checked: the domain
    /// worker and the edge's host list act at once instead of at their next tick.
    pub domains_changed: Arc<tokio::sync::Notify>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        jwt: JwtKeys,
        config: ApiConfig,
        lifecycle: Arc<dyn Lifecycle>,
    ) -> Self {
        AppState {
            store,
            jwt,
            config: Arc::new(config),
            lifecycle,
            login_guard: Arc::default(),
            mailer: None,
            domains_changed: Arc::default(),
        }
    }

    /// The user of a bearer credential for a request with `method`: a session JWT or a
    /// personal access token (whose scope must allow the method).
    pub async fn authenticate(&self, token: &str, method: &http::Method) -> ApiResult<User> {
        if token.starts_with(auth::personal_token::PREFIX) {
            let (user, scope) = auth::personal_token::authenticate(self, token)
                .await?
                .ok_or(ApiError::Unauthorized(
                    "invalid, expired or revoked personal access token",
                ))?;
            if !scope.allows(method) {
                return Err(ApiError::Forbidden(
                    "this personal access token is read-only",
                ));
            }
            return Ok(user);
        }
        self.user_for_token(token)
            .await?
            .ok_or(ApiError::Unauthorized("invalid or expired token"))
    }

    /// The user a bearer JWT names, if the token is valid and the user still exists (and is
    /// not disabled).
    pub async fn user_for_token(&self, token: &str) -> ApiResult<Option<User>> {
        let Some(claims) = self.jwt.verify(token) else {
            return Ok(None);
        };
        let Ok(id) = claims.sub.parse::<i64>() else {
            return Ok(None);
        };
        let Some(user) = self.store.user_by_id(id).await? else {
            return Ok(None);
        };
        if user.disabled {
            return Ok(None);
        }
        // Signed out everywhere after this token was issued?
        let after = sessions_valid_after(self.store.as_ref(), id).await?;
        Ok(issued_after(claims.iat, after).then_some(user))
    }
}

/// All API routes, under `/api/v1`.
pub fn router(state: AppState) -> Router {
    routes::router().with_state(state)
}
