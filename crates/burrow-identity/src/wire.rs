//! The JSON bodies the agent and the server exchange: enrollment (`POST
//! /api/v1/devices/enroll`, `GET /api/v1/devices/ca`) and the device config endpoint. Both
//! sides build on these types, so the wire format has one definition; the schemas feed the
//! server's OpenAPI document.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::device_url::{DeviceUrl, DeviceUrls};

#[derive(Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"token": "one-time-token-from-registration", "csr": EXAMPLE_CSR}))]
pub struct EnrollRequest {
    /// The one-time `enrollment_token` of the device's registration (or re-enrollment).
    pub token: String,
    /// PEM `CERTIFICATE REQUEST`, made on the device over its own key.
    pub csr: String,
}

impl std::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct EnrollResponse {
    pub dsn: String,
    /// The device certificate, PEM.
    pub certificate: String,
    /// The device CA, PEM: trusts the device listener, and is what the certificate chains to.
    pub ca: String,
    /// The mTLS device endpoint's base URL (the first of `device_urls`).
    #[schema(value_type = String, example = "https://devices.fleet.example.com:8701")]
    pub device_url: DeviceUrl,
    /// Every URL of the device listener, in order of preference (absent from older servers).
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub device_urls: Option<DeviceUrls>,
}

/// A well-formed CSR (P-256), for the document's examples: the certificate it gets is useless
/// without its key, which nobody kept.
pub const EXAMPLE_CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----
MIHUMHsCAQAwGTEXMBUGA1UEAwwOZXhhbXBsZS1kZXZpY2UwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAASLFwXJ12PULcHkGjyYp+pMG1VUGvUBtyZ/XfFrzgnn5+DO
owRqO25E70GRfXTU/FbKblvj9jhEaLgvIFwfrx8soAAwCgYIKoZIzj0EAwIDSQAw
RgIhAN/NyQEXpBcDNqmYyvhUoDvKqXrX+Fa4elFqtD0nHTRKAiEAnsH4k/yptkUX
5V+yhsSHyVrhUg+4VuqBgqjGi+uGoJk=
-----END CERTIFICATE REQUEST-----
";

/// The device CA, public: what an agent checks its `--ca-sha256` pin against before it
/// spends its one-time token.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
pub struct DeviceCaResponse {
    /// The device CA certificate, PEM.
    pub ca: String,
    /// SHA-256 of its DER, hex: what enrollment commands pin with `--ca-sha256`.
    pub sha256: String,
}

/// The response: the seed's `{"tunnels": [...]}` plus `version` (for long-polls) and, when
/// configured, `broker_url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceConfigResponse {
    pub tunnels: Vec<TunnelConfig>,
    /// Opaque; changes whenever anything in `tunnels` (tokens included) changes.
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_url: Option<String>,
    /// Every URL of the device listener, in order of preference: an enrolled agent rewrites
    /// its `agent.toml` when this changes (the operator changed `device_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>, example = json!(["https://devices.fleet.example.com:8701"]))]
    pub device_urls: Option<DeviceUrls>,
}

/// One tunnel, with exactly the seed's fields plus `service`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TunnelConfig {
    pub id: i64,
    pub name: String,
    pub is_enabled: bool,
    pub local_port: i64,
    pub protocol: String,
    pub tunnel_id: Option<String>,
    pub tunnel_arn: Option<String>,
    /// Only for enabled tunnels with an active broker tunnel; `null` otherwise.
    pub destination_access_token: Option<String>,
    pub public_url: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
    /// The broker tunnel's service name, `<PROTOCOL>-<local_port>` (e.g. `HTTP-8080`).
    pub service: String,
}

impl std::fmt::Debug for TunnelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("is_enabled", &self.is_enabled)
            .field("local_port", &self.local_port)
            .field("protocol", &self.protocol)
            .field("tunnel_id", &self.tunnel_id)
            .field(
                "destination_access_token",
                &self.destination_access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("public_url", &self.public_url)
            .field("expires_at", &self.expires_at)
            .field("service", &self.service)
            .finish()
    }
}

/// The `detail` of one of the server's `{"detail", "code"}` error answers; empty when the body
/// is not one.
pub async fn error_detail(resp: reqwest::Response) -> String {
    resp.json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_string))
        .unwrap_or_default()
}
