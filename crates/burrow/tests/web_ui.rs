//! The web UI in a real browser: a real server (test kit), a real local HTTP service, and
//! `ui-tests/run.mjs` driving headless Chromium through playwright-core — sign in, register a
//! device, enroll and run a real agent with the command the page shows, create, copy, toggle
//! and delete a tunnel, open its public URL, watch the request count rise, and the API's
//! error cases (422, 409, expired session). Screenshots land in `target/ui-screenshots/`.
//!
//! Needs `node`, `/usr/bin/chromium` and `ui-tests/node_modules` (`scripts/test` installs
//! them). When one is missing the test fails and says so: a skipped browser test would pass
//! CI without proving anything.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use axum::response::Html;
use burrow::testkit::{Backend, TestStack, ADMIN_EMAIL, ADMIN_PASSWORD};

const SERVICE_TEXT: &str = "Robot dashboard: all systems nominal";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Fails with instructions when a tool the browser test needs is missing.
fn require_tools(ui: &Path) {
    let node = std::process::Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is not installed: the web UI browser test needs Node.js (apt-get install -y nodejs npm; scripts/test does this)"
    );
    assert!(
        chromium().exists(),
        "{} is missing: install Debian's chromium (apt-get install -y chromium; scripts/test does this), or set CHROMIUM",
        chromium().display()
    );
    assert!(
        ui.join("node_modules/playwright-core").exists(),
        "ui-tests/node_modules is missing: run `npm ci` in {} (scripts/test does this)",
        ui.display()
    );
}

/// The device's local service: every path answers a recognisable HTML page.
async fn local_service() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind local service");
    let addr = listener.local_addr().expect("local addr");
    let page = format!(
        "<!doctype html><html><head><title>Robot</title></head><body><h1>{SERVICE_TEXT}</h1></body></html>"
    );
    let app = axum::Router::new().fallback(move || {
        let page = page.clone();
        async move { Html(page) }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// The admin's JWT, signed with the server's own key but expired an hour ago: what a tab
/// left open past the session's lifetime still holds.
async fn expired_token(stack: &TestStack) -> String {
    let token = stack.admin_token().await.expect("admin login");
    let (status, me) = stack
        .call(reqwest::Method::GET, "/api/v1/auth/me", &token, None)
        .await
        .expect("me");
    assert_eq!(status, 200, "GET /auth/me: {me}");
    let id = me["id"].as_i64().expect("user id");
    let secret =
        burrow::keys::load_or_create(&stack.data_dir, "jwt.key", 32).expect("server's jwt.key");
    let keys = burrow_api::JwtKeys::new(&secret, chrono::Duration::minutes(60));
    let expired = keys
        .issue(
            id,
            ADMIN_EMAIL,
            chrono::Utc::now() - chrono::Duration::hours(2),
        )
        .expect("issue");
    let (status, _) = stack
        .call(reqwest::Method::GET, "/api/v1/auth/me", &expired, None)
        .await
        .expect("me with expired token");
    assert_eq!(status, 401, "the expired token is refused by the API");
    expired
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_in_headless_chromium() {
    let root = repo_root();
    let ui = root.join("ui-tests");
    require_tools(&ui);

    let service = local_service().await;
    let stack = TestStack::start(Backend::Sqlite).await.expect("stack");
    let expired = expired_token(&stack).await;
    let agent = tempfile::tempdir().expect("tempdir");
    let shots = root.join("target/ui-screenshots");

    let child = tokio::process::Command::new("node")
        .arg(ui.join("run.mjs"))
        .current_dir(&ui)
        // Chromium resolves *.localhost to loopback; the UI's origin and the tunnels' hosts
        // then share the name the edge's login redirect uses.
        .env(
            "BURROW_URL",
            format!("http://localhost:{}", stack.addr.port()),
        )
        .env("BURROW_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("BURROW_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("BURROW_BIN", env!("CARGO_BIN_EXE_burrow"))
        .env("SERVICE_PORT", service.port().to_string())
        .env("SERVICE_TEXT", SERVICE_TEXT)
        .env("EXPIRED_TOKEN", &expired)
        .env("AGENT_DIR", agent.path().join("agent"))
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("the browser test finished within 5 minutes")
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "ui-tests/run.mjs failed ({}); screenshots in {}\n{stdout}\n{stderr}",
        out.status,
        shots.display()
    );
    assert!(
        stdout.contains(" passed, 0 failed"),
        "no summary line: {stdout}"
    );
    stack.running.shutdown().await.expect("shutdown");
}
