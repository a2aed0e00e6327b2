//! Starts what is measured: nginx, burrow server + enrolled agent + a reverse tunnel, rathole.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::procs::{free_port, Proc};

pub const SMALL: &str = "/index.html";
pub const BIG: &str = "/big.bin";
pub const UPLOAD: &str = "/upload";
const ADMIN_EMAIL: &str = "bench@example.com";
const ADMIN_PASSWORD: &str = "bench-password-123";
/// The bench device's serial number.
pub const DSN: &str = "BENCH1";

/// nginx's default welcome page is 615 bytes; this is the same size class.
fn small_body() -> String {
    let mut s = String::from("<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body>\n");
    while s.len() < 600 {
        s.push_str("<p>burrow benchmark static page.</p>\n");
    }
    s.push_str("</body></html>\n");
    s
}

/// The web root: a small page and a `size`-byte file of non-zero bytes.
pub fn make_www(dir: &Path, size: u64) -> anyhow::Result<PathBuf> {
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    std::fs::write(www.join("index.html"), small_body())?;
    let big = www.join("big.bin");
    if std::fs::metadata(&big).map(|m| m.len()).ok() != Some(size) {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big)?);
        let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 31 % 251) as u8).collect();
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            f.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        f.flush()?;
    }
    Ok(big)
}

/// nginx on a free port (see [`start_nginx`]), once it serves the small page.
pub async fn nginx_ready(dir: &Path, http: &reqwest::Client) -> anyhow::Result<(Proc, u16)> {
    let port = crate::procs::free_port()?;
    let mut nginx = start_nginx(dir, port)?;
    wait_http_ok(
        http,
        &format!("http://127.0.0.1:{port}{SMALL}"),
        None,
        Duration::from_secs(10),
        &mut [&mut nginx],
    )
    .await
    .context("nginx did not start")?;
    Ok((nginx, port))
}

/// nginx on 127.0.0.1:`port`, two workers, serving `www`; `PUT/POST /upload` reads and
/// discards the body and answers 204.
pub fn start_nginx(dir: &Path, port: u16) -> anyhow::Result<Proc> {
    let www = dir.join("www");
    let prefix = dir.join("nginx");
    std::fs::create_dir_all(prefix.join("tmp"))?;
    let conf = format!(
        r#"daemon off;
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 10000000;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        server_name _;
        root {www};
        location = {UPLOAD} {{
            client_max_body_size 0;
            return 204;
        }}
    }}
}}
"#,
        prefix = prefix.display(),
        www = www.display(),
    );
    let conf_path = prefix.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let mut cmd = Command::new(nginx_bin());
    cmd.arg("-p").arg(&prefix).arg("-c").arg(&conf_path);
    Proc::spawn("nginx", cmd, &prefix.join("stdout.log"))
}

fn nginx_bin() -> String {
    for p in ["/usr/sbin/nginx", "/usr/local/sbin/nginx"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    "nginx".into()
}

/// Polls `url` (with an optional Host header) until it answers 200.
pub async fn wait_http_ok(
    http: &reqwest::Client,
    url: &str,
    host: Option<&str>,
    limit: Duration,
    procs: &mut [&mut Proc],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        for p in procs.iter_mut() {
            p.check_alive()?;
        }
        let mut req = http.get(url);
        if let Some(h) = host {
            req = req.header("host", h);
        }
        let last = match req.send().await {
            Ok(r) if r.status() == 200 => return Ok(()),
            Ok(r) => format!("status {}", r.status()),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            bail!("{url} not ready within {limit:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// burrow server, its agent, and the reverse tunnel to nginx.
pub struct Burrow {
    pub server: Proc,
    pub agent: Proc,
    pub port: u16,
    /// The device listener (mutual TLS; agents' WebSockets to the broker).
    pub device_port: u16,
    /// The agent's directory (holds `ca.pem`, the device CA).
    pub agent_dir: PathBuf,
    /// The id of the `web` tunnel.
    pub tunnel_id: i64,
    /// `Host` header value of the tunnel (`device-bench1.localhost:PORT`).
    pub host: String,
    pub api: String,
    pub token: String,
    pub project_id: i64,
}

async fn json_ok(resp: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{what}: {status} {body}");
    }
    Ok(body)
}

pub async fn start_burrow(
    bin: &Path,
    dir: &Path,
    nginx_port: u16,
    http: &reqwest::Client,
) -> anyhow::Result<Burrow> {
    start_burrow_node(bin, dir, nginx_port, http, "", &[]).await
}

/// A `burrow server` on free ports with its own data directory (`burrow-data<tag>`) and
/// `env` added; answers it with its main and device ports, once its API answers.
pub async fn start_server(
    bin: &Path,
    dir: &Path,
    http: &reqwest::Client,
    tag: &str,
    env: &[(&str, String)],
) -> anyhow::Result<(Proc, u16, u16)> {
    let (port, device_port) = (free_port()?, free_port()?);
    let data = dir.join(format!("burrow-data{tag}"));
    let _ = std::fs::remove_dir_all(&data);
    let mut cmd = Command::new(bin);
    cmd.arg("server")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--device-listen")
        .arg(format!("127.0.0.1:{device_port}"))
        .arg("--data-dir")
        .arg(&data)
        .env("BURROW_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("BURROW_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("RUST_LOG")
        .env_remove("BURROW_CONFIG")
        .current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let name = format!("burrow server{tag}");
    let mut server = Proc::spawn(&name, cmd, &dir.join(format!("burrow-server{tag}.log")))?;
    wait_http_ok(
        http,
        &format!("http://127.0.0.1:{port}/api/v1/openapi.json"),
        None,
        Duration::from_secs(30),
        &mut [&mut server],
    )
    .await?;
    Ok((server, port, device_port))
}

/// [`start_burrow`] with the server's data directory tagged and `env` added (a cluster node).
pub async fn start_burrow_node(
    bin: &Path,
    dir: &Path,
    nginx_port: u16,
    http: &reqwest::Client,
    tag: &str,
    env: &[(&str, String)],
) -> anyhow::Result<Burrow> {
    let (mut server, port, device_port) = start_server(bin, dir, http, tag, env).await?;
    let api = format!("http://127.0.0.1:{port}/api/v1");

    let login = json_ok(
        http.post(format!("{api}/auth/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await?,
        "login",
    )
    .await?;
    let token = login["access_token"]
        .as_str()
        .context("login answered no access_token")?
        .to_string();
    let project = json_ok(
        http.post(format!("{api}/projects"))
            .bearer_auth(&token)
            .json(&json!({"name": "bench"}))
            .send()
            .await?,
        "create project",
    )
    .await?;
    let project_id = project["id"].as_i64().context("project id")?;
    let device = json_ok(
        http.post(format!("{api}/projects/{project_id}/devices"))
            .bearer_auth(&token)
            .json(&json!({"dsn": DSN, "name": "bench device"}))
            .send()
            .await?,
        "create device",
    )
    .await?;
    let enrollment = device["enrollment_token"]
        .as_str()
        .context("enrollment_token")?;
    // The CA fingerprint the enrollment command pins.
    let pin = device["enrollment_command"]
        .as_str()
        .and_then(|c| c.split_once("--ca-sha256 "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .context("--ca-sha256 in enrollment_command")?
        .to_string();

    let agent_dir = dir.join(format!("agent{tag}"));
    let _ = std::fs::remove_dir_all(&agent_dir);
    let token_file = dir.join(format!("enrollment{tag}.token"));
    std::fs::write(&token_file, enrollment)?;
    let enrolled = Command::new(bin)
        .args(["agent", "enroll", "--server"])
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--token-file")
        .arg(&token_file)
        .args(["--ca-sha256", &pin])
        .arg("--dir")
        .arg(&agent_dir)
        .output()?;
    if !enrolled.status.success() {
        bail!(
            "agent enroll failed: {}",
            String::from_utf8_lossy(&enrolled.stderr)
        );
    }
    // The standalone agent binary (what a device installs), when built next to `burrow`.
    let standalone = bin.with_file_name("burrow-agent");
    let mut cmd = if standalone.exists() {
        let mut c = Command::new(&standalone);
        c.arg("run");
        c
    } else {
        let mut c = Command::new(bin);
        c.args(["agent", "run"]);
        c
    };
    cmd.arg("--dir").arg(&agent_dir).env_remove("RUST_LOG");
    let mut agent = Proc::spawn(
        &format!("burrow agent{tag}"),
        cmd,
        &dir.join(format!("burrow-agent{tag}.log")),
    )?;

    let tunnel = json_ok(
        http.post(format!(
            "{api}/reverse-tunnels/devices/{DSN}/reverse-tunnels"
        ))
        .bearer_auth(&token)
        .json(
            &json!({"name": "web", "local_port": nginx_port, "protocol": "http",
                      "require_auth": false}),
        )
        .send()
        .await?,
        "create reverse tunnel",
    )
    .await?;
    let public = tunnel["public_url"].as_str().context("public_url")?;
    let host = format!("{public}:{port}");
    wait_http_ok(
        http,
        &format!("http://127.0.0.1:{port}{SMALL}"),
        Some(&host),
        Duration::from_secs(30),
        &mut [&mut server, &mut agent],
    )
    .await
    .context("the tunnel did not start serving")?;
    Ok(Burrow {
        server,
        agent,
        port,
        device_port,
        agent_dir,
        tunnel_id: tunnel["id"].as_i64().context("tunnel id")?,
        host,
        api,
        token,
        project_id,
    })
}

/// rathole server + client: 127.0.0.1:`port` forwards to nginx.
pub struct Rathole {
    pub server: Proc,
    pub client: Proc,
    pub port: u16,
}

pub async fn start_rathole(
    bin: &Path,
    dir: &Path,
    nginx_port: u16,
    http: &reqwest::Client,
) -> anyhow::Result<Rathole> {
    let (ctrl, port) = (free_port()?, free_port()?);
    let rdir = dir.join("rathole");
    std::fs::create_dir_all(&rdir)?;
    let server_conf = rdir.join("server.toml");
    std::fs::write(
        &server_conf,
        format!(
            "[server]\nbind_addr = \"127.0.0.1:{ctrl}\"\n\n[server.services.web]\ntoken = \"bench-token\"\nbind_addr = \"127.0.0.1:{port}\"\n"
        ),
    )?;
    let client_conf = rdir.join("client.toml");
    std::fs::write(
        &client_conf,
        format!(
            "[client]\nremote_addr = \"127.0.0.1:{ctrl}\"\n\n[client.services.web]\ntoken = \"bench-token\"\nlocal_addr = \"127.0.0.1:{nginx_port}\"\n"
        ),
    )?;
    let mut cmd = Command::new(bin);
    cmd.arg("--server")
        .arg(&server_conf)
        .env("RUST_LOG", "warn");
    let mut server = Proc::spawn("rathole server", cmd, &rdir.join("server.log"))?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut cmd = Command::new(bin);
    cmd.arg("--client")
        .arg(&client_conf)
        .env("RUST_LOG", "warn");
    let mut client = Proc::spawn("rathole client", cmd, &rdir.join("client.log"))?;
    wait_http_ok(
        http,
        &format!("http://127.0.0.1:{port}{SMALL}"),
        None,
        Duration::from_secs(30),
        &mut [&mut server, &mut client],
    )
    .await
    .context("rathole did not start serving")?;
    Ok(Rathole {
        server,
        client,
        port,
    })
}
