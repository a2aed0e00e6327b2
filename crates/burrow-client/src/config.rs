//! How to reach the broker: URL, token, subprotocols, TLS roots.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use burrow_proto::{Role, Subprotocol};

use crate::error::ClientError;

/// An access token (or any secret header value). `Debug`/`Display` are masked so that it
/// never lands in a log.
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

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `ws://`, `wss://`, `http://` or `https://` plus host and port; the client requests
    /// `/tunnel?local-proxy-mode=...` on it.
    pub server_url: String,
    pub token: Secret,
    /// Lets this client reconnect with the same token (spec section 8).
    pub client_token: Option<String>,
    /// Offered in this order; the broker picks the best it knows.
    pub protocols: Vec<Subprotocol>,
    /// Extra root CA (PEM) for `wss://`; when set, only these roots are trusted.
    pub ca_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    /// How long a destination waits for a local target to accept a connection.
    pub dial_timeout: Duration,
}

impl ClientConfig {
    /// Offers burrow's protocol first, then AWS V3.
    pub fn new(server_url: impl Into<String>, token: impl Into<Secret>) -> Self {
        ClientConfig {
            server_url: server_url.into(),
            token: token.into(),
            client_token: None,
            protocols: vec![Subprotocol::Burrow1, Subprotocol::V3],
            ca_pem: None,
            connect_timeout: Duration::from_secs(15),
            dial_timeout: Duration::from_secs(10),
        }
    }

    pub fn with_client_token(mut self, client_token: impl Into<String>) -> Self {
        self.client_token = Some(client_token.into());
        self
    }

    /// Offers only `protocol`, to behave like an AWS localproxy of that version.
    pub fn force_protocol(mut self, protocol: Subprotocol) -> Self {
        self.protocols = vec![protocol];
        self
    }

    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    pub fn with_ca_file(self, path: &Path) -> Result<Self, ClientError> {
        let pem = std::fs::read(path)
            .map_err(|e| ClientError::Config(format!("reading {}: {e}", path.display())))?;
        Ok(self.with_ca_pem(pem))
    }

    /// The `/tunnel` URL for `role`, and whether it uses TLS.
    pub(crate) fn tunnel_url(&self, role: Role) -> Result<(String, bool), ClientError> {
        let uri: http::Uri = self
            .server_url
            .parse()
            .map_err(|e| ClientError::Config(format!("server url: {e}")))?;
        let tls = match uri.scheme_str() {
            Some("ws" | "http") => false,
            Some("wss" | "https") => true,
            _ => {
                return Err(ClientError::Config(
                    "server url must be ws(s):// or http(s)://".into(),
                ))
            }
        };
        let authority = uri
            .authority()
            .ok_or_else(|| ClientError::Config("server url has no host".into()))?;
        let scheme = if tls { "wss" } else { "ws" };
        let url = format!(
            "{scheme}://{authority}/tunnel?local-proxy-mode={}",
            role.as_str()
        );
        Ok((url, tls))
    }

    /// The rustls configuration for `wss://` when a custom CA is set: one per CA for the
    /// whole process (see [`shared_tls_config`]).
    pub(crate) fn tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, ClientError> {
        match &self.ca_pem {
            Some(pem) => shared_tls_config(pem).map(Some),
            None => Ok(None),
        }
    }
}

/// CAs whose configuration is kept: an agent has one, and a handful across CA rotations.
const KEPT_TLS_CONFIGS: usize = 4;

/// The rustls configuration trusting `pem`, built once per CA and shared by every session of
/// the process. Built per session, each of an agent's tunnels held its own root store and
/// session cache (room for 256 servers): 18 KiB of the agent's memory per tunnel (`--scale`:
/// 70 → 52 KiB), and no session could resume another's TLS session with the broker.
fn shared_tls_config(pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    static CONFIGS: Mutex<Vec<(Vec<u8>, Arc<rustls::ClientConfig>)>> = Mutex::new(Vec::new());
    let mut configs = CONFIGS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, config)) = configs.iter().find(|(key, _)| key == pem) {
        return Ok(config.clone());
    }
    let config = tls_config_trusting(pem)?;
    if configs.len() >= KEPT_TLS_CONFIGS {
        configs.remove(0);
    }
    configs.push((pem.to_vec(), config.clone()));
    Ok(config)
}

fn tls_config_trusting(pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        let cert = cert.map_err(|e| ClientError::Config(format!("CA PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| ClientError::Config(format!("CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ClientError::Config("CA PEM holds no certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_urls() {
        let c = ClientConfig::new("https://example.com:8443", "t");
        assert_eq!(
            c.tunnel_url(Role::Source).unwrap(),
            (
                "wss://example.com:8443/tunnel?local-proxy-mode=source".into(),
                true
            )
        );
        let c = ClientConfig::new("ws://127.0.0.1:9000/", "t");
        assert_eq!(
            c.tunnel_url(Role::Destination).unwrap().0,
            "ws://127.0.0.1:9000/tunnel?local-proxy-mode=destination"
        );
        assert!(ClientConfig::new("ftp://x", "t")
            .tunnel_url(Role::Source)
            .is_err());
        assert_eq!(format!("{:?}", c.token), "Secret(***)");
    }

    #[test]
    fn bad_ca_pem_is_a_config_error() {
        let c = ClientConfig::new("wss://x", "t").with_ca_pem(b"not pem".to_vec());
        assert!(matches!(c.tls_config(), Err(ClientError::Config(_))));
    }

    fn ca_pem(name: &str) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        cert.pem().into_bytes()
    }

    #[test]
    fn sessions_trusting_one_ca_share_one_tls_config() {
        let (a, b) = (ca_pem("a.test"), ca_pem("b.test"));
        let config = |pem: &[u8]| {
            ClientConfig::new("wss://x", "t")
                .with_ca_pem(pem.to_vec())
                .tls_config()
                .unwrap()
                .unwrap()
        };
        let first = config(&a);
        assert!(Arc::ptr_eq(&first, &config(&a)), "one config per CA");
        assert!(
            !Arc::ptr_eq(&first, &config(&b)),
            "another CA, another config"
        );
        assert!(ClientConfig::new("wss://x", "t")
            .tls_config()
            .unwrap()
            .is_none());
    }
}
