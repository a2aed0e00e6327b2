//! Usage per user × device from real traffic: two users, an API key and unauthenticated
//! clients send requests of a known shape through two devices' tunnels (real enrolled agents
//! forwarding to a local service); the project's traffic overview then answers exactly those
//! counts per principal and device, to members only.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::StatusCode as AxumStatus;
use axum::routing::get;
use burrow::testkit::{serve_local, Backend, TestStack};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn service() -> SocketAddr {
    let app = axum::Router::new()
        .route("/ok", get(|| async { "0123456789" })) // 10 bytes
        .route(
            "/missing",
            get(|| async { (AxumStatus::NOT_FOUND, "nope") }),
        ); // 4 bytes
    serve_local(app).await.expect("service")
}

/// A `require_auth` tunnel of `dsn` to `svc` with the agent connected; answers (id, host).
async fn tunnel(s: &TestStack, admin: &str, dsn: &str, svc: SocketAddr) -> (i64, String) {
    let (status, t) = s
        .call(
            Method::POST,
            &format!("/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels"),
            admin,
            Some(&json!({"name": "svc", "local_port": svc.port(), "require_auth": true})),
        )
        .await
        .expect("create tunnel");
    assert_eq!(status, 201, "{t}");
    let id = t["id"].as_i64().expect("id");
    s.wait_agent_connected(admin, dsn, id, Duration::from_secs(10))
        .await
        .expect("agent connected");
    (id, t["public_url"].as_str().expect("host").to_string())
}

/// `n` GETs of `path` on tunnel host `host` with header `auth` (name, value); each must
/// answer `want`.
async fn send(
    s: &TestStack,
    host: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    n: usize,
    want: u16,
) {
    for _ in 0..n {
        let mut req = s
            .http
            .get(s.url(path))
            .header("host", host)
            .header("accept", "application/json");
        if let Some((k, v)) = auth {
            req = req.header(k, v);
        }
        let resp = req.send().await.expect("request");
        assert_eq!(resp.status().as_u16(), want, "{path} on {host}");
        resp.bytes().await.expect("body");
    }
}

/// The row of `principal` (`user`/`key`/`anonymous`, id) on device `device`.
fn row<'a>(users: &'a [Value], principal: &str, id: i64, device: i64) -> &'a Value {
    users
        .iter()
        .find(|u| {
            u["principal"] == principal && u["principal_id"] == id && u["device_id"] == device
        })
        .unwrap_or_else(|| panic!("no row for {principal} {id} on device {device}: {users:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_per_user_and_device_counts_known_traffic_exactly() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("admin");
    let (bob_id, bob) = s.user("bob@example.com").await.expect("bob");
    let (_, eve) = s.user("eve@example.com").await.expect("eve");
    let svc = service().await;
    let agent_a = s.start_agent(&admin, "USE-A").await.expect("agent A");
    let pid = agent_a.project_id;
    let _agent_b = s
        .start_agent_in(&admin, pid, "USE-B")
        .await
        .expect("agent B");
    let (status, m) = s
        .call(
            Method::POST,
            &format!("/api/v1/projects/{pid}/members"),
            &admin,
            Some(&json!({"user_id": bob_id})),
        )
        .await
        .expect("add bob");
    assert_eq!(status, 201, "{m}");
    let (tunnel_a, host_a) = tunnel(&s, &admin, "USE-A", svc).await;
    let (tunnel_b, host_b) = tunnel(&s, &admin, "USE-B", svc).await;
    let (status, k) = s
        .call(
            Method::POST,
            &format!("/api/v1/reverse-tunnels/devices/USE-B/reverse-tunnels/{tunnel_b}/api-keys"),
            &admin,
            Some(&json!({"name": "monitoring"})),
        )
        .await
        .expect("create key");
    assert_eq!(status, 201, "{k}");
    let key = k["key"].as_str().expect("key").to_string();
    let key_id = k["id"].as_i64().expect("key id");

    // Known shape: who × device × requests (statuses, sizes).
    let admin_auth = format!("Bearer {admin}");
    let bob_auth = format!("Bearer {bob}");
    let admin_h = Some(("authorization", admin_auth.as_str()));
    let bob_h = Some(("authorization", bob_auth.as_str()));
    send(&s, &host_a, "/ok", admin_h, 5, 200).await;
    send(&s, &host_b, "/missing", admin_h, 2, 404).await;
    send(&s, &host_a, "/ok", bob_h, 3, 200).await;
    send(&s, &host_b, "/ok", bob_h, 4, 200).await;
    send(
        &s,
        &host_b,
        "/ok",
        Some(("x-burrow-key", key.as_str())),
        1,
        200,
    )
    .await;
    send(&s, &host_a, "/ok", None, 2, 401).await;
    s.running.ops.edge.flush_all().await;

    let (_, dev_a) = s
        .call(Method::GET, "/api/v1/devices/USE-A", &admin, None)
        .await
        .expect("device A");
    let (_, dev_b) = s
        .call(Method::GET, "/api/v1/devices/USE-B", &admin, None)
        .await
        .expect("device B");
    let (a, b) = (
        dev_a["id"].as_i64().expect("id"),
        dev_b["id"].as_i64().expect("id"),
    );
    let (_, me) = s
        .call(Method::GET, "/api/v1/auth/me", &admin, None)
        .await
        .expect("me");
    let admin_id = me["id"].as_i64().expect("admin id");

    // A member (bob) reads the overview; the answer is the same for the owner.
    let (status, o) = s
        .call(
            Method::GET,
            &format!("/api/v1/projects/{pid}/traffic"),
            &bob,
            None,
        )
        .await
        .expect("overview");
    assert_eq!(status, StatusCode::OK, "{o}");
    let users = o["users"].as_array().expect("users");
    assert_eq!(users.len(), 6, "{o}");
    let expect = [
        ("user", admin_id, a, 5, 0, 50, "admin"),
        ("user", admin_id, b, 2, 2, 8, "admin"),
        ("user", bob_id, a, 3, 0, 30, "bob@example.com"),
        ("user", bob_id, b, 4, 0, 40, "bob@example.com"),
        ("key", key_id, b, 1, 0, 10, "monitoring"),
    ];
    for (principal, id, device, requests, errors, bytes_out, name) in expect {
        let r = row(users, principal, id, device);
        assert_eq!(r["requests"], requests, "{r}");
        assert_eq!(r["errors"], errors, "{r}");
        assert_eq!(r["bytes_out"], bytes_out, "{r}");
        assert_eq!(r["bytes_in"], 0, "{r}");
        assert!(
            r["name"].as_str().expect("name").contains(name),
            "{r} names {name}"
        );
    }
    let anon = row(users, "anonymous", 0, a);
    assert_eq!((&anon["requests"], &anon["errors"]), (&json!(2), &json!(2)));
    assert!(anon["name"].is_null(), "{anon}");
    assert_eq!(users[0]["requests"], 5, "most requests first: {o}");
    // The other parts of the overview agree.
    assert_eq!(o["tunnels"][0]["id"], json!(tunnel_a), "{o}");
    let (_, owner_view) = s
        .call(
            Method::GET,
            &format!("/api/v1/projects/{pid}/traffic"),
            &admin,
            None,
        )
        .await
        .expect("overview");
    assert_eq!(owner_view["users"], o["users"]);

    // Not a member: the project does not exist for eve.
    let (status, _) = s
        .call(
            Method::GET,
            &format!("/api/v1/projects/{pid}/traffic"),
            &eve,
            None,
        )
        .await
        .expect("overview");
    assert_eq!(status, StatusCode::NOT_FOUND);
    drop(agent_a);
}
