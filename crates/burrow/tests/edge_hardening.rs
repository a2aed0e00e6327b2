//! Edge hardening (issue 19) on a whole server, through real sockets: login throttling on
//! both login endpoints, burrow's JWT never reaching a device through the real broker, the
//! device listener's per-address cap, the header read timeout, `public_scheme`. The
//! memory bound of concurrent logins is in `login_memory.rs` (alone in its process).
//! See docs/security.md.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::routing::get;
use burrow::testkit::{serve_local, Backend, TestStack, ADMIN_EMAIL, ADMIN_PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client whose connections come from `ip` (any 127.0.0.0/8 address is loopback).
fn client_from(ip: &str) -> reqwest::Client {
    let ip: IpAddr = ip.parse().expect("ip");
    reqwest::Client::builder()
        .local_address(ip)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Attempts beyond the 30th that may still get through on a loaded machine (the quota
/// refills one attempt per 2 s while the 30 run).
const MAX_REFILLED: usize = 10;

async fn api_login(
    s: &TestStack,
    http: &reqwest::Client,
    email: &str,
    pw: &str,
) -> reqwest::Response {
    http.post(s.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": pw}))
        .send()
        .await
        .expect("login")
}

/// Item 1: the 31st failed login from one address gets 429 with `Retry-After`, on the API and
/// on the edge's login form alike; the real user, from another address, is not locked out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_31st_failed_login_from_one_address_gets_429() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let attacker = client_from("127.0.0.7");
    for i in 0..30 {
        let r = api_login(&s, &attacker, ADMIN_EMAIL, "wrong-password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {}", i + 1);
    }
    // The 31st is refused, unless the 30 took longer than the quota's 2 s refill (a loaded
    // machine): then one more per 2 s gets through, and a refusal follows within a few.
    let mut r = api_login(&s, &attacker, ADMIN_EMAIL, "wrong-password").await;
    for _ in 0..MAX_REFILLED {
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        r = api_login(&s, &attacker, ADMIN_EMAIL, "wrong-password").await;
    }
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=120).contains(&wait), "{wait}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["code"], "too_many_requests");
    // Even the right password from the throttled address waits: no free guesses.
    let r = api_login(&s, &attacker, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);

    // The edge's login form shares the quota.
    let form = format!(
        "email={}&password=wrong&next=%2Fedge%2Fauthorize%3Fhost%3Dx.localhost",
        ADMIN_EMAIL.replace('@', "%40")
    );
    let r = attacker
        .post(s.url("/edge/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("form");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));

    // The real user, from their own address, is not locked out; successful logins are not
    // counted at all.
    let user = client_from("127.0.0.8");
    for _ in 0..40 {
        let r = api_login(&s, &user, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
}

/// A device service that answers with the headers it received.
async fn echo_headers_service() -> SocketAddr {
    let app = axum::Router::new().route(
        "/",
        get(|headers: axum::http::HeaderMap| async move {
            let map: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("?"))))
                .collect();
            axum::Json(Value::Object(map))
        }),
    );
    serve_local(app).await.expect("service")
}

/// Item 4: through the real broker and a device peer, a public tunnel's device never sees
/// the API client's burrow JWT (nor burrow's cookies); the app's own token passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_tunnels_device_never_sees_a_burrow_jwt() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("login");
    let svc = echo_headers_service().await;
    let (t, _peer) = s.public_tunnel(&admin, "HARD1", svc).await.expect("tunnel");
    let host = t["public_url"].as_str().expect("host").to_string();
    for auth in [format!("Bearer {admin}"), format!("JWT {admin}")] {
        let r = s
            .http
            .get(s.url("/"))
            .header("host", &host)
            .header("authorization", &auth)
            .header("cookie", format!("app=1; __burrow_session=x; jwt={admin}"))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::OK);
        let seen: Value = r.json().await.expect("json");
        assert!(seen.get("authorization").is_none(), "{seen}");
        assert_eq!(seen["cookie"], "app=1", "{seen}");
        assert!(!seen.to_string().contains(&admin), "{seen}");
    }
    let r = s
        .http
        .get(s.url("/"))
        .header("host", &host)
        .header("authorization", "Bearer the-apps-own-token")
        .send()
        .await
        .expect("request");
    let seen: Value = r.json().await.expect("json");
    assert_eq!(seen["authorization"], "Bearer the-apps-own-token");
}

/// Item 9: the device listener caps concurrent connections per client address (taken before
/// the TLS handshake, so silent connections count).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_listener_caps_connections_per_address() {
    let s = TestStack::start_configured(Backend::Sqlite, |c| c.device_conns_per_address = 3)
        .await
        .expect("stack");
    let addr = s.running.device_addr;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
    }
    // The 4th from the same address is closed at once; the held ones are not.
    let mut fourth = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(3), fourth.read(&mut buf))
        .await
        .expect("the 4th connection is closed at once");
    assert_eq!(n.unwrap_or(0), 0);
    let still = tokio::time::timeout(Duration::from_millis(200), held[0].read(&mut buf)).await;
    assert!(still.is_err(), "held connections stay open");
    // Another address is served.
    let other = tokio::net::TcpSocket::new_v4().expect("socket");
    other
        .bind("127.0.0.9:0".parse().expect("addr"))
        .expect("bind");
    let mut other = other.connect(addr).await.expect("connect");
    let quiet = tokio::time::timeout(Duration::from_millis(300), other.read(&mut buf)).await;
    assert!(quiet.is_err(), "another address is not refused");
    drop(held);
}

/// The cap counts open tunnels too: a device's `/tunnel` WebSocket keeps its connection's
/// place after the upgrade (hyper hands the stream to the WebSocket task), and frees it when
/// the tunnel's peer leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_listener_cap_counts_open_tunnels() {
    let s = TestStack::start_configured(Backend::Sqlite, |c| c.device_conns_per_address = 2)
        .await
        .expect("stack");
    cap_counts_open_tunnels(&s, Port::Device).await;
}

/// The same on the main port (`conns_per_client`), where sources, destinations and clients'
/// WebSockets through the edge upgrade too. The API is called from another address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_port_cap_counts_open_websockets() {
    let s = TestStack::start_configured(Backend::Sqlite, |c| c.conns_per_client = 2)
        .await
        .expect("stack");
    let origin = format!("http://{}", s.addr);
    let s = s.with_client(client_from("127.0.0.7"), origin);
    cap_counts_open_tunnels(&s, Port::Main).await;
}

#[derive(Clone, Copy)]
enum Port {
    Main,
    Device,
}

/// Under a cap of 2 for 127.0.0.1: two destination peers connect, a third is refused, and
/// once the first leaves the third gets its place.
async fn cap_counts_open_tunnels(s: &TestStack, port: Port) {
    let admin = s.admin_token().await.expect("login");
    let svc = serve_local(axum::Router::new().route("/", get(|| async { "up" })))
        .await
        .expect("service");
    let service = burrow_edge::service_name("http", i64::from(svc.port()));
    let mut tunnels = Vec::new();
    for dsn in ["CAP1", "CAP2", "CAP3"] {
        s.project_with_device(&admin, dsn).await.expect("device");
        let (status, t) = s
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels"),
                &admin,
                Some(&json!({"name": "svc", "local_port": svc.port(), "require_auth": false})),
            )
            .await
            .expect("tunnel");
        assert_eq!(status, StatusCode::CREATED, "{t}");
        tunnels.push(t["tunnel_id"].as_str().expect("tunnel id").to_string());
    }
    let connect = |id: &str| {
        let (id, service) = (id.to_string(), service.clone());
        async move {
            let peer = async {
                match port {
                    Port::Device => {
                        s.connect_destination_over_device_port(&id, &service, svc)
                            .await
                    }
                    Port::Main => s.connect_destination_as(&id, &service, svc).await,
                }
            };
            tokio::time::timeout(Duration::from_secs(10), peer)
                .await
                .expect("connect is bounded")
        }
    };
    let first = connect(&tunnels[0]).await.expect("1st tunnel");
    let _second = connect(&tunnels[1]).await.expect("2nd tunnel");
    assert!(
        connect(&tunnels[2]).await.is_err(),
        "a 3rd open tunnel from the same address is over the cap of 2"
    );
    // The first tunnel's peer leaves: its place is free again.
    first.close();
    drop(first);
    let broker = &s.running.broker;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while broker.is_destination_connected(&tunnels[0]) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "1st peer never left"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let third = connect(&tunnels[2]).await;
    assert!(third.is_ok(), "the freed place is taken: {:?}", third.err());
}

/// Item 9: a client that never finishes its request head is dropped after 10 s (was 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_is_dropped_after_10_seconds() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let mut c = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("connect");
    c.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), c.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "still open after 15 s");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(12),
        "{took:?}"
    );
}

/// Item 8: behind a TLS-terminating proxy (`public_scheme = "https"`, no TLS of its own) the
/// login handoff uses `https://` and the edge's cookies are `Secure` and `__Host-` prefixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_scheme_https_behind_a_proxy() {
    let s = TestStack::start_configured(Backend::Sqlite, |c| {
        c.public_scheme = Some("https".into());
    })
    .await
    .expect("stack");
    let admin = s.admin_token().await.expect("login");
    s.project_with_device(&admin, "PROXY1")
        .await
        .expect("device");
    let (status, t) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/reverse-tunnels/devices/PROXY1/reverse-tunnels",
            &admin,
            Some(&json!({"name": "svc", "local_port": 8080, "require_auth": true})),
        )
        .await
        .expect("create");
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let host = t["public_url"].as_str().expect("host").to_string();
    let http = client_from("127.0.0.1");
    let r = http
        .get(s.url("/page"))
        .header("host", &host)
        .header("accept", "text/html")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::FOUND);
    let to = r.headers()["location"].to_str().expect("ascii");
    assert!(
        to.starts_with(&format!(
            "https://localhost:{}/edge/authorize?",
            s.addr.port()
        )),
        "{to}"
    );
    let cookie = r.headers()["set-cookie"].to_str().expect("ascii");
    assert!(
        cookie.starts_with("__Host-burrow_state=") && cookie.contains("; Secure"),
        "{cookie}"
    );
}

/// Item 2: the API/UI may live on another domain than the tunnels (`api_origin`): its host is
/// served by the API, and tunnel hosts send browsers there to log in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_can_live_on_another_domain_than_the_tunnels() {
    let s = TestStack::start_configured(Backend::Sqlite, |c| {
        c.base_domain = "tunnels.test".into();
        c.api_origin = Some("http://fleet.example.test".into());
    })
    .await
    .expect("stack");
    let http = client_from("127.0.0.1");
    let r = http
        .post(s.url("/api/v1/auth/login"))
        .header("host", "fleet.example.test")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::OK);
    let admin = r.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    s.project_with_device(&admin, "SPLIT1")
        .await
        .expect("device");
    let (status, t) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/reverse-tunnels/devices/SPLIT1/reverse-tunnels",
            &admin,
            Some(&json!({"name": "svc", "local_port": 8080, "require_auth": true})),
        )
        .await
        .expect("create");
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let host = t["public_url"].as_str().expect("host").to_string();
    assert!(host.ends_with(".tunnels.test"), "{host}");
    let r = http
        .get(s.url("/"))
        .header("host", &host)
        .header("accept", "text/html")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::FOUND);
    let to = r.headers()["location"].to_str().expect("ascii");
    assert!(
        to.starts_with("http://fleet.example.test/edge/authorize?host="),
        "{to}"
    );
}

/// A device service with a WebSocket echo at `/ws`.
async fn ws_echo_service() -> SocketAddr {
    use axum::extract::ws::WebSocketUpgrade;
    let app = axum::Router::new().route(
        "/ws",
        get(|ws: WebSocketUpgrade| async move {
            ws.on_upgrade(|mut socket| async move {
                while let Some(Ok(m)) = socket.recv().await {
                    if socket.send(m).await.is_err() {
                        return;
                    }
                }
            })
        }),
    );
    serve_local(app).await.expect("service")
}

/// Item 7: "sign out everywhere" ends the user's API tokens, tunnel sessions and open
/// WebSockets (within 5 s); a fresh login works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_everywhere_ends_tokens_sessions_and_websockets() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("login");
    let svc = ws_echo_service().await;
    s.project_with_device(&admin, "SIGNOUT1")
        .await
        .expect("device");
    let (status, t) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/reverse-tunnels/devices/SIGNOUT1/reverse-tunnels",
            &admin,
            Some(&json!({"name": "svc", "local_port": svc.port(), "require_auth": true})),
        )
        .await
        .expect("create");
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let _peer = s
        .connect_destination(t["tunnel_id"].as_str().expect("tunnel_id"), svc)
        .await
        .expect("device connected");
    let host = t["public_url"].as_str().expect("host").to_string();
    let authority = format!("{host}:{}", s.addr.port());

    // A browser session on the tunnel host, through the handoff.
    let state = "signout-state-0123456789abcdef";
    let r = s
        .http
        .post(s.url(&format!(
            "/edge/authorize?host={authority}&return=%2F&state={state}"
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), StatusCode::OK);
    let link = r.json::<Value>().await.expect("json")["redirect"]
        .as_str()
        .expect("redirect")
        .to_string();
    let callback = link
        .split_once(&authority)
        .expect("back to the tunnel")
        .1
        .to_string();
    let http = client_from("127.0.0.1");
    let r = http
        .get(s.url(&callback))
        .header("host", &authority)
        .header("cookie", format!("__burrow_state={state}"))
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), StatusCode::FOUND);
    let session = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let page = |cookie: String| {
        http.get(s.url("/ws"))
            .header("host", &authority)
            .header("accept", "application/json")
            .header("cookie", cookie)
            .send()
    };
    assert_ne!(page(session.clone()).await.expect("get").status(), 401);

    // An open WebSocket with that session.
    let mut req = format!("ws://{authority}/ws")
        .into_client_request()
        .expect("req");
    req.headers_mut()
        .insert("cookie", session.parse().expect("cookie"));
    req.headers_mut().insert(
        "origin",
        format!("http://{authority}").parse().expect("origin"),
    );
    let stream = tokio::net::TcpStream::connect(s.addr).await.expect("tcp");
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream)
        .await
        .expect("websocket");
    ws.send(Message::text("hi")).await.expect("send");
    let echo = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    assert!(matches!(echo, Ok(Some(Ok(_)))), "{echo:?}");

    let r = s
        .http
        .post(s.url("/api/v1/auth/logout-all"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("logout-all");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let (status, _) = s
        .call(reqwest::Method::GET, "/api/v1/auth/me", &admin, None)
        .await
        .expect("me");
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the API token is revoked");
    let started = std::time::Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(m)) if m.is_close() => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the WebSocket is still open after 5 s");
    assert!(started.elapsed() < Duration::from_secs(5));
    let r = page(session).await.expect("get");
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the tunnel session is revoked"
    );

    // Signing in again works (tokens of the revocation's own second are revoked too).
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let fresh = s.admin_token().await.expect("login");
        let (status, _) = s
            .call(reqwest::Method::GET, "/api/v1/auth/me", &fresh, None)
            .await
            .expect("me");
        if status == StatusCode::OK {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a fresh login never worked"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Item 1 behind a proxy: with the proxy in `trusted_proxies`, logins are throttled per client
/// it forwards for (`X-Forwarded-For`), so one attacker does not lock out everyone behind the
/// proxy; from an untrusted peer the header changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_logins_are_throttled_per_forwarded_client() {
    let s = TestStack::start_configured(Backend::Sqlite, |c| {
        c.trusted_proxies = vec!["127.0.0.5".parse().expect("ip")];
    })
    .await
    .expect("stack");
    let url = s.url("/api/v1/auth/login");
    let login = |http: &reqwest::Client, email: &str, xff: &str, pw: &str| {
        http.post(url.clone())
            .header("x-forwarded-for", xff)
            .json(&json!({"email": email, "password": pw}))
            .send()
    };
    let proxy = client_from("127.0.0.5");
    for _ in 0..30 {
        let r = login(&proxy, ADMIN_EMAIL, "198.51.100.1, 203.0.113.9", "wrong");
        assert_eq!(r.await.expect("login").status(), StatusCode::UNAUTHORIZED);
    }
    // Refused from the 31st on (see the test above for the refill on a loaded machine).
    let mut status = login(&proxy, ADMIN_EMAIL, "203.0.113.9", "wrong")
        .await
        .expect("login")
        .status();
    for _ in 0..MAX_REFILLED {
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        status = login(&proxy, ADMIN_EMAIL, "203.0.113.9", "wrong")
            .await
            .expect("login")
            .status();
    }
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the attacker");
    let r = login(&proxy, ADMIN_EMAIL, "203.0.113.10", ADMIN_PASSWORD).await;
    assert_eq!(
        r.expect("login").status(),
        StatusCode::OK,
        "another client behind it"
    );

    // An untrusted peer cannot pick its own address with the header (an unknown account,
    // so that only the address counts).
    let untrusted = client_from("127.0.0.6");
    let nobody = "nobody@example.test";
    for i in 0..30 {
        let xff = if i % 2 == 0 { "192.0.2.1" } else { "192.0.2.2" };
        let r = login(&untrusted, nobody, xff, "wrong").await;
        assert_eq!(r.expect("login").status(), StatusCode::UNAUTHORIZED);
    }
    let mut status = StatusCode::UNAUTHORIZED;
    for _ in 0..=MAX_REFILLED {
        status = login(&untrusted, nobody, "192.0.2.3", "wrong")
            .await
            .expect("login")
            .status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
    }
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}
