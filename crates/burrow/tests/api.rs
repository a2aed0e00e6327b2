//! The REST API through real sockets, on SQLite and on PostgreSQL.

use burrow::testkit::{Backend, TestStack};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Runs each scenario once per backend.
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

on_both_backends!(
    seed_walkthrough_shapes,
    cross_project_access_is_404_everywhere,
    bad_tokens_are_401,
    invalid_bodies_are_422,
    public_urls_are_unique_under_concurrency,
    projects_members_and_users,
);

async fn stack(b: Backend) -> TestStack {
    TestStack::start(b).await.expect("stack starts")
}

fn rt_path(dsn: &str) -> String {
    format!("/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels")
}

fn is_rfc3339_z(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok())
}

async fn seed_walkthrough_shapes(b: Backend) {
    let s = stack(b).await;
    let token = s.admin_token().await.expect("login");
    let (_pid, device) = s
        .project_with_device(&token, "ABC123")
        .await
        .expect("device");
    assert_eq!(device["dsn"], "ABC123");
    let enrollment = device["enrollment_token"]
        .as_str()
        .expect("enrollment token");
    assert!(enrollment.len() >= 22, "enrollment token has >=128 bits");

    // Create: the seed's request body, 201 with the seed's defaults.
    let resp = s
        .http
        .post(s.url(&rt_path("ABC123")))
        .bearer_auth(&token)
        .json(
            &json!({"name": "Web Dashboard", "description": "Robot control interface",
                      "local_port": 8080, "protocol": "http", "require_auth": true}),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let t: Value = resp.json().await.expect("json");
    assert_eq!(t["name"], "Web Dashboard");
    assert_eq!(t["public_url"], "device-abc123.localhost");
    assert_eq!(t["local_port"], 8080);
    assert_eq!(t["protocol"], "http");
    assert_eq!(t["is_enabled"], true);
    assert_eq!(t["require_auth"], true);
    assert_eq!(t["total_requests"], 0);
    assert_eq!(t["device_id"], device["id"]);
    // Creation opens the broker tunnel at once (the seed's lifecycle step 1).
    assert!(
        t["tunnel_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{t}"
    );
    assert!(t["tunnel_arn"]
        .as_str()
        .is_some_and(|s| s.starts_with("arn:aws:iot:us-east-1:")));
    assert_eq!(t["status"], "OPEN");
    assert_eq!(t["agent_connected"], false);
    assert!(is_rfc3339_z(&t["expires_at"]));
    assert!(is_rfc3339_z(&t["created_at"]), "{}", t["created_at"]);
    for secret in ["source_access_token", "destination_access_token"] {
        assert!(
            t.get(secret).is_none(),
            "{secret} must never be in a response"
        );
    }
    let id = t["id"].as_i64().expect("id");

    // Defaults when only the name is given; a second tunnel gets a distinct name.
    let t2: Value = s
        .http
        .post(s.url(&rt_path("ABC123")))
        .bearer_auth(&token)
        .json(&json!({"name": "Camera"}))
        .send()
        .await
        .expect("create 2")
        .json()
        .await
        .expect("json");
    assert_eq!(t2["local_port"], 8080);
    assert_eq!(t2["protocol"], "http");
    assert_eq!(t2["require_auth"], true);
    assert_eq!(t2["public_url"], "device-abc123-camera.localhost");

    // A requested subdomain, then the same one again: 409.
    let mk = |sub: &str| {
        s.http
            .post(s.url(&rt_path("ABC123")))
            .bearer_auth(&token)
            .json(&json!({"name": "Mine", "subdomain": sub}))
            .send()
    };
    let r = mk("My-Robot").await.expect("custom");
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        r.json::<Value>().await.expect("json")["public_url"],
        "my-robot.localhost"
    );
    let r = mk("my-robot").await.expect("custom again");
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(r.json::<Value>().await.expect("json")["code"], "conflict");

    // List: {"items": [...], "total": N}.
    let list: Value = s
        .call(Method::GET, &rt_path("ABC123"), &token, None)
        .await
        .expect("list")
        .1;
    assert_eq!(list["total"], 3);
    assert_eq!(list["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(list["items"][0]["id"], id);

    // Update: partial, 200, updated_at set.
    let r = s
        .http
        .put(s.url(&format!("{}/{id}", rt_path("ABC123"))))
        .bearer_auth(&token)
        .json(&json!({"is_enabled": false}))
        .send()
        .await
        .expect("update");
    assert_eq!(r.status(), StatusCode::OK);
    let u: Value = r.json().await.expect("json");
    assert_eq!(u["is_enabled"], false);
    assert_eq!(u["name"], "Web Dashboard", "untouched fields stay");
    assert_eq!(
        u["tunnel_id"],
        Value::Null,
        "disabling closes the broker tunnel"
    );
    assert_eq!(u["status"], Value::Null);
    assert!(is_rfc3339_z(&u["updated_at"]));

    let r = s
        .http
        .put(s.url(&format!("{}/{id}", rt_path("ABC123"))))
        .bearer_auth(&token)
        .json(&json!({"description": null, "local_port": 3000, "protocol": "wss"}))
        .send()
        .await
        .expect("update 2");
    let u: Value = r.json().await.expect("json");
    assert_eq!(u["description"], Value::Null);
    assert_eq!(u["tunnel_id"], Value::Null, "still disabled");
    assert_eq!(u["local_port"], 3000);
    assert_eq!(u["protocol"], "wss");

    // Describe (troubleshooting) and manual rotation on an enabled tunnel.
    let t2_id = t2["id"].as_i64().expect("id");
    let one2 = format!("{}/{t2_id}", rt_path("ABC123"));
    let d: Value = s
        .call(Method::GET, &format!("{one2}/describe"), &token, None)
        .await
        .expect("describe")
        .1;
    assert_eq!(d["tunnel"]["status"], "OPEN", "{d}");
    assert_eq!(
        d["tunnel"]["destination_connection_state"]["status"],
        "DISCONNECTED"
    );
    assert_eq!(d["tunnel"]["services"], json!(["HTTP-8080"]));
    assert_eq!(d["device"]["online"], false);
    let r = s
        .call(Method::POST, &format!("{one2}/rotate"), &token, None)
        .await
        .expect("rotate");
    assert_eq!(r.0, StatusCode::OK);
    let rotated: Value = r.1;
    assert_ne!(rotated["tunnel_id"], t2["tunnel_id"], "a new broker tunnel");
    assert!(
        rotated.get("destination_access_token").is_none()
            && rotated.get("source_access_token").is_none()
    );
    assert!(is_rfc3339_z(&rotated["expires_at"]));

    // The access log (empty so far), and a bad limit is a JSON 422.
    let log: Value = s
        .call(
            Method::GET,
            &format!("{one2}/access-log?limit=5"),
            &token,
            None,
        )
        .await
        .expect("log")
        .1;
    assert_eq!(log, json!({"items": [], "total": 0}));
    let r = s
        .call(
            Method::GET,
            &format!("{one2}/access-log?limit=lots"),
            &token,
            None,
        )
        .await
        .expect("log");
    assert_eq!(r.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.1["field"], "limit");

    // Delete: the seed's message; then it is gone.
    let r = s
        .call(
            Method::DELETE,
            &format!("{}/{id}", rt_path("ABC123")),
            &token,
            None,
        )
        .await
        .expect("delete");
    assert_eq!(r.0, StatusCode::OK);
    assert_eq!(
        r.1,
        json!({"message": "Reverse tunnel deleted successfully"})
    );
    let r = s
        .call(
            Method::DELETE,
            &format!("{}/{id}", rt_path("ABC123")),
            &token,
            None,
        )
        .await
        .expect("delete again");
    assert_eq!(r.0, StatusCode::NOT_FOUND);

    // Devices list and the OpenAPI document.
    let devices: Value = s
        .call(Method::GET, "/api/v1/devices", &token, None)
        .await
        .expect("devices")
        .1;
    assert_eq!(devices.as_array().map(Vec::len), Some(1));
    assert!(
        devices[0].get("enrollment_token").is_none(),
        "shown once only"
    );
    let doc: Value = s
        .http
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')));
    for path in [
        "/api/v1/auth/login",
        "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels",
        "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}",
        "/api/v1/projects/{id}/devices",
    ] {
        assert!(doc["paths"].get(path).is_some(), "openapi lacks {path}");
    }
    s.running.shutdown().await.expect("shutdown");
}

async fn cross_project_access_is_404_everywhere(b: Backend) {
    let s = stack(b).await;
    let (_a_id, a) = s.user("alice@example.com").await.expect("alice");
    let (_b_id, bob) = s.user("bob@example.com").await.expect("bob");
    let (a_project, _) = s
        .project_with_device(&a, "ALICE1")
        .await
        .expect("alice device");
    let t: Value = s
        .http
        .post(s.url(&rt_path("ALICE1")))
        .bearer_auth(&a)
        .json(&json!({"name": "Dash"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let tid = t["id"].as_i64().expect("id");
    let one = format!("{}/{tid}", rt_path("ALICE1"));

    // Every route Bob could use to read or change Alice's things: 404, same as a missing one.
    let attempts: Vec<(reqwest::Method, String, Option<Value>)> = vec![
        (reqwest::Method::GET, rt_path("ALICE1"), None),
        (
            reqwest::Method::POST,
            rt_path("ALICE1"),
            Some(json!({"name": "x"})),
        ),
        (reqwest::Method::GET, one.clone(), None),
        (
            reqwest::Method::PUT,
            one.clone(),
            Some(json!({"is_enabled": false})),
        ),
        (reqwest::Method::DELETE, one.clone(), None),
        (reqwest::Method::POST, format!("{one}/rotate"), None),
        (reqwest::Method::GET, format!("{one}/describe"), None),
        (reqwest::Method::GET, format!("{one}/access-log"), None),
        (reqwest::Method::GET, "/api/v1/devices/ALICE1".into(), None),
        (
            reqwest::Method::DELETE,
            "/api/v1/devices/ALICE1".into(),
            None,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/devices/ALICE1/enrollment".into(),
            None,
        ),
        (
            reqwest::Method::POST,
            "/api/v1/devices/ALICE1/revoke".into(),
            None,
        ),
        (
            reqwest::Method::GET,
            format!("/api/v1/projects/{a_project}"),
            None,
        ),
        (
            reqwest::Method::GET,
            format!("/api/v1/projects/{a_project}/devices"),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/projects/{a_project}/devices"),
            Some(json!({"dsn": "EVIL", "name": "x"})),
        ),
        (
            reqwest::Method::GET,
            format!("/api/v1/projects/{a_project}/members"),
            None,
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/projects/{a_project}/invitations"),
            Some(json!({"email": "bob@example.com", "role": "owner"})),
        ),
    ];
    assert!(attempts.len() >= 16);
    for (method, path, body) in &attempts {
        let mut req = s
            .http
            .request(method.clone(), s.url(path))
            .bearer_auth(&bob);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.expect("send");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{method} {path}");
    }
    // Adding by user id is for server administrators: 403 for any project, existing or not.
    for pid in [a_project, 999_999] {
        let r = s
            .call(
                Method::POST,
                &format!("/api/v1/projects/{pid}/members"),
                &bob,
                Some(&json!({"user_id": 1})),
            )
            .await
            .expect("send");
        assert_eq!(r.0, StatusCode::FORBIDDEN, "project {pid}");
    }
    // The same requests for a device that does not exist answer identically.
    let r = s
        .call(Method::GET, &rt_path("NOPE"), &bob, None)
        .await
        .expect("send");
    assert_eq!(r.0, StatusCode::NOT_FOUND);
    // Bob's device list does not include Alice's; Alice's tunnel is untouched.
    let devs: Value = s
        .call(Method::GET, "/api/v1/devices", &bob, None)
        .await
        .expect("list")
        .1;
    assert_eq!(devs, json!([]));
    let mine: Value = s.call(Method::GET, &one, &a, None).await.expect("get").1;
    assert_eq!(mine["is_enabled"], true);
    // A tunnel id of another device, through a device Bob owns: 404 too.
    s.project_with_device(&bob, "BOB1")
        .await
        .expect("bob device");
    let r = s
        .http
        .put(s.url(&format!("{}/{tid}", rt_path("BOB1"))))
        .bearer_auth(&bob)
        .json(&json!({"is_enabled": false}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn bad_tokens_are_401(b: Backend) {
    let s = stack(b).await;
    let url = s.url("/api/v1/devices");
    let r = s.http.get(&url).send().await.expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let key = s.jwt_key().await.expect("jwt key");
    let real = burrow_api::JwtKeys::new(&key, chrono::Duration::minutes(5));
    let expired = real
        .issue(
            1,
            "admin@test.local",
            chrono::Utc::now() - chrono::Duration::hours(2),
        )
        .expect("issue");
    let forged = burrow_api::JwtKeys::new(
        b"not-the-server-key-not-the-key!!",
        chrono::Duration::minutes(5),
    )
    .issue(1, "admin@test.local", chrono::Utc::now())
    .expect("issue");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let exp = chrono::Utc::now().timestamp() + 600;
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(format!(
            r#"{{"sub":"1","email":"admin@test.local","iat":0,"exp":{exp}}}"#
        ))
    );
    let garbage = "abc.def.ghi".to_string();
    let bad = [expired, forged, none, garbage];
    for t in &bad {
        let r = s.http.get(&url).bearer_auth(t).send().await.expect("send");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.json::<Value>().await.expect("json")["code"],
            "unauthorized"
        );
    }
    let good = real
        .issue(1, "admin@test.local", chrono::Utc::now())
        .expect("issue");
    let r = s
        .http
        .get(&url)
        .bearer_auth(&good)
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a token signed with the server key works"
    );

    let r = s
        .http
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"email": "admin@test.local", "password": "wrong-password"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn invalid_bodies_are_422(b: Backend) {
    let s = stack(b).await;
    let token = s.admin_token().await.expect("login");
    s.project_with_device(&token, "DEV1").await.expect("device");
    let cases = [
        (json!({}), None),
        (json!({"name": ""}), Some("name")),
        (json!({"name": "x".repeat(256)}), Some("name")),
        (json!({"name": "a", "local_port": 0}), Some("local_port")),
        (
            json!({"name": "a", "local_port": 65536}),
            Some("local_port"),
        ),
        (json!({"name": "a", "local_port": "80"}), None),
        (json!({"name": "a", "protocol": "ftp"}), Some("protocol")),
        (json!({"name": "a", "unknown_field": 1}), None),
        (
            json!({"name": "a", "subdomain": "bad_label"}),
            Some("subdomain"),
        ),
        (
            json!({"name": "a", "allowed_user_ids": [999]}),
            Some("allowed_user_ids"),
        ),
        (json!([1, 2]), None),
    ];
    assert!(!cases.is_empty());
    for (body, field) in &cases {
        let r = s
            .http
            .post(s.url(&rt_path("DEV1")))
            .bearer_auth(&token)
            .json(body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let e: Value = r.json().await.expect("json error");
        assert_eq!(e["code"], "validation_error", "{body}");
        assert!(e["detail"].as_str().is_some_and(|d| !d.is_empty()));
        if let Some(f) = field {
            assert_eq!(e["field"], *f, "{body}");
        }
    }
    // Malformed JSON and a wrong content type are clear errors too, never a 500.
    let r = s
        .http
        .post(s.url(&rt_path("DEV1")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = s
        .http
        .post(s.url(&rt_path("DEV1")))
        .bearer_auth(&token)
        .body("name=a")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Update: null for a required field, and bad values.
    let t: Value = s
        .http
        .post(s.url(&rt_path("DEV1")))
        .bearer_auth(&token)
        .json(&json!({"name": "ok"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let one = format!("{}/{}", rt_path("DEV1"), t["id"]);
    for body in [
        json!({"name": null}),
        json!({"local_port": -1}),
        json!({"is_enabled": "yes"}),
        json!({"nope": 1}),
    ] {
        let r = s
            .http
            .put(s.url(&one))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    // Bad ids in paths name nothing.
    for p in [
        format!("{}/abc", rt_path("DEV1")),
        format!("{}/-1", rt_path("DEV1")),
        format!("{}/99999999999999999999", rt_path("DEV1")),
    ] {
        let r = s
            .http
            .put(s.url(&p))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{p}");
    }
    // Devices: bad DSN, duplicate DSN.
    let pid: i64 = s
        .http
        .get(s.url("/api/v1/projects"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("p")
        .json::<Value>()
        .await
        .expect("json")[0]["id"]
        .as_i64()
        .expect("id");
    let dev = |dsn: &str| {
        s.http
            .post(s.url(&format!("/api/v1/projects/{pid}/devices")))
            .bearer_auth(&token)
            .json(&json!({"dsn": dsn, "name": "n"}))
            .send()
    };
    assert_eq!(
        dev("has space").await.expect("send").status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        dev("DEV1").await.expect("send").status(),
        StatusCode::CONFLICT
    );
}

async fn public_urls_are_unique_under_concurrency(b: Backend) {
    let s = stack(b).await;
    let token = s.admin_token().await.expect("login");
    s.project_with_device(&token, "RACE1")
        .await
        .expect("device");
    let n = 12;
    let mut tasks = Vec::new();
    for i in 0..n {
        let http = s.http.clone();
        let url = s.url(&rt_path("RACE1"));
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({"name": if i % 2 == 0 { "Same Name" } else { "Other" }}))
                .send()
                .await
        }));
    }
    let mut urls = std::collections::HashSet::new();
    for t in tasks {
        let r = t.await.expect("join").expect("send");
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.expect("json");
        assert!(
            urls.insert(v["public_url"].as_str().expect("url").to_string()),
            "duplicate {v}"
        );
    }
    assert_eq!(urls.len(), n);
    assert!(urls.contains("device-race1.localhost"));

    // Concurrent requests for one subdomain: exactly one wins, the rest get 409.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let http = s.http.clone();
        let url = s.url(&rt_path("RACE1"));
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({"name": "x", "subdomain": "wanted"}))
                .send()
                .await
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.expect("join").expect("send").status());
    }
    assert_eq!(
        codes.iter().filter(|c| **c == StatusCode::CREATED).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == StatusCode::CONFLICT).count(),
        7,
        "{codes:?}"
    );
}

async fn projects_members_and_users(b: Backend) {
    let s = stack(b).await;
    let admin = s.admin_token().await.expect("login");
    let (carol_id, carol) = s.user("carol@example.com").await.expect("carol");
    let (dave_id, dave) = s.user("dave@example.com").await.expect("dave");
    // Only admins create users.
    let r = s
        .http
        .post(s.url("/api/v1/users"))
        .bearer_auth(&carol)
        .json(&json!({"email": "x@example.com", "password": "longenough"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = s
        .http
        .post(s.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"email": "CAROL@example.com", "password": "longenough"}))
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        StatusCode::CONFLICT,
        "emails are case-insensitive"
    );

    let (pid, _) = s
        .project_with_device(&carol, "CAROL1")
        .await
        .expect("device");
    // Dave sees nothing until Carol adds him; then he sees and can manage the device's tunnels.
    let r = s
        .call(Method::GET, &rt_path("CAROL1"), &dave, None)
        .await
        .expect("send");
    assert_eq!(r.0, StatusCode::NOT_FOUND);
    // Carol invites Dave by email; he accepts and is a member, once.
    let invitations = format!("/api/v1/projects/{pid}/invitations");
    let (status, inv) = s
        .call(
            Method::POST,
            &invitations,
            &carol,
            Some(&json!({"email": "dave@example.com", "role": "member"})),
        )
        .await
        .expect("send");
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    let token = inv["accept_url"]
        .as_str()
        .and_then(|u| u.rsplit_once("#token="))
        .map(|(_, t)| t.to_string())
        .expect("token in the link");
    let (status, m) = s
        .call(
            Method::POST,
            "/api/v1/invitations/accept",
            &dave,
            Some(&json!({"token": token})),
        )
        .await
        .expect("send");
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["email"], "dave@example.com");
    assert_eq!(m["role"], "member");
    assert_eq!(m["user_id"], dave_id);
    let (status, _) = s
        .call(
            Method::POST,
            &invitations,
            &carol,
            Some(&json!({"email": "dave@example.com", "role": "member"})),
        )
        .await
        .expect("send");
    assert_eq!(status, StatusCode::CONFLICT, "already a member");
    // A plain member may not invite.
    let (status, _) = s
        .call(
            Method::POST,
            &invitations,
            &dave,
            Some(&json!({"email": "eve@example.com", "role": "member"})),
        )
        .await
        .expect("send");
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A member manages tunnels, but only an admin or owner sets who may use them.
    let (status, _) = s
        .call(
            Method::POST,
            &rt_path("CAROL1"),
            &dave,
            Some(&json!({"name": "Dave's"})),
        )
        .await
        .expect("send");
    assert_eq!(status, StatusCode::CREATED);
    let restricted = json!({"name": "Carol's", "allowed_user_ids": [carol_id, dave_id]});
    let (status, _) = s
        .call(Method::POST, &rt_path("CAROL1"), &dave, Some(&restricted))
        .await
        .expect("send");
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, t) = s
        .call(Method::POST, &rt_path("CAROL1"), &carol, Some(&restricted))
        .await
        .expect("send");
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(t["allowed_user_ids"], json!([carol_id, dave_id]));
    let projects: Value = s
        .call(Method::GET, "/api/v1/projects", &dave, None)
        .await
        .expect("send")
        .1;
    assert_eq!(projects.as_array().map(Vec::len), Some(1));
    let me: Value = s
        .call(Method::GET, "/api/v1/auth/me", &dave, None)
        .await
        .expect("send")
        .1;
    assert_eq!(me["id"], dave_id);
    assert!(me.get("password_hash").is_none());
}
