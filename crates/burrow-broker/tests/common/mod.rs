//! Shared helpers of the broker's integration tests: a broker served on 127.0.0.1:0, local
//! TCP services, raw handshakes, bounded waits.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use burrow_broker::{Broker, BrokerConfig, Clock, ManualClock, OpenRequest, Opened, TokenKey};
use burrow_client::ClientConfig;
use burrow_store::SqliteStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Stack {
    pub broker: Arc<Broker>,
    pub clock: Arc<ManualClock>,
    pub addr: SocketAddr,
}

impl Stack {
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn client(&self, token: &burrow_broker::AccessToken) -> ClientConfig {
        ClientConfig::new(self.url(), token.expose())
    }

    pub async fn open(&self, services: &[&str]) -> Opened {
        let req = OpenRequest {
            services: services.iter().map(|s| s.to_string()).collect(),
            ..OpenRequest::default()
        };
        self.broker.open(req).await.expect("open tunnel")
    }
}

pub async fn stack() -> Stack {
    stack_with(BrokerConfig::default()).await
}

/// A broker on an in-memory SQLite store with a manual clock (which only matters for
/// expiry), served over plain HTTP on a fresh port.
pub async fn stack_with(config: BrokerConfig) -> Stack {
    let store = Arc::new(SqliteStore::in_memory().await.expect("sqlite"));
    let clock = Arc::new(ManualClock::starting_now());
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let broker = Broker::new(store, TokenKey::generate(), config, dyn_clock);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = broker.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Stack {
        broker,
        clock,
        addr,
    }
}

/// Panics if `fut` does not finish within `secs` seconds.
pub async fn within<F: Future>(secs: u64, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("timed out")
}

/// Polls `cond` until it holds (bounded: 5 s), for state that changes asynchronously.
pub async fn eventually<F, Fut>(mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(5, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// A TCP echo service.
pub async fn echo_server() -> SocketAddr {
    serve(|mut s| async move {
        let (mut r, mut w) = s.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    })
    .await
}

/// A TCP service that writes `tag` first, then echoes (to check routing per service).
pub async fn tagged_echo_server(tag: &'static [u8]) -> SocketAddr {
    serve(move |mut s| async move {
        if s.write_all(tag).await.is_err() {
            return;
        }
        let (mut r, mut w) = s.split();
        let _ = tokio::io::copy(&mut r, &mut w).await;
    })
    .await
}

/// Runs `handler` for every accepted connection of a fresh port.
pub async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(handler(s));
        }
    });
    addr
}

/// A port with nothing listening on it.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

/// Deterministic pseudo-random bytes (xorshift), distinct per seed.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `data` and reads the same number of bytes back, concurrently.
pub async fn echo_round_trip<S>(stream: S, data: &[u8]) -> Vec<u8>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let mut back = vec![0u8; data.len()];
    let (written, read) = tokio::join!(w.write_all(data), r.read_exact(&mut back));
    written.expect("write");
    read.expect("read");
    back
}

/// A hand-written upgrade request; answers the status, the raw head and the body.
pub async fn raw_upgrade(
    addr: SocketAddr,
    target: &str,
    extra: &[(&str, &str)],
) -> (u16, String, String) {
    raw_upgrade_with(addr, target, Some("aws.iot.securetunneling-3.0"), extra).await
}

pub async fn raw_upgrade_with(
    addr: SocketAddr,
    target: &str,
    protocol: Option<&str>,
    extra: &[(&str, &str)],
) -> (u16, String, String) {
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    if let Some(p) = protocol {
        req.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = within(5, s.read(&mut chunk)).await.expect("read");
        assert!(n > 0, "connection closed before the response head");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head[9..12].parse().expect("status");
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = within(5, s.read(&mut chunk)).await.expect("read");
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    (status, head, body)
}

pub const DST: &str = "/tunnel?local-proxy-mode=destination";
pub const SRC: &str = "/tunnel?local-proxy-mode=source";
