//! What the config endpoint needs from the broker, as a trait: the device crate does not
//! depend on the broker (the lead implements this for `burrow_broker::Broker`), and the
//! endpoint is tested without one.

use async_trait::async_trait;
use burrow_store::Timestamp;

/// A secret string (an access token): masked in Debug, shown only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What to open for one reverse tunnel (mirrors the broker's `OpenRequest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionRequest {
    /// The device's project (owner of the broker tunnel).
    pub project_id: Option<i64>,
    pub description: Option<String>,
    /// The device's DSN.
    pub thing_name: Option<String>,
    /// One service, `<PROTOCOL>-<local_port>` (e.g. `HTTP-8080`): see [`service_name`].
    pub services: Vec<String>,
    /// `None`: the broker's default (12 h).
    pub lifetime_minutes: Option<i64>,
}

/// The broker tunnel that is active after [`TunnelProvisioner::ensure_active`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedTunnel {
    pub tunnel_id: String,
    pub tunnel_arn: String,
    pub expires_at: Timestamp,
    /// True when a new tunnel was opened in place of `current` (or none existed). The
    /// endpoint then records it on the reverse tunnel and closes the old one.
    pub replaced: bool,
}

#[async_trait]
pub trait TunnelProvisioner: Send + Sync + 'static {
    /// Answers an open tunnel for `req`: `current` itself when it is open, expires later than
    /// `now + threshold` and carries `req.services`; otherwise a newly opened one
    /// (`replaced: true`). Must not close `current`: the endpoint does that after recording.
    async fn ensure_active(
        &self,
        current: Option<&str>,
        req: ProvisionRequest,
        threshold: chrono::Duration,
    ) -> anyhow::Result<ProvisionedTunnel>;

    /// The destination access token of `tunnel_id`. Must be stable until the tunnel or its
    /// tokens are rotated (the config version hashes it: a token that changed on every call
    /// would wake every long-poll at once).
    async fn destination_token(&self, tunnel_id: &str) -> anyhow::Result<Secret>;

    /// Closes a tunnel (`delete`: drop it at once rather than let connections drain).
    async fn close(&self, tunnel_id: &str, delete: bool) -> anyhow::Result<()>;
}

/// The broker service name of a reverse tunnel: `<PROTOCOL uppercased>-<local_port>`, the
/// seed's `"service": "HTTP-8080"`.
pub fn service_name(protocol: &str, local_port: i64) -> String {
    format!("{}-{}", protocol.to_ascii_uppercase(), local_port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_and_masking() {
        assert_eq!(service_name("http", 8080), "HTTP-8080");
        assert_eq!(service_name("wss", 443), "WSS-443");
        assert_eq!(format!("{:?}", Secret::new("tok")), "Secret(<redacted>)");
    }
}
