//! Edge hardening (issue 19), through real sockets with the exact headers a browser sends:
//! tunnels isolated from each other, burrow's credentials never reaching a device, the login
//! handoff bound to the browser and to the tunnel's public origin, refused requests counted
//! rather than logged. See docs/security.md.

mod common;

use std::time::Duration;

use axum::routing::get as route_get;
use common::device::{http_service, ws_echo};
use common::*;
use http::header::{COOKIE, SET_COOKIE};
use http::{Request, StatusCode};
use http_body_util::Full;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const JSON: &str = "application/json";

/// Logs `user` into tunnel host `<label>.localhost` the way a browser does (state cookie,
/// code minted on the API host, callback) and answers the session cookie pair.
async fn session(w: &World, label: &str, user: &(i64, String)) -> String {
    let req = Request::post(format!(
        "/edge/authorize?host={label}.localhost&return=%2F&state={STATE}"
    ))
    .header("host", "localhost:9")
    .header("authorization", format!("Bearer {}", w.token(user)))
    .body(empty())
    .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let url = json_body(resp).await["redirect"]
        .as_str()
        .unwrap()
        .to_string();
    let callback = url
        .strip_prefix(&format!("http://{label}.localhost"))
        .unwrap()
        .to_string();
    let req = get(&format!("{label}.localhost"), &callback)
        .header(COOKIE, state_cookie())
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    cookie_pair(&resp, "__burrow_session").0
}

/// Item 4: on a public tunnel, a burrow JWT (valid or expired, any scheme, in `Basic`, in a
/// cookie) and burrow's cookies never reach the device; the app's own credentials do.
#[tokio::test]
async fn public_tunnel_device_never_sees_burrow_credentials() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel("pub", "http", false, vec![]).await;
    w.dialer.set("t-pub", Dest::Tcp(svc.addr));
    let jwt = w.token(&w.member);
    let expired = w
        .jwt
        .issue(
            w.member.0,
            &w.member.1,
            chrono::Utc::now() - chrono::Duration::hours(3),
        )
        .unwrap();
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x:{jwt}"));
    let req = get("pub.localhost", "/headers")
        .header("authorization", format!("Bearer {jwt}"))
        .header("authorization", format!("token {expired}"))
        .header("authorization", format!("Basic {basic}"))
        .header("authorization", "Bearer the-apps-own-token")
        .header(
            COOKIE,
            format!(
                "app=1; __burrow_session=s; __Host-burrow_session=s; __burrow_edge_login=l; \
                 __Host-burrow_edge_login=l; __burrow_state=t; token={jwt}"
            ),
        )
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = json_body(resp).await["headers"].clone();
    assert_eq!(h["authorization"], "Bearer the-apps-own-token", "{h}");
    assert_eq!(h["cookie"], "app=1", "{h}");
    assert!(!h.to_string().contains(&jwt), "{h}");
    assert!(h.get("x-burrow-user-id").is_none(), "public: nobody");
}

/// A device service that sets cookies: one for its whole registrable domain (`Domain=`), and
/// copies of every burrow cookie name.
async fn cookie_setting_service() -> std::net::SocketAddr {
    let app = axum::Router::new().route(
        "/set",
        route_get(|| async {
            let mut resp = http::Response::new(axum::body::Body::from("set"));
            let h = resp.headers_mut();
            for c in [
                "wide=1; Domain=localhost; Path=/",
                "wider=1; Path=/; domain=.localhost; HttpOnly",
                "own=1; Path=/",
                "__burrow_session=planted; Path=/",
                "__Host-burrow_session=planted; Path=/; Secure",
                "__burrow_edge_login=planted; Domain=localhost; Path=/edge",
                "__burrow_state=planted; Path=/",
            ] {
                h.append(SET_COOKIE, http::HeaderValue::from_static(c));
            }
            resp
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Item 3: a device's `Set-Cookie` stays on its own tunnel host (no `Domain` reaches the
/// browser, so the cookie is host-only: RFC 6265 §5.3 step 6) and can never be one of
/// burrow's own cookies.
#[tokio::test]
async fn device_cookies_are_confined_to_their_tunnel_host() {
    let w = world().await;
    let addr = cookie_setting_service().await;
    w.tunnel("setter", "http", false, vec![]).await;
    w.dialer.set("t-setter", Dest::Tcp(addr));
    let resp = send(
        w.addr,
        get("setter.localhost", "/set").body(empty()).unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let set: Vec<String> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        set,
        [
            "wide=1; Path=/",
            "wider=1; Path=/; HttpOnly",
            "own=1; Path=/"
        ],
        "{set:?}"
    );
}

/// Item 2: a page on tunnel A (same site as B) cannot use B's session cookie for a WebSocket
/// or a state-changing request to B; B's own pages, bearer clients and safe reads can.
#[tokio::test]
async fn cross_origin_requests_cannot_ride_the_session_cookie() {
    let w = world().await;
    let svc = http_service(false).await;
    let (ws_addr, ws_hits) = ws_echo().await;
    w.tunnel("b", "http", true, vec![]).await;
    w.tunnel("bws", "ws", true, vec![]).await;
    w.dialer.set("t-b", Dest::Tcp(svc.addr));
    w.dialer.set("t-bws", Dest::Tcp(ws_addr));
    let cookie_b = session(&w, "b", &w.member).await;
    let cookie_bws = session(&w, "bws", &w.member).await;

    // WebSocket handshakes as Chromium sends them from a page on tunnel A, then from B itself.
    let ws = |origin: &'static str, site: &'static str| {
        let mut req = "ws://bws.localhost/socket".into_client_request().unwrap();
        let h = req.headers_mut();
        h.insert("origin", origin.parse().unwrap());
        h.insert("sec-fetch-site", site.parse().unwrap());
        h.insert("sec-fetch-mode", "websocket".parse().unwrap());
        h.insert(COOKIE, cookie_bws.parse().unwrap());
        async move {
            let stream = TcpStream::connect(w.addr).await.unwrap();
            tokio_tungstenite::client_async(req, stream).await
        }
    };
    match ws("http://a.localhost", "same-site").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), StatusCode::FORBIDDEN)
        }
        other => panic!(
            "cross-origin WebSocket not refused: {:?}",
            other.map(|r| r.1)
        ),
    }
    assert_eq!(ws_hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    let (_socket, resp) = ws("http://bws.localhost", "same-origin").await.unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);

    // A form post from A (Chromium: Origin + Sec-Fetch-Site), and one where only fetch
    // metadata tells (an older proxy dropped Origin).
    let post = |pairs: Vec<(&'static str, String)>| {
        let mut b = Request::post("/echo")
            .header("host", "b.localhost")
            .header("content-type", "application/x-www-form-urlencoded");
        for (k, v) in pairs {
            b = b.header(k, v);
        }
        send(
            w.addr,
            b.body(Full::new(bytes::Bytes::from("x=1"))).unwrap(),
        )
    };
    let before = svc.hits();
    let resp = post(vec![
        ("origin", "http://a.localhost".into()),
        ("sec-fetch-site", "same-site".into()),
        ("accept", JSON.into()),
        ("cookie", cookie_b.clone()),
    ])
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(json_body(resp).await["code"], "cross_origin");
    let resp = post(vec![
        ("sec-fetch-site", "same-site".into()),
        ("cookie", cookie_b.clone()),
    ])
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = post(vec![
        ("origin", "null".into()),
        ("cookie", cookie_b.clone()),
    ])
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(svc.hits(), before, "nothing reached the device");

    // B's own page, a non-browser client, a bearer client from anywhere, and a safe read.
    let resp = post(vec![
        ("origin", "http://b.localhost".into()),
        ("sec-fetch-site", "same-origin".into()),
        ("cookie", cookie_b.clone()),
    ])
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = post(vec![("cookie", cookie_b.clone())]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = post(vec![
        ("origin", "http://a.localhost".into()),
        ("authorization", format!("Bearer {}", w.token(&w.member))),
    ])
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let req = get("b.localhost", "/headers")
        .header("origin", "http://a.localhost")
        .header("sec-fetch-site", "same-site")
        .header(COOKIE, &cookie_b)
        .body(empty())
        .unwrap();
    assert_eq!(send(w.addr, req).await.status(), StatusCode::OK);
}

/// Item 5: `/edge/authorize` sends the browser only to the tunnel's public origin.
#[tokio::test]
async fn authorize_redirects_only_to_the_public_origin() {
    let w = world_with(burrow_edge::EdgeConfig {
        public_port: Some(8700),
        ..test_config()
    })
    .await;
    w.tunnel("priv", "http", true, vec![]).await;
    let token = w.token(&w.member);
    let authorize = |host: &'static str| {
        let req = Request::post(format!(
            "/edge/authorize?host={host}&return=%2F&state={STATE}"
        ))
        .header("host", "localhost:9")
        .header("accept", JSON)
        .header("authorization", format!("Bearer {token}"))
        .body(empty())
        .unwrap();
        send(w.addr, req)
    };
    let resp = authorize("priv.localhost:6666").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "another port");
    for host in ["priv.localhost:8700", "priv.localhost"] {
        let resp = authorize(host).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let url = json_body(resp).await["redirect"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            url.starts_with("http://priv.localhost:8700/__burrow/callback?code="),
            "{url}"
        );
    }
}

/// Item 5: a code minted in another browser (an attacker's own login, handed to the victim as
/// a link) is refused at the callback: it is bound to the state cookie of the browser that
/// started the login.
#[tokio::test]
async fn a_login_code_only_works_in_the_browser_that_started_the_login() {
    let w = world().await;
    w.tunnel("priv", "http", true, vec![]).await;
    let attacker_state = "attackers-own-state-0123456789";
    let req = Request::post(format!(
        "/edge/authorize?host=priv.localhost&return=%2F&state={attacker_state}"
    ))
    .header("host", "localhost:9")
    .header("authorization", format!("Bearer {}", w.token(&w.outsider)))
    .body(empty())
    .unwrap();
    // The outsider is no member of priv: use the member as the "attacker's account" instead.
    assert_eq!(send(w.addr, req).await.status(), StatusCode::FORBIDDEN);
    let req = Request::post(format!(
        "/edge/authorize?host=priv.localhost&return=%2F&state={attacker_state}"
    ))
    .header("host", "localhost:9")
    .header("authorization", format!("Bearer {}", w.token(&w.member)))
    .body(empty())
    .unwrap();
    let url = json_body(send(w.addr, req).await).await["redirect"]
        .as_str()
        .unwrap()
        .to_string();
    let callback = url
        .strip_prefix("http://priv.localhost")
        .unwrap()
        .to_string();
    // The victim's browser: its own state cookie, or none at all.
    for cookie in [Some(state_cookie()), None] {
        let mut req = get("priv.localhost", &callback).header("accept", JSON);
        if let Some(c) = &cookie {
            req = req.header(COOKIE, c);
        }
        let resp = send(w.addr, req.body(empty()).unwrap()).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{cookie:?}");
        assert!(resp.headers().get(SET_COOKIE).is_none());
    }
    // Without a state, authorize mints nothing.
    let req = Request::post("/edge/authorize?host=priv.localhost&return=%2F")
        .header("host", "localhost:9")
        .header("authorization", format!("Bearer {}", w.token(&w.member)))
        .body(empty())
        .unwrap();
    assert_eq!(send(w.addr, req).await.status(), StatusCode::BAD_REQUEST);
}

/// Item 5: one user minting codes in a loop (more than the old server-wide cap of 10,000)
/// never blocks another user's login.
#[tokio::test]
async fn login_codes_are_capped_per_user() {
    let w = world().await;
    w.tunnel("priv", "http", true, vec![]).await;
    let stream = TcpStream::connect(w.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let owner = w.token(&w.owner);
    for i in 0..10_050 {
        let req = Request::post(format!(
            "/edge/authorize?host=priv.localhost&return=%2F&state={STATE}"
        ))
        .header("host", "localhost:9")
        .header("authorization", format!("Bearer {owner}"))
        .body(empty())
        .unwrap();
        sender.ready().await.unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "mint {i}");
        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
    }
    let cookie = session(&w, "priv", &w.member).await;
    assert!(cookie.starts_with("__burrow_session="));
}

/// Item 6: refused requests are counted (usage, `refused_requests`) but write no access-log
/// row each; a request that reaches the device still does.
#[tokio::test]
async fn refused_requests_are_counted_not_logged() {
    let w = world().await;
    let svc = http_service(false).await;
    let id = w.tunnel("priv", "http", true, vec![]).await;
    w.dialer.set("t-priv", Dest::Tcp(svc.addr));
    for _ in 0..50 {
        let req = get("priv.localhost", "/x")
            .header("accept", JSON)
            .body(empty())
            .unwrap();
        assert_eq!(send(w.addr, req).await.status(), StatusCode::UNAUTHORIZED);
    }
    let req = get("priv.localhost", "/__burrow/callback?code=nope")
        .body(empty())
        .unwrap();
    assert_eq!(send(w.addr, req).await.status(), StatusCode::BAD_REQUEST);
    let req = get("priv.localhost", "/x")
        .header("authorization", format!("Bearer {}", w.token(&w.member)))
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let _ = body_string(resp).await;
    eventually("refused counted", || w.edge.refused_requests() == 51).await;
    // The authorized request's entry is recorded when its body ends: flush until it is in.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let log = loop {
        w.edge.flush().await;
        let log = w.access_log(id);
        if !log.is_empty() || tokio::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(log.len(), 1, "only the request that reached the device");
    assert_eq!(log[0].status, 200);
    let tunnel = w.tunnel_row(id);
    assert_eq!(tunnel.total_requests, 52, "all counted");
}

/// Item 7: an open WebSocket is closed within 5 s once its user may no longer use the tunnel
/// (dropped from `allowed_user_ids`), and one on a public tunnel once the tunnel turns
/// private; a connection still allowed stays open.
#[tokio::test]
async fn open_websockets_close_when_access_is_taken_away() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let w = world().await;
    let (ws_addr, _) = ws_echo().await;
    let private = w.tunnel("live", "ws", true, vec![]).await;
    let public = w.tunnel("open", "ws", false, vec![]).await;
    w.dialer.set("t-live", Dest::Tcp(ws_addr));
    w.dialer.set("t-open", Dest::Tcp(ws_addr));
    let connect = |host: &'static str, user: Option<&(i64, String)>| {
        let mut req = format!("ws://{host}/socket").into_client_request().unwrap();
        if let Some(u) = user {
            let bearer = format!("Bearer {}", w.token(u));
            req.headers_mut()
                .insert("authorization", bearer.parse().unwrap());
        }
        async move {
            let stream = TcpStream::connect(w.addr).await.unwrap();
            tokio_tungstenite::client_async(req, stream)
                .await
                .unwrap()
                .0
        }
    };
    let mut member = connect("live.localhost", Some(&w.member)).await;
    let mut owner = connect("live.localhost", Some(&w.owner)).await;
    let mut anonymous = connect("open.localhost", None).await;
    for ws in [&mut member, &mut owner, &mut anonymous] {
        ws.send(Message::text("hi")).await.unwrap();
        let echo = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
        assert!(matches!(echo, Ok(Some(Ok(_)))), "{echo:?}");
    }
    w.patch_tunnel(private, |t| t.allowed_user_ids = vec![w.owner.0]);
    w.patch_tunnel(public, |t| t.require_auth = true);
    let started = std::time::Instant::now();
    for (what, ws) in [("member", &mut member), ("anonymous", &mut anonymous)] {
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
        assert!(closed.is_ok(), "{what}'s socket still open after 5 s");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    owner.send(Message::text("still here")).await.unwrap();
    let echo = tokio::time::timeout(Duration::from_secs(5), owner.next()).await;
    assert!(matches!(echo, Ok(Some(Ok(_)))), "the owner stays: {echo:?}");
}

/// Item 7: a response still streaming (SSE) is cut within 5 s once its user loses access.
#[tokio::test]
async fn streaming_responses_end_when_access_is_taken_away() {
    use http_body_util::BodyExt;
    let w = world().await;
    let svc = http_service(false).await;
    let id = w.tunnel("stream", "http", true, vec![]).await;
    w.dialer.set("t-stream", Dest::Tcp(svc.addr));
    let req = get("stream.localhost", "/sse")
        .header("authorization", format!("Bearer {}", w.token(&w.member)))
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    svc.sse.send("data: one\n\n".into()).unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("first event in time");
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    w.patch_tunnel(id, |t| t.allowed_user_ids = vec![w.owner.0]);
    let started = std::time::Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match body.frame().await {
                None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream is still open after 5 s");
    assert!(started.elapsed() < Duration::from_secs(5));
}
