//! Single sign-on against a real OpenID provider (`ui-tests/oidc-provider.mjs`: panva's
//! oidc-provider), over HTTP without a browser: a small cookie jar walks the redirects
//! (burrow → provider → burrow) the way a browser would, and the tests tamper with the
//! callback. A real server (test kit) on SQLite; the provider on an ephemeral port.
//!
//! Needs `node` and `ui-tests/node_modules` (`scripts/test` installs them).

use burrow::testkit::oidc_provider::{TestProvider, NEWCOMER, OUTSIDER, UNVERIFIED, VERIFIED};
use burrow::testkit::{Backend, TestStack};
use reqwest::{StatusCode, Url};
use serde_json::{json, Value};

#[path = "oidc/walker.rs"]
mod walker;

use walker::{Walker, CALLBACK};

struct World {
    stack: TestStack,
    provider: TestProvider,
    /// Where browsers reach burrow (its redirect URI's origin).
    origin: String,
    admin: String,
}

async fn world() -> World {
    world_on(Backend::Sqlite).await
}

async fn world_on(backend: Backend) -> World {
    let provider = TestProvider::start().await.expect("provider");
    let stack = TestStack::start_configured(backend, |c| provider.configure(c))
        .await
        .expect("stack");
    let origin = format!("http://localhost:{}", stack.addr.port());
    provider
        .register(&format!("{origin}{CALLBACK}"))
        .await
        .expect("register the client");
    let admin = stack.admin_token().await.expect("admin");
    World {
        stack,
        provider,
        origin,
        admin,
    }
}

impl World {
    fn url(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.origin)).expect("url")
    }

    /// A new browser signing in as `account` up to the provider's redirect back.
    async fn flow(&self, account: &str, next: &str) -> (Walker, Url) {
        self.provider.sign_in_as(account).await.expect("account");
        let mut w = Walker::new();
        let start = self.url(&format!("/api/v1/auth/oidc/start?next={next}"));
        let callback = w.walk_to_callback(start).await;
        (w, callback)
    }

    async fn user_exists(&self, email: &str) -> bool {
        let (status, users) = self
            .stack
            .call(reqwest::Method::GET, "/api/v1/users", &self.admin, None)
            .await
            .expect("users");
        assert_eq!(status, 200, "{users}");
        let list = users
            .as_array()
            .or_else(|| users["items"].as_array())
            .cloned()
            .unwrap_or_default();
        list.iter().any(|u| u["email"] == email)
    }

    /// `POST /api/v1/auth/oidc/exchange` from `browser` (with its cookies for burrow).
    async fn exchange(&self, browser: &Walker, code: &str) -> (StatusCode, Value) {
        let url = self.url("/api/v1/auth/oidc/exchange");
        browser.post_json(url, &json!({ "code": code })).await
    }
}

fn sso_code(location: &Url) -> String {
    location
        .fragment()
        .and_then(|f| f.strip_prefix("sso="))
        .expect("#sso=<code>")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_creates_the_user_once_and_the_code_works_once() {
    sign_in_flow(Backend::Sqlite).await;
}

/// The same on PostgreSQL (cluster mode: the handoff codes in the shared table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_on_postgres() {
    sign_in_flow(Backend::Postgres).await;
}

async fn sign_in_flow(backend: Backend) {
    let w = world_on(backend).await;
    let (status, options) = w
        .stack
        .call(reqwest::Method::GET, "/api/v1/auth/config", "", None)
        .await
        .expect("config");
    assert_eq!(status, 200);
    assert_eq!(
        options,
        json!({"password_login": true, "oidc": {"enabled": true, "label": "Sign in with SSO"}})
    );
    assert!(!w.user_exists(VERIFIED.1).await);

    let (mut browser, callback) = w.flow(VERIFIED.0, "/devices").await;
    let step = browser.get(&callback).await;
    assert_eq!(step.status, 303, "{}\n{}", step.body, w.provider.logs());
    let location = step.location.expect("location");
    assert_eq!(location.path(), "/devices", "{location}");
    let code = sso_code(&location);
    assert!(
        location.query().is_none(),
        "no secret in the query: {location}"
    );
    // Signed in to the edge as well, and the login state is spent.
    assert!(
        step.set_cookies
            .iter()
            .any(|c| c.starts_with("__burrow_edge_login=v1.") && c.contains("HttpOnly")),
        "{:?}",
        step.set_cookies
    );
    assert!(
        step.set_cookies
            .iter()
            .any(|c| c.starts_with("__burrow_oidc=;") && c.contains("Max-Age=0")),
        "{:?}",
        step.set_cookies
    );

    assert!(
        step.set_cookies
            .iter()
            .any(|c| c.starts_with("__burrow_sso_bind=") && c.contains("HttpOnly")),
        "{:?}",
        step.set_cookies
    );
    assert!(w.user_exists(VERIFIED.1).await, "created at the callback");
    // The code works only in the browser it was handed to (and is spent by any attempt).
    let (status, body) = w.exchange(&Walker::new(), &code).await;
    assert_eq!(status, 400, "another browser: {body}");
    let (status, body) = w.exchange(&browser, &code).await;
    assert_eq!(status, 400, "burnt: {body}");

    // A second sign-in finds the same user; its code works once.
    let (mut browser, callback) = w.flow(VERIFIED.0, "/").await;
    let step = browser.get(&callback).await;
    assert_eq!(step.status, 303, "{}", step.body);
    let code = sso_code(&step.location.expect("location"));
    let (status, body) = w.exchange(&browser, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    let token = body["access_token"].as_str().expect("token");
    let (status, me) = w
        .stack
        .call(reqwest::Method::GET, "/api/v1/auth/me", token, None)
        .await
        .expect("me");
    assert_eq!(status, 200);
    assert_eq!(me["email"], VERIFIED.1);
    assert_eq!(me["is_admin"], false);
    let (status, again) = w.exchange(&browser, &code).await;
    assert_eq!(status, 400, "single use: {again}");
    let replay = browser.get(&callback).await;
    assert_eq!(
        replay.status, 400,
        "the state cookie is spent: {}",
        replay.body
    );
    // The created account has no password that works.
    let (status, _) = w
        .stack
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            "",
            Some(&json!({"email": VERIFIED.1, "password": "any-password-at-all"})),
        )
        .await
        .expect("login");
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_callbacks_are_refused_and_create_nobody() {
    let w = world().await;

    // A state other than the one this browser started with (login CSRF).
    let (mut browser, callback) = w.flow(NEWCOMER.0, "/").await;
    let mut forged = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "forged-state".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let step = browser.get(&forged).await;
    assert_eq!(step.status, 400, "{}", step.body);
    assert!(step.body.contains("state"), "{}", step.body);
    assert!(
        !w.user_exists(NEWCOMER.1).await,
        "wrong state created a user"
    );

    // The right callback in a browser that never started a sign-in (no cookie).
    let (_, callback) = w.flow(NEWCOMER.0, "/").await;
    let step = Walker::new().get(&callback).await;
    assert_eq!(step.status, 400, "{}", step.body);
    assert!(
        step.body.contains("no sign-in in progress"),
        "{}",
        step.body
    );
    assert!(!w.user_exists(NEWCOMER.1).await, "no cookie created a user");

    // The provider's refusal.
    let (mut browser, callback) = w.flow(NEWCOMER.0, "/").await;
    let state: String = callback
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let refused = w.url(&format!("{CALLBACK}?error=access_denied&state={state}"));
    let step = browser.get(&refused).await;
    assert_eq!(step.status, 400, "{}", step.body);
    assert!(step.body.contains("access_denied"), "{}", step.body);

    // An answer claiming another issuer (RFC 9207 mix-up).
    let (mut browser, callback) = w.flow(NEWCOMER.0, "/").await;
    let mut other = callback.clone();
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .filter(|(k, _)| k != "iss")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .chain([("iss".to_string(), "https://evil.example".to_string())])
        .collect();
    other.query_pairs_mut().clear().extend_pairs(pairs);
    let step = browser.get(&other).await;
    assert_eq!(step.status, 403, "{}", step.body);
    assert!(!w.user_exists(NEWCOMER.1).await);

    // A code from another sign-in injected into this browser's callback (its own state):
    // the code was issued for another PKCE challenge, so the provider refuses the exchange.
    let (mut browser, own) = w.flow(NEWCOMER.0, "/").await;
    let (_, theirs) = w.flow(NEWCOMER.0, "/").await;
    let param = |u: &Url, name: &str| {
        u.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .expect("param")
    };
    let mut injected = own.clone();
    injected.query_pairs_mut().clear().extend_pairs([
        ("code", param(&theirs, "code")),
        ("state", param(&own, "state")),
    ]);
    let step = browser.get(&injected).await;
    assert_eq!(step.status, 400, "{}", step.body);
    assert!(step.body.contains("invalid_grant"), "{}", step.body);
    assert!(
        !w.user_exists(NEWCOMER.1).await,
        "an injected code created a user"
    );

    // Unverified email; a domain that is not allowed.
    for (account, email, why) in [
        (UNVERIFIED.0, UNVERIFIED.1, "not verified"),
        (OUTSIDER.0, OUTSIDER.1, "domain"),
    ] {
        let (mut browser, callback) = w.flow(account, "/").await;
        let step = browser.get(&callback).await;
        assert_eq!(step.status, 403, "{account}: {}", step.body);
        assert!(step.body.contains(why), "{account}: {}", step.body);
        assert!(!w.user_exists(email).await, "{account} was created");
        assert!(
            !step.set_cookies.iter().any(|c| c.contains("edge_login")),
            "{account} got an edge cookie"
        );
    }

    // After all that, the newcomer signs in for real: the code sticks to its own browser.
    let (mut browser, callback) = w.flow(NEWCOMER.0, "/").await;
    let step = browser.get(&callback).await;
    assert_eq!(step.status, 303, "{}", step.body);
    assert!(w.user_exists(NEWCOMER.1).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_login_can_be_turned_off() {
    let provider = TestProvider::start().await.expect("provider");
    let s = TestStack::start_configured(Backend::Sqlite, |c| {
        provider.configure(c);
        c.password_login = false;
        c.oidc_button_label = Some("Sign in with Example ID".into());
    })
    .await
    .expect("stack");
    let resp = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"email": "admin@test.local", "password": "admin-password-1"}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("password sign-in is disabled")),
        "{body}"
    );
    let options: Value = s
        .http
        .get(s.url("/api/v1/auth/config"))
        .send()
        .await
        .expect("config")
        .json()
        .await
        .expect("json");
    assert_eq!(
        options,
        json!({"password_login": false,
            "oidc": {"enabled": true, "label": "Sign in with Example ID"}})
    );
    // The edge's form: the SSO button carries `next`; no password fields; posts refused.
    let next = "/edge/authorize?host=x.localhost&return=%2F&state=abcdefghijklmnopq";
    let page = s
        .http
        .get(s.url("/edge/login"))
        .query(&[("next", next)])
        .send()
        .await
        .expect("form")
        .text()
        .await
        .expect("html");
    assert!(!page.contains("type=\"password\""), "{page}");
    assert!(page.contains("Sign in with Example ID"), "{page}");
    assert!(
        page.contains("/api/v1/auth/oidc/start?next=%2Fedge%2Fauthorize%3Fhost%3Dx.localhost"),
        "{page}"
    );
    let resp = s
        .http
        .post(s.url("/edge/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email=admin%40test.local&password=admin-password-1&next={}",
            next.replace('/', "%2F")
                .replace('?', "%3F")
                .replace('&', "%26")
                .replace('=', "%3D")
        ))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 403);

    // Invitations then need SSO: signing up with a password is refused, nothing created.
    let secret = burrow::keys::load_or_create(&s.data_dir, "jwt.key", 32).expect("jwt.key");
    let admin = burrow_api::JwtKeys::new(&secret, chrono::Duration::minutes(60))
        .issue(1, "admin@test.local", chrono::Utc::now())
        .expect("admin token");
    let (_, project) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/projects",
            &admin,
            Some(&json!({"name": "sso"})),
        )
        .await
        .expect("project");
    let (status, inv) = s
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/projects/{}/invitations", project["id"]),
            &admin,
            Some(&json!({"email": "fresh@example.com", "role": "member"})),
        )
        .await
        .expect("invite");
    assert_eq!(status, 201, "{inv}");
    let resp = s
        .http
        .post(s.url("/api/v1/invitations/signup"))
        .json(&json!({"token": inv["token"], "password": "a-long-password"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(resp.status(), 403);
    let (_, users) = s
        .call(reqwest::Method::GET, "/api/v1/users", &admin, None)
        .await
        .expect("users");
    assert!(!users.to_string().contains("fresh@example.com"), "{users}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_or_mismatched_provider_answers_503() {
    // Configured as `localhost`, the provider calls itself 127.0.0.1: discovery refuses the
    // mismatched issuer. A port where nothing listens: the server starts all the same.
    let provider = TestProvider::start().await.expect("provider");
    let port = Url::parse(&provider.issuer)
        .expect("issuer")
        .port()
        .expect("port");
    provider
        .register("http://localhost:1/api/v1/auth/oidc/callback")
        .await
        .expect("register");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    for issuer in [
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{closed_port}"),
    ] {
        let s = TestStack::start_configured(Backend::Sqlite, |c| {
            provider.configure(c);
            c.oidc_issuer = Some(issuer.clone());
        })
        .await
        .expect("the server starts without its provider");
        let resp = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .get(s.url("/api/v1/auth/oidc/start"))
            .send()
            .await
            .expect("start");
        assert_eq!(resp.status(), 503, "{issuer}");
        let body: Value = resp.json().await.expect("json");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("cannot be reached")),
            "{body}"
        );
        // Password sign-in is unaffected.
        assert!(s.admin_token().await.is_ok());
    }
}
