//! The whole request path, through real sockets: client → edge (Host routing, auth) →
//! broker (in-process source) → a destination peer over WebSocket → a local HTTP service.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use burrow::testkit::{Backend, Load, TestStack};
use burrow_client::{ClientConfig, DestinationClient, Secret, Targets};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const BIG: usize = 4 * 1024 * 1024;

fn big_body() -> Vec<u8> {
    (0..BIG).map(|i| (i * 31 % 251) as u8).collect()
}

/// A local "device service" that counts requests and reports the identity headers it saw.
async fn device_service() -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let h2 = hits.clone();
    let app = axum::Router::new()
        .route(
            "/",
            get(move |headers: axum::http::HeaderMap| {
                let h = h.clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    let seen = |k: &str| {
                        headers
                            .get(k)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string()
                    };
                    axum::Json(json!({
                        "user": seen("x-burrow-user-email"),
                        "authorization": seen("authorization"),
                        "forwarded_host": seen("x-forwarded-host"),
                    }))
                }
            }),
        )
        .route("/big", get(|| async { big_body() }))
        // A request the service never finishes in time (the device dies under it).
        .route(
            "/hang",
            get(move || {
                h2.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<&'static str>()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_url_reaches_the_device_service_only_for_allowed_users() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("login");
    let (_outsider_id, outsider) = s.user("outsider@example.com").await.expect("user");
    s.project_with_device(&admin, "E2E1").await.expect("device");
    let (svc, hits) = device_service().await;

    let create = |body: Value| {
        s.http
            .post(s.url("/api/v1/reverse-tunnels/devices/E2E1/reverse-tunnels"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let private: Value = create(json!({"name": "Dash", "local_port": svc.port()}))
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let public: Value =
        create(json!({"name": "Open", "local_port": svc.port(), "require_auth": false}))
            .await
            .expect("create")
            .json()
            .await
            .expect("json");

    // The device side: one destination peer per tunnel, with the token the config endpoint
    // would hand out, forwarding to the local service.
    let mut peers = Vec::new();
    for t in [&private, &public] {
        let tunnel_id = t["tunnel_id"].as_str().expect("tunnel id");
        let token = s
            .running
            .broker
            .destination_token(tunnel_id)
            .await
            .expect("token");
        let cfg = ClientConfig::new(format!("ws://{}", s.addr), Secret::new(token.expose()));
        let targets = Targets::new().service(format!("HTTP-{}", svc.port()), svc);
        peers.push(
            DestinationClient::connect(cfg, targets)
                .await
                .expect("destination connects"),
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !s.running.broker.is_destination_connected(tunnel_id) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "destination never connected"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let host = |t: &Value| t["public_url"].as_str().expect("host").to_string();
    let get = |host: String, path: &'static str| {
        s.http
            .get(format!("http://{}{path}", s.addr))
            .header("host", host)
            .header("accept", "application/json")
    };

    // No credentials, a forged token, a non-member: refused, the service never sees them.
    let r = get(host(&private), "/").send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = get(host(&private), "/")
        .bearer_auth("forged.jwt.value")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = get(host(&private), "/")
        .bearer_auth(&outsider)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "refused requests must not reach the device"
    );

    // A member passes; the device sees who, but not the user's JWT.
    let r = get(host(&private), "/")
        .bearer_auth(&admin)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let seen: Value = r.json().await.expect("json");
    assert_eq!(seen["user"], "admin@test.local");
    assert_eq!(seen["authorization"], "");
    assert_eq!(seen["forwarded_host"], host(&private));
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // A body of several MB arrives byte-exact through the tunnel.
    let body = get(host(&private), "/big")
        .bearer_auth(&admin)
        .send()
        .await
        .expect("send")
        .bytes()
        .await
        .expect("body");
    assert_eq!(body.len(), BIG);
    assert_eq!(Sha256::digest(&body), Sha256::digest(big_body()));

    // A public tunnel needs no credentials; an unknown host gets the edge's 404.
    let r = get(host(&public), "/").send().await.expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let r = get("nope.localhost".into(), "/")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Counting reaches the API after the edge's batched flush (on shutdown at the latest).
    let dsn_path = "/api/v1/reverse-tunnels/devices/E2E1/reverse-tunnels";
    let running = s.running;
    let store = running.store.clone();
    running.shutdown().await.expect("shutdown");
    let row = store
        .reverse_tunnel_by_id(private["id"].as_i64().expect("id"))
        .await
        .expect("get")
        .expect("row");
    assert_eq!(
        row.total_requests, 5,
        "3 refused + 2 served through {dsn_path}"
    );
    assert!(row.last_accessed_at.is_some());
    // Refused requests are counted, not logged one row each (docs/security.md).
    let log = store.list_access_log(row.id, 100).await.expect("log");
    assert_eq!(log.len(), 2);
    drop(peers);
}

/// Ten rotations in a row under continuous requests through the public URL: none fails, the
/// device moves to each new tunnel, the old tunnels close and their tokens stop working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_under_load_lose_no_request() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("login");
    let (svc, _hits) = device_service().await;
    let base = "/api/v1/reverse-tunnels/devices/ROT1/reverse-tunnels";
    let (t, first_peer) = s.public_tunnel(&admin, "ROT1", svc).await.expect("tunnel");
    let host = t["public_url"].as_str().expect("host").to_string();
    let broker = s.running.broker.clone();
    // The device side: a destination peer on the tunnel, and the token it used.
    let connect = |tunnel_id: String| {
        let (s, broker) = (&s, broker.clone());
        async move {
            let token = broker.destination_token(&tunnel_id).await.expect("token");
            let peer = s
                .connect_destination(&tunnel_id, svc)
                .await
                .expect("connect");
            (peer, token)
        }
    };
    let mut current = t["tunnel_id"].as_str().expect("id").to_string();
    let mut token = broker.destination_token(&current).await.expect("token");
    let mut peer = first_peer;

    let first = s
        .http
        .get(format!("http://{}/", s.addr))
        .header("host", &host)
        .send()
        .await
        .expect("send");
    assert_eq!(first.status(), StatusCode::OK, "{:?}", first.text().await);
    let load = Load::start(&s.http, format!("http://{}/", s.addr), &host, 4);

    for round in 0..10 {
        let rotated: Value = s
            .http
            .post(s.url(&format!("{base}/{}/rotate", t["id"])))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("rotate")
            .json()
            .await
            .expect("json");
        let next = rotated["tunnel_id"].as_str().expect("new id").to_string();
        assert_ne!(next, current, "round {round}");
        // The device learns of the new tunnel and connects to it; then the old one closes.
        let (new_peer, new_token) = connect(next.clone()).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while broker.describe(&current).await.expect("describe").status
            != burrow_broker::TunnelStatus::Closed
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "old tunnel never closed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The old destination token no longer connects.
        let cfg = ClientConfig::new(format!("ws://{}", s.addr), Secret::new(token.expose()));
        assert!(
            DestinationClient::connect(cfg, Targets::new())
                .await
                .is_err(),
            "round {round}"
        );
        drop(peer);
        peer = new_peer;
        token = new_token;
        current = next;
    }
    let (ok, failures) = load.stop().await;
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok > 40, "load ran: {ok}");
    drop(peer);
}

/// The device's agent dies with requests in flight: every client gets a 502 within 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_mid_request_answers_502_quickly() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("login");
    let (svc, hits) = device_service().await;
    let (t, peer) = s.public_tunnel(&admin, "KILL1", svc).await.expect("tunnel");
    let host = t["public_url"].as_str().expect("host").to_string();
    let mut inflight = Vec::new();
    for _ in 0..5 {
        let req = s
            .http
            .get(format!("http://{}/hang", s.addr))
            .header("host", &host)
            .send();
        inflight.push(tokio::spawn(req));
    }
    // Wait until the requests have reached the device service (bounded), then kill the peer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while hits.load(Ordering::SeqCst) < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let killed_at = tokio::time::Instant::now();
    drop(peer);
    for r in inflight {
        let r = tokio::time::timeout(Duration::from_secs(5), r)
            .await
            .expect("answered within 5 s")
            .expect("join");
        match r {
            Ok(resp) => assert_eq!(resp.status(), StatusCode::BAD_GATEWAY),
            Err(e) => panic!("the client should get a 502 page, got {e}"),
        }
    }
    assert!(killed_at.elapsed() < Duration::from_secs(5));
}
