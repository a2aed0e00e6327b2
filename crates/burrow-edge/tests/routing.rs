//! Host routing, the edge's own error pages (HTML and JSON), request limits, and counting.

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::device::{http_service, refusing};
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};

const JSON: &str = "application/json";

#[tokio::test]
async fn host_is_parsed_once_and_normalised() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel("a", "http", false, vec![]).await;
    w.tunnel("b", "http", false, vec![]).await;
    w.dialer.set("t-a", Dest::Tcp(svc.addr));
    w.dialer.set("t-b", Dest::Tcp(svc.addr));

    // Conflicting Host and absolute-form authority.
    let answer = raw(
        w.addr,
        "GET http://b.localhost/ HTTP/1.1\r\nHost: a.localhost\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    // Two Host headers.
    let answer = raw(
        w.addr,
        "GET / HTTP/1.1\r\nHost: a.localhost\r\nHost: b.localhost\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(svc.hits(), 0);
    // An agreeing absolute-form request is fine.
    let answer = raw(
        w.addr,
        "GET http://a.localhost/ HTTP/1.1\r\nHost: a.localhost:80\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Case, trailing dot and default port.
    let req = get("A.LOCALHOST.:80", "/headers").body(empty()).unwrap();
    let v = json_body(send(w.addr, req).await).await;
    assert_eq!(v["headers"]["host"], "a.localhost");
    assert_eq!(
        w.edge.tunnel_host("A.LOCALHOST.:80").as_deref(),
        Some("a.localhost")
    );

    // The API host is never a tunnel host, even if a tunnel row claimed its name.
    for api in ["localhost", "localhost:8080", "127.0.0.1", "LOCALHOST."] {
        assert_eq!(w.edge.tunnel_host(api), None, "{api}");
    }
    let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let req = Request::get("/")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(
        w.edge.handle(req, peer).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(svc.hits(), 2);
}

#[tokio::test]
async fn unknown_host_gets_the_edge_404_page() {
    let w = world().await;
    let resp = send(w.addr, get("nope.localhost", "/").body(empty()).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = body_string(resp).await;
    assert!(
        page.contains("404") && page.contains("burrow edge"),
        "{page}"
    );
    let req = get("nope.localhost", "/")
        .header("accept", JSON)
        .body(empty())
        .unwrap();
    let v = json_body(send(w.addr, req).await).await;
    assert_eq!(v["code"], "not_found");
    assert!(v["detail"].is_string());
}

#[tokio::test]
async fn disabled_offline_and_refused() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel_with("off", "http", false, vec![], false).await;
    w.dialer.set("t-off", Dest::Tcp(svc.addr));
    w.tunnel("gone", "http", false, vec![]).await;
    w.dialer.set("t-gone", Dest::Offline);
    let seen = chrono::DateTime::from_timestamp(1_750_000_000, 0).unwrap();
    w.touch_device(seen);
    w.tunnel("closed", "http", false, vec![]).await;
    w.dialer.set("t-closed", Dest::Tcp(refusing().await));

    let ask = |host: &'static str, json: bool| {
        let mut b = get(host, "/");
        if json {
            b = b.header("accept", JSON);
        }
        send(w.addr, b.body(empty()).unwrap())
    };
    let resp = ask("off.localhost", true).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(json_body(resp).await["code"], "not_found");
    assert_eq!(svc.hits(), 0);

    let resp = ask("gone.localhost", true).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v = json_body(resp).await;
    assert_eq!(v["code"], "device_offline");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("last seen 2025-06-15 15:06:40 UTC"),
        "{v}"
    );
    let resp = ask("gone.localhost", false).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(body_string(resp).await.contains("last seen 2025-06-15"));

    let resp = ask("closed.localhost", true).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let v = json_body(resp).await;
    assert_eq!(v["code"], "service_refused");
    assert_eq!(
        v["detail"],
        "the device's local service refused or reset the connection"
    );
    let resp = ask("closed.localhost", false).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn request_limits() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel("lim", "http", false, vec![]).await;
    w.dialer.set("t-lim", Dest::Tcp(svc.addr));
    let long = format!("/{}", "a".repeat(9 * 1024));
    let answer = raw(
        w.addr,
        &format!("GET {long} HTTP/1.1\r\nHost: lim.localhost\r\n\r\n"),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 414"),
        "{}",
        &answer[..40.min(answer.len())]
    );
    let big = "v".repeat(9 * 1024);
    let req = format!("GET / HTTP/1.1\r\nHost: lim.localhost\r\nx-a: {big}\r\nx-b: {big}\r\n\r\n");
    let answer = raw(w.addr, &req).await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..40.min(answer.len())]
    );
    let many: String = (0..120).map(|i| format!("x-h{i}: 1\r\n")).collect();
    let answer = raw(
        w.addr,
        &format!("GET / HTTP/1.1\r\nHost: lim.localhost\r\n{many}\r\n"),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..40.min(answer.len())]
    );
    assert_eq!(svc.hits(), 0);
}

#[tokio::test]
async fn usage_and_access_log_are_flushed_in_batches() {
    let w = world().await;
    let svc = http_service(false).await;
    let id = w.tunnel("cnt", "http", false, vec![]).await;
    w.dialer.set("t-cnt", Dest::Tcp(svc.addr));
    const N: usize = 7;
    for _ in 0..N - 1 {
        let resp = send(w.addr, get("cnt.localhost", "/").body(empty()).unwrap()).await;
        assert_eq!(body_string(resp).await, "hello from the device");
    }
    let req = Request::post("/echo?secret=1")
        .header("host", "cnt.localhost")
        .body(Full::new(Bytes::from_static(b"12345")))
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(
        resp.into_body().collect().await.unwrap().to_bytes().len(),
        5
    );
    // Nothing is written per request...
    assert_eq!(w.tunnel_row(id).total_requests, 0);
    assert!(w.access_log(id).is_empty());
    // ...until a flush.
    w.edge.flush().await;
    let t = w.tunnel_row(id);
    assert_eq!(t.total_requests, N as i64);
    assert!(t.last_accessed_at.is_some());
    let log = w.access_log(id);
    assert_eq!(log.len(), N);
    let post = log
        .iter()
        .find(|e| e.method == "POST")
        .expect("POST logged");
    assert_eq!(
        (
            post.path.as_str(),
            post.status,
            post.bytes_in,
            post.bytes_out
        ),
        ("/echo", 200, 5, 5)
    );
    assert!(log
        .iter()
        .filter(|e| e.method == "GET")
        .all(|e| e.status == 200 && e.bytes_out == 21));
    w.edge.flush().await;
    assert_eq!(w.access_log(id).len(), N, "flushed once");
}

#[tokio::test]
async fn access_log_buffer_is_bounded() {
    let w = world_with(burrow_edge::EdgeConfig {
        access_log_capacity: 3,
        ..test_config()
    })
    .await;
    // Device offline: answered by the edge, but after the tunnel's checks, so logged.
    let id = w.tunnel("full", "http", false, vec![]).await;
    for _ in 0..5 {
        let resp = send(w.addr, get("full.localhost", "/").body(empty()).unwrap()).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    w.edge.flush().await;
    assert_eq!(w.access_log(id).len(), 3);
    assert_eq!(w.edge.dropped_log_entries(), 2);
    assert_eq!(w.tunnel_row(id).total_requests, 5);
}

#[tokio::test]
async fn silent_device_times_out_and_closed_port_is_refused() {
    let w = world_with(burrow_edge::EdgeConfig {
        idle_timeout: std::time::Duration::from_millis(400),
        ..test_config()
    })
    .await;
    // Accepts and reads, never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    w.tunnel("quiet", "http", false, vec![]).await;
    w.dialer.set("t-quiet", Dest::Tcp(silent_addr));
    let req = get("quiet.localhost", "/")
        .header("accept", JSON)
        .body(empty())
        .unwrap();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(5), send(w.addr, req))
        .await
        .expect("idle timeout, not a hang");
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(json_body(resp).await["code"], "device_timeout");

    // Nothing listens: the dialer reports Refused.
    let closed = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    w.tunnel("nobody", "http", false, vec![]).await;
    w.dialer.set("t-nobody", Dest::Tcp(closed));
    let req = get("nobody.localhost", "/")
        .header("accept", JSON)
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(json_body(resp).await["code"], "service_refused");

    // A tunnel whose broker tunnel is not open yet.
    let mut fresh = w.tunnel_row_for("fresh.localhost", "new", "http");
    fresh.local_port = 80;
    w.insert_tunnel(fresh);
    let req = get("fresh.localhost", "/")
        .header("accept", JSON)
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json_body(resp).await["code"], "tunnel_not_active");
}
