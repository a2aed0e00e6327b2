//! Share links (issue 15): the API (create, list, revoke, bad input), and in headless Chromium
//! (`ui-tests/share.mjs`) a link opening the device's page without an account, its WebSocket
//! closed within 5 s of the revocation and a reload refused, `max_uses` counting visitors,
//! and an expired link showing a clear page. The device side is a real enrolled agent.
//!
//! Needs `node`, `/usr/bin/chromium` and `ui-tests/node_modules` (`scripts/test` installs
//! them); fails, saying so, when one is missing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::response::Html;
use axum::routing::get;
use burrow::testkit::{serve_local, Backend, TestStack};
use burrow_api::sharing::{new_secret, LINK_PREFIX};
use reqwest::Method;
use serde_json::{json, Value};

const DSN: &str = "SHARE-1";

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui-tests")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// The device's service: a page and a WebSocket echo.
async fn device(name: &'static str) -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route(
            "/",
            get(move || async move { Html(format!("<h1>{name} page</h1>")) }),
        )
        .route(
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
    serve_local(app).await.expect("device service")
}

fn tunnels() -> String {
    format!("/api/v1/reverse-tunnels/devices/{DSN}/reverse-tunnels")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_link_opens_one_tunnel_until_revoked_in_chromium() {
    let ui = ui_dir();
    assert!(
        std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "node is missing (apt-get install -y nodejs npm; scripts/test does this)"
    );
    assert!(
        chromium().exists(),
        "{} is missing (apt-get install -y chromium; scripts/test does this), or set CHROMIUM",
        chromium().display()
    );
    assert!(
        ui.join("node_modules/playwright-core").exists(),
        "run `npm ci` in {} (scripts/test does this)",
        ui.display()
    );

    let s = TestStack::start_configured(Backend::Sqlite, |c| {
        c.base_domain = "burrow.test".into();
        c.share_link_max_minutes = 24 * 60;
    })
    .await
    .expect("stack");
    let admin = s.admin_token().await.expect("login");
    let agent = s.start_agent(&admin, DSN).await.expect("agent");
    let mut made = Vec::new();
    for name in ["B", "A"] {
        let svc = device(name).await;
        let (status, t) = s
            .call(
                Method::POST,
                &tunnels(),
                &admin,
                Some(&json!({"name": name, "local_port": svc.port(), "require_auth": true})),
            )
            .await
            .expect("create tunnel");
        assert_eq!(status, 201, "{t}");
        let id = t["id"].as_i64().expect("id");
        s.wait_agent_connected(&admin, DSN, id, Duration::from_secs(10))
            .await
            .expect("agent connected");
        made.push(t);
    }
    let (b, a) = (&made[0], &made[1]);
    let b_id = b["id"].as_i64().expect("id");
    let links = format!("{}/{b_id}/share-links", tunnels());
    let port = s.addr.port();
    let origin = |t: &Value| format!("http://{}:{port}", t["public_url"].as_str().expect("host"));

    // Create: the URL once, on B's host, with a bs_ secret; never listed.
    let (status, link) = s
        .call(
            Method::POST,
            &links,
            &admin,
            Some(&json!({"expires_in_minutes": 120, "note": "for ACME", "methods": ["GET"]})),
        )
        .await
        .expect("create link");
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().expect("url").to_string();
    assert!(
        url.starts_with(&format!("{}/__burrow/share/bs_", origin(b))),
        "{url}"
    );
    assert_eq!(link["uses"], 0);
    assert_eq!(link["note"], "for ACME");
    let (status, once) = s
        .call(
            Method::POST,
            &links,
            &admin,
            Some(&json!({"expires_in_minutes": 60, "max_uses": 1})),
        )
        .await
        .expect("create link");
    assert_eq!(status, 201, "{once}");
    let (status, list) = s
        .call(Method::GET, &links, &admin, None)
        .await
        .expect("list");
    assert_eq!(status, 200);
    assert_eq!(list["total"], 2);
    let secret = url.rsplit('/').next().expect("secret");
    assert!(
        !list.to_string().contains(secret),
        "the secret is never listed"
    );
    assert!(list["items"][0].get("url").is_none());

    // Bad input: clear 4xx JSON, never a 500.
    for body in [
        json!({"expires_in_minutes": 0}),
        json!({"expires_in_minutes": -5}),
        json!({"expires_in_minutes": 24 * 60 + 1}),
        json!({"expires_in_minutes": 10, "max_uses": 0}),
        json!({"expires_in_minutes": 10, "max_uses": -1}),
        json!({"expires_in_minutes": 10, "methods": ["TRACE"]}),
        json!({"expires_in_minutes": 10, "note": "x".repeat(501)}),
        json!({"expires_in_minutes": "soon"}),
        json!({}),
    ] {
        let (status, err) = s
            .call(Method::POST, &links, &admin, Some(&body))
            .await
            .expect("bad create");
        assert_eq!(status, 422, "{body} → {err}");
        assert!(err["detail"].is_string());
    }
    let (status, _) = s
        .call(Method::DELETE, &format!("{links}/999999"), &admin, None)
        .await
        .expect("bad revoke");
    assert_eq!(status, 404);

    // Outside a browser: a forged or other tunnel's link is refused and no session is given.
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let a_host = a["public_url"].as_str().expect("host");
    let wrong_tunnel = raw
        .get(format!("http://{}/__burrow/share/{secret}", s.addr))
        .header("host", a_host)
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong_tunnel.status(), 403);
    assert!(wrong_tunnel.headers().get("set-cookie").is_none());
    // A POST with the session is refused: the link allows GET only.
    let opened = raw
        .get(format!("http://{}/__burrow/share/{secret}", s.addr))
        .header("host", b["public_url"].as_str().expect("host"))
        .send()
        .await
        .expect("request");
    assert_eq!(opened.status(), 302);
    let cookie = opened
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("share cookie")
        .to_string();
    assert!(cookie.starts_with("__burrow_share="), "{cookie}");
    let origin_b = origin(b);
    let post = raw
        .post(format!("http://{}/", s.addr))
        .header(
            "host",
            format!("{}:{port}", b["public_url"].as_str().expect("host")),
        )
        .header("cookie", &cookie)
        .header("origin", &origin_b)
        .header("accept", "application/json")
        .send()
        .await
        .expect("request");
    assert_eq!(post.status(), 403);
    let err: Value = post.json().await.expect("json");
    assert_eq!(
        err["code"], "forbidden",
        "the method, not the origin: {err}"
    );
    assert!(
        err["detail"].as_str().unwrap_or("").contains("method"),
        "{err}"
    );

    // An expired link (written straight to the store: the API makes none shorter than 1 min).
    let expired = new_secret(LINK_PREFIX);
    s.running
        .store
        .create_share_link(burrow_store::NewShareLink {
            reverse_tunnel_id: b_id,
            prefix: expired.prefix.clone(),
            secret_hash: expired.hash.clone(),
            note: None,
            methods: vec![],
            max_uses: None,
            expires_at: chrono::Utc::now() - chrono::Duration::minutes(1),
            created_by: None,
        })
        .await
        .expect("expired link");
    let expired_url = format!("{}/__burrow/share/{}", origin(b), expired.secret);

    let link_id = link["id"].as_i64().expect("id");
    let child = tokio::process::Command::new("node")
        .arg(ui.join("share.mjs"))
        .current_dir(&ui)
        .env("A_URL", origin(a))
        .env("B_URL", origin(b))
        .env("LINK_URL", &url)
        .env("ONCE_URL", once["url"].as_str().expect("url"))
        .env("EXPIRED_URL", &expired_url)
        .env("REVOKE_URL", s.url(&format!("{links}/{link_id}")))
        .env("TOKEN", &admin)
        .env("CHROMIUM", chromium())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("browser run within 2 minutes")
        .expect("node output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "share.mjs failed\n{stdout}\n{stderr}");
    let r: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| panic!("no RESULT line\n{stdout}\n{stderr}"));

    // The link opens B's page at B's address, with no account.
    assert_eq!(r["opened_status"], 200, "{r}");
    assert_eq!(r["opened_url"], format!("{}/", origin(b)), "{r}");
    assert_eq!(r["opened_text"], "B page", "{r}");
    assert_eq!(r["document_cookie"], "", "the session is HttpOnly: {r}");
    assert_eq!(r["ws"], "echo", "{r}");
    // It opens no other tunnel: A sends the visitor to sign in on the API host.
    assert_ne!(r["other_tunnel_host"], format!("{a_host}:{port}"), "{r}");
    assert!(
        !r["other_tunnel_text"]
            .as_str()
            .unwrap_or("")
            .contains("A page"),
        "{r}"
    );
    // Revoked: the WebSocket is closed within 5 s, a reload is refused with a clear page.
    assert_eq!(r["revoke_status"], 200, "{r}");
    assert_eq!(r["ws_closed"], true, "{r}");
    assert!(
        r["ws_closed_ms"].as_i64().unwrap_or(i64::MAX) <= 5000,
        "{r}"
    );
    assert_eq!(r["reload_status"], 410, "{r}");
    assert!(
        r["reload_text"].as_str().unwrap_or("").contains("revoked"),
        "{r}"
    );
    // max_uses 1: one visitor, as often as it likes; a second visitor is refused.
    assert_eq!(r["once_first"], 200, "{r}");
    assert_eq!(r["once_first_again"], 200, "{r}");
    assert_eq!(r["once_second"], 403, "{r}");
    assert!(
        r["once_second_text"]
            .as_str()
            .unwrap_or("")
            .contains("visitors"),
        "{r}"
    );
    // Expired: a clear page.
    assert_eq!(r["expired_status"], 410, "{r}");
    assert!(
        r["expired_text"].as_str().unwrap_or("").contains("expired"),
        "{r}"
    );

    let (_, list) = s
        .call(Method::GET, &links, &admin, None)
        .await
        .expect("list");
    let once_id = once["id"].as_i64().expect("id");
    let once_row = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|l| l["id"] == once_id)
        .expect("once listed")
        .clone();
    assert_eq!(once_row["uses"], 1, "{list}");

    // The audit log has the creates and the revoke.
    let (status, log) = s
        .call(
            Method::GET,
            &format!("/api/v1/projects/{}/sharing-audit", agent.project_id),
            &admin,
            None,
        )
        .await
        .expect("audit");
    assert_eq!(status, 200);
    let actions: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        vec![
            "share_link.revoke",
            "share_link.create",
            "share_link.create"
        ],
        "{log}"
    );
    drop(agent);
}
