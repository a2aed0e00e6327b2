//! The login-form fallback on the API host, and device apps that use their own bearer tokens
//! behind a `require_auth` tunnel.

mod common;

use common::device::http_service;
use common::*;
use http::header::COOKIE;
use http::{Request, StatusCode};

#[tokio::test]
async fn app_bearer_tokens_pass_with_a_session_cookie() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel("app", "http", true, vec![]).await;
    w.dialer.set("t-app", Dest::Tcp(svc.addr));
    let req = Request::post(format!(
        "/edge/authorize?host=app.localhost&return=%2F&state={STATE}"
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
        .strip_prefix("http://app.localhost")
        .unwrap()
        .to_string();
    let resp = send(
        w.addr,
        get("app.localhost", &callback)
            .header(COOKIE, state_cookie())
            .body(empty())
            .unwrap(),
    )
    .await;
    let (session, _) = cookie_pair(&resp, "__burrow_session");
    let req = get("app.localhost", "/headers")
        .header(COOKIE, &session)
        .header("authorization", "Bearer the-apps-own-token")
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = json_body(resp).await["headers"].clone();
    assert_eq!(h["authorization"], "Bearer the-apps-own-token");
    assert_eq!(h["x-burrow-user-id"], w.member.0.to_string());
}

#[tokio::test]
async fn built_in_login_form() {
    let w = world().await;
    w.tunnel("priv", "http", true, vec![]).await;
    let hash = burrow_api::hash_password("correct horse").unwrap();
    w.add_user("form@x.test", &hash, true);
    let next =
        format!("%2Fedge%2Fauthorize%3Fhost%3Dpriv.localhost%26return%3D%252F%26state%3D{STATE}");
    let resp = send(
        w.addr,
        get("localhost:9", &format!("/edge/login?next={next}"))
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(body_string(resp).await.contains("name=\"password\""));
    let resp = send(
        w.addr,
        get("localhost:9", "/edge/login?next=https%3A%2F%2Fevil.com")
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let post = |form: String, origin: &'static str| {
        let req = Request::post("/edge/login")
            .header("host", "localhost:9")
            .header("origin", origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(http_body_util::Full::new(bytes::Bytes::from(form)))
            .unwrap();
        send(w.addr, req)
    };
    let good = format!("email=Form%40x.test&password=correct+horse&next={next}");
    assert_eq!(
        post(good.clone(), "http://evil.com").await.status(),
        StatusCode::FORBIDDEN
    );
    let bad = format!("email=form%40x.test&password=wrong&next={next}");
    assert_eq!(
        post(bad, "http://localhost:9").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let resp = post(good, "http://localhost:9").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&resp),
        format!("/edge/authorize?host=priv.localhost&return=%2F&state={STATE}")
    );
    let (login_cookie, _) = cookie_pair(&resp, "__burrow_edge_login");
    let req = get("localhost:9", &location(&resp))
        .header(COOKIE, login_cookie)
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert!(location(&resp).starts_with("http://priv.localhost/__burrow/callback?code="));
}

#[tokio::test]
async fn https_deployments_use_a_host_prefixed_secure_cookie() {
    let w = world_with(burrow_edge::EdgeConfig {
        https: true,
        login_url: "https://localhost/login".into(),
        ..test_config()
    })
    .await;
    let svc = http_service(false).await;
    w.tunnel("sec", "http", true, vec![]).await;
    w.dialer.set("t-sec", Dest::Tcp(svc.addr));
    let req = get("sec.localhost", "/x")
        .header("accept", "text/html")
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    let (state, attrs) = cookie_pair(&resp, "__Host-burrow_state");
    assert!(
        attrs.contains("; Secure") && attrs.contains("Path=/;"),
        "{attrs}"
    );
    let state = state
        .strip_prefix("__Host-burrow_state=")
        .unwrap()
        .to_string();
    assert_eq!(
        location(&resp),
        format!("https://localhost/edge/authorize?host=sec.localhost&return=%2Fx&state={state}")
    );
    let req = Request::post(format!(
        "/edge/authorize?host=sec.localhost:443&return=%2Fheaders&state={state}"
    ))
    .header("host", "localhost")
    .header("authorization", format!("Bearer {}", w.token(&w.member)))
    .body(empty())
    .unwrap();
    let url = json_body(send(w.addr, req).await).await["redirect"]
        .as_str()
        .unwrap()
        .to_string();
    let callback = url
        .strip_prefix("https://sec.localhost")
        .expect("https, default port dropped");
    let resp = send(
        w.addr,
        get("sec.localhost", callback)
            .header(COOKIE, format!("__Host-burrow_state={state}"))
            .body(empty())
            .unwrap(),
    )
    .await;
    let (session, attrs) = cookie_pair(&resp, "__Host-burrow_session");
    assert!(
        attrs.contains("; Secure") && attrs.contains("Path=/;"),
        "{attrs}"
    );
    let req = get("sec.localhost", "/headers")
        .header(COOKIE, &session)
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = json_body(resp).await["headers"].clone();
    assert_eq!(h["x-forwarded-proto"], "https");
    assert!(h.get("cookie").is_none(), "{h}");
    // The plain-HTTP cookie name is not accepted on an https deployment.
    let plain = session.replacen("__Host-burrow_session", "__burrow_session", 1);
    let req = get("sec.localhost", "/headers")
        .header("accept", "application/json")
        .header(COOKIE, plain)
        .body(empty())
        .unwrap();
    assert_eq!(send(w.addr, req).await.status(), StatusCode::UNAUTHORIZED);
}
