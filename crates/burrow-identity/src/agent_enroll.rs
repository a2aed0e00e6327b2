//! The device side of enrollment (`burrow agent enroll`): make a key on the device, send
//! only a CSR, keep what comes back. The private key never leaves the device.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
use rustls::pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};

use crate::device_url::{DeviceUrl, DeviceUrls};
use crate::fingerprint::CaFingerprint;
use crate::fsutil::{ensure_private_dir, write_atomic};
use crate::identity::identity_from_der;
use crate::wire::{DeviceCaResponse, EnrollRequest, EnrollResponse};

pub const DEVICE_KEY_FILE: &str = "device.key";
pub const DEVICE_CERT_FILE: &str = "device.pem";
pub const CA_FILE: &str = "ca.pem";
pub const AGENT_CONFIG_FILE: &str = "agent.toml";

/// `DIR/agent.toml`, written at enrollment, read by `burrow agent run`, and rewritten
/// (atomically) when the server announces other device URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFile {
    /// The API base URL enrollment used.
    pub server: String,
    /// The preferred mTLS device endpoint (the first of `device_urls`).
    pub device_url: DeviceUrl,
    /// Every device endpoint, in order of preference (files from older servers lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_urls: Option<DeviceUrls>,
    pub dsn: String,
    /// The device's region: device URLs labelled with it are tried first (`run --region`
    /// or `BURROW_REGION` override it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// How long the agent lets open connections finish when stopped (`30s`, `2m`; read by
    /// burrow-agent, whose `--drain-timeout` overrides it). Kept when the file is rewritten.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_timeout: Option<String>,
}

impl AgentFile {
    pub fn load(dir: &Path) -> anyhow::Result<AgentFile> {
        let path = dir.join(AGENT_CONFIG_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes `DIR/agent.toml` atomically (a crash leaves the old file or the new one).
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = dir.join(AGENT_CONFIG_FILE);
        write_atomic(&path, toml::to_string(self)?.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// The device URLs to try, in order.
    pub fn urls(&self) -> DeviceUrls {
        self.device_urls
            .clone()
            .unwrap_or_else(|| DeviceUrls::one(self.device_url.clone()))
    }

    /// The device's config endpoint on the mTLS listener at `base`.
    pub fn config_url(&self, base: &DeviceUrl) -> String {
        format!(
            "{}/api/v1/reverse-tunnels/devices/{}/reverse-tunnels-config",
            base.as_str(),
            percent_encoding::utf8_percent_encode(&self.dsn, percent_encoding::NON_ALPHANUMERIC)
        )
    }
}

/// How the agent knows that the CA in the enrollment answer is the server's.
#[derive(Debug, Clone, Copy)]
pub enum EnrollTrust {
    /// The CA must have this SHA-256 fingerprint (`--ca-sha256`, from the enrollment
    /// command): safe over plain HTTP.
    Pinned(CaFingerprint),
    /// The API is reached over HTTPS and its certificate is checked: the answer comes over
    /// an authenticated channel. Refused for an `http://` server.
    Https,
    /// Whatever CA the answer carries (`--insecure-enroll`): only on a trusted network.
    Insecure,
}

/// Enrolls this device with `server_url` (the API base URL, `http://` in dev or `https://`)
/// using a one-time `token`, and writes `device.key` (0600), `device.pem`, `ca.pem` and
/// `agent.toml` into `dir`. Answers the DSN the server assigned.
pub async fn agent_enroll(
    server_url: &str,
    token: &str,
    dir: &Path,
    trust: EnrollTrust,
) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building HTTP client")?;
    agent_enroll_with_client(&client, server_url, token, dir, trust).await
}

/// [`agent_enroll`] with a caller's client (e.g. one trusting a private CA for the API).
pub async fn agent_enroll_with_client(
    client: &reqwest::Client,
    server_url: &str,
    token: &str,
    dir: &Path,
    trust: EnrollTrust,
) -> anyhow::Result<String> {
    if matches!(trust, EnrollTrust::Https) && !server_url.starts_with("https://") {
        bail!(
            "enrolling over plain HTTP could be intercepted: give --ca-sha256 (the enrollment \
             command shows it), use an https:// server URL, or --insecure-enroll on a network \
             you trust"
        );
    }
    if let EnrollTrust::Pinned(pin) = trust {
        // A wrong pin (a typo, another server) is found before the one-time token is spent.
        check_pin_first(client, server_url, pin).await?;
    }
    ensure_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("generating key")?;
    // Stage the key first (0600 from creation): a directory we cannot write is found before
    // the one-time token is spent, and a previous enrollment stays intact until success.
    let staged = dir.join(format!("{DEVICE_KEY_FILE}.new"));
    write_atomic(&staged, key.serialize_pem().as_bytes(), 0o600)
        .with_context(|| format!("writing {}", staged.display()))?;
    let result = exchange(client, server_url, token, &key, trust).await;
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
        device_urls: resp.device_urls,
        dsn: resp.dsn.clone(),
        region: None,
        drain_timeout: None,
    };
    agent.save(dir)?;
    Ok(resp.dsn)
}

async fn exchange(
    client: &reqwest::Client,
    server_url: &str,
    token: &str,
    key: &KeyPair,
    trust: EnrollTrust,
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
        let detail = crate::wire::error_detail(resp).await;
        bail!("enrollment refused ({status}): {detail}");
    }
    let resp: EnrollResponse = resp.json().await.context("reading enrollment response")?;
    check_response(&resp, key, trust)?;
    Ok(resp)
}

async fn check_pin_first(
    client: &reqwest::Client,
    server_url: &str,
    pin: CaFingerprint,
) -> anyhow::Result<()> {
    let url = format!("{}/api/v1/devices/ca", server_url.trim_end_matches('/'));
    let resp = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if !resp.status().is_success() {
        // An older server without the route: the answer's CA is still checked below.
        return Ok(());
    }
    let answer: DeviceCaResponse = resp.json().await.context("reading the device CA")?;
    // The certificate itself is hashed: the `sha256` field is only for people.
    let ca = first_der(&answer.ca).context("the server's device CA")?;
    check_pin(&ca, pin)
}

fn check_pin(ca: &CertificateDer<'_>, pin: CaFingerprint) -> anyhow::Result<()> {
    let got = CaFingerprint::of(ca);
    if got != pin {
        bail!(
            "the server's device CA has SHA-256 fingerprint {got}, not the {pin} given with \
             --ca-sha256: refusing to enroll (the answer may have been intercepted, or the \
             command is for another server)"
        );
    }
    Ok(())
}

/// The CA must be the one the operator pinned; the certificate must be for our key, name the
/// DSN the server claims, and chain to that CA: otherwise the files would not work together
/// later, or would trust an impostor.
fn check_response(resp: &EnrollResponse, key: &KeyPair, trust: EnrollTrust) -> anyhow::Result<()> {
    let cert = first_der(&resp.certificate).context("certificate in response")?;
    let ca = first_der(&resp.ca).context("CA in response")?;
    if let EnrollTrust::Pinned(pin) = trust {
        check_pin(&ca, pin)?;
    }
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
