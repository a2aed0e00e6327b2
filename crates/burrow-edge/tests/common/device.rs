//! The device's local services, on real sockets: an axum HTTP service (plain or TLS with a
//! self-signed rcgen certificate), a tokio-tungstenite WebSocket echo server, and raw TCP
//! servers that refuse (accept and close) or die mid-response. Each counts what reached it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::routing::{any, get, post};
use axum::Router;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower::ServiceExt;

pub struct Service {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    /// Sends one SSE chunk to the (single) open `/sse` stream.
    pub sse: mpsc::UnboundedSender<String>,
}

impl Service {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn headers(req: Request) -> axum::Json<serde_json::Value> {
    let mut map = serde_json::Map::new();
    for (k, v) in req.headers() {
        let v = v.to_str().unwrap_or("?").to_string();
        match map.get_mut(k.as_str()) {
            Some(serde_json::Value::String(s)) => {
                s.push_str(", ");
                s.push_str(&v);
            }
            _ => {
                map.insert(k.as_str().to_string(), serde_json::Value::String(v));
            }
        }
    }
    axum::Json(serde_json::json!({
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "headers": map,
    }))
}

fn router(sse_rx: Arc<Mutex<Option<mpsc::UnboundedReceiver<String>>>>) -> Router {
    Router::new()
        .route("/headers", any(headers))
        .route("/echo", post(|body: Body| async move { Body::new(body) }))
        .route("/big", get(|| async { vec![b'x'; 1 << 20] }))
        .route(
            "/sse",
            get(move || {
                let rx = sse_rx.lock().unwrap().take();
                async move {
                    let Some(rx) = rx else {
                        return http::Response::builder()
                            .status(409)
                            .body(Body::empty())
                            .unwrap();
                    };
                    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                        rx.recv()
                            .await
                            .map(|s| (Ok::<_, Infallible>(Bytes::from(s)), rx))
                    });
                    http::Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Body::from_stream(stream))
                        .unwrap()
                }
            }),
        )
        .fallback(|| async { "hello from the device" })
}

/// Serves the test service on 127.0.0.1:0, plain or with TLS.
pub async fn http_service(tls: bool) -> Service {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let app = router(Arc::new(Mutex::new(Some(rx))));
    let acceptor = tls.then(tls_acceptor);
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let app = app.clone();
            let counter = counter.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    app.clone().oneshot(req.map(Body::new))
                });
                let builder = Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(acc) => {
                        let Ok(s) = acc.accept(stream).await else {
                            return;
                        };
                        let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            });
        }
    });
    Service {
        addr,
        hits,
        sse: tx,
    }
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

/// A WebSocket echo server (tokio-tungstenite); counts handshakes.
pub async fn ws_echo() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_text() || msg.is_binary() {
                        if ws.send(msg).await.is_err() {
                            return;
                        }
                    } else if msg.is_close() {
                        return;
                    }
                }
            });
        }
    });
    (addr, hits)
}

/// Accepts and closes at once: what the agent reports when the local port is not listening.
pub async fn refusing() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            drop(s);
        }
    });
    addr
}

/// Reads a request head, answers a head promising 1000 bytes, sends 10, and drops the socket.
pub async fn dying() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789")
                    .await;
                let _ = s.flush().await;
                drop(s);
            });
        }
    });
    addr
}
