//! Item 1 of issue 19: concurrent wrong logins cannot exhaust the server's memory. Alone in
//! its test binary, so that the process's resident memory is the server's (and this test's).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use burrow::testkit::{rss_bytes, Backend, TestStack};
use reqwest::StatusCode;
use serde_json::json;

const MIB: u64 = 1024 * 1024;

/// 200 concurrent wrong logins (10 addresses, 20 each: under the per-address quota, so every
/// one reaches the password check) leave resident memory under 64 MiB above the baseline;
/// each is answered 401, or 503 when no verifier frees up in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_wrong_logins_keep_memory_bounded() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let clients: Vec<reqwest::Client> = (0..10)
        .map(|i| {
            let ip: IpAddr = format!("127.0.1.{}", i + 1).parse().expect("ip");
            reqwest::Client::builder()
                .local_address(ip)
                .build()
                .expect("client")
        })
        .collect();
    let (baseline, _) = rss_bytes().expect("rss");
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    // Sampled rather than VmHWM: the peak since the baseline, not since the process began.
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                if let Some((now, _)) = rss_bytes() {
                    peak.fetch_max(now, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let url = s.url("/api/v1/auth/login");
    let attempts: Vec<_> = (0..200)
        .map(|i| {
            let http = clients[i % clients.len()].clone();
            let url = url.clone();
            tokio::spawn(async move {
                http.post(url)
                    .json(&json!({"email": format!("nobody{i}@x.test"), "password": "wrong"}))
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    let mut unauthorized = 0;
    for a in attempts {
        let status = a.await.expect("task").expect("answer");
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}"
        );
        if status == StatusCode::UNAUTHORIZED {
            unauthorized += 1;
        }
    }
    done.store(true, Ordering::SeqCst);
    sampler.await.expect("sampler");
    let grew = peak.load(Ordering::SeqCst).saturating_sub(baseline);
    eprintln!(
        "peak RSS grew by {} MiB; {unauthorized} verified",
        grew / MIB
    );
    assert!(unauthorized > 0, "some logins were verified");
    assert!(grew < 64 * MIB, "RSS grew by {} MiB", grew / MIB);
}
