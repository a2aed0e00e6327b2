//! A whole burrow stack on ephemeral ports, for tests (linkerd2-proxy's test kit in spirit):
//! a real server with a real database (a temp SQLite file, or a fresh PostgreSQL database),
//! reached over real sockets.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use burrow_client::{ClientConfig, DestinationClient, Targets};
use serde_json::{json, Value};

pub mod agent;
pub mod device_service;
pub mod oidc_provider;
pub mod processes;
pub mod topology;

use crate::config::Config;
use crate::secret::Secret;
use crate::server::{self, Running};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const ADMIN_EMAIL: &str = "admin@test.local";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

pub struct TestStack {
    pub running: Running,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    /// Where the API is reached, when not `http://addr`.
    origin: Option<String>,
    pub data_dir: PathBuf,
    _dir: tempfile::TempDir,
    /// Drops the fresh PostgreSQL database when the stack goes away.
    _pg: Option<burrow_store::testing::PgTestDb>,
    config: Config,
    /// The server's own runtime (see [`TestStack::start_isolated`]).
    runtime: Option<ServerRuntime>,
}

/// A runtime that only the server runs on, so that stopping it ends every task and socket
/// of the server at once, as the exit of a process would.
struct ServerRuntime(Option<tokio::runtime::Runtime>);

impl ServerRuntime {
    fn new() -> anyhow::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("test-server")
            .enable_all()
            .build()?;
        Ok(ServerRuntime(Some(rt)))
    }

    async fn start(&self, config: Config) -> anyhow::Result<Running> {
        let rt = self.0.as_ref().context("runtime gone")?;
        rt.spawn(server::start(config)).await?
    }
}

impl Drop for ServerRuntime {
    fn drop(&mut self) {
        // Dropping a runtime may not block inside another runtime; this does not.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl TestStack {
    pub async fn start(backend: Backend) -> anyhow::Result<TestStack> {
        Self::start_with(backend, false, |_| {}).await
    }

    /// Like [`TestStack::start`], with the broker's and the scheduler's time from `clock`.
    pub async fn start_with_clock(
        backend: Backend,
        clock: std::sync::Arc<dyn burrow_broker::Clock>,
    ) -> anyhow::Result<TestStack> {
        Self::start_inner(backend, false, |_| {}, Some(clock)).await
    }

    /// Like [`TestStack::start`], with the configuration changed by `configure` first (TLS
    /// files, a redirect listener...). The data directory is `dir` in the config given.
    pub async fn start_configured(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<TestStack> {
        Self::start_with(backend, false, configure).await
    }

    /// Like [`TestStack::start`], but the server runs on a runtime of its own, so that
    /// [`TestStack::restart`] (or dropping the stack) ends all its connections — WebSockets
    /// and long-polls included — like a killed process, not just a graceful shutdown.
    pub async fn start_isolated(backend: Backend) -> anyhow::Result<TestStack> {
        Self::start_with(backend, true, |_| {}).await
    }

    /// [`TestStack::start_isolated`] with the configuration changed by `configure` first:
    /// several nodes on one database, one of which a test kills by dropping it.
    pub async fn start_isolated_configured(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<TestStack> {
        Self::start_with(backend, true, configure).await
    }

    /// Ends an isolated stack's server as `kill -9` would: its runtime stops first, so none of
    /// its tasks runs again (no graceful stop, no lease released).
    pub fn kill(mut self) {
        drop(self.runtime.take());
    }

    /// The server's JWT signing key, wherever it lives (data directory or database).
    pub async fn jwt_key(&self) -> anyhow::Result<Vec<u8>> {
        let keys =
            crate::cluster::shared_keys::load(&self.config, self.running.store.as_ref()).await?;
        Ok(keys.jwt)
    }

    /// The database this stack's server uses (for starting more nodes on it).
    pub fn database_url(&self) -> String {
        self.config.database_url()
    }

    async fn start_with(
        backend: Backend,
        isolated: bool,
        configure: impl FnOnce(&mut Config),
    ) -> anyhow::Result<TestStack> {
        Self::start_inner(backend, isolated, configure, None).await
    }

    async fn start_inner(
        backend: Backend,
        isolated: bool,
        configure: impl FnOnce(&mut Config),
        clock: Option<std::sync::Arc<dyn burrow_broker::Clock>>,
    ) -> anyhow::Result<TestStack> {
        let dir = tempfile::tempdir()?;
        let pg = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(burrow_store::testing::postgres_db().await),
        };
        let database_url = pg.as_ref().map(|db| Secret::new(db.url()));
        // PostgreSQL is cluster mode: the shared keys are sealed with a cluster key.
        let cluster_key_file = match pg {
            Some(_) => Some(write_cluster_key(dir.path())?),
            None => None,
        };
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().join("data"),
            database_url,
            base_domain: "localhost".into(),
            device_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            device_url: None,
            admin_email: Some(ADMIN_EMAIL.into()),
            admin_password: Some(Secret::new(ADMIN_PASSWORD)),
            jwt_ttl_minutes: 60,
            log: "warn".into(),
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            trusted_proxies: Vec::new(),
            tls_cert: None,
            tls_key: None,
            http_redirect_listen: None,
            api_origin: None,
            public_scheme: None,
            device_conns_per_address: 1024,
            conns_per_client: 256,
            node_name: None,
            node_region: "default".into(),
            roles: crate::cluster::roles::ALL.to_vec(),
            cluster_listen: None,
            cluster_url: None,
            cluster_key_file,
            share_link_max_minutes: burrow_api::DEFAULT_SHARE_LINK_MAX_MINUTES,
            metrics_token: None,
            metrics_listen: None,
            retention_access_log_days: 7,
            retention_minute_days: 30,
            retention_hourly_days: 365,
            analytics: true,
            smtp_url: None,
            smtp_from: None,
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_allowed_domains: Vec::new(),
            oidc_button_label: None,
            password_login: true,
            dns_resolver: None,
            acme_directory_url: "https://acme.invalid/directory".into(),
            acme_email: None,
            acme_ca_file: None,
            acme_challenge: None,
            acme_base_domain: false,
            acme_dns_update: None,
            acme_dns_update_zone: None,
            acme_dns_update_key_file: None,
            domain_check_interval_secs: 3600,
            acme_retry_secs: 1,
        };
        configure(&mut config);
        let data_dir = config.data_dir.clone();
        let runtime = if isolated {
            Some(ServerRuntime::new()?)
        } else {
            None
        };
        let running = match (&runtime, clock) {
            (Some(rt), _) => rt.start(config.clone()).await?,
            (None, Some(clock)) => server::start_with_clock(config.clone(), clock).await?,
            (None, None) => server::start(config.clone()).await?,
        };
        let addr = running.addr;
        Ok(TestStack {
            running,
            addr,
            http: reqwest::Client::new(),
            origin: None,
            data_dir,
            _dir: dir,
            _pg: pg,
            config,
            runtime,
        })
    }

    /// Stops the server (gracefully, then — for an isolated stack — ends whatever is left
    /// of it) and starts a new one on the same data directory, database and ports. A port
    /// that cannot be bound again at once is retried for up to 5 s.
    pub async fn restart(self) -> anyhow::Result<TestStack> {
        let TestStack {
            running,
            addr,
            data_dir,
            _dir,
            _pg,
            mut config,
            runtime,
            ..
        } = self;
        let device_addr = running.device_addr;
        let stopped =
            tokio::time::timeout(std::time::Duration::from_secs(10), running.shutdown()).await;
        if let Ok(Err(e)) = stopped {
            tracing::warn!(error = %e, "test server stopped with an error");
        }
        let isolated = runtime.is_some();
        drop(runtime);
        config.listen = addr;
        config.device_listen = device_addr;
        let runtime = if isolated {
            Some(ServerRuntime::new()?)
        } else {
            None
        };
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let running = loop {
            let started = match &runtime {
                Some(rt) => rt.start(config.clone()).await,
                None => server::start(config.clone()).await,
            };
            match started {
                Ok(r) => break r,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "restart: retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.context("restarting the test server")),
            }
        };
        Ok(TestStack {
            running,
            addr,
            http: reqwest::Client::new(),
            origin: None,
            data_dir,
            _dir,
            _pg,
            config,
            runtime,
        })
    }

    pub fn url(&self, path: &str) -> String {
        match &self.origin {
            Some(o) => format!("{o}{path}"),
            None => format!("http://{}{}", self.addr, path),
        }
    }

    /// Reach the API through `http` at `origin` (an HTTPS stack: a client that trusts the
    /// test CA and resolves the test names to loopback).
    pub fn with_client(mut self, http: reqwest::Client, origin: String) -> Self {
        self.http = http;
        self.origin = Some(origin);
        self
    }

    /// `method path` as the user of `token`, with an optional JSON body: the status and the
    /// JSON answer (`Null` when the body is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        Ok((status, resp.json().await.unwrap_or(Value::Null)))
    }

    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let resp = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 200, "login failed: {}", resp.status());
        let body: Value = resp.json().await?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .context("no access_token")
    }

    pub async fn admin_token(&self) -> anyhow::Result<String> {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a user (as admin) and answers (id, token).
    /// Enrolls an agent into `dir` with a one-time `enrollment` token, over the API's plain
    /// HTTP with the device CA pinned (as the enrollment command does). Answers the DSN.
    pub async fn enroll_agent(
        &self,
        enrollment: &str,
        dir: &std::path::Path,
    ) -> anyhow::Result<String> {
        burrow_device::agent_enroll(
            &self.url(""),
            enrollment,
            dir,
            burrow_device::EnrollTrust::Pinned(self.running.device_ca_sha256),
        )
        .await
    }

    pub async fn user(&self, email: &str) -> anyhow::Result<(i64, String)> {
        let admin = self.admin_token().await?;
        let resp = self
            .http
            .post(self.url("/api/v1/users"))
            .bearer_auth(&admin)
            .json(&json!({"email": email, "password": "user-password-1"}))
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 201, "create user: {}", resp.status());
        let id = resp.json::<Value>().await?["id"].as_i64().context("id")?;
        Ok((id, self.login(email, "user-password-1").await?))
    }

    /// Creates a project and a device in it as `token`'s user; answers (project id, body).
    pub async fn project_with_device(
        &self,
        token: &str,
        dsn: &str,
    ) -> anyhow::Result<(i64, Value)> {
        let p: Value = self
            .http
            .post(self.url("/api/v1/projects"))
            .bearer_auth(token)
            .json(&json!({"name": format!("project of {dsn}")}))
            .send()
            .await?
            .json()
            .await?;
        let pid = p["id"].as_i64().context("project id")?;
        let resp = self
            .http
            .post(self.url(&format!("/api/v1/projects/{pid}/devices")))
            .bearer_auth(token)
            .json(&json!({"dsn": dsn, "name": format!("device {dsn}")}))
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 201, "register device: {}", resp.status());
        Ok((pid, resp.json().await?))
    }

    /// A public (`require_auth: false`) tunnel of a new device `dsn` to the local service at
    /// `svc`, with its device side connected the way the agent connects (a destination peer
    /// over the broker's WebSocket). Answers the tunnel's JSON and the peer (drop it to
    /// disconnect the device).
    pub async fn public_tunnel(
        &self,
        admin: &str,
        dsn: &str,
        svc: SocketAddr,
    ) -> anyhow::Result<(Value, DestinationClient)> {
        self.public_tunnel_with(admin, dsn, svc, "http").await
    }

    /// [`TestStack::public_tunnel`] for a service speaking `protocol` (`http`, `https`, `ws`,
    /// `wss`).
    pub async fn public_tunnel_with(
        &self,
        admin: &str,
        dsn: &str,
        svc: SocketAddr,
        protocol: &str,
    ) -> anyhow::Result<(Value, DestinationClient)> {
        self.project_with_device(admin, dsn).await?;
        let path = format!("/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels");
        let body = json!({"name": "svc", "local_port": svc.port(), "require_auth": false,
                          "protocol": protocol});
        let (status, t) = self
            .call(reqwest::Method::POST, &path, admin, Some(&body))
            .await?;
        anyhow::ensure!(status == 201, "create tunnel: {status} {t}");
        let tunnel_id = t["tunnel_id"].as_str().context("tunnel_id")?.to_string();
        let service = burrow_edge::service_name(protocol, i64::from(svc.port()));
        let peer = self
            .connect_destination_as(&tunnel_id, &service, svc)
            .await?;
        Ok((t, peer))
    }

    /// [`TestStack::connect_destination_as`] over the device port (TLS, the device CA), as
    /// the agent dials it: for servers whose main port speaks TLS.
    pub async fn connect_destination_over_device_port(
        &self,
        tunnel_id: &str,
        service: &str,
        svc: SocketAddr,
    ) -> anyhow::Result<DestinationClient> {
        let broker = &self.running.broker;
        let token = broker.destination_token(tunnel_id).await?;
        let mut cfg = ClientConfig::new(
            format!("wss://localhost:{}", self.running.device_addr.port()),
            burrow_client::Secret::new(token.expose()),
        );
        cfg.ca_pem = Some(self.running.device_ca_pem.clone().into_bytes());
        let targets = Targets::new().service(service.to_string(), svc);
        let peer = DestinationClient::connect(cfg, targets).await?;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !broker.is_destination_connected(tunnel_id) {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "destination never connected"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Ok(peer)
    }

    /// Connects tunnel `tunnel_id`'s destination peer (forwarding to `svc`) and waits, bounded,
    /// until the broker has it.
    pub async fn connect_destination(
        &self,
        tunnel_id: &str,
        svc: SocketAddr,
    ) -> anyhow::Result<DestinationClient> {
        let service = format!("HTTP-{}", svc.port());
        self.connect_destination_as(tunnel_id, &service, svc).await
    }

    /// [`TestStack::connect_destination`] with the seed's service name (`HTTPS-8443`...).
    pub async fn connect_destination_as(
        &self,
        tunnel_id: &str,
        service: &str,
        svc: SocketAddr,
    ) -> anyhow::Result<DestinationClient> {
        let broker = &self.running.broker;
        let token = broker.destination_token(tunnel_id).await?;
        let cfg = ClientConfig::new(
            format!("ws://{}", self.addr),
            burrow_client::Secret::new(token.expose()),
        );
        let targets = Targets::new().service(service.to_string(), svc);
        let peer = DestinationClient::connect(cfg, targets).await?;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !broker.is_destination_connected(tunnel_id) {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "destination never connected"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        Ok(peer)
    }
}

/// A fresh cluster key file in `dir`, as `openssl rand -base64 32` writes one.
pub fn write_cluster_key(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let path = dir.join("cluster.key");
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    std::fs::write(&path, format!("{text}\n"))?;
    Ok(path)
}

/// Continuous GET requests through a tunnel host from `workers` tasks, each waiting for its
/// answer before the next: what "under load" means in the rotation tests.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ok: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// When the first and the last failure happened.
    window: std::sync::Arc<std::sync::Mutex<Option<(std::time::Instant, std::time::Instant)>>>,
    workers: Vec<tokio::task::JoinHandle<Vec<String>>>,
}

impl Load {
    pub fn start(http: &reqwest::Client, url: String, host: &str, workers: usize) -> Load {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ok = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let window = std::sync::Arc::new(std::sync::Mutex::new(None));
        let workers = (0..workers)
            .map(|_| {
                let (http, url, host) = (http.clone(), url.clone(), host.to_string());
                let (stop, ok, window) = (stop.clone(), ok.clone(), window.clone());
                tokio::spawn(async move {
                    let mut failures = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        let failure = match http.get(&url).header("host", &host).send().await {
                            Ok(r) if r.status() == reqwest::StatusCode::OK => {
                                ok.fetch_add(1, Ordering::SeqCst);
                                continue;
                            }
                            Ok(r) => format!("status {}", r.status()),
                            Err(e) => e.to_string(),
                        };
                        failures.push(failure);
                        let now = std::time::Instant::now();
                        {
                            let mut w = window.lock().unwrap_or_else(|e| e.into_inner());
                            *w = Some(w.map_or((now, now), |(first, _)| (first, now)));
                        }
                        // A failing target answers at once: pace the retries.
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    failures
                })
            })
            .collect();
        Load {
            stop,
            ok,
            window,
            workers,
        }
    }

    /// Successful requests so far.
    pub fn succeeded(&self) -> usize {
        self.ok.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// When the first and the last failure so far happened.
    pub fn failure_window(&self) -> Option<(std::time::Instant, std::time::Instant)> {
        *self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the workers; answers (successful requests, failures).
    pub async fn stop(self) -> (usize, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut failures = Vec::new();
        for w in self.workers {
            match w.await {
                Ok(f) => failures.extend(f),
                Err(e) => failures.push(format!("worker: {e}")),
            }
        }
        (self.ok.load(std::sync::atomic::Ordering::SeqCst), failures)
    }
}

/// Serves `app` on a new loopback port (a device's local service in tests); answers where.
/// A Python that can import each `(module, pip requirement)` of `packages`:
/// `BURROW_TEST_PYTHON` (set by `scripts/test`), else the project's `.venv`; what is missing
/// is installed with pip (one install at a time, for tests that ask at once).
pub fn python_with(packages: &[(&str, &str)]) -> PathBuf {
    use std::process::Command;
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let py = std::env::var("BURROW_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".venv/bin/python"));
    let has = |module: &str| {
        Command::new(&py)
            .args(["-c", &format!("import {module}")])
            .status()
            .is_ok_and(|s| s.success())
    };
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(module, _)| !has(module))
        .map(|(_, requirement)| *requirement)
        .collect();
    if missing.is_empty() {
        return py;
    }
    if !py.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv", ".venv"])
            .current_dir(&root)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "creating .venv failed");
    }
    let ok = Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(&missing)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "installing {missing:?} failed");
    py
}

pub async fn serve_local(app: axum::Router) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

/// This process's resident memory now, and its peak since [`reset_peak_rss`] (Linux).
pub fn rss_bytes() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resets the peak resident memory that [`rss_bytes`] reports.
pub fn reset_peak_rss() -> std::io::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5")
}
