//! The device agent end to end: a real server (test kit), a real local HTTP service, and
//! `burrow_agent::run` enrolled against the server — create, disable/enable, server restart,
//! device deletion. Real sockets on 127.0.0.1 port 0; readiness is polled, never slept for.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use burrow::testkit::{Backend, TestStack};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const BODY_LEN: usize = 1 << 20;
const DSN: &str = "AGENT-E2E-1";

fn body() -> Vec<u8> {
    (0..BODY_LEN).map(|i| (i * 31 % 251) as u8).collect()
}

/// A minimal HTTP/1.1 service: answers every request with the 1 MB body, counts requests.
async fn http_service() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let body = Arc::new(body());
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            let (counter, body) = (counter.clone(), body.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let header = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tcp.write_all(header.as_bytes()).await;
                let _ = tcp.write_all(&body).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    (addr, hits)
}

/// Polls `check` every 20 ms until it holds, for at most `limit`.
async fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// GET / through the tunnel with the broker's in-process source; answers the body.
async fn get_through(stack: &TestStack, tunnel_id: &str, service: &str) -> Vec<u8> {
    let fetch = async {
        let mut s = stack
            .running
            .broker
            .connect_source(tunnel_id, service)
            .await
            .expect("source connects");
        s.write_all(b"GET / HTTP/1.1\r\nHost: device\r\nConnection: close\r\n\r\n")
            .await
            .expect("request written");
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = s.read(&mut buf).await.expect("read response");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                if got.len() >= end + 4 + BODY_LEN {
                    break;
                }
            }
        }
        let end = got
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("response head");
        assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
        got.split_off(end + 4)
    };
    tokio::time::timeout(Duration::from_secs(20), fetch)
        .await
        .expect("response within 20 s")
}

fn assert_same_body(got: &[u8]) {
    assert_eq!(got.len(), BODY_LEN, "body length");
    assert_eq!(
        Sha256::digest(got),
        Sha256::digest(body()),
        "body is byte-exact"
    );
}

fn agent_status(dir: &Path) -> burrow_agent::status::AgentStatus {
    burrow_agent::status::read(dir).expect("status.json")
}

async fn get_tunnel(stack: &TestStack, token: &str, id: i64) -> Value {
    let resp = stack
        .http
        .get(stack.url(&format!(
            "/api/v1/reverse-tunnels/devices/{DSN}/reverse-tunnels/{id}"
        )))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "GET tunnel");
    resp.json().await.unwrap()
}

/// Waits until the broker tunnel the row points at has the agent's destination; answers
/// its id. (The row is read each time: when the agent's config poll and the API provision
/// the same tunnel concurrently, the server may keep another broker tunnel than the one the
/// API call answered.)
async fn connected_tunnel(stack: &TestStack, token: &str, id: i64, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let row = get_tunnel(stack, token, id).await;
        if let Some(t) = row["tunnel_id"].as_str() {
            if stack.running.broker.is_destination_connected(t) {
                return t.to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "destination not connected within {limit:?}: {row}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn put_enabled(stack: &TestStack, token: &str, id: i64, enabled: bool) -> Value {
    let resp = stack
        .http
        .put(stack.url(&format!(
            "/api/v1/reverse-tunnels/devices/{DSN}/reverse-tunnels/{id}"
        )))
        .bearer_auth(token)
        .json(&json!({ "is_enabled": enabled }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "PUT is_enabled={enabled}");
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_carries_tunnels_through_changes_restarts_and_deletion() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();

    // 1. Server, local service, device, enrollment, agent.
    let stack = TestStack::start_isolated(Backend::Sqlite)
        .await
        .expect("stack");
    let (service_addr, hits) = http_service().await;
    let token = stack.admin_token().await.unwrap();
    let (_pid, device) = stack.project_with_device(&token, DSN).await.unwrap();
    let enrollment = device["enrollment_token"].as_str().unwrap().to_string();
    let agent_dir = tempfile::tempdir().unwrap();
    let dir = agent_dir.path().join("agent");
    let dsn = stack
        .enroll_agent(&enrollment, &dir)
        .await
        .expect("enrolls");
    assert_eq!(dsn, DSN);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let agent_dir_run = dir.clone();
    let agent = tokio::spawn(async move {
        burrow_agent::run(&agent_dir_run, async {
            let _ = stop_rx.await;
        })
        .await
    });

    // 2. A tunnel to the local service: destination within 2 s, byte-exact traffic.
    let resp = stack
        .http
        .post(stack.url(&format!(
            "/api/v1/reverse-tunnels/devices/{DSN}/reverse-tunnels"
        )))
        .bearer_auth(&token)
        .json(
            &json!({"name": "Web Dashboard", "local_port": service_addr.port(),
                      "protocol": "http"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let t: Value = resp.json().await.unwrap();
    let id = t["id"].as_i64().unwrap();
    assert!(t["tunnel_id"].is_string(), "opened at creation: {t}");
    let service = format!("HTTP-{}", service_addr.port());
    let broker = stack.running.broker.clone();
    let tid = connected_tunnel(&stack, &token, id, Duration::from_secs(2)).await;
    assert_same_body(&get_through(&stack, &tid, &service).await);
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // `burrow agent status --dir`.
    eventually("status shows connected", Duration::from_secs(2), || {
        agent_status(&dir)
            .tunnels
            .values()
            .any(|t| t.name == "Web Dashboard" && t.state.as_str() == "connected")
    })
    .await;
    let table = burrow_agent::status(&dir).unwrap();
    assert!(table.contains("Web Dashboard"), "{table}");
    assert!(table.contains("connected"), "{table}");
    assert!(
        table.contains(&format!("localhost:{}", service_addr.port())),
        "{table}"
    );

    // 3. Disable: cut within 2 s. Enable: a new broker tunnel, connected within 2 s.
    let off = put_enabled(&stack, &token, id, false).await;
    assert_eq!(off["tunnel_id"], Value::Null);
    eventually(
        "destination gone after disable",
        Duration::from_secs(2),
        || !broker.is_destination_connected(&tid),
    )
    .await;
    let on = put_enabled(&stack, &token, id, true).await;
    assert!(on["tunnel_id"].is_string(), "enabled again: {on}");
    // The tunnel the row points at now (the server may replace the one PUT answered, when
    // the agent's config poll provisions concurrently), connected within 2 s.
    let tid = connected_tunnel(&stack, &token, id, Duration::from_secs(2)).await;
    assert_same_body(&get_through(&stack, &tid, &service).await);

    // 4. The server dies and comes back on the same data and ports: the agent reconnects
    // by itself (backoff with jitter, so allow a few seconds).
    let stack = stack.restart().await.expect("restart");
    let broker = stack.running.broker.clone();
    let token = stack.admin_token().await.unwrap();
    let before_restart = tid;
    let tid = connected_tunnel(&stack, &token, id, Duration::from_secs(20)).await;
    assert_eq!(tid, before_restart, "the open tunnel survives the restart");
    assert_same_body(&get_through(&stack, &tid, &service).await);

    // 5. Delete the device: the agent is cut off and does not spin.
    let resp = stack
        .http
        .delete(stack.url(&format!("/api/v1/devices/{DSN}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(
        resp.status().is_success(),
        "delete device: {}",
        resp.status()
    );
    eventually(
        "destination gone after delete",
        Duration::from_secs(2),
        || !broker.is_destination_connected(&tid),
    )
    .await;
    eventually("agent sees the refusal", Duration::from_secs(5), || {
        agent_status(&dir).config == "refused"
    })
    .await;
    let before = agent_status(&dir).config_requests;
    tokio::time::sleep(Duration::from_secs(2)).await; // measuring a rate, not readiness
    let during = agent_status(&dir).config_requests - before;
    assert!(
        during < 10,
        "{during} config requests in 2 s: the agent spins"
    );
    let after = agent_status(&dir);
    assert!(
        after.tunnels.is_empty(),
        "no tunnel runs: {:?}",
        after.tunnels
    );
    assert!(
        !agent.is_finished(),
        "the agent keeps running after a refusal"
    );

    // Shutdown ends the agent cleanly.
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(5), agent)
        .await
        .expect("agent stops")
        .unwrap()
        .expect("agent ends without error");
}
