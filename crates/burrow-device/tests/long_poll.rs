//! Live config: `?wait=S&version=V` answers within moments of `device_changed`.

mod common;

use std::time::{Duration, Instant};

use burrow_device::DeviceConfigResponse;
use chrono::Utc;
use common::*;

/// Waits until the server has a poll of `device_id` subscribed (readiness, not a guess).
async fn until_waiting(fx: &Fixture, device_id: i64) {
    let start = Instant::now();
    while fx.notifier.waiting(device_id) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "poll never started waiting"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn long_poll_returns_within_two_seconds_of_a_change() {
    let fx = Fixture::new().await;
    let dev = fx.device("DEV-L").await;
    fx.tunnel(&dev, "Web", 8080, true).await;
    let creds = fx.creds(&dev).await;
    let addr = fx.start_mtls().await;
    let client = fx.client(Some(&creds));
    let url = config_url(addr, "DEV-L");
    let first: DeviceConfigResponse = client.get(&url).send().await.unwrap().json().await.unwrap();

    let poll = tokio::spawn({
        let client = client.clone();
        let url = format!("{url}?wait=30&version={}", first.version);
        async move {
            client
                .get(&url)
                .send()
                .await
                .unwrap()
                .json::<DeviceConfigResponse>()
                .await
                .unwrap()
        }
    });
    until_waiting(&fx, dev.id).await;
    let changed_at = Instant::now();
    fx.tunnel(&dev, "Cam", 9000, true).await;
    fx.notifier.device_changed(dev.id);
    let second = tokio::time::timeout(Duration::from_secs(2), poll)
        .await
        .expect("answered within 2 s")
        .unwrap();
    assert!(changed_at.elapsed() < Duration::from_secs(2));
    assert_ne!(second.version, first.version);
    assert_eq!(second.tunnels.len(), 2);
    assert_eq!(second.tunnels[1].service, "HTTP-9000");
}

#[tokio::test]
async fn unchanged_poll_times_out_and_stale_version_returns_at_once() {
    let fx = Fixture::new().await;
    let dev = fx.device("DEV-M").await;
    fx.tunnel(&dev, "Web", 8080, true).await;
    let creds = fx.creds(&dev).await;
    let addr = fx.start_mtls().await;
    let client = fx.client(Some(&creds));
    let url = config_url(addr, "DEV-M");
    let first: DeviceConfigResponse = client.get(&url).send().await.unwrap().json().await.unwrap();

    let start = Instant::now();
    let same: DeviceConfigResponse = client
        .get(format!("{url}?wait=1&version={}", first.version))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert_eq!(same.version, first.version);

    // A change that does not alter the answer keeps the poll waiting until its timeout.
    let start = Instant::now();
    let poll = tokio::spawn({
        let client = client.clone();
        let url = format!("{url}?wait=1&version={}", first.version);
        async move {
            client
                .get(&url)
                .send()
                .await
                .unwrap()
                .json::<DeviceConfigResponse>()
                .await
                .unwrap()
        }
    });
    until_waiting(&fx, dev.id).await;
    fx.notifier.device_changed(dev.id);
    assert_eq!(poll.await.unwrap().version, first.version);
    assert!(start.elapsed() >= Duration::from_millis(900));

    let start = Instant::now();
    let fresh: DeviceConfigResponse = client
        .get(format!("{url}?wait=30&version=stale"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(fresh.version, first.version);
}

#[tokio::test]
async fn revocation_ends_a_waiting_poll_with_403() {
    let fx = Fixture::new().await;
    let dev = fx.device("DEV-N").await;
    let creds = fx.creds(&dev).await;
    let addr = fx.start_mtls().await;
    let client = fx.client(Some(&creds));
    let url = config_url(addr, "DEV-N");
    let first: DeviceConfigResponse = client.get(&url).send().await.unwrap().json().await.unwrap();
    let poll = tokio::spawn({
        let client = client.clone();
        let url = format!("{url}?wait=30&version={}", first.version);
        async move { client.get(&url).send().await.unwrap().status() }
    });
    until_waiting(&fx, dev.id).await;
    fx.store.revoke_device(dev.id, Utc::now()).await.unwrap();
    fx.notifier.device_changed(dev.id);
    let status = tokio::time::timeout(Duration::from_secs(2), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 403);
}
