//! Real servers for tests: pebble (an ACME CA), pebble-challtestsrv (a DNS server whose
//! records are set over HTTP) and named (BIND, accepting TSIG-signed updates). Each runs on
//! free ports with its files and log in a temporary directory, is killed when dropped, and is
//! waited for by polling with a deadline; its log is part of every error.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::{DnsChecker, TsigKey};

/// How long a server may take to start answering.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A test server that did not start or did not do what it was asked; the message includes
/// its log.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TestError(pub String);

pub type Result<T> = std::result::Result<T, TestError>;

fn err(message: impl Into<String>) -> TestError {
    TestError(message.into())
}

/// A port free for both TCP and UDP on 127.0.0.1 (DNS servers need both). The sockets are
/// closed before returning: the child binds it itself, and callers poll until it answers.
pub fn free_port() -> Result<u16> {
    for _ in 0..50 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| err(format!("binding a free port: {e}")))?;
        let port = tcp
            .local_addr()
            .map_err(|e| err(format!("reading a bound port: {e}")))?
            .port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(err("no port free for both TCP and UDP"))
}

/// Why a server did not start: exiting early is most likely a port taken between choosing
/// it and the child binding it, so that start is tried again on other ports.
enum Startup {
    Exited(TestError),
    Failed(TestError),
}

impl From<TestError> for Startup {
    fn from(e: TestError) -> Self {
        Startup::Failed(e)
    }
}

type Started<T> = std::result::Result<T, Startup>;

/// Runs `start` until it does not exit early, three times at most.
async fn on_free_ports<T, F, Fut>(mut start: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Started<T>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match start().await {
            Ok(started) => return Ok(started),
            Err(Startup::Exited(e)) if attempts < 3 => {
                tracing::warn!(error = %e, "a test server exited while starting; trying other ports");
            }
            Err(Startup::Exited(e) | Startup::Failed(e)) => return Err(e),
        }
    }
}

/// A child process whose output goes to a log file, killed on drop.
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &'static str, mut command: Command, dir: &Path) -> Result<Process> {
        let log = dir.join(format!("{name}.log"));
        let out =
            File::create(&log).map_err(|e| err(format!("creating {}: {e}", log.display())))?;
        let err_out = out
            .try_clone()
            .map_err(|e| err(format!("cloning {}: {e}", log.display())))?;
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err_out)
            .kill_on_drop(true);
        let child = command.spawn().map_err(|e| {
            err(format!(
                "starting {name}: {e} (is it installed? see scripts/test)"
            ))
        })?;
        Ok(Process { name, child, log })
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }

    fn failure(&self, what: impl std::fmt::Display) -> TestError {
        err(format!(
            "{}: {what}\n--- {} log ---\n{}",
            self.name,
            self.name,
            self.log_text()
        ))
    }

    /// Polls `ready` until it holds, the child exits or the deadline passes.
    async fn wait_ready<F, Fut>(&mut self, what: &str, mut ready: F) -> Started<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), String>>,
    {
        let deadline = Instant::now() + START_DEADLINE;
        let mut delay = Duration::from_millis(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Startup::Exited(
                    self.failure(format!("exited ({status}) before {what}")),
                ));
            }
            let last = match ready().await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(Startup::Failed(self.failure(format!(
                    "not {what} after {START_DEADLINE:?}; last try: {last}"
                ))));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(250));
        }
    }
}

fn temp_dir(prefix: &str) -> Result<TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| err(format!("creating a temporary directory: {e}")))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| err(format!("writing {}: {e}", path.display())))
}

fn absolute(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

/// pebble-challtestsrv as a DNS server only: A queries answer 127.0.0.1 unless told otherwise,
/// AAAA nothing (so every name leads to 127.0.0.1), the rest is set through its management API.
pub struct ChallTestSrv {
    process: Process,
    dns: SocketAddr,
    management: String,
    http: reqwest::Client,
    _dir: TempDir,
}

impl ChallTestSrv {
    pub async fn start() -> Result<ChallTestSrv> {
        on_free_ports(Self::start_once).await
    }

    async fn start_once() -> Started<ChallTestSrv> {
        let dir = temp_dir("challtestsrv-")?;
        let dns = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port()?);
        let management = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port()?);
        let mut command = Command::new("pebble-challtestsrv");
        command.args([
            "-dns01",
            &dns.to_string(),
            "-management",
            &management.to_string(),
            "-http01",
            "",
            "-https01",
            "",
            "-tlsalpn01",
            "",
            "-defaultIPv6",
            "",
        ]);
        let mut process = Process::spawn("pebble-challtestsrv", command, dir.path())?;
        let http = reqwest::Client::new();
        let management = format!("http://{management}");
        let checker = DnsChecker::new(Some(dns)).map_err(|e| err(e.to_string()))?;
        process
            .wait_ready("answering DNS and management requests", || {
                let http = http.clone();
                let url = format!("{management}/clear-a");
                let checker = checker.clone();
                async move {
                    http.post(&url)
                        .json(&json!({"host": "ready.test."}))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?
                        .error_for_status()
                        .map_err(|e| e.to_string())?;
                    match checker.addresses("ready.test").await {
                        Ok(a) if !a.is_empty() => Ok(()),
                        Ok(_) => Err("no address for ready.test".into()),
                        Err(e) => Err(e.to_string()),
                    }
                }
            })
            .await?;
        Ok(ChallTestSrv {
            process,
            dns,
            management,
            http,
            _dir: dir,
        })
    }

    /// Where to send DNS queries (UDP and TCP).
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns
    }

    async fn post(&self, endpoint: &str, body: serde_json::Value) -> Result<()> {
        let url = format!("{}/{endpoint}", self.management);
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.process.failure(format!("POST {endpoint}: {e}")))?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return Err(self
                .process
                .failure(format!("POST {endpoint}: {status} {text}")));
        }
        Ok(())
    }

    pub async fn add_a(&self, host: &str, ip: Ipv4Addr) -> Result<()> {
        self.post(
            "add-a",
            json!({"host": absolute(host), "addresses": [ip.to_string()]}),
        )
        .await
    }

    /// Back to the default (127.0.0.1).
    pub async fn clear_a(&self, host: &str) -> Result<()> {
        self.post("clear-a", json!({"host": absolute(host)})).await
    }

    /// Adds a TXT value at `name` (values accumulate until `clear_txt`).
    pub async fn set_txt(&self, name: &str, value: &str) -> Result<()> {
        self.post("set-txt", json!({"host": absolute(name), "value": value}))
            .await
    }

    pub async fn clear_txt(&self, name: &str) -> Result<()> {
        self.post("clear-txt", json!({"host": absolute(name)}))
            .await
    }

    pub async fn set_cname(&self, host: &str, target: &str) -> Result<()> {
        self.post(
            "set-cname",
            json!({"host": absolute(host), "target": absolute(target)}),
        )
        .await
    }

    pub async fn clear_cname(&self, host: &str) -> Result<()> {
        self.post("clear-cname", json!({"host": absolute(host)}))
            .await
    }

    pub fn log(&self) -> String {
        self.process.log_text()
    }
}

/// Options for [`Pebble::start`].
#[derive(Debug, Clone)]
pub struct PebbleOptions {
    /// The DNS server pebble's validation authority resolves names with.
    pub dns_server: SocketAddr,
    /// Where pebble connects for HTTP-01 and TLS-ALPN-01 (on 127.0.0.1 here, as names resolve
    /// there).
    pub http_port: u16,
    pub tls_port: u16,
    /// Lifetime of issued certificates (pebble's default is about 5 years).
    pub validity_secs: Option<u64>,
    /// Names pebble refuses to issue for (its `domainBlocklist`: an ACME error answer).
    pub blocklist: Vec<String>,
}

/// A pebble ACME CA. It validates at once (no random sleeps), never rejects nonces, and
/// never reuses authorizations, so every order exercises every challenge.
pub struct Pebble {
    process: Process,
    listen: SocketAddr,
    management: SocketAddr,
    ca_file: PathBuf,
    http: reqwest::Client,
    _dir: TempDir,
}

impl Pebble {
    pub async fn start(opts: PebbleOptions) -> Result<Pebble> {
        on_free_ports(|| Self::start_once(opts.clone())).await
    }

    async fn start_once(opts: PebbleOptions) -> Started<Pebble> {
        let dir = temp_dir("pebble-")?;
        // pebble's own HTTPS certificate, from a CA that only this instance's clients trust.
        let ca_key = rcgen::KeyPair::generate().map_err(|e| err(format!("CA key: {e}")))?;
        let mut ca_params =
            rcgen::CertificateParams::new(Vec::new()).map_err(|e| err(format!("CA: {e}")))?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "burrow-acme test CA for pebble");
        let ca = ca_params
            .self_signed(&ca_key)
            .map_err(|e| err(format!("CA: {e}")))?;
        let leaf_key = rcgen::KeyPair::generate().map_err(|e| err(format!("leaf key: {e}")))?;
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .and_then(|p| p.signed_by(&leaf_key, &ca, &ca_key))
            .map_err(|e| err(format!("leaf: {e}")))?;
        let ca_file = dir.path().join("ca.pem");
        let cert_file = dir.path().join("cert.pem");
        let key_file = dir.path().join("key.pem");
        write(&ca_file, &ca.pem())?;
        write(&cert_file, &leaf.pem())?;
        write(&key_file, &leaf_key.serialize_pem())?;

        let listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port()?);
        let management = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), free_port()?);
        let mut pebble = json!({
            "listenAddress": listen.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": cert_file,
            "privateKey": key_file,
            "httpPort": opts.http_port,
            "tlsPort": opts.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        });
        if let Some(secs) = opts.validity_secs {
            pebble["certificateValidityPeriod"] = json!(secs);
        }
        if !opts.blocklist.is_empty() {
            pebble["domainBlocklist"] = json!(opts.blocklist);
        }
        let config_file = dir.path().join("pebble-config.json");
        write(&config_file, &json!({ "pebble": pebble }).to_string())?;

        let mut command = Command::new("pebble");
        command
            .arg("-config")
            .arg(&config_file)
            .arg("-dnsserver")
            .arg(opts.dns_server.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0");
        let mut process = Process::spawn("pebble", command, dir.path())?;
        let root = reqwest::Certificate::from_pem(ca.pem().as_bytes())
            .map_err(|e| err(format!("CA for reqwest: {e}")))?;
        let http = reqwest::Client::builder()
            .add_root_certificate(root)
            .build()
            .map_err(|e| err(format!("HTTP client: {e}")))?;
        let directory = format!("https://{listen}/dir");
        process
            .wait_ready("serving its directory", || {
                let request = http.get(&directory);
                async move {
                    request
                        .send()
                        .await
                        .map_err(|e| e.to_string())?
                        .error_for_status()
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            })
            .await?;
        Ok(Pebble {
            process,
            listen,
            management,
            ca_file,
            http,
            _dir: dir,
        })
    }

    pub fn directory_url(&self) -> String {
        format!("https://{}/dir", self.listen)
    }

    /// PEM of the CA that signed pebble's own HTTPS certificate (for `AcmeSettings::ca_file`).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// PEM of the root that signs the certificates pebble issues (new at every start).
    pub async fn issuance_root_pem(&self) -> Result<String> {
        let url = format!("https://{}/roots/0", self.management);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| self.process.failure(format!("GET {url}: {e}")))?;
        response
            .text()
            .await
            .map_err(|e| self.process.failure(format!("GET {url}: {e}")))
    }

    pub fn log(&self) -> String {
        self.process.log_text()
    }
}

/// The name of the TSIG key [`Bind9`] accepts updates with.
pub const BIND9_KEY_NAME: &str = "burrow-test";

/// named, primary for one zone on 127.0.0.1 (UDP and TCP), updates allowed with the TSIG key
/// [`BIND9_KEY_NAME`], no recursion.
pub struct Bind9 {
    process: Process,
    addr: SocketAddr,
    key_file_text: String,
    _dir: TempDir,
}

impl Bind9 {
    /// `records`: (name, IPv4) A records, names absolute (`*.fleet.test`) or relative to
    /// the zone.
    pub async fn start(zone: &str, records: &[(&str, &str)]) -> Result<Bind9> {
        on_free_ports(|| Self::start_once(zone, records)).await
    }

    async fn start_once(zone: &str, records: &[(&str, &str)]) -> Started<Bind9> {
        let zone = zone.trim_end_matches('.');
        let dir = temp_dir("named-")?;
        let d = dir.path().display().to_string();

        let keygen = Command::new("tsig-keygen")
            .args(["-a", "hmac-sha256", BIND9_KEY_NAME])
            .output()
            .await
            .map_err(|e| err(format!("running tsig-keygen: {e} (is bind9 installed?)")))?;
        if !keygen.status.success() {
            return Err(err(format!(
                "tsig-keygen failed: {}",
                String::from_utf8_lossy(&keygen.stderr)
            ))
            .into());
        }
        let key_file_text = String::from_utf8_lossy(&keygen.stdout).into_owned();
        write(&dir.path().join("tsig.key"), &key_file_text)?;

        let mut zone_text = format!(
            "$ORIGIN {zone}.\n$TTL 60\n\
             @ IN SOA ns.{zone}. hostmaster.{zone}. 1 60 60 600 1\n\
             @ IN NS ns.{zone}.\n\
             ns IN A 127.0.0.1\n"
        );
        for (name, ip) in records {
            let name = name.trim_end_matches('.');
            let owner = if name == zone || name.ends_with(&format!(".{zone}")) {
                format!("{name}.")
            } else {
                name.to_owned()
            };
            zone_text.push_str(&format!("{owner} IN A {ip}\n"));
        }
        write(&dir.path().join("zone.db"), &zone_text)?;

        let port = free_port()?;
        let config = format!(
            r#"include "{d}/tsig.key";
options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    allow-query {{ any; }};
    notify no;
}};
controls {{ }};
zone "{zone}" {{
    type primary;
    file "{d}/zone.db";
    allow-update {{ key "{BIND9_KEY_NAME}"; }};
}};
"#
        );
        let config_file = dir.path().join("named.conf");
        write(&config_file, &config)?;

        let mut command = Command::new("named");
        command.arg("-g").arg("-4").arg("-c").arg(&config_file);
        let mut process = Process::spawn("named", command, dir.path())?;
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let checker = DnsChecker::new(Some(addr)).map_err(|e| err(e.to_string()))?;
        let probe = format!("ns.{zone}");
        process
            .wait_ready("answering for its zone", || {
                let checker = checker.clone();
                let probe = probe.clone();
                async move {
                    // A refused TCP connection says "not yet" at once; a UDP query to a port
                    // nobody listens on only times out.
                    tokio::net::TcpStream::connect(addr)
                        .await
                        .map_err(|e| format!("connecting: {e}"))?;
                    match checker.addresses(&probe).await {
                        Ok(a) if !a.is_empty() => Ok(()),
                        Ok(_) => Err(format!("no address for {probe}")),
                        Err(e) => Err(e.to_string()),
                    }
                }
            })
            .await?;
        Ok(Bind9 {
            process,
            addr,
            key_file_text,
            _dir: dir,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What tsig-keygen printed (holds the secret).
    pub fn key_file_text(&self) -> &str {
        &self.key_file_text
    }

    pub fn key(&self) -> Result<TsigKey> {
        TsigKey::from_bind_file(&self.key_file_text).map_err(|e| err(e.to_string()))
    }

    pub fn log(&self) -> String {
        self.process.log_text()
    }
}
