//! This crate's part of the OpenAPI document, generated from the handlers' annotations. The
//! binary merges it with the other crates' parts and serves the whole at
//! `/api/v1/openapi.json` (see `crates/burrow/src/openapi/`).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::routes::auth::{LoginRequest, LoginResponse};
use crate::routes::cluster::NodeResponse;
use crate::routes::devices::RegisterDevice;
use crate::routes::project_changes::{Rename, UpdateMember};
use crate::routes::projects::{AddMember, CreateProject};
use crate::routes::reverse_tunnels::{
    AccessLogItem, AccessLogList, CreateReverseTunnel, DeviceContact, Message, TunnelDescription,
    UpdateReverseTunnel,
};
use crate::routes::share_links::{
    CreateShareLink, CreatedShareLink, ShareLinkList, ShareLinkResponse,
};
use crate::routes::sharing_audit::{SharingAuditItem, SharingAuditList};
use crate::routes::tunnel_keys::{
    CreateTunnelKey, CreatedTunnelKey, TunnelKeyList, TunnelKeyResponse,
};
use crate::routes::users::CreateUser;
use crate::routes::*;

/// The name of the bearer JWT security scheme (`Authorization: Bearer <access_token>`).
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(title = "burrow", description = "Reverse tunnels to fleet devices: the seed's API, self-hosted."),
    paths(
        crate::routes::auth::login,
        crate::routes::auth::me,
        crate::routes::auth::logout_all,
        crate::routes::users::create,
        crate::routes::users::list,
        crate::routes::cluster::nodes,
        crate::routes::projects::create,
        crate::routes::projects::list,
        crate::routes::projects::get,
        crate::routes::projects::add_member,
        crate::routes::projects::members,
        crate::routes::project_changes::update,
        crate::routes::project_changes::delete,
        crate::routes::project_changes::update_member,
        crate::routes::project_changes::remove_member,
        crate::routes::devices::rename,
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
        crate::routes::traffic::access_log,
        crate::routes::traffic::analytics,
        crate::routes::traffic::project_traffic,
        crate::routes::reverse_tunnels::describe,
        crate::routes::tunnel_keys::create,
        crate::routes::tunnel_keys::list,
        crate::routes::tunnel_keys::revoke,
        crate::routes::share_links::create,
        crate::routes::share_links::list,
        crate::routes::share_links::revoke,
        crate::routes::sharing_audit::list,
        crate::routes::tokens::create,
        crate::routes::tokens::list,
        crate::routes::tokens::revoke,
        crate::routes::account::change_password,
        crate::routes::account::update_user,
        crate::routes::account::reset_password,
        crate::routes::account::delete_user,
        crate::routes::invitations::create,
        crate::routes::invitations::list,
        crate::routes::invitations::delete,
        crate::routes::invitations::lookup,
        crate::routes::invitations::accept,
        crate::routes::invitations::sign_up,
        crate::routes::domains::create,
        crate::routes::domains::list,
        crate::routes::domains::get,
        crate::routes::domains::check,
        crate::routes::domains::delete,
    ),
    components(schemas(ErrorBody, LoginRequest, LoginResponse, CreateUser, UserResponse,
        CreateProject, ProjectResponse, AddMember, MemberResponse, Rename, UpdateMember, RegisterDevice, DeviceResponse,
        RegisteredDevice, CreateReverseTunnel, UpdateReverseTunnel, ReverseTunnelResponse,
        ReverseTunnelList, Message, AccessLogItem, AccessLogList, TunnelDescription,
        DeviceContact, NodeResponse, CreateTunnelKey, CreatedTunnelKey, TunnelKeyResponse,
        TunnelKeyList, CreateShareLink, CreatedShareLink, ShareLinkResponse, ShareLinkList,
        SharingAuditItem, SharingAuditList, crate::sharing::Cidr, crate::sharing::HttpMethod,
        crate::routes::tokens::CreateToken, crate::routes::tokens::TokenResponse,
        crate::routes::tokens::NewTokenResponse, crate::routes::account::ChangePassword,
        crate::routes::account::ResetPassword, crate::routes::account::UpdateUser,
        crate::routes::invitations::CreateInvitation,
        crate::routes::invitations::InvitationResponse,
        crate::routes::invitations::NewInvitationResponse,
        crate::routes::invitations::InvitationToken, crate::routes::invitations::SignUp,
        crate::routes::invitations::InvitationDetails, crate::routes::invitations::SignedUp,
        crate::routes::domains::AddDomain, crate::routes::domains::DomainResponse,
        crate::routes::domains::DomainList, crate::routes::domains::DnsRecord,
        crate::routes::domains::DomainCertificate)),
    tags(
        (name = "auth", description = "Access tokens"),
        (name = "users", description = "Users (administrators)"),
        (name = "cluster", description = "The server nodes sharing the database (administrators)"),
        (name = "projects", description = "Projects and their members"),
        (name = "devices", description = "Devices, enrollment tokens, revocation"),
        (name = "reverse-tunnels", description = "The seed's reverse tunnel endpoints"),
        (name = "sharing", description = "Per-tunnel API keys, share links, their audit log"),
        (name = "domains", description = "Custom domains on tunnels, with certificates by ACME"),
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The `access_token` of `POST /api/v1/auth/login`, as \
                         `Authorization: Bearer <token>`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The REST API's operations, schemas and bearer security scheme.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
