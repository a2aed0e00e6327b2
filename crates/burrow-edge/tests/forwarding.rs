//! Forwarding through the edge to real local services: http, https (self-signed), SSE and
//! chunked streams both ways, WebSocket, keep-alive reuse, a device dying mid-response.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use common::device::{dying, http_service, ws_echo};
use common::*;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

async fn next_text(body: &mut hyper::body::Incoming, want: &str) {
    let mut got = String::new();
    while got.len() < want.len() {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("chunk in time")
            .expect("stream open")
            .expect("frame");
        if let Ok(d) = frame.into_data() {
            got.push_str(&String::from_utf8_lossy(&d));
        }
    }
    assert_eq!(got, want);
}

#[tokio::test]
async fn get_and_post_reach_the_device() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel("web", "http", false, vec![]).await;
    w.dialer.set("t-web", Dest::Tcp(svc.addr));

    let resp = send(w.addr, get("web.localhost", "/").body(empty()).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body_string(resp).await, "hello from the device");

    let payload = vec![b'z'; 300_000];
    let req = Request::post("/echo")
        .header("host", "web.localhost")
        .body(Full::new(Bytes::from(payload.clone())))
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(got.len(), payload.len());
    assert_eq!(svc.hits(), 2);
    assert!(w
        .dialer
        .services
        .lock()
        .unwrap()
        .iter()
        .all(|s| s == "HTTP-8080"));
}

#[tokio::test]
async fn device_sees_forwarded_headers_not_client_forgeries() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel("pub", "http", false, vec![]).await;
    w.dialer.set("t-pub", Dest::Tcp(svc.addr));
    let req = get("PUB.localhost.:80", "/headers?x=1")
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-host", "evil.com")
        .header("x-burrow-user-id", "1")
        .header("x-burrow-user-email", "boss@x.test")
        .header("connection", "x-hop")
        .header("x-hop", "1")
        .header("cookie", "app=1; __burrow_session=nope")
        .body(empty())
        .unwrap();
    let v = json_body(send(w.addr, req).await).await;
    let h = &v["headers"];
    assert_eq!(v["uri"], "/headers?x=1");
    assert_eq!(h["host"], "pub.localhost");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-host"], "pub.localhost");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["cookie"], "app=1");
    for absent in ["x-burrow-user-id", "x-burrow-user-email", "x-hop"] {
        assert!(h.get(absent).is_none(), "{absent} reached the device: {v}");
    }
}

#[tokio::test]
async fn sse_events_arrive_one_by_one() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel("sse", "http", false, vec![]).await;
    w.dialer.set("t-sse", Dest::Tcp(svc.addr));
    let resp = send(w.addr, get("sse.localhost", "/sse").body(empty()).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    svc.sse.send("data: one\n\n".into()).unwrap();
    next_text(&mut body, "data: one\n\n").await;
    // The second event is only produced after the first was read by the client.
    svc.sse.send("data: two\n\n".into()).unwrap();
    next_text(&mut body, "data: two\n\n").await;
}

#[tokio::test]
async fn chunked_request_streams_to_the_device_and_back() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel("up", "http", false, vec![]).await;
    w.dialer.set("t-up", Dest::Tcp(svc.addr));
    let (tx, rx) = mpsc::unbounded_channel::<&'static str>();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|s| (Ok::<_, Infallible>(Frame::data(Bytes::from(s))), rx))
    });
    let req = Request::post("/echo")
        .header("host", "up.localhost")
        .body(StreamBody::new(stream))
        .unwrap();
    tx.send("first;").unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    next_text(&mut body, "first;").await;
    tx.send("second").unwrap();
    next_text(&mut body, "second").await;
    drop(tx);
    assert!(body.collect().await.unwrap().to_bytes().is_empty());
}

#[tokio::test]
async fn websocket_echo_through_the_edge() {
    let w = world().await;
    let (ws_addr, hits) = ws_echo().await;
    w.tunnel("chat", "ws", false, vec![]).await;
    w.dialer.set("t-chat", Dest::Tcp(ws_addr));
    let stream = TcpStream::connect(w.addr).await.unwrap();
    let req = "ws://chat.localhost/socket".into_client_request().unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    for text in ["ping", "pong", "a longer message"] {
        ws.send(Message::text(text)).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(got.into_text().unwrap().as_str(), text);
    }
    ws.close(None).await.unwrap();
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(w.dialer.services.lock().unwrap().as_slice(), ["WS-8080"]);
}

#[tokio::test]
async fn https_service_with_self_signed_certificate() {
    let w = world().await;
    let svc = http_service(true).await;
    w.tunnel("secure", "https", false, vec![]).await;
    w.dialer.set("t-secure", Dest::Tcp(svc.addr));
    let resp = send(
        w.addr,
        get("secure.localhost", "/headers").body(empty()).unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = json_body(resp).await;
    assert_eq!(v["headers"]["host"], "secure.localhost");
    assert_eq!(svc.hits(), 1);

    // An https tunnel whose service speaks plain HTTP: the TLS handshake fails → 502.
    let plain = http_service(false).await;
    w.tunnel("mixed", "https", false, vec![]).await;
    w.dialer.set("t-mixed", Dest::Tcp(plain.addr));
    let req = get("mixed.localhost", "/")
        .header("accept", "application/json")
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(json_body(resp).await["code"], "bad_gateway");
}

#[tokio::test]
async fn keep_alive_connections_are_reused_per_tunnel() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel("ka", "http", false, vec![]).await;
    w.tunnel("kb", "http", false, vec![]).await;
    w.dialer.set("t-ka", Dest::Tcp(svc.addr));
    w.dialer.set("t-kb", Dest::Tcp(svc.addr));
    let dials = || w.dialer.dials.load(std::sync::atomic::Ordering::SeqCst);
    for i in 0..3 {
        let resp = send(w.addr, get("ka.localhost", "/big").body(empty()).unwrap()).await;
        assert_eq!(
            resp.into_body().collect().await.unwrap().to_bytes().len(),
            1 << 20
        );
        eventually("connection parked", || w.edge.idle_connections("t-ka") == 1).await;
        assert_eq!(dials(), 1, "request {i} reused the tunnel connection");
    }
    // Another tunnel never gets tunnel ka's connection.
    let resp = send(w.addr, get("kb.localhost", "/").body(empty()).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(dials(), 2);
    assert_eq!(svc.hits(), 4);
}

#[tokio::test]
async fn a_response_left_unread_never_parks_its_connection() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel("half", "http", false, vec![]).await;
    w.dialer.set("t-half", Dest::Tcp(svc.addr));
    let dials = || w.dialer.dials.load(std::sync::atomic::Ordering::SeqCst);
    // The client reads the first event of a stream that never ends and goes away: the
    // tunnel connection is mid-response, and must be closed, not parked for the next request.
    let resp = send(w.addr, get("half.localhost", "/sse").body(empty()).unwrap()).await;
    let mut body = resp.into_body();
    svc.sse.send("data: one\n\n".into()).unwrap();
    next_text(&mut body, "data: one\n\n").await;
    drop(body);
    // The device sees its stream closed once the edge dropped the tunnel connection (the
    // edge learns the client left when it forwards the next event).
    eventually("the device's stream closed", || {
        svc.sse.send("data: more\n\n".into()).is_err()
    })
    .await;
    assert_eq!(w.edge.idle_connections("t-half"), 0);
    for _ in 0..2 {
        let resp = send(w.addr, get("half.localhost", "/").body(empty()).unwrap()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&got[..], b"hello from the device");
        eventually("connection parked", || {
            w.edge.idle_connections("t-half") == 1
        })
        .await;
    }
    assert_eq!(
        dials(),
        2,
        "one dial for the stream, one for the two requests after it"
    );
    assert_eq!(svc.hits(), 3);
}

#[tokio::test]
async fn parked_connections_close_after_the_idle_timeout() {
    let w = world_with(burrow_edge::EdgeConfig {
        idle_timeout: Duration::from_millis(300),
        ..test_config()
    })
    .await;
    let svc = http_service(false).await;
    w.tunnel("nap", "http", false, vec![]).await;
    w.dialer.set("t-nap", Dest::Tcp(svc.addr));
    let dials = || w.dialer.dials.load(std::sync::atomic::Ordering::SeqCst);
    // A response read to the end parks the connection: 1 MiB, a HEAD (no body at all), an
    // echoed upload.
    for (method, path, body, want) in [
        (Method::GET, "/big", "", 1 << 20),
        (Method::HEAD, "/big", "", 0),
        (Method::POST, "/echo", "ping", 4),
    ] {
        let req = get("nap.localhost", path)
            .method(method.clone())
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap();
        let resp = send(w.addr, req).await;
        assert_eq!(resp.status(), StatusCode::OK, "{method} {path}");
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(got.len(), want, "{method} {path}");
        eventually("connection parked", || {
            w.edge.idle_connections("t-nap") == 1
        })
        .await;
    }
    assert_eq!(dials(), 1, "one tunnel connection carried all three");
    // A parked connection closes once it sat idle for the idle timeout (its own timer).
    eventually("idle connection closed", || {
        w.edge.idle_connections("t-nap") == 0
    })
    .await;
    let resp = send(w.addr, get("nap.localhost", "/").body(empty()).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(dials(), 2, "a new connection after the idle one closed");
}

#[tokio::test]
async fn device_dying_mid_response_does_not_hang_the_client() {
    let w = world().await;
    let addr = dying().await;
    w.tunnel("dies", "http", false, vec![]).await;
    w.dialer.set("t-dies", Dest::Tcp(addr));
    let outcome = tokio::time::timeout(Duration::from_secs(5), async {
        let req = get("dies.localhost", "/")
            .method(Method::GET)
            .body(empty())
            .unwrap();
        match try_send(w.addr, req).await {
            Err(_) => true,
            Ok(resp) if resp.status() == StatusCode::BAD_GATEWAY => true,
            Ok(resp) => resp.into_body().collect().await.is_err(),
        }
    })
    .await
    .expect("the client is not left hanging");
    assert!(
        outcome,
        "the client must see the failure, not a complete response"
    );
}

#[tokio::test]
async fn http2_client_is_routed_by_authority() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel("h2", "http", false, vec![]).await;
    w.dialer.set("t-h2", Dest::Tcp(svc.addr));
    let stream = TcpStream::connect(w.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for _ in 0..2 {
        let req = Request::get("http://H2.localhost/headers")
            .body(empty())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let v = json_body(resp).await;
        assert_eq!(v["headers"]["host"], "h2.localhost");
    }
    assert_eq!(svc.hits(), 2);
}
