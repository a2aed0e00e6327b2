//! Idle tunnels at scale: tunnels opened through the AWS-compatible API (SigV4), each with a
//! simulated destination peer: a WebSocket over TLS to the device listener, as agents connect,
//! that only answers pings. Each peer connects from its own loopback source address (a
//! thousand per address), as devices come from many.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{StreamExt, TryStreamExt};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::procs::{cpu_ticks, rss_kib, ticks_per_sec};

type HmacSha256 = Hmac<Sha256>;

/// A TLS client config that trusts the device CA (`ca.pem` of an enrolled agent).
pub fn device_tls(ca_pem: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let pem = std::fs::read(ca_pem).with_context(|| format!("reading {}", ca_pem.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An AWS access key of the bench project.
pub struct AwsKey {
    pub id: String,
    pub secret: String,
}

pub async fn aws_key(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    project_id: i64,
) -> anyhow::Result<AwsKey> {
    let resp = http
        .post(format!("{api}/projects/{project_id}/aws-keys"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    if !status.is_success() {
        bail!("aws-keys: {status} {body}");
    }
    Ok(AwsKey {
        id: body["access_key_id"]
            .as_str()
            .context("access_key_id")?
            .into(),
        secret: body["secret_access_key"]
            .as_str()
            .context("secret_access_key")?
            .into(),
    })
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// One AWS JSON 1.1 call, SigV4-signed (host, x-amz-date, x-amz-target).
async fn aws_call(
    http: &reqwest::Client,
    port: u16,
    key: &AwsKey,
    op: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let body = serde_json::to_vec(body)?;
    let now = chrono::Utc::now();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = now.format("%Y%m%d").to_string();
    let host = format!("127.0.0.1:{port}");
    let target = format!("IoTSecuredTunneling.{op}");
    let (region, service) = ("us-east-1", "iotsecuredtunneling");
    let signed = "host;x-amz-date;x-amz-target";
    let creq = format!(
        "POST\n/\n\nhost:{host}\nx-amz-date:{amz_date}\nx-amz-target:{target}\n\n{signed}\n{}",
        hex::encode(Sha256::digest(&body))
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(creq.as_bytes()))
    );
    let mut k = hmac(format!("AWS4{}", key.secret).as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        k = hmac(&k, part.as_bytes());
    }
    let sig = hex::encode(hmac(&k, sts.as_bytes()));
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}",
        key.id
    );
    let resp = http
        .post(format!("http://{host}/"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-date", amz_date)
        .header("x-amz-target", target)
        .header("authorization", auth)
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{op}: {status} {v}");
    }
    Ok(v)
}

/// Where idle peers go: the server's main port (the AWS API) and device port, with what they
/// need to get in.
pub struct PeerTarget {
    pub api_port: u16,
    pub device_port: u16,
    /// Trusts the device CA.
    pub tls: Arc<rustls::ClientConfig>,
    pub key: AwsKey,
}

/// Peers per loopback source address. One source address has about 28,000 ephemeral ports,
/// and the server caps connections per client address on its device port
/// (`device_conns_per_address`, default 1024): real devices come from many addresses, and so
/// do these.
const PEERS_PER_SOURCE: usize = 1000;

/// The source address of peer `i`: 127.0.0.2, 127.0.0.3, ... (127.0.0.1 is the agent's).
fn source_of(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 2)) + (i / PEERS_PER_SOURCE) as u32)
}

/// What the bench holds per idle peer is small: a WebSocket that only answers pings needs no
/// 128 KiB read buffer (tungstenite's default, zero-filled on the first read).
fn peer_ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
}

/// Idle destination peers held open by this process.
pub struct IdlePeers {
    target: PeerTarget,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub closed: Arc<AtomicUsize>,
}

impl IdlePeers {
    pub fn new(target: PeerTarget) -> IdlePeers {
        IdlePeers {
            target,
            tasks: Vec::new(),
            closed: Arc::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Opens `n` more tunnels and connects a destination peer to each, `parallel` at a time;
    /// says how far it got every 10,000.
    // `is_multiple_of` is Rust 1.87; the workspace's rust-version is 1.85.
    #[allow(clippy::manual_is_multiple_of)]
    pub async fn add(
        &mut self,
        http: &reqwest::Client,
        n: usize,
        parallel: usize,
    ) -> anyhow::Result<()> {
        let start = self.tasks.len();
        let started = Instant::now();
        let done = AtomicUsize::new(0);
        let target = &self.target;
        let closed = &self.closed;
        let done = &done;
        let new: Vec<tokio::task::JoinHandle<()>> = futures_util::stream::iter(start..start + n)
            .map(|i| async move {
                let ws = connect_peer(http, target, i)
                    .await
                    .with_context(|| format!("idle tunnel {i} (source {})", source_of(i)))?;
                let k = done.fetch_add(1, Ordering::Relaxed) + 1;
                if k % 10_000 == 0 {
                    let secs = started.elapsed().as_secs_f64();
                    eprintln!(
                        "  {} idle tunnels ({k} of {n} in {secs:.1} s, {:.0}/s)",
                        start + k,
                        k as f64 / secs
                    );
                }
                let closed = closed.clone();
                Ok::<_, anyhow::Error>(tokio::spawn(async move {
                    let mut ws = ws;
                    // Reading answers pings; the peer stays idle otherwise.
                    while let Some(Ok(_)) = ws.next().await {}
                    closed.fetch_add(1, Ordering::Relaxed);
                }))
            })
            .buffer_unordered(parallel)
            .try_collect()
            .await?;
        self.tasks.extend(new);
        Ok(())
    }
}

/// Opens tunnel `i` (OpenTunnel) and connects its destination peer from its own source
/// address: TCP bound to [`source_of`], then TLS and the WebSocket upgrade.
async fn connect_peer(
    http: &reqwest::Client,
    target: &PeerTarget,
    i: usize,
) -> anyhow::Result<WebSocketStream<MaybeTlsStream<TcpStream>>> {
    let opened = aws_call(
        http,
        target.api_port,
        &target.key,
        "OpenTunnel",
        &json!({"destinationConfig": {"thingName": format!("idle-{i}"), "services": ["HTTP"]},
                "timeoutConfig": {"maxLifetimeTimeoutMinutes": 720}}),
    )
    .await?;
    let token = opened["destinationAccessToken"]
        .as_str()
        .context("destinationAccessToken")?;
    let mut req = format!(
        "wss://localhost:{}/tunnel?local-proxy-mode=destination",
        target.device_port
    )
    .into_client_request()?;
    req.headers_mut()
        .insert("access-token", HeaderValue::from_str(token)?);
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("burrow.tunnel-1.0"),
    );
    let socket = TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::from((source_of(i), 0)))
        .context("binding the source address")?;
    let tcp = socket
        .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, target.device_port)))
        .await
        .context("connecting to the device port")?;
    let (ws, _) = tokio_tungstenite::client_async_tls_with_config(
        req,
        tcp,
        Some(peer_ws_config()),
        Some(Connector::Rustls(target.tls.clone())),
    )
    .await
    .context("TLS + WebSocket handshake")?;
    Ok(ws)
}

impl Drop for IdlePeers {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

/// The server's RSS with a number of idle tunnels open.
#[derive(Debug, Clone, Serialize)]
pub struct IdlePoint {
    pub tunnels: usize,
    pub server_rss_kib: u64,
    /// This process's own RSS (it holds the other end of every peer).
    pub bench_rss_kib: u64,
    /// Seconds to open the tunnels added since the previous point and connect their peers.
    pub open_secs: f64,
    /// The server's CPU time (user + system) for those tunnels, ms per tunnel.
    pub server_cpu_ms_per_tunnel: f64,
    /// This process's CPU time for them (SigV4, TLS, WebSocket client side), ms per tunnel.
    pub bench_cpu_ms_per_tunnel: f64,
}

/// Opens idle tunnels up to each of `counts` (ascending, cumulative); after each, once the
/// server has settled, reads its RSS and checks that no peer was disconnected.
pub async fn open_to_counts(
    peers: &mut IdlePeers,
    http: &reqwest::Client,
    counts: &[usize],
    server_pid: u32,
    parallel: usize,
) -> anyhow::Result<Vec<IdlePoint>> {
    let mut points = Vec::new();
    let tick = ticks_per_sec();
    for &n in counts {
        let more = n.saturating_sub(peers.len());
        eprintln!("opening {more} idle tunnels (to {n})");
        let me = std::process::id();
        let (server_cpu0, bench_cpu0) = (cpu_ticks(server_pid), cpu_ticks(me));
        let started = Instant::now();
        peers.add(http, more, parallel).await?;
        let open_secs = started.elapsed().as_secs_f64();
        let ms_per_tunnel = |t0: Option<u64>, t1: Option<u64>| match (t0, t1) {
            (Some(a), Some(b)) => (b - a) as f64 / tick * 1e3 / more.max(1) as f64,
            _ => f64::NAN,
        };
        let server_cpu_ms_per_tunnel = ms_per_tunnel(server_cpu0, cpu_ticks(server_pid));
        let bench_cpu_ms_per_tunnel = ms_per_tunnel(bench_cpu0, cpu_ticks(me));
        eprintln!(
            "  in {open_secs:.1} s ({:.0} tunnels/s); CPU per tunnel: server \
             {server_cpu_ms_per_tunnel:.2} ms, bench {bench_cpu_ms_per_tunnel:.2} ms",
            more as f64 / open_secs
        );
        // Let the server finish what the handshakes left (allocator caches, deferred work).
        tokio::time::sleep(Duration::from_secs(3)).await;
        let server_rss_kib = rss_kib(server_pid).context("the server is gone")?;
        let bench_rss_kib = rss_kib(std::process::id()).unwrap_or(0);
        let closed = peers.closed.load(Ordering::Relaxed);
        eprintln!("  server RSS {server_rss_kib} KiB; peers closed: {closed}");
        anyhow::ensure!(
            closed == 0,
            "{closed} idle destination peers were disconnected"
        );
        points.push(IdlePoint {
            tunnels: n,
            server_rss_kib,
            bench_rss_kib,
            open_secs,
            server_cpu_ms_per_tunnel,
            bench_cpu_ms_per_tunnel,
        });
    }
    Ok(points)
}
