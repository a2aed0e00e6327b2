//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::*;

#[derive(OpenApi)]
#[openapi(
    info(title = "burrow", description = "Reverse tunnels to fleet devices: the seed's API, self-hosted."),
    paths(
        crate::routes::auth::login,
        crate::routes::auth::me,
        crate::routes::auth::logout_all,
        crate::routes::users::create,
        crate::routes::users::list,
        crate::routes::projects::create,
        crate::routes::projects::list,
        crate::routes::projects::get,
        crate::routes::projects::add_member,
        crate::routes::projects::members,
        crate::routes::devices::register,
        crate::routes::devices::list_in_project,
        crate::routes::devices::list,
        crate::routes::devices::get,
        crate::routes::devices::delete,
        crate::routes::devices::reenroll,
        crate::routes::devices::revoke,
        crate::routes::reverse_tunnels::list,
        crate::routes::reverse_tunnels::create,
        crate::routes::reverse_tunnels::get,
        crate::routes::reverse_tunnels::update,
        crate::routes::reverse_tunnels::delete,
        crate::routes::reverse_tunnels::rotate,
        crate::routes::reverse_tunnels::access_log,
        crate::routes::reverse_tunnels::describe,
    ),
    components(schemas(UserResponse, ProjectResponse, MemberResponse, DeviceResponse,
        RegisteredDevice, ReverseTunnelResponse, ReverseTunnelList)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub fn openapi_json() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

pub(crate) async fn serve() -> Json<serde_json::Value> {
    Json(openapi_json())
}
