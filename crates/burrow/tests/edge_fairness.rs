//! One slow client must not stall its tunnel: while a client reads a 1 GiB download at
//! 1 MB/s, 1,000 small requests through the same tunnel all succeed quickly, and memory
//! stays bounded (the download's bytes wait in the service, not in burrow). Between the
//! edge and the device each tunnel connection has its own flow-control window, so the
//! slow stream's window fills and stops only that stream.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::routing::get;
use burrow::testkit::{reset_peak_rss, rss_bytes, Backend, TestStack};
use futures_util::StreamExt;

const GIB: u64 = 1 << 30;
const CHUNK: usize = 64 * 1024;
const SMALL_REQUESTS: usize = 1_000;
const CONCURRENCY: usize = 4;
/// The slow reader's pace.
const RATE: f64 = 1_000_000.0;
const MAX_GROWTH: u64 = 128 << 20;

async fn device_service() -> SocketAddr {
    let app = axum::Router::new()
        .route("/small", get(|| async { "ok" }))
        .route(
            "/big",
            get(|| async {
                let chunk = Bytes::from(vec![7u8; CHUNK]);
                let stream = futures_util::stream::iter(0..GIB / CHUNK as u64)
                    .map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
                Body::from_stream(stream)
            }),
        );
    burrow::testkit::serve_local(app)
        .await
        .expect("local service")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_download_does_not_stall_small_requests() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("login");
    let svc = device_service().await;
    let (t, _peer) = s.public_tunnel(&admin, "FAIR1", svc).await.expect("tunnel");
    let host = t["public_url"].as_str().expect("host").to_string();
    let url = |p: &str| format!("http://{}{p}", s.addr);

    // The slow reader: its own client (its own connection), paced to 1 MB/s.
    let slow = reqwest::Client::new()
        .get(url("/big"))
        .header("host", &host)
        .send()
        .await
        .expect("download starts");
    assert_eq!(slow.status(), 200);
    let (read_tx, mut read_rx) = tokio::sync::watch::channel(0u64);
    let reader = tokio::spawn(async move {
        let started = Instant::now();
        let mut read = 0u64;
        let mut body = slow.bytes_stream();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            read += chunk.len() as u64;
            let _ = read_tx.send(read);
            let due = Duration::from_secs_f64(read as f64 / RATE);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        read
    });
    // Let the download fill every window and buffer between the service and the reader.
    read_rx
        .wait_for(|r| *r >= 2_000_000)
        .await
        .expect("the download is read");
    reset_peak_rss().expect("reset peak RSS");
    let (base, _) = rss_bytes().expect("RSS");

    let mut workers = Vec::new();
    for w in 0..CONCURRENCY {
        let (http, u, host) = (s.http.clone(), url("/small"), host.clone());
        workers.push(tokio::spawn(async move {
            let mut took = Vec::new();
            for _ in (w..SMALL_REQUESTS).step_by(CONCURRENCY) {
                let t0 = Instant::now();
                let r = http
                    .get(&u)
                    .header("host", &host)
                    .send()
                    .await
                    .expect("small request");
                assert_eq!(r.status(), 200);
                assert_eq!(r.text().await.expect("body"), "ok");
                took.push(t0.elapsed());
            }
            took
        }));
    }
    let mut took = Vec::new();
    for w in workers {
        took.extend(w.await.expect("worker"));
    }
    assert_eq!(took.len(), SMALL_REQUESTS);
    took.sort();
    let p50 = took[took.len() / 2];
    let p99 = took[took.len() * 99 / 100];
    let (_, peak) = rss_bytes().expect("RSS");
    let read_so_far = *read_rx.borrow();
    eprintln!(
        "small requests p50 {p50:?} p99 {p99:?}; slow download at {} MB; RSS base {} MiB peak {} MiB",
        read_so_far / 1_000_000,
        base >> 20,
        peak >> 20
    );
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
    assert!(
        peak.saturating_sub(base) < MAX_GROWTH,
        "memory grew by {} MiB",
        (peak - base) >> 20
    );
    // The slow download is alive and still moving at its pace.
    let before = *read_rx.borrow();
    read_rx
        .wait_for(|r| *r > before + 500_000)
        .await
        .expect("the download goes on");
    assert!(!reader.is_finished());
    reader.abort();
}
