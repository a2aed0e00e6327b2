//! The tunnel detail page's charts in headless Chromium, drawn from real traffic: requests
//! of a known shape go through a tunnel, the edge writes its rollups, and
//! `ui-tests/charts.mjs` checks the summary counts, that each chart is drawn, the range
//! switch, the limits form (422 and save), the project overview (busiest tunnels and devices,
//! usage per user × device, with the real counts), and that no console error occurred. The
//! screenshots are kept as `target/ui-screenshots/traffic-charts.png` and
//! `traffic-overview.png`.
//!
//! Needs what `web_ui.rs` needs (node, /usr/bin/chromium, ui-tests/node_modules).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use burrow::testkit::{Backend, TestStack, ADMIN_EMAIL, ADMIN_PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detail_page_draws_traffic_charts_from_real_traffic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ui = root.join("ui-tests");
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        ui.join("node_modules/playwright-core").exists() && chromium.exists(),
        "needs ui-tests/node_modules (npm ci) and chromium: scripts/test installs them"
    );
    let svc = burrow::testkit::serve_local(
        axum::Router::new()
            .route("/", get(|| async { "hello" }))
            .route("/gone", get(|| async { (StatusCode::NOT_FOUND, "gone") }))
            .route(
                "/fail",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "") }),
            ),
    )
    .await
    .expect("service");
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("admin");
    let (t, _peer) = s
        .public_tunnel(&admin, "CHART1", svc)
        .await
        .expect("tunnel");
    let host = t["public_url"].as_str().expect("host").to_string();
    let (mut requests, mut errors) = (0, 0);
    for (path, n, error) in [("/", 25, false), ("/gone", 4, true), ("/fail", 2, true)] {
        for _ in 0..n {
            let r = s
                .http
                .get(s.url(path))
                .header("host", &host)
                .send()
                .await
                .expect("send");
            r.bytes().await.expect("body");
            requests += 1;
            errors += usize::from(error);
        }
    }
    // A second tunnel of the device that requires a login, used by the admin: the project
    // overview shows both tunnels, the device's total and the usage per user × device.
    let (status, private) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/reverse-tunnels/devices/CHART1/reverse-tunnels",
            &admin,
            Some(
                &serde_json::json!({"name": "private", "local_port": svc.port(),
                                     "require_auth": true}),
            ),
        )
        .await
        .expect("second tunnel");
    assert_eq!(status, 201, "{private}");
    let _peer2 = s
        .connect_destination(private["tunnel_id"].as_str().expect("tunnel_id"), svc)
        .await
        .expect("device side");
    let private_host = private["public_url"].as_str().expect("host").to_string();
    let admin_requests = 7;
    for _ in 0..admin_requests {
        let r = s
            .http
            .get(s.url("/"))
            .header("host", &private_host)
            .bearer_auth(&admin)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
        r.bytes().await.expect("body");
    }
    s.running.ops.edge.flush_all().await;
    let (_, device) = s
        .call(reqwest::Method::GET, "/api/v1/devices/CHART1", &admin, None)
        .await
        .expect("device");

    let shots = root.join("target/ui-screenshots");
    let child = tokio::process::Command::new("node")
        .arg(ui.join("charts.mjs"))
        .current_dir(&ui)
        .env("BURROW_URL", format!("http://localhost:{}", s.addr.port()))
        .env("BURROW_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("BURROW_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env(
            "TUNNEL_PATH",
            format!("/reverse-tunnels/CHART1/{}", t["id"]),
        )
        .env("EXPECT_REQUESTS", requests.to_string())
        .env("EXPECT_ERRORS", errors.to_string())
        .env("PROJECT_ID", device["project_id"].to_string())
        .env("EXPECT_USER_REQUESTS", admin_requests.to_string())
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("the chart test finished within 3 minutes")
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success() && stdout.contains(" passed, 0 failed"),
        "ui-tests/charts.mjs failed; screenshots in {}\n{stdout}\n{stderr}",
        shots.display()
    );
    assert!(shots.join("traffic-charts.png").exists(), "screenshot kept");
    assert!(
        shots.join("traffic-overview.png").exists(),
        "overview screenshot kept"
    );
}
