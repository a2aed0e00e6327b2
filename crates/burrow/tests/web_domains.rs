//! A tunnel's Domains panel in headless Chromium: `ui-tests/domains.mjs` drives the real UI of
//! a real server (test kit) — adds a custom domain and reads the TXT and CNAME records the
//! page shows, copies them, sees the status badge and reason the API gives, a wildcard (422)
//! and a taken name (409) refused with the API's words, "Check now", and "Remove" after a
//! confirmation; leaving the page stops the panel's refreshes. At each checkpoint the script
//! waits while this side checks through the API: the records shown are exactly the API's,
//! the check made the domain due, and the removed domain is gone.
//!
//! Needs what `web_ui.rs` needs (node, /usr/bin/chromium, ui-tests/node_modules).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use burrow::testkit::{Backend, TestStack, ADMIN_EMAIL, ADMIN_PASSWORD};
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const DSN: &str = "DOMAINSUI1";
const HOST: &str = "shop.robots.example";

/// The tunnel's domains as the API lists them.
async fn domains(s: &TestStack, admin: &str, path: &str) -> Vec<Value> {
    let (status, list) = s
        .call(Method::GET, &format!("{path}/domains"), admin, None)
        .await
        .expect("list domains");
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().expect("items").clone()
}

/// Checks the server's state at the script's checkpoint `name`; panics when it is wrong.
async fn checkpoint(s: &TestStack, admin: &str, path: &str, name: &str, data: &Value) {
    let items = domains(s, admin, path).await;
    match name {
        "added" => {
            assert_eq!(items.len(), 1, "{items:?}");
            let d = &items[0];
            assert_eq!(d["hostname"], HOST);
            assert_eq!(data["hostname"], HOST);
            // What the page shows is exactly what the API answers.
            assert_eq!(data["txt_name"], d["verification"]["name"], "{data} {d}");
            assert_eq!(data["txt_value"], d["verification"]["value"], "{data} {d}");
            assert_eq!(data["cname_name"], d["target"]["name"], "{data} {d}");
            assert_eq!(data["cname_value"], d["target"]["value"], "{data} {d}");
            assert_eq!(data["txt_name"], format!("_burrow-challenge.{HOST}"));
            assert!(
                data["txt_value"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("burrow-verify=")),
                "{data}"
            );
        }
        "checked" => {
            let d = items.iter().find(|d| d["hostname"] == HOST).expect("kept");
            let next: DateTime<Utc> = d["next_check_at"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .expect("next_check_at");
            // Due at once, or checked already by the server's worker.
            assert!(
                next <= Utc::now() || !d["checked_at"].is_null(),
                "check now made the domain due: {d}"
            );
        }
        "removed" => {
            assert!(
                !items.iter().any(|d| d["hostname"] == data["hostname"]),
                "removed: {items:?}"
            );
            assert!(items.is_empty(), "{items:?}");
        }
        other => panic!("unknown checkpoint {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_panel_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ui = root.join("ui-tests");
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        ui.join("node_modules/playwright-core").exists() && chromium.exists(),
        "needs ui-tests/node_modules (npm ci) and chromium: scripts/test installs them"
    );
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("admin");
    s.project_with_device(&admin, DSN).await.expect("device");
    let tunnels = format!("/api/v1/reverse-tunnels/devices/{DSN}/reverse-tunnels");
    let (status, t) = s
        .call(
            Method::POST,
            &tunnels,
            &admin,
            Some(&json!({"name": "shop", "local_port": 8080})),
        )
        .await
        .expect("create tunnel");
    assert_eq!(status, 201, "{t}");
    let tid = t["id"].as_i64().expect("tunnel id");
    let path = format!("{tunnels}/{tid}");
    let shots = root.join("target/ui-screenshots");

    let mut child = tokio::process::Command::new("node")
        .arg(ui.join("domains.mjs"))
        .current_dir(&ui)
        .env("BURROW_URL", format!("http://localhost:{}", s.addr.port()))
        .env("BURROW_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("BURROW_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("TUNNEL_PAGE", format!("/reverse-tunnels/{DSN}/{tid}"))
        .env("HOSTNAME_TO_ADD", HOST)
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = child.stderr.take().expect("stderr");
    let errors = tokio::spawn(async move {
        let mut buf = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut buf).await;
        buf
    });

    let mut seen = Vec::new();
    let mut out = String::new();
    let run = async {
        while let Some(line) = lines.next_line().await.expect("read the script's output") {
            if let Some(rest) = line.strip_prefix("CHECK ") {
                let (name, data) = rest.split_once(' ').unwrap_or((rest, "{}"));
                println!("checking {name}");
                let data: Value = serde_json::from_str(data).expect("checkpoint data");
                checkpoint(&s, &admin, &path, name, &data).await;
                seen.push(name.to_string());
                stdin.write_all(b"ok\n").await.expect("answer the script");
                stdin.flush().await.expect("flush");
            } else {
                println!("{line}");
                out.push_str(&line);
                out.push('\n');
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("the domains browser test finished within 3 minutes");
    let status = child.wait().await.expect("node ran");
    let stderr = errors.await.unwrap_or_default();
    eprintln!("{stderr}");
    assert!(
        status.success() && out.contains(" passed, 0 failed"),
        "ui-tests/domains.mjs failed ({status}); screenshots in {}\n{out}\n{stderr}",
        shots.display()
    );
    assert_eq!(
        seen,
        ["added", "checked", "removed"],
        "every checkpoint was checked, in order"
    );
    // The domain added after leaving the page's checks is the only one left.
    let left = domains(&s, &admin, &path).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["hostname"], format!("again.{HOST}"));
    s.running.shutdown().await.expect("shutdown");
}
