//! Accounts an organisation runs (docs/accounts.md), through the REST API on SQLite and
//! PostgreSQL: invitations (the same answer for known and unknown emails, single use, only
//! for the invited account), personal access tokens (scopes, revocation at once), password
//! change and reset, disabling and deleting users; and the CLI's `burrow login` token.

use std::path::Path;
use std::process::Command;

use burrow::testkit::{Backend, TestStack, ADMIN_EMAIL, ADMIN_PASSWORD};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(burrow::testkit::Backend::Sqlite).await }) *
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if std::env::var("BURROW_SKIP_POSTGRES").as_deref() == Ok("1") { return; }
                super::$name(burrow::testkit::Backend::Postgres).await
            }) *
        }
    };
}

on_both_backends!(invitations, personal_tokens, passwords_and_user_admin);

async fn stack(b: Backend) -> TestStack {
    TestStack::start(b).await.expect("stack")
}

/// The token of an invitation link (`.../invite#token=...`).
fn link_token(answer: &Value) -> String {
    let url = answer["accept_url"].as_str().expect("accept_url");
    assert!(url.contains("/invite#token=binv_"), "{url}");
    url.rsplit_once("#token=").expect("fragment").1.to_string()
}

async fn post(s: &TestStack, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut req = s.http.post(s.url(path)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn invitations(b: Backend) {
    let s = stack(b).await;
    let (_, owner) = s.user("owner@acct.test").await.expect("owner");
    let (_, known) = s.user("known@acct.test").await.expect("known user");
    let (pid, _) = s
        .project_with_device(&owner, "ACCT1")
        .await
        .expect("project");
    let inv = format!("/api/v1/projects/{pid}/invitations");

    // Known and unknown emails: the same status and the same fields.
    let (st_known, a_known) = post(
        &s,
        &inv,
        Some(&owner),
        json!({"email": "known@acct.test", "role": "admin"}),
    )
    .await;
    let (st_new, a_new) = post(
        &s,
        &inv,
        Some(&owner),
        json!({"email": "New@Acct.test", "role": "viewer"}),
    )
    .await;
    assert_eq!(
        (st_known, st_new),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&a_known),
        keys(&a_new),
        "no difference between known and unknown emails"
    );
    assert_eq!(a_new["email"], "new@acct.test");
    assert_eq!(a_new["emailed"], false);
    let (known_token, new_token) = (link_token(&a_known), link_token(&a_new));

    // Pending ones are listed without their tokens.
    let (_, listed) = s.call(Method::GET, &inv, &owner, None).await.expect("list");
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    assert!(!listed.to_string().contains("binv_"), "no tokens in lists");

    // Bad input: an existing member, a bad role, a bad email.
    for (body, want) in [
        (
            json!({"email": "owner@acct.test", "role": "member"}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"email": "x@acct.test", "role": "superuser"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"email": "not-an-email", "role": "member"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, answer) = post(&s, &inv, Some(&owner), body.clone()).await;
        assert_eq!(status, want, "{body} → {answer}");
    }

    // Lookup tells the holder what it is for.
    let (status, details) = post(
        &s,
        "/api/v1/invitations/lookup",
        None,
        json!({"token": new_token}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{details}");
    assert_eq!(details["role"], "viewer");
    assert_eq!(details["account_exists"], false);
    assert_eq!(details["project_id"], pid);
    let (status, _) = post(
        &s,
        "/api/v1/invitations/lookup",
        None,
        json!({"token": "binv_nope"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Another account cannot accept it; the invited one gets exactly its role, once.
    let (_, other) = s.user("other@acct.test").await.expect("other");
    let (status, _) = post(
        &s,
        "/api/v1/invitations/accept",
        Some(&other),
        json!({"token": known_token}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, m) = post(
        &s,
        "/api/v1/invitations/accept",
        Some(&known),
        json!({"token": known_token}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(
        (m["project_id"].as_i64(), m["role"].as_str()),
        (Some(pid), Some("admin"))
    );
    let (status, _) = post(
        &s,
        "/api/v1/invitations/accept",
        Some(&known),
        json!({"token": known_token}),
    )
    .await;
    assert_eq!(status, StatusCode::GONE, "single use");

    // Sign-up: creates exactly the invited account with its role; the link is then spent.
    let (status, _) = post(
        &s,
        "/api/v1/invitations/signup",
        None,
        json!({"token": new_token, "password": "short"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, signed) = post(
        &s,
        "/api/v1/invitations/signup",
        None,
        json!({"token": new_token, "password": "a-long-password"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{signed}");
    let session = signed["access_token"]
        .as_str()
        .expect("session")
        .to_string();
    let (_, project) = s
        .call(
            Method::GET,
            &format!("/api/v1/projects/{pid}"),
            &session,
            None,
        )
        .await
        .expect("get");
    assert_eq!(project["role"], "viewer");
    let (status, _) = s
        .call(
            Method::POST,
            "/api/v1/reverse-tunnels/devices/ACCT1/reverse-tunnels",
            &session,
            Some(&json!({"name": "nope"})),
        )
        .await
        .expect("viewer create");
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a viewer may not create tunnels"
    );
    let (status, _) = post(
        &s,
        "/api/v1/invitations/signup",
        None,
        json!({"token": new_token, "password": "a-long-password"}),
    )
    .await;
    assert_eq!(status, StatusCode::GONE);

    // Sign-up for an email that has an account: refused, nothing created or spent.
    let (_, a) = post(
        &s,
        &inv,
        Some(&owner),
        json!({"email": "other@acct.test", "role": "member"}),
    )
    .await;
    let other_token = link_token(&a);
    let (status, _) = post(
        &s,
        "/api/v1/invitations/signup",
        None,
        json!({"token": other_token, "password": "a-long-password"}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = post(
        &s,
        "/api/v1/invitations/lookup",
        None,
        json!({"token": other_token}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "still pending");

    // Withdrawn: gone from the list, the link no longer works.
    let (_, listed) = s.call(Method::GET, &inv, &owner, None).await.expect("list");
    let id = listed[0]["id"].as_i64().expect("id");
    let (status, _) = s
        .call(Method::DELETE, &format!("{inv}/{id}"), &owner, None)
        .await
        .expect("withdraw");
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(
        &s,
        "/api/v1/invitations/lookup",
        None,
        json!({"token": other_token}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn personal_tokens(b: Backend) {
    let s = stack(b).await;
    let (_, session) = s.user("pat@acct.test").await.expect("user");
    let (pid, _) = s
        .project_with_device(&session, "PAT1")
        .await
        .expect("project");
    let (status, full) = post(
        &s,
        "/api/v1/auth/tokens",
        Some(&session),
        json!({"name": "ci", "scope": "full", "expires_in_days": 30}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{full}");
    let full_secret = full["token"].as_str().expect("secret").to_string();
    assert!(full_secret.starts_with("bpat_"));
    let (_, read) = post(
        &s,
        "/api/v1/auth/tokens",
        Some(&session),
        json!({"name": "dashboards", "scope": "read"}),
    )
    .await;
    let read_secret = read["token"].as_str().expect("secret").to_string();

    // Listed without secrets; bad input refused.
    let (_, listed) = s
        .call(Method::GET, "/api/v1/auth/tokens", &session, None)
        .await
        .expect("list");
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    assert!(!listed.to_string().contains("bpat_"), "{listed}");
    for body in [
        json!({"name": "x", "scope": "admin"}),
        json!({"name": "x", "scope": "read", "expires_in_days": 0}),
        json!({"name": "", "scope": "read"}),
    ] {
        let (status, _) = post(&s, "/api/v1/auth/tokens", Some(&session), body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }

    // A full token does everything its user may; a read token only reads.
    let (status, me) = s
        .call(Method::GET, "/api/v1/auth/me", &full_secret, None)
        .await
        .expect("me");
    assert_eq!(
        (status, me["email"].as_str()),
        (StatusCode::OK, Some("pat@acct.test"))
    );
    let rt = "/api/v1/reverse-tunnels/devices/PAT1/reverse-tunnels";
    let (status, _) = s
        .call(
            Method::POST,
            rt,
            &full_secret,
            Some(&json!({"name": "by-token"})),
        )
        .await
        .expect("create");
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = s
        .call(Method::GET, rt, &read_secret, None)
        .await
        .expect("read");
    assert_eq!(status, StatusCode::OK);
    let (status, err) = s
        .call(
            Method::POST,
            rt,
            &read_secret,
            Some(&json!({"name": "nope"})),
        )
        .await
        .expect("write");
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/projects/{pid}"),
            &read_secret,
            None,
        )
        .await
        .expect("delete");
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, listed) = s
        .call(Method::GET, "/api/v1/auth/tokens", &session, None)
        .await
        .expect("list");
    assert!(
        listed
            .as_array()
            .expect("list")
            .iter()
            .any(|t| t["name"] == "ci" && t["last_used_at"].is_string()),
        "{listed}"
    );

    // Revoked: refused at once; a forged or unknown token likewise.
    let id = full["id"].as_i64().expect("id");
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/tokens/{id}"),
            &session,
            None,
        )
        .await
        .expect("revoke");
    assert_eq!(status, StatusCode::OK);
    for bad in [full_secret.as_str(), "bpat_forged", "bpat_"] {
        let (status, _) = s
            .call(Method::GET, "/api/v1/auth/me", bad, None)
            .await
            .expect("me");
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
    }
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/tokens/{id}"),
            &session,
            None,
        )
        .await
        .expect("again");
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Someone else's token cannot be revoked by its id.
    let (_, other) = s.user("other-pat@acct.test").await.expect("user");
    let read_id = read["id"].as_i64().expect("id");
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/auth/tokens/{read_id}"),
            &other,
            None,
        )
        .await
        .expect("other");
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An expired token is refused like a revoked one (written straight to the database with
    // an expiry in the past, as the clock would have made it).
    let (_, me) = s
        .call(Method::GET, "/api/v1/auth/me", &session, None)
        .await
        .expect("me");
    let store = burrow_store::connect(&s.database_url())
        .await
        .expect("store");
    let user_id = me["id"].as_i64().expect("id");
    for (secret, expires_in, want) in [
        (
            "bpat_expired-token-for-the-test-0123456789abcdefg",
            -1,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "bpat_current-token-for-the-test-0123456789abcdefg",
            60,
            StatusCode::OK,
        ),
    ] {
        use sha2::Digest;
        store
            .create_personal_token(burrow_store::NewPersonalToken {
                user_id,
                name: "written directly".into(),
                scope: "full".into(),
                token_hash: hex::encode(sha2::Sha256::digest(secret.as_bytes())),
                created_at: chrono::Utc::now() - chrono::Duration::days(91),
                expires_at: chrono::Utc::now() + chrono::Duration::seconds(expires_in),
            })
            .await
            .expect("token row");
        let (status, _) = s
            .call(Method::GET, "/api/v1/auth/me", secret, None)
            .await
            .expect("me");
        assert_eq!(status, want, "a token expiring in {expires_in} s");
    }

    // `burrow login` stores a token; commands use it; revoked, it is refused at once;
    // `burrow logout` revokes it on the server.
    let home = tempfile::tempdir().expect("home");
    let server = s.url("");
    let login = cli(
        home.path(),
        &[
            "login",
            "--server",
            &server,
            "--email",
            ADMIN_EMAIL,
            "--password-stdin",
        ],
        Some(ADMIN_PASSWORD),
    )
    .await;
    assert_eq!(login.0, 0, "{}", login.2);
    let stored = std::fs::read_to_string(home.path().join("config/burrow/token")).expect("token");
    assert!(
        stored.trim().starts_with("bpat_"),
        "a personal access token is stored"
    );
    let admin = s.admin_token().await.expect("admin");
    s.project_with_device(&admin, "PATCLI")
        .await
        .expect("project");
    let (_, t) = s
        .call(
            Method::POST,
            "/api/v1/reverse-tunnels/devices/PATCLI/reverse-tunnels",
            &admin,
            Some(&json!({"name": "cli"})),
        )
        .await
        .expect("tunnel");
    let tid = t["id"].to_string();
    let described = cli(home.path(), &["tunnel", "describe", "PATCLI", &tid], None).await;
    assert_eq!(described.0, 0, "{}", described.2);
    assert!(described.1.contains("PATCLI"), "{}", described.1);
    let (_, tokens) = s
        .call(Method::GET, "/api/v1/auth/tokens", &admin, None)
        .await
        .expect("list");
    let cli_id = tokens[0]["id"].as_i64().expect("cli token");
    assert!(
        tokens[0]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("burrow CLI")),
        "{tokens}"
    );
    s.call(
        Method::DELETE,
        &format!("/api/v1/auth/tokens/{cli_id}"),
        &admin,
        None,
    )
    .await
    .expect("revoke");
    let refused = cli(home.path(), &["projects", "list"], None).await;
    assert_eq!(
        refused.0, 4,
        "a revoked token is an auth failure: {}",
        refused.2
    );
    let login = cli(
        home.path(),
        &[
            "login",
            "--server",
            &server,
            "--email",
            ADMIN_EMAIL,
            "--password-stdin",
        ],
        Some(ADMIN_PASSWORD),
    )
    .await;
    assert_eq!(login.0, 0, "{}", login.2);
    let stored = std::fs::read_to_string(home.path().join("config/burrow/token")).expect("token");
    let out = cli(home.path(), &["logout"], None).await;
    assert_eq!(out.0, 0, "{}", out.2);
    assert!(!home.path().join("config/burrow/token").exists());
    let (status, _) = s
        .call(Method::GET, "/api/v1/auth/me", stored.trim(), None)
        .await
        .expect("me");
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "logout revoked the token on the server"
    );

    // A token made elsewhere (SSO-only servers: the Account page) is stored with
    // `--token-stdin` after the server accepts it; a bad one is refused and not stored.
    let (_, made) = post(
        &s,
        "/api/v1/auth/tokens",
        Some(&admin),
        json!({"name": "from the web UI", "scope": "read"}),
    )
    .await;
    let made = made["token"].as_str().expect("token").to_string();
    let bad = cli(
        home.path(),
        &["login", "--server", &server, "--token-stdin"],
        Some("bpat_bogus"),
    )
    .await;
    assert_eq!(bad.0, 4, "{}", bad.2);
    assert!(!home.path().join("config/burrow/token").exists());
    let given = cli(
        home.path(),
        &["login", "--server", &server, "--token-stdin"],
        Some(&made),
    )
    .await;
    assert_eq!(given.0, 0, "{}", given.2);
    assert!(given.1.contains(ADMIN_EMAIL), "{}", given.1);
    let listed = cli(home.path(), &["projects", "list"], None).await;
    assert_eq!(listed.0, 0, "{}", listed.2);
    let out = cli(home.path(), &["logout"], None).await;
    assert_eq!(out.0, 0, "{}", out.2);
    let (status, _) = s
        .call(Method::GET, "/api/v1/auth/me", &made, None)
        .await
        .expect("me");
    assert_eq!(
        status,
        StatusCode::OK,
        "a given token is only forgotten, not revoked"
    );
}

/// `burrow ARGS` with a private config home, off the runtime (the server runs on it); answers
/// (exit code, stdout, stderr).
async fn cli(home: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let home = home.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || cli_blocking(&home, &args, stdin.as_deref()))
        .await
        .expect("cli task")
}

fn cli_blocking(home: &Path, args: &[String], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_burrow"));
    for (k, _) in std::env::vars() {
        if k.starts_with("BURROW_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("spawn burrow");
    if let Some(mut input) = child.stdin.take() {
        if let Some(text) = stdin {
            writeln!(input, "{text}").expect("stdin");
        }
    }
    let out = child.wait_with_output().expect("burrow runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn passwords_and_user_admin(b: Backend) {
    let s = stack(b).await;
    let admin = s.admin_token().await.expect("admin");
    let (uid, first) = s.user("pw@acct.test").await.expect("user");
    let second = s
        .login("pw@acct.test", "user-password-1")
        .await
        .expect("second session");
    let (_, pat) = post(
        &s,
        "/api/v1/auth/tokens",
        Some(&first),
        json!({"name": "t", "scope": "read"}),
    )
    .await;
    let pat = pat["token"].as_str().expect("pat").to_string();

    // Change: the current password is required; other sessions end; the new one works.
    let (status, _) = post(
        &s,
        "/api/v1/auth/password",
        Some(&first),
        json!({"current_password": "wrong-password", "new_password": "brand-new-password"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(
        &s,
        "/api/v1/auth/password",
        Some(&first),
        json!({"current_password": "user-password-1", "new_password": "short"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, fresh) = post(
        &s,
        "/api/v1/auth/password",
        Some(&first),
        json!({"current_password": "user-password-1", "new_password": "brand-new-password"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{fresh}");
    let fresh = fresh["access_token"]
        .as_str()
        .expect("fresh session")
        .to_string();
    for (token, want) in [(&first, 401), (&second, 401), (&fresh, 200), (&pat, 200)] {
        let (status, _) = s
            .call(Method::GET, "/api/v1/auth/me", token, None)
            .await
            .expect("me");
        assert_eq!(status.as_u16(), want);
    }
    assert!(s.login("pw@acct.test", "user-password-1").await.is_err());
    s.login("pw@acct.test", "brand-new-password")
        .await
        .expect("new password");

    // Administrators: list, reset, disable, enable, delete; others may not.
    let (status, _) = s
        .call(Method::GET, "/api/v1/users", &fresh, None)
        .await
        .expect("list");
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, users) = s
        .call(Method::GET, "/api/v1/users", &admin, None)
        .await
        .expect("list");
    assert!(users
        .as_array()
        .expect("list")
        .iter()
        .any(|u| u["id"] == uid && u["disabled"] == false));
    let (status, _) = post(
        &s,
        &format!("/api/v1/users/{uid}/password"),
        Some(&admin),
        json!({"new_password": "reset-by-admin"}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = s
        .call(Method::GET, "/api/v1/auth/me", &fresh, None)
        .await
        .expect("me");
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a reset signs the user out"
    );
    let session = s
        .login("pw@acct.test", "reset-by-admin")
        .await
        .expect("reset password");

    let (status, u) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{uid}"),
            &admin,
            Some(&json!({"disabled": true})),
        )
        .await
        .expect("disable");
    assert_eq!(
        (status, u["disabled"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    for token in [&session, &pat] {
        let (status, _) = s
            .call(Method::GET, "/api/v1/auth/me", token, None)
            .await
            .expect("me");
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "a disabled user's credentials stop"
        );
    }
    let (status, body) = post(
        &s,
        "/api/v1/auth/login",
        None,
        json!({"email": "pw@acct.test", "password": "reset-by-admin"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post(
        &s,
        "/api/v1/auth/login",
        None,
        json!({"email": "pw@acct.test", "password": "wrong-password"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a wrong password says nothing more: {body}"
    );
    let (status_unknown, unknown) = post(
        &s,
        "/api/v1/auth/login",
        None,
        json!({"email": "nobody@acct.test", "password": "wrong-password"}),
    )
    .await;
    assert_eq!(
        (status_unknown, &unknown),
        (status, &body),
        "an unknown email answers the same"
    );
    let (status, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{uid}"),
            &admin,
            Some(&json!({"disabled": false})),
        )
        .await
        .expect("enable");
    assert_eq!(status, StatusCode::OK);
    let session = s
        .login("pw@acct.test", "reset-by-admin")
        .await
        .expect("enabled again");

    // Not yourself; not a project's last owner; then deleted for good.
    let (_, me) = s
        .call(Method::GET, "/api/v1/auth/me", &admin, None)
        .await
        .expect("me");
    let admin_id = me["id"].as_i64().expect("id");
    let (status, _) = s
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{admin_id}"),
            &admin,
            Some(&json!({"disabled": true})),
        )
        .await
        .expect("self");
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{admin_id}"),
            &admin,
            None,
        )
        .await
        .expect("self");
    assert_eq!(status, StatusCode::CONFLICT);
    s.project_with_device(&session, "PW1")
        .await
        .expect("project");
    let (status, body) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{uid}"),
            &admin,
            None,
        )
        .await
        .expect("delete");
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the last owner of a project: {body}"
    );
    let (_, projects) = s
        .call(Method::GET, "/api/v1/projects", &session, None)
        .await
        .expect("projects");
    for p in projects.as_array().expect("list") {
        let id = p["id"].as_i64().expect("id");
        s.call(
            Method::DELETE,
            &format!("/api/v1/projects/{id}"),
            &session,
            None,
        )
        .await
        .expect("delete project");
    }
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{uid}"),
            &admin,
            None,
        )
        .await
        .expect("delete");
    assert_eq!(status, StatusCode::OK);
    assert!(s.login("pw@acct.test", "reset-by-admin").await.is_err());
    let (status, _) = s
        .call(Method::GET, "/api/v1/auth/me", &session, None)
        .await
        .expect("me");
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
