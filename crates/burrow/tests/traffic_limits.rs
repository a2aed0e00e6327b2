//! Per-tunnel limits through the whole request path (client → edge → broker → a destination
//! peer connected the way the agent connects → a local service): rate limits answer 429
//! without reaching the device, bandwidth is shaped without losing a byte, one client cannot
//! hold more than its share of requests, and bad limits are 422.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use burrow::testkit::topology::{HostSpec, Topology};
use burrow::testkit::{Backend, TestStack};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TEN_MB: usize = 10 * 1024 * 1024;

fn ten_mb() -> Vec<u8> {
    (0..TEN_MB).map(|i| (i * 7 % 253) as u8).collect()
}

/// The device's service: `/` counts hits, `/big` is 10 MiB, `/wait` answers when released.
async fn device_service(release: Arc<tokio::sync::Semaphore>) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let (h1, h2) = (hits.clone(), hits.clone());
    let app = axum::Router::new()
        .route(
            "/",
            get(move || {
                h1.fetch_add(1, Ordering::SeqCst);
                async { "ok" }
            }),
        )
        .route("/big", get(|| async { ten_mb() }))
        .route(
            "/wait",
            get(move || {
                h2.fetch_add(1, Ordering::SeqCst);
                let release = release.clone();
                async move {
                    let _permit = release.acquire().await;
                    "released"
                }
            }),
        );
    let addr = burrow::testkit::serve_local(app).await.expect("service");
    (addr, hits)
}

/// A tunnel of device `dsn` to `svc` with `limits` merged into the create body, and its
/// device side connected.
async fn limited_tunnel(
    s: &TestStack,
    admin: &str,
    dsn: &str,
    svc: SocketAddr,
    limits: Value,
) -> (Value, burrow_client::DestinationClient) {
    let (t, peer) = s.public_tunnel(admin, dsn, svc).await.expect("tunnel");
    let path = format!(
        "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{}",
        t["id"]
    );
    let (status, t) = s
        .call(Method::PUT, &path, admin, Some(&limits))
        .await
        .expect("update");
    assert_eq!(status, StatusCode::OK, "{t}");
    (t, peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_admits_the_rate_and_the_rest_never_reach_the_device() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("admin");
    let (svc, hits) = device_service(Arc::new(tokio::sync::Semaphore::new(0))).await;
    let limits = json!({"rate_limit": {"requests_per_second": 10, "burst": 10}});
    let (t, _peer) = limited_tunnel(&s, &admin, "RATE1", svc, limits).await;
    assert_eq!(
        t["rate_limit"],
        json!({"requests_per_second": 10, "burst": 10, "per": "tunnel"})
    );
    let host = t["public_url"].as_str().expect("host").to_string();

    // 100 requests per second for 3 seconds, each on its own schedule (not waiting for the
    // previous answer), as a client hammering the tunnel would.
    let url = s.url("/");
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut sent = Vec::new();
    for _ in 0..300 {
        tick.tick().await;
        let (http, url, host) = (s.http.clone(), url.clone(), host.clone());
        sent.push(tokio::spawn(async move {
            let r = http
                .get(url)
                .header("host", host)
                .send()
                .await
                .expect("send");
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            (r.status(), retry)
        }));
    }
    let mut ok = 0;
    let mut limited = 0;
    for h in sent {
        match h.await.expect("join") {
            (StatusCode::OK, _) => ok += 1,
            (StatusCode::TOO_MANY_REQUESTS, Some(secs)) => {
                assert!((1..=2).contains(&secs), "Retry-After {secs}");
                limited += 1;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    // The burst, then 10 per second.
    let expected = 10.0 + 10.0 * secs;
    assert!(
        (ok as f64) >= expected * 0.8 && (ok as f64) <= expected + 5.0,
        "{ok} admitted in {secs:.1} s (expected ~{expected:.0})"
    );
    assert_eq!(ok + limited, 300);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        ok,
        "the device saw exactly the admitted requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_limit_shapes_a_download_byte_exact() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("admin");
    let (svc, _) = device_service(Arc::new(tokio::sync::Semaphore::new(0))).await;
    let limits = json!({"bandwidth_limit": {"bytes_per_second": 1024 * 1024}});
    let (t, _peer) = limited_tunnel(&s, &admin, "BW1", svc, limits).await;
    let host = t["public_url"].as_str().expect("host").to_string();
    let started = Instant::now();
    let body = s
        .http
        .get(s.url("/big"))
        .header("host", &host)
        .send()
        .await
        .expect("send")
        .bytes()
        .await
        .expect("body");
    let took = started.elapsed();
    assert_eq!(body.len(), TEN_MB);
    assert_eq!(
        Sha256::digest(&body),
        Sha256::digest(ten_mb()),
        "byte-exact"
    );
    // Never faster than the limit (the burst allows one second's worth); the upper bound only
    // catches a shaper that throttles far below it (a loaded CI machine once took 12.9 s).
    assert!(
        took >= Duration::from_secs(9) && took <= Duration::from_secs(18),
        "10 MiB at 1 MiB/s took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_hold_more_than_its_connections() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("admin");
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let (svc, hits) = device_service(release.clone()).await;
    let limits = json!({"max_connections_per_client": 2});
    let (t, _peer) = limited_tunnel(&s, &admin, "CONN1", svc, limits).await;
    assert_eq!(t["max_connections_per_client"], 2);
    let host = t["public_url"].as_str().expect("host").to_string();
    let wait = |http: reqwest::Client, url: String, host: String| {
        tokio::spawn(async move {
            http.get(url)
                .header("host", host)
                .send()
                .await
                .expect("send")
                .status()
        })
    };
    let a = wait(s.http.clone(), s.url("/wait"), host.clone());
    let b = wait(s.http.clone(), s.url("/wait"), host.clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    while hits.load(Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "the two requests never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let third = s
        .http
        .get(s.url("/wait"))
        .header("host", &host)
        .send()
        .await
        .expect("send");
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "the third never reached the device"
    );
    release.add_permits(10);
    assert_eq!(a.await.expect("a"), StatusCode::OK);
    assert_eq!(b.await.expect("b"), StatusCode::OK);
    let again = s
        .http
        .get(s.url("/"))
        .header("host", &host)
        .send()
        .await
        .expect("send");
    assert_eq!(again.status(), StatusCode::OK, "slots are given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_limits_are_422_and_null_removes_a_limit() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("admin");
    s.project_with_device(&admin, "BAD1").await.expect("device");
    let path = "/api/v1/reverse-tunnels/devices/BAD1/reverse-tunnels";
    for (limits, field) in [
        (
            json!({"rate_limit": {"requests_per_second": 0}}),
            "rate_limit.requests_per_second",
        ),
        (
            json!({"rate_limit": {"requests_per_second": -3}}),
            "rate_limit.requests_per_second",
        ),
        (
            json!({"rate_limit": {"requests_per_second": 10_000_000}}),
            "rate_limit.requests_per_second",
        ),
        (
            json!({"rate_limit": {"requests_per_second": 5, "burst": 0}}),
            "rate_limit.burst",
        ),
        (
            json!({"rate_limit": {"requests_per_second": 5, "per": "user"}}),
            "rate_limit.per",
        ),
        (
            json!({"bandwidth_limit": {"bytes_per_second": 0}}),
            "bandwidth_limit.bytes_per_second",
        ),
        (
            json!({"bandwidth_limit": {"bytes_per_second": -1}}),
            "bandwidth_limit.bytes_per_second",
        ),
        (
            json!({"bandwidth_limit": {"bytes_per_second": 1_000_000_000_000_i64}}),
            "bandwidth_limit.bytes_per_second",
        ),
        (
            json!({"max_connections_per_client": 0}),
            "max_connections_per_client",
        ),
    ] {
        let mut body = json!({"name": "svc", "local_port": 8080});
        for (k, v) in limits.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (status, err) = s
            .call(Method::POST, path, &admin, Some(&body))
            .await
            .expect("call");
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{limits}: {err}");
        assert_eq!(err["field"], field, "{limits}: {err}");
    }
    let body = json!({"name": "svc", "local_port": 8080,
        "rate_limit": {"requests_per_second": 5, "per": "client_ip"},
        "max_connections_per_client": 3});
    let (status, t) = s
        .call(Method::POST, path, &admin, Some(&body))
        .await
        .expect("create");
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["rate_limit"]["burst"], 5, "burst defaults to the rate");
    let one = format!("{path}/{}", t["id"]);
    let (status, t) = s
        .call(
            Method::PUT,
            &one,
            &admin,
            Some(&json!({"rate_limit": null})),
        )
        .await
        .expect("update");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t["rate_limit"], Value::Null);
    assert_eq!(t["max_connections_per_client"], 3, "untouched");
}

/// `per: client_ip` on a topology of hosts: the server on one, two clients on two others.
/// The hammering client is limited; the other one, at the same time, is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ip_limit_limits_one_client_host_and_not_another() {
    let topo = Topology::build(&[
        HostSpec::new("burrow.test"),
        HostSpec::new("noisy.test"),
        HostSpec::new("quiet.test"),
    ])
    .expect("test hosts (network namespaces)");
    let server_host = topo.host("burrow.test").clone();
    let server_rt = server_host.runtime().expect("server runtime");
    let noisy_rt = topo.host("noisy.test").runtime().expect("noisy runtime");
    let quiet_rt = topo.host("quiet.test").runtime().expect("quiet runtime");

    // The stack (and the device side, on the server host) lives on the server host's runtime
    // until `stop` is sent.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    server_rt.spawn(async move {
        let s = TestStack::start_configured(Backend::Sqlite, |c| {
            c.listen = SocketAddr::from(([0, 0, 0, 0], 0));
        })
        .await
        .expect("stack");
        let admin = s.admin_token().await.expect("admin");
        let (svc, hits) = device_service(Arc::new(tokio::sync::Semaphore::new(0))).await;
        let limits =
            json!({"rate_limit": {"requests_per_second": 5, "burst": 5, "per": "client_ip"}});
        let (t, peer) = limited_tunnel(&s, &admin, "IP1", svc, limits).await;
        let host = t["public_url"].as_str().expect("host").to_string();
        let _ = ready_tx.send((s.addr.port(), host, hits));
        let _ = stopped.await;
        drop(peer);
        drop(s);
    });
    let (port, host, hits) = ready_rx.await.expect("server ready");
    let url = format!("http://{}/", server_host.addr(port));

    // Each client host sends `n` requests, `every` apart, and counts its answers.
    let run = |rt: &burrow::testkit::topology::HostRuntime, n: usize, every: Duration| {
        let (url, host) = (url.clone(), host.clone());
        rt.spawn(async move {
            let http = reqwest::Client::new();
            let mut tick = tokio::time::interval(every);
            let (mut ok, mut limited) = (0, 0);
            for _ in 0..n {
                tick.tick().await;
                match http.get(&url).header("host", &host).send().await {
                    Ok(r) if r.status() == StatusCode::OK => ok += 1,
                    Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS => limited += 1,
                    other => panic!("unexpected answer {other:?}"),
                }
            }
            (ok, limited)
        })
    };
    // Noisy: 50 r/s for 2 s. Quiet: 2 r/s for the same 2 s, well under its own 5 r/s.
    let noisy = run(&noisy_rt, 100, Duration::from_millis(20));
    let quiet = run(&quiet_rt, 4, Duration::from_millis(500));
    let (noisy_ok, noisy_limited) = noisy.await.expect("noisy");
    let (quiet_ok, quiet_limited) = quiet.await.expect("quiet");
    assert_eq!(
        (quiet_ok, quiet_limited),
        (4, 0),
        "the quiet host is unaffected"
    );
    assert!(
        (5..=20).contains(&noisy_ok) && noisy_limited >= 80,
        "noisy host: {noisy_ok} admitted, {noisy_limited} limited"
    );
    assert_eq!(hits.load(Ordering::SeqCst), noisy_ok + quiet_ok);
    let _ = stop.send(());
}
