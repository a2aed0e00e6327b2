//! Test kit: a real edge on 127.0.0.1:0 (hyper server, host split like the binary's), real
//! local "device" services on 127.0.0.1:0 reached through a TCP dialer, and the edge's
//! in-memory backend (no database) with users, a project, a device and tunnels. No mocks on
//! the data path, no sleeps for readiness.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use burrow_api::JwtKeys;
use burrow_edge::backend::memory::MemoryBackend;
use burrow_edge::{server_builder, DialError, Edge, EdgeConfig, TunnelDialer, TunnelIo};
use burrow_store::{Device, NewAccessLogEntry, ReverseTunnel, User};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

pub const JWT_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

pub fn jwt() -> JwtKeys {
    JwtKeys::new(JWT_SECRET, chrono::Duration::minutes(30))
}

/// Where the test dialer sends a broker tunnel id.
#[derive(Clone, Debug)]
pub enum Dest {
    Tcp(SocketAddr),
    Offline,
}

#[derive(Default)]
pub struct TcpDialer {
    pub dests: Mutex<HashMap<String, Dest>>,
    pub dials: AtomicUsize,
    pub services: Mutex<Vec<String>>,
}

impl TcpDialer {
    pub fn set(&self, tunnel_id: &str, dest: Dest) {
        self.dests
            .lock()
            .unwrap()
            .insert(tunnel_id.to_string(), dest);
    }
}

#[async_trait]
impl TunnelDialer for TcpDialer {
    async fn dial(&self, tunnel_id: &str, service: &str) -> Result<Box<dyn TunnelIo>, DialError> {
        self.dials.fetch_add(1, Ordering::SeqCst);
        self.services.lock().unwrap().push(service.to_string());
        let dest = self.dests.lock().unwrap().get(tunnel_id).cloned();
        match dest {
            Some(Dest::Tcp(addr)) => match TcpStream::connect(addr).await {
                Ok(s) => Ok(Box::new(s)),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    Err(DialError::Refused)
                }
                Err(e) => Err(DialError::Other(e.to_string())),
            },
            Some(Dest::Offline) | None => Err(DialError::DeviceOffline),
        }
    }

    async fn is_connected(&self, tunnel_id: &str) -> bool {
        matches!(
            self.dests.lock().unwrap().get(tunnel_id),
            Some(Dest::Tcp(_))
        )
    }
}

pub struct World {
    pub backend: Arc<MemoryBackend>,
    pub dialer: Arc<TcpDialer>,
    pub edge: Arc<Edge>,
    pub addr: SocketAddr,
    pub jwt: JwtKeys,
    pub owner: (i64, String),
    pub member: (i64, String),
    pub outsider: (i64, String),
    pub project_id: i64,
    pub device_id: i64,
}

impl World {
    pub fn token(&self, user: &(i64, String)) -> String {
        self.jwt.issue(user.0, &user.1, chrono::Utc::now()).unwrap()
    }

    /// A tunnel row named `label`.localhost, linked to broker tunnel `t-<label>`.
    pub async fn tunnel(
        &self,
        label: &str,
        protocol: &str,
        require_auth: bool,
        allowed: Vec<i64>,
    ) -> i64 {
        self.tunnel_with(label, protocol, require_auth, allowed, true)
            .await
    }

    pub async fn tunnel_with(
        &self,
        label: &str,
        protocol: &str,
        require_auth: bool,
        allowed: Vec<i64>,
        enabled: bool,
    ) -> i64 {
        let mut t = self.tunnel_row_for(&format!("{label}.localhost"), label, protocol);
        t.require_auth = require_auth;
        t.allowed_user_ids = allowed;
        t.is_enabled = enabled;
        t.tunnel_id = Some(format!("t-{label}"));
        self.insert_tunnel(t)
    }

    /// A fresh enabled public tunnel row at `public_url`, with no broker tunnel yet.
    pub fn tunnel_row_for(&self, public_url: &str, name: &str, protocol: &str) -> ReverseTunnel {
        ReverseTunnel {
            id: 0,
            device_id: self.device_id,
            name: name.to_string(),
            description: None,
            public_url: public_url.to_string(),
            is_enabled: true,
            tunnel_id: None,
            tunnel_arn: None,
            source_access_token: None,
            destination_access_token: None,
            local_port: 8080,
            protocol: protocol.to_string(),
            require_auth: false,
            allowed_user_ids: vec![],
            ip_allow: vec![],
            ip_deny: vec![],
            total_requests: 0,
            last_accessed_at: None,
            created_at: chrono::Utc::now(),
            updated_at: None,
            expires_at: None,
            limits: Default::default(),
        }
    }

    /// Stores `t` under a new id, answered.
    pub fn insert_tunnel(&self, mut t: ReverseTunnel) -> i64 {
        self.backend.with(|s| {
            t.id = s.tunnels.values().map(|t| t.id).max().unwrap_or(0) + 1;
            let id = t.id;
            s.tunnels.insert(t.public_url.clone(), t);
            id
        })
    }

    /// Tunnel row `id` as the edge reads it now.
    pub fn tunnel_row(&self, id: i64) -> ReverseTunnel {
        self.backend.with(|s| {
            let t = s.tunnels.values().find(|t| t.id == id);
            t.cloned().expect("tunnel exists")
        })
    }

    /// Changes tunnel `id` in place, as an API update of its row would.
    pub fn patch_tunnel(&self, id: i64, change: impl FnOnce(&mut ReverseTunnel)) {
        self.backend.with(|s| {
            let t = s.tunnels.values_mut().find(|t| t.id == id);
            change(t.expect("tunnel exists"));
        })
    }

    /// Tunnel `id`'s flushed access log, newest first (as the store lists it).
    pub fn access_log(&self, id: i64) -> Vec<NewAccessLogEntry> {
        self.backend.with(|s| {
            let mine = s.access_log.iter().filter(|e| e.reverse_tunnel_id == id);
            mine.rev().cloned().collect()
        })
    }

    pub fn touch_device(&self, at: chrono::DateTime<chrono::Utc>) {
        self.backend.with(|s| {
            let d = s.devices.get_mut(&self.device_id).expect("device exists");
            d.last_seen_at = Some(at);
        })
    }

    /// A user (a member of the project if `member`), answering their id.
    pub fn add_user(&self, email: &str, password_hash: &str, member: bool) -> i64 {
        let id = add_user(&self.backend, email, password_hash);
        if member {
            self.backend
                .with(|s| s.members.insert((self.project_id, id)));
        }
        id
    }
}

fn add_user(backend: &MemoryBackend, email: &str, password_hash: &str) -> i64 {
    backend.with(|s| {
        let id = s.users.iter().map(|u| u.id).max().unwrap_or(0) + 1;
        s.users.push(User {
            id,
            email: email.to_string(),
            password_hash: password_hash.to_string(),
            is_admin: false,
            created_at: chrono::Utc::now(),
            disabled: false,
        });
        id
    })
}

pub fn test_config() -> EdgeConfig {
    EdgeConfig {
        lookup_cache_ttl: Duration::ZERO,
        idle_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        login_url: "http://localhost:9/login".to_string(),
        ..EdgeConfig::default()
    }
}

pub async fn world() -> World {
    world_with(test_config()).await
}

pub async fn world_with(config: EdgeConfig) -> World {
    let backend = Arc::new(MemoryBackend::default());
    let users: Vec<(i64, String)> = ["owner@x.test", "member@x.test", "outsider@x.test"]
        .into_iter()
        .map(|email| (add_user(&backend, email, "x"), email.to_string()))
        .collect();
    // Project 1: the owner and the member; the outsider owns another project only.
    let (project_id, device_id) = (1, 1);
    backend.with(|s| {
        s.members.insert((project_id, users[0].0));
        s.members.insert((project_id, users[1].0));
        s.members.insert((2, users[2].0));
        s.devices.insert(
            device_id,
            Device {
                id: device_id,
                project_id,
                dsn: "ABC123".to_string(),
                name: "robot".to_string(),
                created_at: chrono::Utc::now(),
                last_seen_at: None,
                cert_serial: None,
                cert_not_after: None,
                revoked_at: None,
            },
        );
    });
    let dialer = Arc::new(TcpDialer::default());
    let edge = Edge::new(
        burrow_edge::EdgeBackend::of(backend.clone()),
        jwt(),
        dialer.clone(),
        config,
    );
    let addr = serve_edge(edge.clone()).await;
    World {
        backend,
        dialer,
        edge,
        addr,
        jwt: jwt(),
        owner: users[0].clone(),
        member: users[1].clone(),
        outsider: users[2].clone(),
        project_id,
        device_id,
    }
}

/// Serves the edge like the binary does: tunnel hosts to `Edge::handle`, every other host to
/// the API (here only the edge's auth routes).
pub async fn serve_edge(edge: Arc<Edge>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let api = edge.auth_router();
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let edge = edge.clone();
            let api = api.clone();
            tokio::spawn(async move {
                let builder = server_builder(edge.config());
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let edge = edge.clone();
                    let api = api.clone();
                    async move {
                        let host = req
                            .headers()
                            .get(http::header::HOST)
                            .and_then(|h| h.to_str().ok())
                            .map(str::to_owned)
                            .or_else(|| req.uri().authority().map(|a| a.to_string()))
                            .unwrap_or_default();
                        let resp = if edge.tunnel_host(&host).is_some() {
                            edge.handle(req, peer).await
                        } else {
                            api.oneshot(req.map(Body::new)).await.unwrap()
                        };
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// One request on a fresh connection to `addr`.
pub async fn send<B>(addr: SocketAddr, req: Request<B>) -> Response<Incoming>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    try_send(addr, req).await.unwrap()
}

pub async fn try_send<B>(
    addr: SocketAddr,
    req: Request<B>,
) -> Result<Response<Incoming>, hyper::Error>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    sender.send_request(req).await
}

/// Waits (bounded) until `cond` holds; for state that settles in a spawned task.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn get(host: &str, path: &str) -> http::request::Builder {
    Request::builder()
        .uri(path)
        .header(http::header::HOST, host)
}

pub fn empty() -> Full<Bytes> {
    Full::new(Bytes::new())
}

pub async fn body_string(resp: Response<Incoming>) -> String {
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub async fn json_body(resp: Response<Incoming>) -> serde_json::Value {
    let s = body_string(resp).await;
    serde_json::from_str(&s).unwrap_or_else(|_| panic!("not JSON: {s}"))
}

/// Writes raw bytes and reads the whole answer (the edge closes or the test times out).
pub async fn raw(addr: SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("answer in time")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&buf) {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            if let Some(len) = head.lines().find_map(|l| {
                l.strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            }) {
                if buf.len() >= end + len {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}
pub fn location(resp: &http::Response<hyper::body::Incoming>) -> String {
    resp.headers()[http::header::LOCATION]
        .to_str()
        .unwrap()
        .to_string()
}

/// A login state a browser would hold in its state cookie (any well-formed value works: it is
/// the browser's own secret).
pub const STATE: &str = "test-state-0123456789abcdef";

/// The plain-HTTP state cookie carrying [`STATE`].
pub fn state_cookie() -> String {
    format!("__burrow_state={STATE}")
}

pub fn cookie_pair(resp: &http::Response<hyper::body::Incoming>, name: &str) -> (String, String) {
    let set = resp
        .headers()
        .get_all(http::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set"));
    let pair = set.split(';').next().unwrap().to_string();
    (pair, set)
}

pub mod device;
