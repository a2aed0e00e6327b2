//! The device's config endpoint over mTLS: one request at a time, long-polled with the last
//! version seen (`?wait=SECONDS&version=V`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use burrow_identity::agent_enroll::{CA_FILE, DEVICE_CERT_FILE, DEVICE_KEY_FILE};
use burrow_identity::{AgentFile, DeviceConfigResponse, DeviceUrl, DeviceUrls};

/// How long the agent asks the server to hold a poll when nothing changed.
pub const LONG_POLL_SECS: u64 = 25;

/// Why a config request failed.
#[derive(Debug)]
pub enum FetchError {
    /// 401/403: the device is revoked, unknown or its certificate replaced. Retrying soon
    /// does not help; the agent backs off slowly and keeps trying (it may be re-enrolled).
    Refused(u16, String),
    /// Unreachable, 5xx, timeout, unreadable answer: the server may be restarting.
    Unavailable(anyhow::Error),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Refused(status, detail) => {
                write!(f, "config refused ({status}): {detail}")
            }
            FetchError::Unavailable(e) => write!(f, "config unavailable: {e:#}"),
        }
    }
}

/// The agent's identity, the HTTP client that presents it, and the device URLs it knows.
pub struct ConfigClient {
    http: reqwest::Client,
    dir: PathBuf,
    /// The device CA (PEM): the device listener's certificate chains to it, for the config
    /// endpoint and the broker alike.
    pub ca_pem: Vec<u8>,
    pub agent: AgentFile,
    /// The device URLs as the server last announced them (what `agent.toml` holds).
    announced: DeviceUrls,
    /// The same, this device's region's first: the order they are tried in.
    urls: DeviceUrls,
    /// The device's region (`run --region`, `BURROW_REGION`, or `region` in `agent.toml`).
    region: Option<String>,
    /// Index into `urls` of the URL in use.
    active: usize,
}

impl ConfigClient {
    /// Reads `agent.toml`, `device.pem`, `device.key` and `ca.pem` from `dir`; `region`
    /// overrides the file's.
    pub fn load(dir: &Path, region: Option<String>) -> anyhow::Result<Self> {
        let agent = AgentFile::load(dir)?;
        let region = region.or_else(|| agent.region.clone());
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
        };
        let mut identity = read(DEVICE_CERT_FILE)?;
        identity.push(b'\n');
        identity.extend_from_slice(&read(DEVICE_KEY_FILE)?);
        let ca_pem = read(CA_FILE)?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(&ca_pem).context("parsing ca.pem")?,
            )
            .identity(reqwest::Identity::from_pem(&identity).context("device certificate")?)
            .connect_timeout(Duration::from_secs(10))
            // A server that vanished mid-poll is noticed within one poll plus slack.
            .timeout(Duration::from_secs(LONG_POLL_SECS + 20))
            // Short-lived idle connections: after a server restart, a pooled connection to
            // the old process is not worth reusing.
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .context("building the config client")?;
        Ok(ConfigClient {
            http,
            dir: dir.to_path_buf(),
            ca_pem,
            announced: agent.urls(),
            urls: agent.urls().preferring(region.as_deref()),
            region,
            agent,
            active: 0,
        })
    }

    /// The device URL in use.
    pub fn active(&self) -> &DeviceUrl {
        self.urls
            .iter()
            .nth(self.active)
            .unwrap_or(self.urls.first())
    }

    /// After a failure: the next URL. Answers `true` when the list wrapped around, i.e. every
    /// URL has failed once since the last wrap (time to back off).
    pub fn next_url(&mut self) -> bool {
        self.active = (self.active + 1) % self.urls.len();
        self.active == 0
    }

    /// Adopts the device URLs the server announced: `agent.toml` is rewritten (atomically)
    /// when they differ, and the URL in use is kept if it is still listed. Answers whether
    /// anything changed.
    pub fn adopt(&mut self, urls: &DeviceUrls) -> anyhow::Result<bool> {
        if *urls == self.announced {
            return Ok(false);
        }
        let current = self.active().clone();
        let mut agent = self.agent.clone();
        agent.device_url = urls.first().clone();
        agent.device_urls = Some(urls.clone());
        agent.save(&self.dir)?;
        self.agent = agent;
        self.announced = urls.clone();
        self.urls = urls.preferring(self.region.as_deref());
        self.active = self.urls.iter().position(|u| *u == current).unwrap_or(0);
        Ok(true)
    }

    /// One config request. With `version` and a non-zero `wait`, the server holds it until
    /// the config differs from `version` or `wait` seconds have passed.
    pub async fn fetch(
        &self,
        version: Option<&str>,
        wait: u64,
    ) -> Result<DeviceConfigResponse, FetchError> {
        let mut req = self.http.get(self.agent.config_url(self.active()));
        if let (Some(v), true) = (version, wait > 0) {
            req = req.query(&[("wait", wait.to_string().as_str()), ("version", v)]);
        }
        let resp = req.send().await.map_err(|e| {
            let at = format!("GET config from {}", self.active());
            FetchError::Unavailable(anyhow::Error::new(e).context(at))
        })?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            let detail = burrow_identity::wire::error_detail(resp).await;
            return Err(FetchError::Refused(status.as_u16(), detail));
        }
        if !status.is_success() {
            return Err(FetchError::Unavailable(anyhow::anyhow!(
                "config endpoint {} answered {status}",
                self.active()
            )));
        }
        resp.json::<DeviceConfigResponse>()
            .await
            .map_err(|e| FetchError::Unavailable(anyhow::Error::new(e).context("config body")))
    }
}
