//! Edge auth: who reaches a `require_auth` tunnel, the browser login handoff through the API
//! host, and what never reaches the device. The local service counts every request it gets.

mod common;

use common::device::http_service;
use common::*;
use http::header::COOKIE;
use http::{Request, StatusCode};

const JSON: &str = "application/json";
const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

#[tokio::test]
async fn nobody_unallowed_reaches_the_device() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel("priv", "http", true, vec![]).await;
    w.tunnel("narrow", "http", true, vec![w.owner.0]).await;
    w.dialer.set("t-priv", Dest::Tcp(svc.addr));
    w.dialer.set("t-narrow", Dest::Tcp(svc.addr));

    // No credentials: API client 401 JSON, browser 302 to the API host with a return path.
    let req = get("priv.localhost", "/x")
        .header("accept", JSON)
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("www-authenticate"));
    assert_eq!(json_body(resp).await["code"], "unauthorized");
    let req = get("priv.localhost", "/page?a=1")
        .header("accept", HTML)
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let (state, attrs) = cookie_pair(&resp, "__burrow_state");
    assert!(
        attrs.contains("HttpOnly") && attrs.contains("Path=/;"),
        "{attrs}"
    );
    let state = state.strip_prefix("__burrow_state=").unwrap();
    assert_eq!(
        location(&resp),
        format!(
            "http://localhost:9/edge/authorize?host=priv.localhost&return=%2Fpage%3Fa%3D1&state={state}"
        )
    );

    let bearer = |t: &str| format!("Bearer {t}");
    let other_key = burrow_api::JwtKeys::new(
        b"another-key-another-key-another!",
        chrono::Duration::minutes(5),
    );
    let forged = other_key
        .issue(w.member.0, &w.member.1, chrono::Utc::now())
        .unwrap();
    let expired = w
        .jwt
        .issue(
            w.member.0,
            &w.member.1,
            chrono::Utc::now() - chrono::Duration::hours(2),
        )
        .unwrap();
    let cases = [
        (
            "priv.localhost",
            bearer(&w.token(&w.outsider)),
            StatusCode::FORBIDDEN,
            "non-member",
        ),
        (
            "narrow.localhost",
            bearer(&w.token(&w.member)),
            StatusCode::FORBIDDEN,
            "not in allowed_user_ids",
        ),
        (
            "priv.localhost",
            bearer(&forged),
            StatusCode::UNAUTHORIZED,
            "forged JWT",
        ),
        (
            "priv.localhost",
            bearer(&expired),
            StatusCode::UNAUTHORIZED,
            "expired JWT",
        ),
        (
            "priv.localhost",
            "Bearer not-a-jwt".to_string(),
            StatusCode::UNAUTHORIZED,
            "garbage",
        ),
    ];
    for (host, auth, status, what) in cases {
        let req = get(host, "/headers")
            .header("accept", JSON)
            .header("authorization", auth)
            .body(empty())
            .unwrap();
        let resp = send(w.addr, req).await;
        assert_eq!(resp.status(), status, "{what}");
    }
    // A session cookie forged for the host does not work either.
    let req = get("priv.localhost", "/headers")
        .header("accept", JSON)
        .header(
            COOKIE,
            format!("__burrow_session=v1.{}.99999999999.AAAA", w.member.0),
        )
        .body(empty())
        .unwrap();
    assert_eq!(send(w.addr, req).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(svc.hits(), 0, "nothing reached the device");

    // An allowed user does; the device learns who, and never sees the token.
    let req = get("narrow.localhost", "/headers")
        .header("accept", JSON)
        .header("authorization", bearer(&w.token(&w.owner)))
        .header("x-burrow-user-id", "999")
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = json_body(resp).await["headers"].clone();
    assert_eq!(h["x-burrow-user-id"], w.owner.0.to_string());
    assert_eq!(h["x-burrow-user-email"], w.owner.1);
    assert!(h.get("authorization").is_none(), "bearer forwarded: {h}");
    assert_eq!(svc.hits(), 1);
}

#[tokio::test]
async fn browser_login_handoff_sets_a_host_only_cookie() {
    let w = world().await;
    let svc = http_service(false).await;
    w.tunnel("priv", "http", true, vec![]).await;
    w.tunnel("priv2", "http", true, vec![]).await;
    w.dialer.set("t-priv", Dest::Tcp(svc.addr));
    w.dialer.set("t-priv2", Dest::Tcp(svc.addr));

    // Not logged in on the API host: authorize sends the browser to the login page.
    let resp = send(
        w.addr,
        get(
            "localhost:9",
            &format!("/edge/authorize?host=priv.localhost&return=%2Fheaders&state={STATE}"),
        )
        .body(empty())
        .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(
        location(&resp),
        format!("http://localhost:9/login?next=%2Fedge%2Fauthorize%3Fhost%3Dpriv.localhost%26return%3D%252Fheaders%26state%3D{STATE}")
    );

    // The UI, holding the user's JWT, opens the edge-login session on the API host.
    let req = Request::post("/edge/session")
        .header("host", "localhost:9")
        .header("authorization", format!("Bearer {}", w.token(&w.member)))
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (login_cookie, attrs) = cookie_pair(&resp, "__burrow_edge_login");
    assert!(
        attrs.contains("Path=/edge") && attrs.contains("HttpOnly"),
        "{attrs}"
    );

    let req = get(
        "localhost:9",
        &format!("/edge/authorize?host=priv.localhost&return=%2Fheaders&state={STATE}"),
    )
    .header(COOKIE, &login_cookie)
    .body(empty())
    .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let to = location(&resp);
    let callback = to
        .strip_prefix("http://priv.localhost")
        .expect("back to the tunnel host")
        .to_string();
    assert!(callback.starts_with("/__burrow/callback?code="), "{to}");

    let resp = send(
        w.addr,
        get("priv.localhost", &callback)
            .header(COOKIE, state_cookie())
            .body(empty())
            .unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    assert_eq!(location(&resp), "/headers");
    let (session, attrs) = cookie_pair(&resp, "__burrow_session");
    for want in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attrs.contains(want), "{attrs}");
    }
    assert!(
        !attrs.to_ascii_lowercase().contains("domain"),
        "host-only: {attrs}"
    );
    assert!(!attrs.contains("Secure"), "http config: {attrs}");

    // The code is single use.
    let req = get("priv.localhost", &callback)
        .header("accept", JSON)
        .header(COOKIE, state_cookie())
        .body(empty())
        .unwrap();
    assert_eq!(send(w.addr, req).await.status(), StatusCode::BAD_REQUEST);

    // The cookie opens this host; the device sees the user but not the edge's cookie.
    let req = get("priv.localhost", "/headers")
        .header(COOKIE, format!("app=2; {session}"))
        .body(empty())
        .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = json_body(resp).await["headers"].clone();
    assert_eq!(h["cookie"], "app=2");
    assert_eq!(h["x-burrow-user-id"], w.member.0.to_string());
    assert_eq!(svc.hits(), 1);

    // ...and not another tunnel host.
    let req = get("priv2.localhost", "/headers")
        .header("accept", JSON)
        .header(COOKIE, &session)
        .body(empty())
        .unwrap();
    assert_eq!(send(w.addr, req).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(svc.hits(), 1);

    // The UI's JSON variant of authorize.
    let req = Request::post(format!(
        "/edge/authorize?host=priv2.localhost&return=%2F&state={STATE}"
    ))
    .header("host", "localhost:9")
    .header("authorization", format!("Bearer {}", w.token(&w.member)))
    .body(empty())
    .unwrap();
    let resp = send(w.addr, req).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let url = json_body(resp).await["redirect"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        url.starts_with("http://priv2.localhost/__burrow/callback?code="),
        "{url}"
    );

    // A non-member gets no code.
    let req = Request::post(format!(
        "/edge/authorize?host=priv.localhost&return=%2F&state={STATE}"
    ))
    .header("host", "localhost:9")
    .header("authorization", format!("Bearer {}", w.token(&w.outsider)))
    .body(empty())
    .unwrap();
    assert_eq!(send(w.addr, req).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn no_open_redirects() {
    let w = world().await;
    w.tunnel("priv", "http", true, vec![]).await;
    let token = w.token(&w.member);
    for query in [
        "host=priv.localhost&return=https%3A%2F%2Fevil.com",
        "host=priv.localhost&return=%2F%2Fevil.com",
        "host=priv.localhost&return=%2F%5Cevil.com",
        "host=priv.localhost&return=evil.com",
        "host=evil.com&return=%2F",
        "host=localhost&return=%2F",
        "return=%2F",
    ] {
        let query = format!("{query}&state={STATE}");
        let req = Request::post(format!("/edge/authorize?{query}"))
            .header("host", "localhost:9")
            .header("authorization", format!("Bearer {token}"))
            .body(empty())
            .unwrap();
        let resp = send(w.addr, req).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{query}");
        let req = get("localhost:9", &format!("/edge/authorize?{query}"))
            .body(empty())
            .unwrap();
        assert_eq!(
            send(w.addr, req).await.status(),
            StatusCode::BAD_REQUEST,
            "GET {query}"
        );
    }
    // The callback checks `return` too (before spending the code).
    let req = Request::post(format!(
        "/edge/authorize?host=priv.localhost&return=%2F&state={STATE}"
    ))
    .header("host", "localhost:9")
    .header("authorization", format!("Bearer {token}"))
    .body(empty())
    .unwrap();
    let url = json_body(send(w.addr, req).await).await["redirect"]
        .as_str()
        .unwrap()
        .to_string();
    let code = url
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    let evil = format!("/__burrow/callback?code={code}&return=%2F%2Fevil.com");
    let resp = send(w.addr, get("priv.localhost", &evil).body(empty()).unwrap()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // A code minted for priv does not work on another tunnel host.
    w.tunnel("other", "http", true, vec![]).await;
    let on_other = format!("/__burrow/callback?code={code}&return=%2F");
    let resp = send(
        w.addr,
        get("other.localhost", &on_other).body(empty()).unwrap(),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}
