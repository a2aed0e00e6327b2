//! Single sign-on in headless Chromium through a real OpenID provider (panva's oidc-provider,
//! `ui-tests/oidc-provider.mjs`), driven by `ui-tests/sso.mjs`: the web UI's SSO button signs
//! the browser in (the page shows the email), the same browser then opens a `require_auth`
//! tunnel without a second sign-in, and a fresh browser signs in to that tunnel through the
//! edge's login form and the provider. With password sign-in off, the UI shows only the button.
//!
//! Needs `node`, `/usr/bin/chromium` and `ui-tests/node_modules` (`scripts/test` installs
//! them); fails, saying so, when one is missing.

use std::process::Stdio;
use std::time::Duration;

use axum::response::Html;
use axum::routing::get;
use burrow::testkit::oidc_provider::{ui_tests_dir, TestProvider, VERIFIED};
use burrow::testkit::{serve_local, Backend, TestStack};
use serde_json::{json, Value};

fn chromium() -> std::path::PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), Into::into)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sso_signs_in_the_web_ui_and_the_edge_in_chromium() {
    let ui = ui_tests_dir();
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
    let provider = TestProvider::start().await.expect("provider");
    let s = TestStack::start_configured(Backend::Sqlite, |c| {
        c.base_domain = "burrow.test".into();
        provider.configure(c);
    })
    .await
    .expect("stack");
    let port = s.addr.port();
    let api = format!("http://burrow.test:{port}");
    provider
        .register(&format!("{api}/api/v1/auth/oidc/callback"))
        .await
        .expect("register");
    provider.sign_in_as(VERIFIED.0).await.expect("account");

    // The SSO user exists already (matched by email) and is a member of B's project.
    let admin = s.admin_token().await.expect("admin");
    let (user_id, _) = s.user(VERIFIED.1).await.expect("user");
    let (pid, _) = s
        .project_with_device(&admin, "SSOB1")
        .await
        .expect("device");
    let (status, body) = s
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/projects/{pid}/members"),
            &admin,
            Some(&json!({ "user_id": user_id })),
        )
        .await
        .expect("member");
    assert_eq!(status, 201, "{body}");
    let svc =
        serve_local(axum::Router::new().route("/page", get(|| async { Html("<h1>B page</h1>") })))
            .await
            .expect("device service");
    let (status, b) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/reverse-tunnels/devices/SSOB1/reverse-tunnels",
            &admin,
            Some(&json!({"name": "svc", "local_port": svc.port(), "require_auth": true})),
        )
        .await
        .expect("tunnel");
    assert_eq!(status, 201, "{b}");
    let _peer = s
        .connect_destination(b["tunnel_id"].as_str().expect("tunnel_id"), svc)
        .await
        .expect("device connected");
    let b_url = format!("http://{}:{port}", b["public_url"].as_str().expect("host"));

    let sso_only = TestStack::start_configured(Backend::Sqlite, |c| {
        provider.configure(c);
        c.password_login = false;
    })
    .await
    .expect("SSO-only stack");

    let child = tokio::process::Command::new("node")
        .arg(ui.join("sso.mjs"))
        .current_dir(&ui)
        .env("API", &api)
        .env("B_URL", &b_url)
        .env("EMAIL", VERIFIED.1)
        .env("SSO_ONLY_API", sso_only.url(""))
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
    let result: Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_else(|| panic!("no RESULT line\n{stdout}\n{stderr}"));
    let logs = provider.logs();
    assert!(result.get("error").is_none(), "{result}\n{stderr}\n{logs}");

    assert_eq!(result["button"], "Sign in with SSO", "{result}");
    assert_eq!(result["password_form"], true, "{result}");
    // Signed in to the UI, on the page asked for first, with no code left in the address.
    assert_eq!(result["ui_email"], VERIFIED.1, "{result}");
    assert_eq!(result["ui_url"], format!("{api}/devices"), "{result}");
    assert_eq!(result["ui_heading"], "Devices", "{result}");
    // Signed in to the edge by the same sign-in.
    assert_eq!(result["edge_same_browser"], "B page", "{result}");
    // The edge's own login form, through the provider.
    assert_eq!(result["edge_form_url"], "/edge/login", "{result}");
    assert_eq!(result["edge_fresh_browser"], "B page", "{result}");
    // Password sign-in off: the web UI hides its form.
    assert_eq!(result["sso_only_password_form"], false, "{result}");
}
