//! Single sign-on with OpenID Connect (authorization code flow with PKCE, `state` and
//! `nonce`), next to email and password. See docs/sso.md.
//!
//! - `GET /api/v1/auth/oidc/start?next=PATH` sends the browser to the provider; the login in
//!   flight (state, nonce, PKCE verifier, `next`) rides in a sealed cookie ([`flight`]), so the
//!   callback may land on any node of a cluster.
//! - `GET /api/v1/auth/oidc/callback` checks it all, finds or creates the user by verified
//!   email ([`account`]), sets the edge-login cookie, and hands the web UI a one-time code in
//!   the URL fragment ([`handoff`]) — never the JWT.
//! - `POST /api/v1/auth/oidc/exchange` trades that code for the JWT.
//! - `GET /api/v1/auth/config` tells login pages which ways to sign in there are.

mod account;
mod browser;
mod error;
mod exchange;
mod flight;
mod handoff;
mod options;
mod provider;
mod routes;
mod settings;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

pub use settings::{describe_config, deserialize_domains, validate_config, SsoSettings};

/// What the SSO routes share.
#[derive(Clone)]
pub struct Sso {
    pub(crate) api: burrow_api::AppState,
    pub(crate) edge: Arc<burrow_edge::Edge>,
    pub(crate) settings: Arc<SsoSettings>,
    pub(crate) provider: Option<Arc<provider::Provider>>,
    pub(crate) flight_key: Arc<flight::FlightKey>,
}

impl Sso {
    /// `secret`: key material every node of the cluster shares (the JWT signing key), for the
    /// sealed in-flight cookie.
    pub fn new(
        api: burrow_api::AppState,
        edge: Arc<burrow_edge::Edge>,
        settings: SsoSettings,
        secret: &[u8],
    ) -> anyhow::Result<Self> {
        let provider = match &settings.oidc {
            Some(oidc) => Some(Arc::new(provider::Provider::new(oidc.clone())?)),
            None => None,
        };
        Ok(Sso {
            api,
            edge,
            settings: Arc::new(settings),
            provider,
            flight_key: Arc::new(flight::FlightKey::derive(secret)),
        })
    }
}

/// The SSO routes and `GET /api/v1/auth/config`.
pub fn router(sso: Sso) -> Router {
    Router::new()
        .route("/api/v1/auth/config", get(options::auth_config))
        .route("/api/v1/auth/oidc/start", get(routes::start))
        .route("/api/v1/auth/oidc/callback", get(routes::callback))
        .route("/api/v1/auth/oidc/exchange", post(exchange::exchange))
        .with_state(sso)
}

/// This module's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        options::auth_config,
        routes::start,
        routes::callback,
        exchange::exchange
    ),
    components(schemas(options::AuthConfig, options::OidcConfig, exchange::ExchangeRequest))
)]
pub struct SsoDoc;
