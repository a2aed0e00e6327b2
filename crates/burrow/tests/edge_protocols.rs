//! The tunnel protocols end to end (client → edge → broker → device peer → local service):
//! server-sent events arrive one by one, and `https`/`wss` tunnels reach a device service
//! that has a self-signed certificate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message as WsMessage, WebSocketUpgrade};
use axum::routing::get;
use burrow::testkit::{Backend, TestStack};
use futures_util::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::{mpsc, Mutex};
use tower::ServiceExt;

/// The device's service: `/` answers, `/events` streams what the test sends into `events`,
/// `/ws` echoes text messages. Served plain or with a self-signed certificate.
async fn device_service(tls: bool, events: Option<mpsc::Receiver<String>>) -> SocketAddr {
    let events = Arc::new(Mutex::new(events));
    let app = axum::Router::new()
        .route("/", get(|| async { "hello over the tunnel" }))
        .route(
            "/events",
            get(move || {
                let events = events.clone();
                async move {
                    let rx = events.lock().await.take();
                    let stream = futures_util::stream::unfold(rx, |rx| async move {
                        let mut rx = rx?;
                        let e = rx.recv().await?;
                        Some((
                            Ok::<_, std::io::Error>(Bytes::from(format!("data: {e}\n\n"))),
                            Some(rx),
                        ))
                    });
                    axum::response::Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Body::from_stream(stream))
                        .expect("response")
                }
            }),
        )
        .route(
            "/ws",
            get(|ws: WebSocketUpgrade| async move {
                ws.on_upgrade(|mut socket| async move {
                    while let Some(Ok(msg)) = socket.recv().await {
                        if let WsMessage::Text(t) = msg {
                            if socket.send(WsMessage::Text(t)).await.is_err() {
                                break;
                            }
                        }
                    }
                })
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tls.then(self_signed_acceptor);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (app, acceptor) = (app.clone(), acceptor.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<_>| {
                    app.clone().oneshot(req.map(Body::new))
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    Some(acc) => {
                        if let Ok(tls) = acc.accept(tcp).await {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                                .await;
                        }
                    }
                    None => {
                        let _ = builder
                            .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                            .await;
                    }
                }
            });
        }
    });
    addr
}

fn self_signed_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![ck.cert.der().clone()], key)
    .expect("server config");
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_https_and_wss_through_the_whole_path() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("login");
    let (events_tx, events_rx) = mpsc::channel(4);
    let plain = device_service(false, Some(events_rx)).await;
    let tls = device_service(true, None).await;
    let (sse, _p1) = s
        .public_tunnel(&admin, "PROTO1", plain)
        .await
        .expect("http");
    let (https, _p2) = s
        .public_tunnel_with(&admin, "PROTO2", tls, "https")
        .await
        .expect("https");
    let (wss, _p3) = s
        .public_tunnel_with(&admin, "PROTO3", tls, "wss")
        .await
        .expect("wss");
    let host = |t: &serde_json::Value| t["public_url"].as_str().expect("host").to_string();

    // SSE: each event is read before the service sends the next one, so a buffering edge
    // would hang here (bounded by the timeout).
    let resp = s
        .http
        .get(format!("http://{}/events", s.addr))
        .header("host", host(&sse))
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();
    for i in 0..5 {
        events_tx.send(format!("event {i}")).await.expect("emit");
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .unwrap_or_else(|_| panic!("event {i} did not arrive on its own"))
            .expect("open")
            .expect("chunk");
        assert_eq!(chunk, Bytes::from(format!("data: event {i}\n\n")));
    }
    drop(events_tx);

    // https: TLS from the edge to the device's self-signed service.
    let r = s
        .http
        .get(format!("http://{}/", s.addr))
        .header("host", host(&https))
        .send()
        .await
        .expect("https tunnel");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "hello over the tunnel");

    // wss: the upgrade is answered by the device's service over TLS, then a byte pipe.
    burrow::testkit::device_service::ws_echo_roundtrip(s.addr, &host(&wss)).await;
    // ws over plain http works on the same path.
    burrow::testkit::device_service::ws_echo_roundtrip(s.addr, &host(&sse)).await;
}
