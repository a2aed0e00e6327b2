//! Device authentication for the config endpoint: certificate → identity → device record.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{Extensions, HeaderMap, StatusCode};
use burrow_store::Device;
use chrono::Utc;

use crate::identity::{
    identity_from_der, is_trusted_proxy, verify_header_cert, DeviceIdentity, PeerCertificate,
};
use crate::state::{DeviceState, Refusal};

pub const DEVICE_CERT_HEADER: &str = "x-device-certificate";

/// The identity of the caller: from `X-Device-Certificate` when the TCP peer is a trusted
/// proxy (verified against the CA here, since no TLS handshake did), else from the client
/// certificate of the mTLS connection. 401 when neither is there or valid.
pub(crate) fn authenticate(
    state: &DeviceState,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Result<DeviceIdentity, Refusal> {
    let st = &state.inner;
    let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let header = headers.get(DEVICE_CERT_HEADER);
    let from_proxy =
        header.is_some() && peer.is_some_and(|p| is_trusted_proxy(p, &st.config.trusted_proxies));
    let der = if from_proxy {
        let value = header.and_then(|h| h.to_str().ok()).unwrap_or_default();
        verify_header_cert(value, st.verifier.as_ref()).map_err(|e| {
            tracing::debug!(peer = ?peer, error = %e, "X-Device-Certificate refused");
            Refusal(StatusCode::UNAUTHORIZED, "invalid device certificate")
        })?
    } else {
        if header.is_some() {
            // Anyone can send the header; only a configured proxy is believed.
            tracing::debug!(peer = ?peer, "ignoring X-Device-Certificate from an untrusted peer");
        }
        match extensions.get::<PeerCertificate>() {
            Some(cert) => cert.0.clone(),
            None => {
                return Err(Refusal(
                    StatusCode::UNAUTHORIZED,
                    "device certificate required",
                ))
            }
        }
    };
    let identity = identity_from_der(&der)
        .map_err(|_| Refusal(StatusCode::UNAUTHORIZED, "invalid device certificate"))?;
    // The handshake checked validity, but a keep-alive connection can outlive the cert.
    if identity.not_after < Utc::now().timestamp() {
        return Err(Refusal(
            StatusCode::UNAUTHORIZED,
            "device certificate expired",
        ));
    }
    Ok(identity)
}

/// The device record of `identity`, if it may be served: known, not revoked, and the
/// certificate is the one currently issued to it (re-enrollment retires the old one).
pub(crate) async fn authorize(
    state: &DeviceState,
    identity: &DeviceIdentity,
) -> Result<Device, Refusal> {
    let device = match state.inner.store.device_by_dsn(&identity.dsn).await {
        Ok(Some(d)) => d,
        Ok(None) => return Err(Refusal(StatusCode::FORBIDDEN, "unknown device")),
        Err(e) => {
            tracing::error!(error = %e, "device lookup failed");
            return Err(Refusal(StatusCode::INTERNAL_SERVER_ERROR, "internal error"));
        }
    };
    if device.revoked_at.is_some() {
        return Err(Refusal(StatusCode::FORBIDDEN, "device revoked"));
    }
    if device.cert_serial.as_deref() != Some(identity.serial_hex.as_str()) {
        return Err(Refusal(
            StatusCode::FORBIDDEN,
            "certificate is not the device's current certificate",
        ));
    }
    Ok(device)
}
