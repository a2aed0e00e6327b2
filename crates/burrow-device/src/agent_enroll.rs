//! The device side of enrollment (`burrow agent enroll`): make a key on the device, send
//! only a CSR, keep what comes back. The private key never leaves the device.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls::pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};

use crate::enrollment::{EnrollRequest, EnrollResponse};
use crate::fsutil::{ensure_private_dir, write_atomic};
use crate::identity::identity_from_der;

pub const DEVICE_KEY_FILE: &str = "device.key";
pub const DEVICE_CERT_FILE: &str = "device.pem";
pub const CA_FILE: &str = "ca.pem";
pub const AGENT_CONFIG_FILE: &str = "agent.toml";

/// `DIR/agent.toml`, written at enrollment and read by `burrow agent run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFile {
    /// The API base URL enrollment used.
    pub server: String,
    /// The mTLS device endpoint's base URL.
    pub device_url: String,
    pub dsn: String,
}

impl AgentFile {
    pub fn load(dir: &Path) -> anyhow::Result<AgentFile> {
        let path = dir.join(AGENT_CONFIG_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The device's config endpoint on the mTLS listener.
    pub fn config_url(&self) -> String {
        format!(
            "{}/api/v1/reverse-tunnels/devices/{}/reverse-tunnels-config",
            self.device_url.trim_end_matches('/'),
            percent_encoding::utf8_percent_encode(&self.dsn, percent_encoding::NON_ALPHANUMERIC)
        )
    }
}

/// Enrolls this device with `server_url` (the API base URL, `http://` in dev or `https://`)
/// using a one-time `token`, and writes `device.key` (0600), `device.pem`, `ca.pem` and
/// `agent.toml` into `dir`. Answers the DSN the server assigned.
pub async fn agent_enroll(server_url: &str, token: &str, dir: &Path) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building HTTP client")?;
    agent_enroll_with_client(&client, server_url, token, dir).await
}

/// [`agent_enroll`] with a caller's client (e.g. one trusting a private CA for the API).
pub async fn agent_enroll_with_client(
    client: &reqwest::Client,
    server_url: &str,
    token: &str,
    dir: &Path,
) -> anyhow::Result<String> {
    ensure_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("generating key")?;
    // Stage the key first (0600 from creation): a directory we cannot write is found before
    // the one-time token is spent, and a previous enrollment stays intact until success.
    let staged = dir.join(format!("{DEVICE_KEY_FILE}.new"));
    write_atomic(&staged, key.serialize_pem().as_bytes(), 0o600)
        .with_context(|| format!("writing {}", staged.display()))?;
    let result = exchange(client, server_url, token, &key).await;
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e);
        }
    };
    std::fs::rename(&staged, dir.join(DEVICE_KEY_FILE)).context("installing device.key")?;
    write_atomic(
        &dir.join(DEVICE_CERT_FILE),
        resp.certificate.as_bytes(),
        0o644,
    )?;
    write_atomic(&dir.join(CA_FILE), resp.ca.as_bytes(), 0o644)?;
    let agent = AgentFile {
        server: server_url.trim_end_matches('/').to_string(),
        device_url: resp.device_url,
        dsn: resp.dsn.clone(),
    };
    write_atomic(
        &dir.join(AGENT_CONFIG_FILE),
        toml::to_string(&agent)?.as_bytes(),
        0o644,
    )?;
    Ok(resp.dsn)
}

async fn exchange(
    client: &reqwest::Client,
    server_url: &str,
    token: &str,
    key: &KeyPair,
) -> anyhow::Result<EnrollResponse> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    // Informational only: the server names the certificate after its own device record.
    dn.push(DnType::CommonName, "burrow device");
    params.distinguished_name = dn;
    let csr = params.serialize_request(key)?.pem()?;
    let url = format!("{}/api/v1/devices/enroll", server_url.trim_end_matches('/'));
    let body = EnrollRequest {
        token: token.to_string(),
        csr,
    };
    let resp = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        let detail = resp
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_string))
            .unwrap_or_default();
        bail!("enrollment refused ({status}): {detail}");
    }
    let resp: EnrollResponse = resp.json().await.context("reading enrollment response")?;
    check_response(&resp, key)?;
    Ok(resp)
}

/// The certificate must be for our key, name the DSN the server claims, and chain to the CA
/// we are about to trust: otherwise the files would not work together later.
fn check_response(resp: &EnrollResponse, key: &KeyPair) -> anyhow::Result<()> {
    let cert = first_der(&resp.certificate).context("certificate in response")?;
    let ca = first_der(&resp.ca).context("CA in response")?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).context("parsing certificate")?;
    if parsed.public_key().raw != key.public_key_der().as_slice() {
        bail!("the issued certificate is not for this device's key");
    }
    let identity = identity_from_der(&cert)?;
    if identity.dsn != resp.dsn {
        bail!("the issued certificate names another device");
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).context("CA certificate")?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots.into(),
        crate::mtls::crypto_provider(),
    )
    .build()?;
    verifier
        .verify_client_cert(&cert, &[], UnixTime::now())
        .context("the issued certificate does not chain to the returned CA")?;
    Ok(())
}

fn first_der(pem: &str) -> anyhow::Result<CertificateDer<'static>> {
    let mut reader = pem.as_bytes();
    let first = rustls_pemfile::certs(&mut reader).next();
    match first {
        Some(Ok(c)) => Ok(c),
        _ => bail!("no PEM certificate"),
    }
}
