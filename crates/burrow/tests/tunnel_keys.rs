//! Per-tunnel API keys through the whole path (issue 15): a real server, a real enrolled agent
//! forwarding to a local HTTP service, and HTTP clients on real sockets. A key admits a
//! machine to its `require_auth` tunnel and nothing else; the edge consumes it (the device
//! never sees it); `methods` limits it; revocation is immediate; guessing is slowed; every
//! create and revoke is in the project's audit log.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use burrow::testkit::{serve_local, Backend, TestStack};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const DSN: &str = "KEYS-1";

/// The device's service: answers what it saw (method, credentials) as JSON.
async fn device_service() -> SocketAddr {
    let seen = |method: &'static str| {
        move |headers: axum::http::HeaderMap| async move {
            let h = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string()
            };
            axum::Json(json!({
                "method": method,
                "authorization": h("authorization"),
                "x_burrow_key": h("x-burrow-key"),
                "user": h("x-burrow-user-email"),
            }))
        }
    };
    let app = axum::Router::new().route("/", get(seen("GET")).post(seen("POST")));
    serve_local(app).await.expect("device service")
}

fn tunnels(dsn: &str) -> String {
    format!("/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels")
}

/// `method /` on tunnel host `host` with extra headers; (status, JSON body or Null).
async fn through(
    s: &TestStack,
    method: Method,
    host: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req = s
        .http
        .request(method, format!("http://{}/", s.addr))
        .header("host", host)
        .header("accept", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let h = resp.headers().clone();
    (status, resp.json().await.unwrap_or(Value::Null), h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_admits_its_tunnel_only_with_its_methods_until_revoked() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("login");
    let agent = s.start_agent(&admin, DSN).await.expect("agent");
    let svc = device_service().await;
    let mut made = Vec::new();
    for name in ["dash", "other"] {
        let (status, t) = s
            .call(
                Method::POST,
                &tunnels(DSN),
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
        made.push((id, t["public_url"].as_str().expect("host").to_string()));
    }
    let [(id, host), (other_id, other_host)] = [made[0].clone(), made[1].clone()];
    let keys = format!("{}/{id}/api-keys", tunnels(DSN));

    // Without a credential the tunnel is closed to machines.
    let (status, _, _) = through(&s, Method::GET, &host, &[]).await;
    assert_eq!(status, 401);

    // Create: the key once, `bk_` + 43 characters, never again.
    let (status, k) = s
        .call(
            Method::POST,
            &keys,
            &admin,
            Some(&json!({"name": "monitoring"})),
        )
        .await
        .expect("create key");
    assert_eq!(status, 201, "{k}");
    let key = k["key"].as_str().expect("key").to_string();
    assert!(key.starts_with("bk_") && key.len() == 46, "{key}");
    assert!(key.starts_with(k["prefix"].as_str().expect("prefix")));
    let (status, list) = s
        .call(Method::GET, &keys, &admin, None)
        .await
        .expect("list");
    assert_eq!(status, 200);
    assert_eq!(list["total"], 1);
    assert!(list["items"][0].get("key").is_none(), "{list}");
    assert!(
        !list.to_string().contains(&key),
        "the secret is never listed"
    );
    assert!(list["items"][0]["last_used_at"].is_null());

    // A machine with the key: Bearer or X-Burrow-Key, both consumed by the edge.
    let bearer = format!("Bearer {key}");
    let (status, seen, _) = through(&s, Method::GET, &host, &[("authorization", &bearer)]).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["authorization"], "", "the device never sees the key");
    assert_eq!(seen["user"], "", "a key is no user");
    let (status, seen, _) = through(&s, Method::POST, &host, &[("x-burrow-key", &key)]).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["x_burrow_key"], "");
    // The device's own bearer (not a key) still reaches it next to X-Burrow-Key.
    let (status, seen, _) = through(
        &s,
        Method::GET,
        &host,
        &[
            ("x-burrow-key", &key),
            ("authorization", "Bearer app-token"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(seen["authorization"], "Bearer app-token");

    // The key of one tunnel opens no other.
    let (status, body, headers) =
        through(&s, Method::GET, &other_host, &[("authorization", &bearer)]).await;
    assert_eq!(status, 401, "{body}");
    assert!(headers.contains_key("www-authenticate"));
    assert_eq!(body["code"], "unauthorized");
    // Nor the API.
    let (status, _) = s
        .call(Method::GET, "/api/v1/devices", &key, None)
        .await
        .expect("api");
    assert_eq!(status, 401);

    // last_used_at is recorded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, list) = s
            .call(Method::GET, &keys, &admin, None)
            .await
            .expect("list");
        if list["items"][0]["last_used_at"].is_string() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "last_used_at never set: {list}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A GET-only key: GET passes, POST is 403.
    let (status, ro) = s
        .call(
            Method::POST,
            &keys,
            &admin,
            Some(&json!({"name": "read only", "methods": ["HEAD", "GET"],
                         "expires_at": "2099-01-01T00:00:00Z"})),
        )
        .await
        .expect("create");
    assert_eq!(status, 201, "{ro}");
    assert_eq!(ro["methods"], json!(["GET", "HEAD"]));
    assert_eq!(ro["expires_at"], "2099-01-01T00:00:00Z");
    let ro_key = ro["key"].as_str().expect("key").to_string();
    let (status, _, _) = through(&s, Method::GET, &host, &[("x-burrow-key", &ro_key)]).await;
    assert_eq!(status, 200);
    let (status, body, _) = through(&s, Method::POST, &host, &[("x-burrow-key", &ro_key)]).await;
    assert_eq!(status, 403, "{body}");

    // Revoked: 401 on the very next request.
    let key_id = k["id"].as_i64().expect("id");
    let (status, revoked) = s
        .call(Method::DELETE, &format!("{keys}/{key_id}"), &admin, None)
        .await
        .expect("revoke");
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    let (status, _, _) = through(&s, Method::GET, &host, &[("authorization", &bearer)]).await;
    assert_eq!(status, 401);
    let (status, _, _) = through(&s, Method::GET, &host, &[("x-burrow-key", &ro_key)]).await;
    assert_eq!(status, 200, "the other key still works");

    // Bad input: clear 4xx JSON, never a 500.
    let bad_bodies = [
        json!({"name": ""}),
        json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}),
        json!({"name": "x", "expires_at": "tomorrow"}),
        json!({"name": "x", "methods": ["BREW"]}),
        json!({"name": "x", "methods": ["get"]}),
        json!({"name": "x", "methods": "GET"}),
        json!({"name": "x", "extra": 1}),
        json!({}),
    ];
    for body in bad_bodies {
        let (status, err) = s
            .call(Method::POST, &keys, &admin, Some(&body))
            .await
            .expect("bad create");
        assert_eq!(status, 422, "{body} → {err}");
        assert!(err["detail"].is_string(), "{err}");
    }
    for path in [
        format!("{keys}/999999"),
        format!("{keys}/abc"),
        format!("{}/{other_id}/api-keys/{key_id}", tunnels(DSN)),
    ] {
        let (status, err) = s
            .call(Method::DELETE, &path, &admin, None)
            .await
            .expect("bad revoke");
        assert_eq!(status, 404, "{path} → {err}");
    }
    // Another project's member sees nothing of it.
    let (_, outsider) = s.user("outsider@example.com").await.expect("user");
    let (status, _) = s
        .call(Method::GET, &keys, &outsider, None)
        .await
        .expect("list");
    assert_eq!(status, 404);

    // The audit log: who created and revoked what, for project owners only.
    let audit = format!("/api/v1/projects/{}/sharing-audit", agent.project_id);
    let (status, log) = s
        .call(Method::GET, &audit, &admin, None)
        .await
        .expect("audit");
    assert_eq!(status, 200, "{log}");
    let actions: Vec<&str> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        vec!["api_key.revoke", "api_key.create", "api_key.create"],
        "{log}"
    );
    assert_eq!(log["items"][0]["actor_email"], burrow::testkit::ADMIN_EMAIL);
    assert_eq!(log["items"][0]["object_id"], key_id);
    let (status, _) = s
        .call(Method::GET, &audit, &outsider, None)
        .await
        .expect("audit");
    assert_eq!(status, 404);
    let (member_id, member) = s.user("member@example.com").await.expect("user");
    let (status, m) = s
        .call(
            Method::POST,
            &format!("/api/v1/projects/{}/members", agent.project_id),
            &admin,
            Some(&json!({"user_id": member_id, "role": "member"})),
        )
        .await
        .expect("add member");
    assert_eq!(status, 201, "{m}");
    let (status, err) = s
        .call(Method::GET, &audit, &member, None)
        .await
        .expect("audit");
    assert_eq!(status, 403, "a member who is not an owner: {err}");
    // A member may still manage the tunnel's keys (as they may manage the tunnel).
    let (status, _) = s
        .call(Method::GET, &keys, &member, None)
        .await
        .expect("list");
    assert_eq!(status, 200);

    // Guessing: failed keys from one client are slowed to 429 with Retry-After.
    let mut throttled = None;
    for i in 0..40 {
        let guess = format!("bk_{:0>43}", i);
        let (status, _, headers) =
            through(&s, Method::GET, &host, &[("x-burrow-key", &guess)]).await;
        if status == 429 {
            throttled = Some(headers);
            break;
        }
        assert_eq!(status, 401);
    }
    let headers = throttled.expect("429 after repeated failures");
    assert!(headers.contains_key("retry-after"));
    // While throttled, even a valid key from that client waits (no lookup to learn from).
    let (status, _, _) = through(&s, Method::GET, &host, &[("x-burrow-key", &ro_key)]).await;
    assert_eq!(status, 429);
    drop(agent);
}

/// `burrow tunnel keys|links ...` drive the same API: create (the secret printed once),
/// list, revoke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_keys_and_links() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("login");
    s.project_with_device(&admin, "KEYS-CLI")
        .await
        .expect("device");
    let (status, t) = s
        .call(
            Method::POST,
            &tunnels("KEYS-CLI"),
            &admin,
            Some(&json!({"name": "dash", "local_port": 8080})),
        )
        .await
        .expect("tunnel");
    assert_eq!(status, 201, "{t}");
    let id = t["id"].as_i64().expect("id").to_string();
    let dir = tempfile::tempdir().expect("dir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &admin).expect("token file");
    let server = s.url("");
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_burrow"))
            .arg("tunnel")
            .args(args)
            .args(["--server", &server, "--token-file"])
            .arg(&token_file)
            .output()
            .expect("burrow tunnel");
        let body: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.success(), body)
    };
    let (ok, k) = cli(&[
        "keys",
        "create",
        "KEYS-CLI",
        &id,
        "--name",
        "ci",
        "--methods",
        "GET,HEAD",
    ]);
    assert!(ok, "{k}");
    assert!(
        k["key"].as_str().is_some_and(|k| k.starts_with("bk_")),
        "{k}"
    );
    assert_eq!(k["methods"], json!(["GET", "HEAD"]));
    let (ok, list) = cli(&["keys", "list", "KEYS-CLI", &id]);
    assert!(ok && list["total"] == 1, "{list}");
    let key_id = k["id"].as_i64().expect("id").to_string();
    let (ok, revoked) = cli(&["keys", "revoke", "KEYS-CLI", &id, &key_id]);
    assert!(ok && revoked["revoked_at"].is_string(), "{revoked}");
    let (ok, l) = cli(&[
        "links",
        "create",
        "KEYS-CLI",
        &id,
        "--minutes",
        "30",
        "--max-uses",
        "2",
    ]);
    assert!(ok, "{l}");
    assert!(
        l["url"]
            .as_str()
            .is_some_and(|u| u.contains("/__burrow/share/bs_")),
        "{l}"
    );
    let (ok, list) = cli(&["links", "list", "KEYS-CLI", &id]);
    assert!(ok && list["items"][0]["max_uses"] == 2, "{list}");
    let link_id = l["id"].as_i64().expect("id").to_string();
    let (ok, revoked) = cli(&["links", "revoke", "KEYS-CLI", &id, &link_id]);
    assert!(ok && revoked["revoked_at"].is_string(), "{revoked}");
    // Bad input is the API's clear error, and a failing exit.
    let (ok, err) = cli(&["links", "create", "KEYS-CLI", &id, "--minutes", "0"]);
    assert!(!ok);
    assert_eq!(err["code"], "validation_error", "{err}");
}
