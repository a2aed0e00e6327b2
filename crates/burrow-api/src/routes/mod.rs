pub(crate) mod account;
pub(crate) mod auth;
pub(crate) mod cluster;
pub(crate) mod devices;
pub(crate) mod domains;
pub(crate) mod invitations;
pub(crate) mod project_changes;
pub(crate) mod projects;
pub(crate) mod reverse_tunnels;
pub(crate) mod share_links;
pub(crate) mod sharing_audit;
pub(crate) mod tokens;
pub(crate) mod traffic;
pub(crate) mod tunnel_keys;
pub(crate) mod tunnel_limits;
pub(crate) mod users;

use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use burrow_store::{Device, User};

use crate::access::{Action, Role};
use crate::domain::Dsn;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub(crate) use devices::{DeviceResponse, RegisteredDevice};
pub(crate) use projects::{MemberResponse, ProjectResponse};
pub(crate) use reverse_tunnels::{ReverseTunnelList, ReverseTunnelResponse};
pub(crate) use users::UserResponse;

pub fn router() -> Router<AppState> {
    let rt = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels";
    Router::new()
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/me", get(auth::me))
        .route("/api/v1/auth/logout-all", post(auth::logout_all))
        .route("/api/v1/auth/password", post(account::change_password))
        .route(
            "/api/v1/auth/tokens",
            post(tokens::create).get(tokens::list),
        )
        .route("/api/v1/auth/tokens/{id}", delete(tokens::revoke))
        .route("/api/v1/users", post(users::create).get(users::list))
        .route(
            "/api/v1/users/{id}",
            patch(account::update_user).delete(account::delete_user),
        )
        .route("/api/v1/users/{id}/password", post(account::reset_password))
        .route("/api/v1/invitations/lookup", post(invitations::lookup))
        .route("/api/v1/invitations/accept", post(invitations::accept))
        .route("/api/v1/invitations/signup", post(invitations::sign_up))
        .route("/api/v1/cluster/nodes", get(cluster::nodes))
        .route(
            "/api/v1/projects",
            post(projects::create).get(projects::list),
        )
        .route(
            "/api/v1/projects/{id}",
            get(projects::get)
                .patch(project_changes::update)
                .delete(project_changes::delete),
        )
        .route(
            "/api/v1/projects/{id}/traffic",
            get(traffic::project_traffic),
        )
        .route(
            "/api/v1/projects/{id}/members",
            post(projects::add_member).get(projects::members),
        )
        .route(
            "/api/v1/projects/{id}/members/{user_id}",
            patch(project_changes::update_member).delete(project_changes::remove_member),
        )
        .route(
            "/api/v1/projects/{id}/invitations",
            post(invitations::create).get(invitations::list),
        )
        .route(
            "/api/v1/projects/{id}/invitations/{invitation_id}",
            delete(invitations::delete),
        )
        .route(
            "/api/v1/projects/{id}/devices",
            post(devices::register).get(devices::list_in_project),
        )
        .route("/api/v1/devices", get(devices::list))
        .route(
            "/api/v1/devices/{dsn}",
            get(devices::get)
                .patch(devices::rename)
                .delete(devices::delete),
        )
        .route("/api/v1/devices/{dsn}/enrollment", post(devices::reenroll))
        .route("/api/v1/devices/{dsn}/revoke", post(devices::revoke))
        .route(rt, get(reverse_tunnels::list).post(reverse_tunnels::create))
        .route(
            &format!("{rt}/{{id}}"),
            put(reverse_tunnels::update)
                .delete(reverse_tunnels::delete)
                .get(reverse_tunnels::get),
        )
        .route(
            &format!("{rt}/{{id}}/rotate"),
            post(reverse_tunnels::rotate),
        )
        .route(
            &format!("{rt}/{{id}}/describe"),
            get(reverse_tunnels::describe),
        )
        .route(
            &format!("{rt}/{{id}}/api-keys"),
            get(tunnel_keys::list).post(tunnel_keys::create),
        )
        .route(
            &format!("{rt}/{{id}}/api-keys/{{key_id}}"),
            delete(tunnel_keys::revoke),
        )
        .route(
            &format!("{rt}/{{id}}/share-links"),
            get(share_links::list).post(share_links::create),
        )
        .route(
            &format!("{rt}/{{id}}/share-links/{{link_id}}"),
            delete(share_links::revoke),
        )
        .route(
            "/api/v1/projects/{id}/sharing-audit",
            get(sharing_audit::list),
        )
        .route(
            &format!("{rt}/{{id}}/domains"),
            get(domains::list).post(domains::create),
        )
        .route(
            &format!("{rt}/{{id}}/domains/{{domain_id}}"),
            get(domains::get).delete(domains::delete),
        )
        .route(
            &format!("{rt}/{{id}}/domains/{{domain_id}}/check"),
            post(domains::check),
        )
        .route(&format!("{rt}/{{id}}/access-log"), get(traffic::access_log))
        .route(&format!("{rt}/{{id}}/analytics"), get(traffic::analytics))
        .fallback(not_found)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

/// The caller's role in project `project_id`, `None` when not a member.
pub(crate) async fn role_in(
    state: &AppState,
    user: &User,
    project_id: i64,
) -> ApiResult<Option<Role>> {
    Ok(crate::access::role_of(state.store.as_ref(), project_id, user.id).await?)
}

/// 403 unless `user`'s role in the project allows `action` (for a second, finer check after
/// [`visible_device`]).
pub(crate) async fn require(
    state: &AppState,
    user: &User,
    project_id: i64,
    action: Action,
) -> ApiResult<()> {
    match role_in(state, user, project_id).await? {
        Some(role) if role.may(action) => Ok(()),
        _ => Err(ApiError::Forbidden(action.denied())),
    }
}

/// The device named `dsn` if `user` is a member of its project and their role allows
/// `action`. A device that does not exist and one in another project answer the same 404, so
/// the API is no existence oracle; a member whose role does not allow it gets 403.
pub(crate) async fn visible_device(
    state: &AppState,
    user: &User,
    dsn: &str,
    action: Action,
) -> ApiResult<Device> {
    let dsn = Dsn::parse(dsn).map_err(|_| ApiError::NotFound("device"))?;
    let device = state
        .store
        .device_by_dsn(dsn.as_str())
        .await?
        .ok_or(ApiError::NotFound("device"))?;
    match role_in(state, user, device.project_id).await? {
        None => Err(ApiError::NotFound("device")),
        Some(role) if role.may(action) => Ok(device),
        Some(_) => Err(ApiError::Forbidden(action.denied())),
    }
}

/// The project `id` if `user` is a member whose role allows `action` (404 for non-members,
/// 403 for members, as for devices).
pub(crate) async fn visible_project(
    state: &AppState,
    user: &User,
    id: i64,
    action: Action,
) -> ApiResult<burrow_store::Project> {
    Ok(project_with_role(state, user, id, action).await?.0)
}

/// [`visible_project`], with the caller's role.
pub(crate) async fn project_with_role(
    state: &AppState,
    user: &User,
    id: i64,
    action: Action,
) -> ApiResult<(burrow_store::Project, Role)> {
    let project = state
        .store
        .project_by_id(id)
        .await?
        .ok_or(ApiError::NotFound("project"))?;
    match role_in(state, user, id).await? {
        None => Err(ApiError::NotFound("project")),
        Some(role) if role.may(action) => Ok((project, role)),
        Some(_) => Err(ApiError::Forbidden(action.denied())),
    }
}
