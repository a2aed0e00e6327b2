//! `/healthz`, `/readyz` and `/metrics`: who may read the metrics (a bearer `metrics_token`
//! on the main port, or a listener of their own), and that after traffic of a known shape
//! the per-tunnel counters say exactly that.

use std::net::SocketAddr;

use axum::http::StatusCode as AxumStatus;
use axum::routing::get;
use burrow::secret::Secret;
use burrow::testkit::{Backend, TestStack};
use reqwest::StatusCode;

const TOKEN: &str = "metrics-token-0123456789";

/// The value of the sample `name{labels}` in a Prometheus text exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

async fn service() -> SocketAddr {
    let app = axum::Router::new()
        .route("/ok", get(|| async { "0123456789" })) // 10 bytes
        .route(
            "/missing",
            get(|| async { (AxumStatus::NOT_FOUND, "nope") }),
        ) // 4 bytes
        .route("/boom", get(|| async { (AxumStatus::BAD_GATEWAY, "") }));
    burrow::testkit::serve_local(app).await.expect("service")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_and_count_known_traffic_exactly() {
    let s = TestStack::start_configured(Backend::Sqlite, |c| {
        c.metrics_token = Some(Secret::new(TOKEN));
    })
    .await
    .expect("stack");
    let health = s.http.get(s.url("/healthz")).send().await.expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);
    let ready = s.http.get(s.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);

    let no_token = s.http.get(s.url("/metrics")).send().await.expect("metrics");
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    let wrong = s
        .http
        .get(s.url("/metrics"))
        .bearer_auth("metrics-token-wrong-wrong")
        .send()
        .await
        .expect("metrics");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let admin = s.admin_token().await.expect("admin");
    let (t, _peer) = s
        .public_tunnel(&admin, "MET1", service().await)
        .await
        .expect("tunnel");
    let host = t["public_url"].as_str().expect("host").to_string();
    let id = t["id"].as_i64().expect("id");
    // Known shape: 7 × 200 (10 bytes), 3 × 404 (4 bytes), 2 × 502.
    for (path, n) in [("/ok", 7), ("/missing", 3), ("/boom", 2)] {
        for _ in 0..n {
            let r = s
                .http
                .get(s.url(path))
                .header("host", &host)
                .send()
                .await
                .expect("send");
            r.bytes().await.expect("body");
        }
    }
    let text = s
        .http
        .get(s.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let tunnel = format!("tunnel=\"{id}\"");
    let requests = |class: &str| {
        sample(
            &text,
            &format!("burrow_edge_requests_total{{{tunnel},class=\"{class}\"}}"),
        )
    };
    assert_eq!(requests("2xx"), Some(7.0), "{text}");
    assert_eq!(requests("4xx"), Some(3.0), "{text}");
    assert_eq!(requests("5xx"), Some(2.0), "{text}");
    assert_eq!(
        sample(
            &text,
            &format!("burrow_edge_response_bytes_total{{{tunnel}}}")
        ),
        Some(7.0 * 10.0 + 3.0 * 4.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("burrow_edge_request_duration_seconds_count{{{tunnel}}}")
        ),
        Some(12.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "burrow_connected_agents"),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "burrow_broker_peers").is_some_and(|p| p >= 1.0),
        "{text}"
    );
    assert!(
        sample(&text, "burrow_open_tunnels").is_some_and(|p| p >= 1.0),
        "{text}"
    );
    assert!(
        sample(&text, "burrow_scheduler_runs_total").is_some(),
        "{text}"
    );
    assert!(
        sample(&text, "burrow_database_errors_total").is_some(),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_stay_off_the_main_port_unless_configured_and_have_their_own_listener() {
    let s = TestStack::start_configured(Backend::Sqlite, |c| {
        c.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await
    .expect("stack");
    let main = s.http.get(s.url("/metrics")).send().await.expect("metrics");
    assert_ne!(
        main.status(),
        StatusCode::OK,
        "no token: not on the main port"
    );
    let addr = s.running.metrics_addr.expect("metrics listener");
    let r = s
        .http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain")));
    let text = r.text().await.expect("text");
    assert!(
        text.contains("# TYPE burrow_connected_agents gauge"),
        "{text}"
    );
    let ready = s
        .http
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
}
