use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use burrow_store::{Device, NewDevice, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Action;
use crate::auth::AuthUser;
use crate::domain::{self, Dsn};
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::projects::parse_id;
use crate::routes::reverse_tunnels::Message;
use crate::routes::{visible_device, visible_project};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"dsn": "ABC123", "name": "robot 1"}))]
pub struct RegisterDevice {
    /// The device serial number: 1-64 letters, digits, `-` or `_`; unique.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub dsn: String,
    /// 1-255 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceResponse {
    pub id: i64,
    pub project_id: i64,
    pub dsn: String,
    pub name: String,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The agent was seen recently.
    pub online: bool,
    /// The device certificate was revoked.
    pub revoked: bool,
    /// The device has enrolled (holds a certificate).
    pub enrolled: bool,
}

/// A newly registered device, with its one-time enrollment token (shown only here).
#[derive(Serialize, ToSchema)]
pub struct RegisteredDevice {
    #[serde(flatten)]
    pub device: DeviceResponse,
    pub enrollment_token: String,
    /// The whole command to run on the device: the server's URL, the token, and the device
    /// CA's SHA-256 fingerprint that the agent checks the answer against.
    pub enrollment_command: String,
}

impl RegisteredDevice {
    fn new(device: &Device, token: String, state: &AppState) -> Self {
        let c = &state.config;
        let enrollment_command = format!(
            "BURROW_ENROLLMENT_TOKEN='{token}' burrow-agent enroll --server {} --ca-sha256 {} \
             --dir /etc/burrow-agent",
            c.enroll_server_url, c.device_ca_sha256
        );
        RegisteredDevice {
            device: DeviceResponse::new(device, state),
            enrollment_token: token,
            enrollment_command,
        }
    }
}

impl DeviceResponse {
    pub fn new(d: &Device, state: &AppState) -> Self {
        let now = chrono::Utc::now();
        DeviceResponse {
            id: d.id,
            project_id: d.project_id,
            dsn: d.dsn.clone(),
            name: d.name.clone(),
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
            online: d.revoked_at.is_none()
                && d.last_seen_at
                    .is_some_and(|t| now - t <= state.config.online_window),
            revoked: d.revoked_at.is_some(),
            enrolled: d.cert_serial.is_some(),
        }
    }
}

/// Register a device in a project; answers its one-time `enrollment_token`.
#[utoipa::path(post, path = "/api/v1/projects/{id}/devices", operation_id = "register_device",
    tag = "devices", request_body = RegisterDevice,
    params(("id" = i64, Path, description = "The project's id", example = 1)),
    responses((status = 201, description = "the device and its one-time enrollment token",
            body = RegisteredDevice),
        (status = 409, description = "a device with this dsn exists")),
    security(("bearer" = [])))]
pub async fn register(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    ValidJson(req): ValidJson<RegisterDevice>,
) -> ApiResult<(StatusCode, Json<RegisteredDevice>)> {
    let project = visible_project(&state, &user, parse_id(&id)?, Action::ManageDevices).await?;
    let dsn = Dsn::parse(&req.dsn)?;
    let name = domain::plain_name("name", &req.name, 255)?;
    let device = state
        .store
        .create_device(NewDevice {
            project_id: project.id,
            dsn: dsn.as_str().to_string(),
            name,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict("a device with this dsn exists".into()),
            other => other.into(),
        })?;
    let token = state.lifecycle.issue_enrollment(&device).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredDevice::new(&device, token, &state)),
    ))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}/devices", operation_id = "list_project_devices",
    tag = "devices", params(("id" = i64, Path, description = "The project's id", example = 1)),
    responses((status = 200, description = "the project's devices", body = [DeviceResponse])),
    security(("bearer" = [])))]
pub async fn list_in_project(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<DeviceResponse>>> {
    let project = visible_project(&state, &user, parse_id(&id)?, Action::View).await?;
    let devices = state.store.list_devices_in_project(project.id).await?;
    Ok(Json(
        devices
            .iter()
            .map(|d| DeviceResponse::new(d, &state))
            .collect(),
    ))
}

/// Devices of every project the caller is a member of.
#[utoipa::path(get, path = "/api/v1/devices", operation_id = "list_devices", tag = "devices",
    responses((status = 200, description = "the caller's devices", body = [DeviceResponse])),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
) -> ApiResult<Json<Vec<DeviceResponse>>> {
    let devices = state.store.list_devices_for_user(user.id).await?;
    Ok(Json(
        devices
            .iter()
            .map(|d| DeviceResponse::new(d, &state))
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/devices/{dsn}", operation_id = "get_device", tag = "devices",
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123")),
    responses((status = 200, description = "the device", body = DeviceResponse)),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(dsn): Path<String>,
) -> ApiResult<Json<DeviceResponse>> {
    let device = visible_device(&state, &user, &dsn, Action::View).await?;
    Ok(Json(DeviceResponse::new(&device, &state)))
}

/// Rename a device (its DSN, the identity it enrolled with, stays).
#[utoipa::path(patch, path = "/api/v1/devices/{dsn}", operation_id = "update_device",
    tag = "devices", request_body = crate::routes::project_changes::Rename,
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123")),
    responses((status = 200, description = "the device, renamed", body = DeviceResponse)),
    security(("bearer" = [])))]
pub async fn rename(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(dsn): Path<String>,
    ValidJson(req): ValidJson<crate::routes::project_changes::Rename>,
) -> ApiResult<Json<DeviceResponse>> {
    let device = visible_device(&state, &user, &dsn, Action::ManageDevices).await?;
    let name = domain::plain_name("name", &req.name, 255)?;
    let device = state.store.rename_device(device.id, &name).await?;
    Ok(Json(DeviceResponse::new(&device, &state)))
}

/// Delete a device: its certificate stops working and its tunnels are closed and removed.
#[utoipa::path(delete, path = "/api/v1/devices/{dsn}", operation_id = "delete_device",
    tag = "devices",
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123")),
    responses((status = 200, description = "deleted", body = Message)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(dsn): Path<String>,
) -> ApiResult<Json<Message>> {
    let device = visible_device(&state, &user, &dsn, Action::ManageDevices).await?;
    state.lifecycle.device_deleted(&device).await?;
    state.store.delete_device(device.id).await?;
    Ok(Json(Message {
        message: "Device deleted successfully",
    }))
}

/// Issue a new one-time enrollment token for an existing device (re-enrollment).
#[utoipa::path(post, path = "/api/v1/devices/{dsn}/enrollment", operation_id = "reenroll_device",
    tag = "devices",
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123")),
    responses((status = 201, description = "the device and its new one-time enrollment token",
        body = RegisteredDevice)),
    security(("bearer" = [])))]
pub async fn reenroll(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(dsn): Path<String>,
) -> ApiResult<(StatusCode, Json<RegisteredDevice>)> {
    let device = visible_device(&state, &user, &dsn, Action::ManageDevices).await?;
    let token = state.lifecycle.issue_enrollment(&device).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredDevice::new(&device, token, &state)),
    ))
}

/// Revoke the device's certificate: it is refused at once until it enrolls again.
#[utoipa::path(post, path = "/api/v1/devices/{dsn}/revoke", operation_id = "revoke_device",
    tag = "devices",
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123")),
    responses((status = 200, description = "the device, revoked", body = DeviceResponse)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(dsn): Path<String>,
) -> ApiResult<Json<DeviceResponse>> {
    let device = visible_device(&state, &user, &dsn, Action::ManageDevices).await?;
    state
        .store
        .revoke_device(device.id, chrono::Utc::now())
        .await?;
    state.lifecycle.device_revoked(&device).await?;
    let device = state
        .store
        .device_by_id(device.id)
        .await?
        .ok_or(ApiError::NotFound("device"))?;
    Ok(Json(DeviceResponse::new(&device, &state)))
}
