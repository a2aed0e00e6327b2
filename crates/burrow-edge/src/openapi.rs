//! The edge's API-host endpoints (`/edge/*`, the tunnel login handoff) in the OpenAPI
//! document (merged by the binary).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::authorize::AuthorizeRedirect;
use crate::session_cookie::LOGIN_COOKIE;

/// The name of the edge-login cookie's security scheme.
pub const EDGE_LOGIN: &str = "edge_login";

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::authorize::authorize_get,
        crate::authorize::authorize_post,
        crate::authorize::session_post,
        crate::authorize::session_delete,
        crate::login::login_form,
        crate::login::login_submit,
    ),
    components(schemas(AuthorizeRedirect, crate::login::LoginForm)),
    tags((name = "edge", description = "Signing browsers in to `require_auth` tunnels")),
    modifiers(&EdgeLogin)
)]
struct EdgeDoc;

struct EdgeLogin;

impl Modify for EdgeLogin {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                EDGE_LOGIN,
                SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                    LOGIN_COOKIE,
                    "Set on the API host by `POST /edge/session` or `POST /edge/login`.",
                ))),
            );
    }
}

/// `/edge/*` with its schemas and the edge-login cookie scheme.
pub fn openapi() -> utoipa::openapi::OpenApi {
    EdgeDoc::openapi()
}
