//! Analytics from real traffic: after requests of a known shape (counts, statuses, sizes)
//! through a tunnel, the analytics endpoint and the access log say exactly that; bad ranges
//! are 422; the scheduler prunes by an injected clock (usage per principal too).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode as AxumStatus;
use axum::routing::{get, post};
use burrow::testkit::{Backend, TestStack};
use burrow_store::{NewAccessLogEntry, PrincipalKind, PrincipalUsage, TrafficRollup, HOUR, MINUTE};
use reqwest::{Method, StatusCode};
use serde_json::Value;

async fn service() -> SocketAddr {
    let app = axum::Router::new()
        .route("/ok", get(|| async { "0123456789" })) // 10 bytes
        .route(
            "/missing",
            get(|| async { (AxumStatus::NOT_FOUND, "nope") }),
        ) // 4 bytes
        .route("/echo", post(|body: axum::body::Bytes| async move { body }));
    burrow::testkit::serve_local(app).await.expect("service")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_and_access_log_report_known_traffic_exactly() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("admin");
    let (t, _peer) = s
        .public_tunnel(&admin, "ANA1", service().await)
        .await
        .expect("tunnel");
    let host = t["public_url"].as_str().expect("host").to_string();
    let base = format!(
        "/api/v1/reverse-tunnels/devices/ANA1/reverse-tunnels/{}",
        t["id"]
    );
    let started = chrono::Utc::now();
    // 6 × 200 of 10 bytes, 2 × 404 of 4 bytes, 3 POSTs of 100 bytes echoed.
    let send = |m: Method, path: &str, body: Vec<u8>| {
        s.http
            .request(m, s.url(path))
            .header("host", &host)
            .header("user-agent", "shape-test/1.0")
            .body(body)
            .send()
    };
    for _ in 0..6 {
        send(Method::GET, "/ok", vec![])
            .await
            .expect("ok")
            .bytes()
            .await
            .expect("body");
    }
    for _ in 0..2 {
        send(Method::GET, "/missing", vec![])
            .await
            .expect("404")
            .bytes()
            .await
            .expect("body");
    }
    for _ in 0..3 {
        send(Method::POST, "/echo", vec![7u8; 100])
            .await
            .expect("echo")
            .bytes()
            .await
            .expect("body");
    }
    s.running.ops.edge.flush_all().await;

    let from = (started - chrono::Duration::minutes(2)).to_rfc3339();
    let to = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let url = format!(
        "{base}/analytics?from={}&to={}&step=60",
        enc(&from),
        enc(&to)
    );
    let (status, a) = s
        .call(Method::GET, &url, &admin, None)
        .await
        .expect("analytics");
    assert_eq!(status, StatusCode::OK, "{a}");
    let totals = &a["totals"];
    assert_eq!(totals["requests"], 11, "{a}");
    assert_eq!(totals["status_2xx"], 9, "{a}");
    assert_eq!(totals["status_4xx"], 2, "{a}");
    assert_eq!(totals["bytes_out"], 6 * 10 + 2 * 4 + 3 * 100, "{a}");
    assert_eq!(totals["bytes_in"], 3 * 100, "{a}");
    assert_eq!(totals["distinct_clients"], 1, "{a}");
    assert!(
        totals["latency_ms"]["device"]["p99"].as_u64().is_some(),
        "{a}"
    );
    let points = a["points"].as_array().expect("points");
    let sum: i64 = points
        .iter()
        .map(|p| p["requests"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(sum, 11);

    // The project's overview: this tunnel is the busiest, with the same counts.
    let project = t["device_id"].as_i64().expect("device id");
    let (_, device) = s
        .call(Method::GET, "/api/v1/devices/ANA1", &admin, None)
        .await
        .expect("device");
    let pid = device["project_id"].as_i64().expect("project id");
    let (status, o) = s
        .call(
            Method::GET,
            &format!("/api/v1/projects/{pid}/traffic"),
            &admin,
            None,
        )
        .await
        .expect("overview");
    assert_eq!(status, StatusCode::OK, "{o}");
    assert_eq!(o["tunnels"][0]["id"], t["id"], "{o}");
    assert_eq!(o["tunnels"][0]["name"], "svc", "{o}");
    assert_eq!(o["tunnels"][0]["dsn"], "ANA1", "{o}");
    assert_eq!(o["devices"][0]["dsn"], "ANA1", "{o}");
    assert_eq!(o["tunnels"][0]["requests"], 11, "{o}");
    assert_eq!(o["tunnels"][0]["errors"], 2, "{o}");
    assert_eq!(o["devices"][0]["device_id"], project, "{o}");
    assert_eq!(
        o["devices"][0]["bytes_out"],
        6 * 10 + 2 * 4 + 3 * 100,
        "{o}"
    );

    // The access log: who asked, filtered, and as CSV.
    let (_, log) = s
        .call(
            Method::GET,
            &format!("{base}/access-log?status=4xx"),
            &admin,
            None,
        )
        .await
        .expect("log");
    let items = log["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{log}");
    assert_eq!(items[0]["status"], 404);
    assert_eq!(items[0]["client_ip"], "127.0.0.1");
    assert_eq!(items[0]["user_agent"], "shape-test/1.0");
    let csv = s
        .http
        .get(s.url(&format!("{base}/access-log?format=csv&limit=50")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("csv");
    assert!(csv
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/csv")));
    let text = csv.text().await.expect("text");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("at,client_ip,user_agent"), "{text}");
    assert_eq!(lines.len(), 1 + 11, "{text}");
    assert!(lines[1].contains("\"shape-test/1.0\""), "{text}");
}

fn enc(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_refuses_bad_ranges() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("admin");
    let (t, _peer) = s
        .public_tunnel(&admin, "ANA2", service().await)
        .await
        .expect("tunnel");
    let base = format!(
        "/api/v1/reverse-tunnels/devices/ANA2/reverse-tunnels/{}/analytics",
        t["id"]
    );
    for (query, field) in [
        ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        (
            "from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&step=60",
            "step",
        ),
        ("step=0", "step"),
        ("step=-60", "step"),
        ("step=90", "step"),
        ("from=yesterday", "from"),
    ] {
        let (status, err) = s
            .call(Method::GET, &format!("{base}?{query}"), &admin, None)
            .await
            .expect("call");
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {err}");
        assert_eq!(err["field"], field, "{query}: {err}");
    }
    let (status, ok) = s
        .call(Method::GET, &base, &admin, None)
        .await
        .expect("default range");
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(ok["step"], 60);
    assert!(ok["points"]
        .as_array()
        .is_some_and(|p| p.len() >= 60 && p.len() <= 61));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_old_rows_by_the_clock_and_keeps_new_ones() {
    let clock = Arc::new(burrow_broker::ManualClock::starting_now());
    let s = TestStack::start_with_clock(Backend::Sqlite, clock.clone())
        .await
        .expect("stack");
    let admin = s.admin_token().await.expect("admin");
    let (t, _peer) = s
        .public_tunnel(&admin, "RET1", service().await)
        .await
        .expect("tunnel");
    let id = t["id"].as_i64().expect("id");
    let store = s.running.store.clone();
    let now = burrow_broker::Clock::now(clock.as_ref());
    let days = chrono::Duration::days;
    let log = |age: chrono::Duration| NewAccessLogEntry {
        reverse_tunnel_id: id,
        at: now - age,
        user_id: None,
        method: "GET".into(),
        path: format!("/{}", age.num_days()),
        status: 200,
        bytes_in: 0,
        bytes_out: 0,
        duration_ms: 1,
        client_ip: None,
        user_agent: None,
    };
    store
        .insert_access_log(&[log(days(8)), log(days(6))])
        .await
        .expect("log");
    let rollup = |res: i64, age: chrono::Duration| TrafficRollup {
        reverse_tunnel_id: id,
        resolution_secs: res,
        bucket_start: now - age,
        requests: 1,
        ..TrafficRollup::default()
    };
    store
        .insert_traffic_rollups(&[
            rollup(MINUTE, days(31)),
            rollup(MINUTE, days(29)),
            rollup(HOUR, days(366)),
            rollup(HOUR, days(364)),
        ])
        .await
        .expect("rollups");
    let used = |age: chrono::Duration| PrincipalUsage {
        reverse_tunnel_id: id,
        bucket_start: now - age,
        kind: PrincipalKind::Anonymous,
        principal_id: 0,
        requests: 1,
        errors: 0,
        bytes_in: 0,
        bytes_out: 0,
    };
    store
        .add_principal_usage(&[used(days(366)), used(days(364))])
        .await
        .expect("usage");

    let pruned = s.running.scheduler.prune_traffic().await.expect("prune");
    assert_eq!((pruned.access_log, pruned.minute, pruned.hour), (1, 1, 1));
    assert_eq!(
        pruned.principal_usage, 1,
        "usage per principal: the hourly retention"
    );
    let left = |res: i64| {
        let store = store.clone();
        async move {
            store
                .list_traffic_rollups(id, res, now - days(400), now)
                .await
                .expect("list")
                .len()
        }
    };
    assert_eq!((left(MINUTE).await, left(HOUR).await), (1, 1));
    let logged: Vec<Value> = s
        .call(
            Method::GET,
            &format!("/api/v1/reverse-tunnels/devices/RET1/reverse-tunnels/{id}/access-log"),
            &admin,
            None,
        )
        .await
        .expect("log")
        .1["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0]["path"], "/6");

    // Two days later by the clock, the rows kept so far are past their retention too.
    clock.advance(days(2));
    let pruned = s.running.scheduler.prune_traffic().await.expect("prune");
    assert_eq!((pruned.access_log, pruned.minute, pruned.hour), (1, 1, 1));
    assert_eq!(pruned.principal_usage, 1);
    assert_eq!((left(MINUTE).await, left(HOUR).await), (0, 0));
}

/// `analytics = false`: no rollups, usage per principal or access log rows, while the seed's
/// `total_requests` still counts every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analytics_off_keeps_only_the_seeds_counters() {
    let s = TestStack::start_configured(Backend::Sqlite, |c| c.analytics = false)
        .await
        .expect("stack");
    let admin = s.admin_token().await.expect("admin");
    let (t, _peer) = s
        .public_tunnel(&admin, "ANA3", service().await)
        .await
        .expect("tunnel");
    let host = t["public_url"].as_str().expect("host").to_string();
    let base = format!(
        "/api/v1/reverse-tunnels/devices/ANA3/reverse-tunnels/{}",
        t["id"]
    );
    for _ in 0..4 {
        let r = s
            .http
            .get(s.url("/ok"))
            .header("host", &host)
            .send()
            .await
            .expect("ok");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.text().await.expect("body"), "0123456789");
    }
    s.running.ops.edge.flush_all().await;

    let (status, tunnel) = s
        .call(Method::GET, &base, &admin, None)
        .await
        .expect("tunnel");
    assert_eq!(status, StatusCode::OK, "{tunnel}");
    assert_eq!(tunnel["total_requests"], 4, "{tunnel}");
    let (_, log) = s
        .call(Method::GET, &format!("{base}/access-log"), &admin, None)
        .await
        .expect("log");
    assert_eq!(log["items"].as_array().map(Vec::len), Some(0), "{log}");
    let from = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let to = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
    let (status, a) = s
        .call(
            Method::GET,
            &format!(
                "{base}/analytics?from={}&to={}&step=60",
                enc(&from),
                enc(&to)
            ),
            &admin,
            None,
        )
        .await
        .expect("analytics");
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["totals"]["requests"], 0, "{a}");
}
