//! Enrollment: a one-time token, issued by the API when a device is registered (or is to be
//! re-enrolled), exchanged by the device for a certificate over its own key.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use burrow_store::{Store, Timestamp};
use chrono::Utc;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use burrow_identity::wire::{DeviceCaResponse, EnrollRequest, EnrollResponse, EXAMPLE_CSR};

use crate::error::Result;
use crate::state::{error, DeviceState};

/// A fresh enrollment token: shown once to whoever registers the device, stored only as a
/// SHA-256 hash. Debug never shows it.
#[derive(Clone)]
pub struct EnrollmentToken {
    token: String,
    device_id: i64,
    expires_at: Timestamp,
}

impl EnrollmentToken {
    pub fn expose(&self) -> &str {
        &self.token
    }
    pub fn device_id(&self) -> i64 {
        self.device_id
    }
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }
}

impl std::fmt::Debug for EnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentToken")
            .field("token", &"<redacted>")
            .field("device_id", &self.device_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Creates a single-use enrollment token for `device_id`, valid for `ttl`. Used both for a
/// new device and to re-enroll one (its next certificate replaces the current one).
pub async fn issue(
    store: &dyn Store,
    device_id: i64,
    ttl: chrono::Duration,
) -> Result<EnrollmentToken> {
    // 256 random bits, URL-safe so it survives shells, URLs and config files unquoted.
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let expires_at = Utc::now() + ttl;
    store
        .create_enrollment(device_id, &hash_token(&token), expires_at)
        .await?;
    Ok(EnrollmentToken {
        token,
        device_id,
        expires_at,
    })
}

/// Lower-case hex SHA-256: what the store keeps instead of the token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Exchange a one-time enrollment token and a CSR (made on the device over its own key) for
/// the device's certificate. Needs no other credential: the token is it.
#[utoipa::path(post, path = "/api/v1/devices/enroll", operation_id = "enroll_device",
    tag = "device-agent", request_body = EnrollRequest,
    responses((status = 200, description = "the device certificate", body = EnrollResponse),
        (status = 400, description = "not JSON {token, csr}, or the CSR is not valid"),
        (status = 401, description = "the token is invalid, used or expired")))]
pub(crate) async fn enroll(
    State(state): State<DeviceState>,
    body: std::result::Result<Json<EnrollRequest>, JsonRejection>,
) -> Response {
    let Ok(Json(req)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected JSON {\"token\", \"csr\"}",
        );
    };
    let st = &state.inner;
    // Check the CSR before spending the token: a malformed request must not burn it.
    if let Err(e) = crate::ca::check_csr(&req.csr) {
        return error(StatusCode::BAD_REQUEST, &e.to_string());
    }
    let now = Utc::now();
    let device_id = match st
        .store
        .consume_enrollment(&hash_token(&req.token), now)
        .await
    {
        Ok(Some(id)) => id,
        Ok(None) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "invalid, used or expired enrollment token",
            )
        }
        Err(e) => return internal(e),
    };
    let device = match st.store.device_by_id(device_id).await {
        Ok(Some(d)) => d,
        Ok(None) => return error(StatusCode::UNAUTHORIZED, "device no longer exists"),
        Err(e) => return internal(e),
    };
    let not_after = now + st.config.cert_lifetime;
    // The DSN comes from the device record the token was issued for, never from the CSR.
    let (certificate, serial) = match st.ca.sign_csr(&req.csr, &device.dsn, not_after) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if let Err(e) = st
        .store
        .set_device_certificate(device.id, &serial, not_after)
        .await
    {
        return internal(e);
    }
    // A poll still open with the previous certificate must be answered (and refused) now.
    st.notifier.device_changed(device.id);
    tracing::info!(device_id = device.id, dsn = %device.dsn, serial = %serial, "device enrolled");
    Json(EnrollResponse {
        dsn: device.dsn,
        certificate,
        ca: st.ca.ca_pem().to_string(),
        device_url: st.config.device_urls.first().clone(),
        device_urls: Some(st.config.device_urls.clone()),
    })
    .into_response()
}

/// `GET /api/v1/devices/ca`.
#[utoipa::path(get, path = "/api/v1/devices/ca", operation_id = "device_ca_certificate",
    tag = "device-agent",
    responses((status = 200, description = "the device CA certificate and its fingerprint",
        body = DeviceCaResponse)))]
pub(crate) async fn ca_certificate(State(state): State<DeviceState>) -> Json<DeviceCaResponse> {
    let ca = &state.inner.ca;
    Json(DeviceCaResponse {
        ca: ca.ca_pem().to_string(),
        sha256: ca.fingerprint().to_string(),
    })
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "enrollment failed");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_hex_sha256_and_debug_is_masked() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let t = EnrollmentToken {
            token: "s3cret".into(),
            device_id: 1,
            expires_at: Utc::now(),
        };
        assert!(!format!("{t:?}").contains("s3cret"));
        let r = EnrollRequest {
            token: "s3cret".into(),
            csr: String::new(),
        };
        assert!(!format!("{r:?}").contains("s3cret"));
    }
}
