//! Accounts in headless Chromium (issue 20): `ui-tests/accounts.mjs` drives the real UI of a
//! real server (test kit) — an admin invites a viewer from the members page, the invited
//! person signs up through the link in a fresh browser (and a user with an account signs in
//! from their link and accepts), creates and revokes a personal access
//! token, changes their password, and the admin disables, enables, resets and deletes the
//! account. At each checkpoint the script waits while this side checks the server's state
//! through the API: the role is exactly `viewer` and a viewer cannot create a tunnel, the
//! token works until it is revoked, which password signs in, and that a disabled or deleted
//! account cannot sign in.
//!
//! Needs what `web_ui.rs` needs (node, /usr/bin/chromium, ui-tests/node_modules).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use burrow::testkit::{Backend, TestStack, ADMIN_EMAIL, ADMIN_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const NEW_EMAIL: &str = "new@example.com";
const NEW_PASSWORD: &str = "invited-password-1";
const EXISTING_EMAIL: &str = "existing@example.com";
/// The password the test kit gives the users it creates.
const EXISTING_PASSWORD: &str = "user-password-1";
const CHANGED_PASSWORD: &str = "changed-password-2";
const RESET_PASSWORD: &str = "reset-password-3";
const DSN: &str = "ACCOUNTS1";

/// The status of a sign-in attempt.
async fn login_status(s: &TestStack, email: &str, password: &str) -> StatusCode {
    s.http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login request")
        .status()
}

/// (email, role) of every member of project `pid`.
async fn members_of(s: &TestStack, admin: &str, pid: i64) -> Vec<(String, String)> {
    let (status, members) = s
        .call(
            Method::GET,
            &format!("/api/v1/projects/{pid}/members"),
            admin,
            None,
        )
        .await
        .expect("members");
    assert_eq!(status, 200, "{members}");
    members
        .as_array()
        .expect("members list")
        .iter()
        .filter_map(|m| Some((m["email"].as_str()?.into(), m["role"].as_str()?.into())))
        .collect()
}

/// Checks the server's state at the script's checkpoint `name`; panics when it is wrong.
async fn checkpoint(s: &TestStack, admin: &str, name: &str, data: &Value) {
    match name {
        "invited" => {
            let pid = data["project_id"].as_i64().expect("project_id");
            let url = data["accept_url"].as_str().expect("accept_url");
            assert!(url.contains("/invite#token="), "accept_url {url}");
            let (status, invs) = s
                .call(
                    Method::GET,
                    &format!("/api/v1/projects/{pid}/invitations"),
                    admin,
                    None,
                )
                .await
                .expect("invitations");
            assert_eq!(status, 200, "{invs}");
            let pending = invs.as_array().or_else(|| invs["items"].as_array());
            let pending = pending.expect("a list of invitations");
            assert_eq!(pending.len(), 1, "one pending invitation: {invs}");
            assert_eq!(pending[0]["email"], NEW_EMAIL);
            assert_eq!(pending[0]["role"], "viewer");
            // A device in the project, for the viewer's tunnel attempt below.
            let (status, d) = s
                .call(
                    Method::POST,
                    &format!("/api/v1/projects/{pid}/devices"),
                    admin,
                    Some(&json!({"dsn": DSN, "name": "robot"})),
                )
                .await
                .expect("register device");
            assert_eq!(status, 201, "{d}");
        }
        "signed_up" => {
            let pid = data["project_id"].as_i64().expect("project_id");
            let viewer = s.login(NEW_EMAIL, NEW_PASSWORD).await.expect("new login");
            let (status, members) = s
                .call(
                    Method::GET,
                    &format!("/api/v1/projects/{pid}/members"),
                    &viewer,
                    None,
                )
                .await
                .expect("members");
            assert_eq!(status, 200, "{members}");
            let me = members
                .as_array()
                .expect("members list")
                .iter()
                .find(|m| m["email"] == NEW_EMAIL)
                .unwrap_or_else(|| panic!("the new user is a member: {members}"));
            assert_eq!(me["role"], "viewer", "{members}");
            let (status, body) = s
                .call(
                    Method::POST,
                    &format!("/api/v1/reverse-tunnels/devices/{DSN}/reverse-tunnels"),
                    &viewer,
                    Some(&json!({"name": "nope", "local_port": 8080})),
                )
                .await
                .expect("create tunnel");
            assert_eq!(status, 403, "a viewer may not create tunnels: {body}");
        }
        "accepted" => {
            let pid = data["project_id"].as_i64().expect("project_id");
            let (status, members) = s
                .call(
                    Method::GET,
                    &format!("/api/v1/projects/{pid}/members"),
                    admin,
                    None,
                )
                .await
                .expect("members");
            assert_eq!(status, 200, "{members}");
            let roles: Vec<(&str, &str)> = members
                .as_array()
                .expect("members list")
                .iter()
                .filter_map(|m| Some((m["email"].as_str()?, m["role"].as_str()?)))
                .collect();
            assert!(
                roles.contains(&(EXISTING_EMAIL, "member"))
                    && roles.contains(&(NEW_EMAIL, "viewer")),
                "both invitations accepted with their roles: {members}"
            );
        }
        "signed_out_everywhere" => {
            let session = data["token"].as_str().expect("the signed-out session");
            let (status, _) = s
                .call(Method::GET, "/api/v1/auth/me", session, None)
                .await
                .expect("me");
            assert_eq!(status, 401, "the session ended");
            assert_eq!(
                login_status(s, EXISTING_EMAIL, EXISTING_PASSWORD).await,
                200,
                "signing in again works"
            );
        }
        "promoted" => {
            let pid = data["project_id"].as_i64().expect("project_id");
            let members = members_of(s, admin, pid).await;
            assert!(
                members.contains(&(EXISTING_EMAIL.to_string(), "admin".to_string())),
                "{members:?}"
            );
        }
        "removed_and_withdrawn" => {
            let pid = data["project_id"].as_i64().expect("project_id");
            let members = members_of(s, admin, pid).await;
            assert!(
                !members.iter().any(|(e, _)| e == EXISTING_EMAIL),
                "removed: {members:?}"
            );
            let (status, invs) = s
                .call(
                    Method::GET,
                    &format!("/api/v1/projects/{pid}/invitations"),
                    admin,
                    None,
                )
                .await
                .expect("invitations");
            assert_eq!(status, 200);
            assert!(
                !invs.to_string().contains("later@example.com"),
                "withdrawn: {invs}"
            );
        }
        "token_created" => {
            let token = data["token"].as_str().expect("token");
            let (status, me) = s
                .call(Method::GET, "/api/v1/auth/me", token, None)
                .await
                .expect("me");
            assert_eq!(status, 200, "the new token works: {me}");
            assert_eq!(me["email"], NEW_EMAIL);
            let (status, body) = s
                .call(
                    Method::POST,
                    "/api/v1/projects",
                    token,
                    Some(&json!({"name": "from a read token"})),
                )
                .await
                .expect("post with read token");
            assert_eq!(status, 403, "a read token may only GET: {body}");
        }
        "token_revoked" => {
            let token = data["token"].as_str().expect("token");
            let (status, _) = s
                .call(Method::GET, "/api/v1/auth/me", token, None)
                .await
                .expect("me");
            assert_eq!(status, 401, "a revoked token is refused");
        }
        "password_changed" => {
            assert_eq!(
                login_status(s, NEW_EMAIL, NEW_PASSWORD).await,
                401,
                "the old password no longer signs in"
            );
            assert_eq!(login_status(s, NEW_EMAIL, CHANGED_PASSWORD).await, 200);
        }
        "disabled" => {
            let status = login_status(s, NEW_EMAIL, CHANGED_PASSWORD).await;
            assert!(
                status.is_client_error(),
                "a disabled user cannot sign in: {status}"
            );
        }
        "reset" => {
            assert_eq!(login_status(s, NEW_EMAIL, RESET_PASSWORD).await, 200);
            assert_eq!(login_status(s, NEW_EMAIL, CHANGED_PASSWORD).await, 401);
        }
        "deleted" => {
            assert_eq!(login_status(s, NEW_EMAIL, RESET_PASSWORD).await, 401);
            let (status, users) = s
                .call(Method::GET, "/api/v1/users", admin, None)
                .await
                .expect("users");
            assert_eq!(status, 200);
            assert!(
                !users.to_string().contains(NEW_EMAIL),
                "the user is gone: {users}"
            );
        }
        other => panic!("unknown checkpoint {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_pages_in_headless_chromium() {
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
    s.user(EXISTING_EMAIL).await.expect("an existing user");
    let shots = root.join("target/ui-screenshots");

    let mut child = tokio::process::Command::new("node")
        .arg(ui.join("accounts.mjs"))
        .current_dir(&ui)
        .env("BURROW_URL", format!("http://localhost:{}", s.addr.port()))
        .env("BURROW_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("BURROW_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("NEW_EMAIL", NEW_EMAIL)
        .env("NEW_PASSWORD", NEW_PASSWORD)
        .env("EXISTING_EMAIL", EXISTING_EMAIL)
        .env("EXISTING_PASSWORD", EXISTING_PASSWORD)
        .env("CHANGED_PASSWORD", CHANGED_PASSWORD)
        .env("RESET_PASSWORD", RESET_PASSWORD)
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
                // The data may hold a token or an invitation link: not echoed.
                println!("checking {name}");
                let data: Value = serde_json::from_str(data).expect("checkpoint data");
                checkpoint(&s, &admin, name, &data).await;
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
    tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the accounts browser test finished within 4 minutes");
    let status = child.wait().await.expect("node ran");
    let stderr = errors.await.unwrap_or_default();
    eprintln!("{stderr}");
    assert!(
        status.success() && out.contains(" passed, 0 failed"),
        "ui-tests/accounts.mjs failed ({status}); screenshots in {}\n{out}\n{stderr}",
        shots.display()
    );
    assert_eq!(
        seen,
        [
            "invited",
            "signed_up",
            "accepted",
            "signed_out_everywhere",
            "promoted",
            "removed_and_withdrawn",
            "token_created",
            "token_revoked",
            "password_changed",
            "disabled",
            "reset",
            "deleted"
        ],
        "every checkpoint was checked, in order"
    );
    s.running.shutdown().await.expect("shutdown");
}
