//! Edge hardening in headless Chromium (issue 19, items 2, 3 and 5): a real server whose
//! tunnels live under `burrow.test`, two devices behind real tunnels (A public, the attacker's;
//! B `require_auth`), and `ui-tests/edge.mjs` driving the browser: the login handoff, a login
//! link minted in an attacker's browser opened in the victim's, a device's domain-wide cookie,
//! a WebSocket and a post from A's page to B.
//!
//! Needs `node`, `/usr/bin/chromium` and `ui-tests/node_modules` (`scripts/test` installs
//! them); fails, saying so, when one is missing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::response::{Html, IntoResponse};
use axum::routing::{get, post};
use burrow::testkit::{serve_local, Backend, TestStack, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::{json, Value};

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui-tests")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

#[derive(Default)]
struct Seen {
    ws_opened: AtomicUsize,
    submits: AtomicUsize,
}

/// Device B: a page, the cookies it receives, a WebSocket echo and a state-changing POST.
async fn device_b(seen: Arc<Seen>) -> std::net::SocketAddr {
    let (ws_seen, post_seen) = (seen.clone(), seen);
    let app = axum::Router::new()
        .route("/page", get(|| async { Html("<h1>B page</h1>") }))
        .route(
            "/cookies",
            get(|headers: axum::http::HeaderMap| async move {
                let cookie = headers
                    .get("cookie")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .replace(['<', '>', '&'], "_");
                Html(format!("<pre>{cookie}</pre>"))
            }),
        )
        .route(
            "/ws",
            get(move |ws: WebSocketUpgrade| {
                let seen = ws_seen.clone();
                async move {
                    ws.on_upgrade(move |mut socket| async move {
                        seen.ws_opened.fetch_add(1, Ordering::SeqCst);
                        while let Some(Ok(m)) = socket.recv().await {
                            if socket.send(m).await.is_err() {
                                return;
                            }
                        }
                    })
                }
            }),
        )
        .route(
            "/submit",
            post(move || {
                let seen = post_seen.clone();
                async move {
                    seen.submits.fetch_add(1, Ordering::SeqCst);
                    "done"
                }
            }),
        );
    serve_local(app).await.expect("device B")
}

/// Device A (the attacker's public tunnel): a page, and a cookie for the whole domain.
async fn device_a() -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route("/", get(|| async { Html("<h1>A</h1>") }))
        .route(
            "/set",
            get(|| async {
                (
                    [(
                        axum::http::header::SET_COOKIE,
                        "planted=1; Domain=burrow.test; Path=/",
                    )],
                    Html("<h1>set</h1>"),
                )
                    .into_response()
            }),
        );
    serve_local(app).await.expect("device A")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnels_are_isolated_and_logins_bound_in_chromium() {
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
    })
    .await
    .expect("stack");
    let admin = s.admin_token().await.expect("login");
    let seen = Arc::new(Seen::default());
    let (a, _peer_a) = s
        .public_tunnel(&admin, "ATTACKER1", device_a().await)
        .await
        .expect("tunnel A");
    let svc_b = device_b(seen.clone()).await;
    s.project_with_device(&admin, "VICTIM1")
        .await
        .expect("device B");
    let (status, b) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/reverse-tunnels/devices/VICTIM1/reverse-tunnels",
            &admin,
            Some(&json!({"name": "svc", "local_port": svc_b.port(), "require_auth": true})),
        )
        .await
        .expect("tunnel B");
    assert_eq!(status, 201, "{b}");
    let _peer_b = s
        .connect_destination(b["tunnel_id"].as_str().expect("tunnel_id"), svc_b)
        .await
        .expect("device B connected");
    let port = s.addr.port();
    let url = |t: &Value| format!("http://{}:{port}", t["public_url"].as_str().expect("host"));

    let child = tokio::process::Command::new("node")
        .arg(ui.join("edge.mjs"))
        .current_dir(&ui)
        .env("A_URL", url(&a))
        .env("B_URL", url(&b))
        .env("EMAIL", ADMIN_EMAIL)
        .env("PASSWORD", ADMIN_PASSWORD)
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
    assert!(out.status.success(), "edge.mjs failed\n{stdout}\n{stderr}");
    let result: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| panic!("no RESULT line\n{stdout}\n{stderr}"));

    // Item 5: the handoff works in a browser (state cookie, form, code, callback).
    assert_eq!(result["logged_in"], true, "{result}");
    // The edge's own pages wear the web UI's look (accent #1f5f8b, the burrow mark).
    assert_eq!(
        result["login_look"],
        json!({"button": "rgb(31, 95, 139)", "mark": true}),
        "{result}"
    );
    assert_eq!(result["own_ws"], "open", "B's own page: {result}");
    // Item 5: a callback link minted in the attacker's browser does not sign the victim in.
    assert_eq!(result["csrf_link"], true, "{result}");
    assert_eq!(result["csrf_status"], 400, "{result}");
    assert_eq!(result["csrf_victim_signed_in"], false, "{result}");
    // Item 3: A's domain-wide cookie stayed on A.
    assert!(
        result["a_cookies"]
            .as_str()
            .unwrap_or("")
            .contains("planted=1"),
        "{result}"
    );
    assert!(
        !result["b_saw_cookie"]
            .as_str()
            .unwrap_or("")
            .contains("planted"),
        "A's cookie reached B: {result}"
    );
    // Item 2: neither the WebSocket nor the post from A's page reached B's device.
    assert_ne!(result["cross_ws"], "open", "{result}");
    assert_eq!(
        seen.ws_opened.load(Ordering::SeqCst),
        1,
        "only B's own socket"
    );
    assert_eq!(
        seen.submits.load(Ordering::SeqCst),
        0,
        "the cross-site post"
    );
}
