//! Rotation nobody notices: a real agent, continuous small requests, a long download and a
//! WebSocket through one tunnel's public URL, and 10 rotations in a row. No request fails,
//! the download arrives byte-exact, the WebSocket stays open; each old tunnel closes once
//! the connections it carried have ended, and its token no longer connects.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message as WsMessage, WebSocketUpgrade};
use axum::routing::get;
use burrow::testkit::{Backend, Load, TestStack};
use burrow_client::{ClientConfig, DestinationClient, Secret, Targets};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

const DSN: &str = "ROTD1";
const CHUNK: usize = 16 * 1024;
const ROTATIONS: usize = 10;

fn chunk(i: u64) -> Bytes {
    let mut b: Vec<u8> = (0..CHUNK).map(|j| (j * 7 % 253) as u8).collect();
    b[..8].copy_from_slice(&i.to_le_bytes());
    Bytes::from(b)
}

/// The device's service. `/download` streams paced chunks until `stop` is set, then ends and
/// records the sha256 of everything it sent.
struct Service {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    sent_sha: Arc<Mutex<Option<(u64, String)>>>,
}

async fn service() -> Service {
    let stop = Arc::new(AtomicBool::new(false));
    let sent_sha = Arc::new(Mutex::new(None));
    let (stop2, sent2) = (stop.clone(), sent_sha.clone());
    let app = axum::Router::new()
        .route("/small", get(|| async { "ok" }))
        .route(
            "/download",
            get(move || {
                let (stop, sent) = (stop2.clone(), sent2.clone());
                async move {
                    let stream = futures_util::stream::unfold(
                        (0u64, Sha256::new(), false),
                        move |(i, mut h, done)| {
                            let (stop, sent) = (stop.clone(), sent.clone());
                            async move {
                                if done {
                                    return None;
                                }
                                tokio::time::sleep(Duration::from_millis(5)).await;
                                let c = chunk(i);
                                h.update(&c);
                                let last = stop.load(Ordering::SeqCst);
                                if last {
                                    let sha = hex(h.clone().finalize().as_slice());
                                    *sent.lock().expect("lock") = Some((i + 1, sha));
                                }
                                Some((Ok::<_, std::io::Error>(c), (i + 1, h, last)))
                            }
                        },
                    );
                    Body::from_stream(stream)
                }
            }),
        )
        .route(
            "/ws",
            get(|ws: WebSocketUpgrade| async move {
                ws.on_upgrade(|mut socket| async move {
                    while let Some(Ok(msg)) = socket.recv().await {
                        if let WsMessage::Text(t) = msg {
                            if socket.send(WsMessage::Text(t)).await.is_err() {
                                break;
                            }
                        }
                    }
                })
            }),
        );
    let addr = burrow::testkit::serve_local(app)
        .await
        .expect("local service");
    Service {
        addr,
        stop,
        sent_sha,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn row(s: &TestStack, admin: &str, id: i64) -> Value {
    let (status, v) = s
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/reverse-tunnels/devices/{DSN}/reverse-tunnels/{id}"),
            admin,
            None,
        )
        .await
        .expect("get tunnel");
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

/// Waits (bounded) until the row names a tunnel other than `not` whose destination (the
/// agent) is connected; answers its id.
async fn agent_on_new_tunnel(s: &TestStack, admin: &str, id: i64, not: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = row(s, admin, id).await;
        if let Some(t) = r["tunnel_id"].as_str() {
            if t != not && s.running.broker.is_destination_connected(t) {
                return t.to_string();
            }
        }
        assert!(Instant::now() < deadline, "agent never moved over: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_rotations_under_load_keep_downloads_and_websockets() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("login");
    let svc = service().await;

    // A real agent, enrolled through the API.
    let (_pid, device) = s.project_with_device(&admin, DSN).await.expect("device");
    let enrollment = device["enrollment_token"]
        .as_str()
        .expect("token")
        .to_string();
    let agent_home = tempfile::tempdir().expect("tempdir");
    let dir = agent_home.path().join("agent");
    s.enroll_agent(&enrollment, &dir).await.expect("enrolls");
    let (stop_agent, agent_stop) = tokio::sync::oneshot::channel::<()>();
    let agent_dir = dir.clone();
    let agent = tokio::spawn(async move {
        burrow_agent::run(&agent_dir, async {
            let _ = agent_stop.await;
        })
        .await
    });

    let (status, t) = s
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/reverse-tunnels/devices/{DSN}/reverse-tunnels"),
            &admin,
            Some(&json!({"name": "Dash", "local_port": svc.addr.port(), "require_auth": false})),
        )
        .await
        .expect("create");
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let id = t["id"].as_i64().expect("id");
    let host = t["public_url"].as_str().expect("host").to_string();
    let mut current = agent_on_new_tunnel(&s, &admin, id, "").await;
    let mut tokens = Vec::new();
    let broker = s.running.broker.clone();
    tokens.push(broker.destination_token(&current).await.expect("token"));

    // The long download and the WebSocket, both on the first tunnel.
    let download = s
        .http
        .get(format!("http://{}/download", s.addr))
        .header("host", &host)
        .send()
        .await
        .expect("download starts");
    assert_eq!(download.status(), StatusCode::OK);
    let downloader = tokio::spawn(async move {
        let mut h = Sha256::new();
        let mut len = 0u64;
        let mut body = download.bytes_stream();
        while let Some(c) = body.next().await {
            let c = c.map_err(|e| format!("download cut after {len} bytes: {e}"))?;
            len += c.len() as u64;
            h.update(&c);
        }
        Ok::<_, String>((len, hex(h.finalize().as_slice())))
    });
    let mut ws_req =
        tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{}/ws", s.addr))
            .expect("ws request");
    ws_req
        .headers_mut()
        .insert("host", host.parse().expect("host header"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_req)
        .await
        .expect("websocket through the tunnel");
    let echo = |ws_n: usize| format!("ping {ws_n}");
    ws.send(tungstenite::Message::text(echo(0)))
        .await
        .expect("ws send");
    let reply = ws.next().await.expect("ws open").expect("ws reply");
    assert_eq!(reply.into_text().expect("text").as_str(), echo(0));

    // Continuous small requests.
    let load = Load::start(&s.http, format!("http://{}/small", s.addr), &host, 4);

    let mut retired = Vec::new();
    for round in 1..=ROTATIONS {
        let (status, rotated) = s
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/reverse-tunnels/devices/{DSN}/reverse-tunnels/{id}/rotate"),
                &admin,
                None,
            )
            .await
            .expect("rotate");
        assert_eq!(status, StatusCode::OK, "{rotated}");
        assert!(
            rotated.get("destination_access_token").is_none(),
            "no token in a response"
        );
        let next = agent_on_new_tunnel(&s, &admin, id, &current).await;
        tokens.push(broker.destination_token(&next).await.expect("token"));
        retired.push(std::mem::replace(&mut current, next));
        // The WebSocket on the first tunnel is still open and answers.
        ws.send(tungstenite::Message::text(echo(round)))
            .await
            .expect("ws send");
        let reply = ws.next().await.expect("ws open").expect("ws reply");
        assert_eq!(
            reply.into_text().expect("text").as_str(),
            echo(round),
            "round {round}"
        );
    }

    // The tunnels that carried only small requests drain and close; the first one stays
    // open while the download and the WebSocket are on it.
    let closed = |t: &str| {
        let broker = broker.clone();
        let t = t.to_string();
        async move {
            broker.describe(&t).await.expect("describe").status
                == burrow_broker::TunnelStatus::Closed
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    for t in &retired[1..] {
        while !closed(t).await {
            assert!(Instant::now() < deadline, "{t} never closed after draining");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(
        !closed(&retired[0]).await,
        "the first tunnel must stay open while its connections run"
    );

    // End the load, the download and the WebSocket.
    let (ok, failures) = load.stop().await;
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok > 50, "load ran: {ok}");
    svc.stop.store(true, Ordering::SeqCst);
    let (len, sha) = tokio::time::timeout(Duration::from_secs(30), downloader)
        .await
        .expect("download ends")
        .expect("join")
        .expect("download complete");
    let (chunks, sent) = svc
        .sent_sha
        .lock()
        .expect("lock")
        .clone()
        .expect("service finished");
    assert_eq!(len, chunks * CHUNK as u64);
    assert_eq!(sha, sent, "byte-exact download");
    assert!(len > (ROTATIONS * CHUNK) as u64);
    ws.close(None).await.expect("ws close");

    // Now the first tunnel drains too; no old token connects any more.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !closed(&retired[0]).await {
        assert!(Instant::now() < deadline, "first tunnel never closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for token in &tokens[..ROTATIONS] {
        let cfg = ClientConfig::new(format!("ws://{}", s.addr), Secret::new(token.expose()));
        assert!(DestinationClient::connect(cfg, Targets::new())
            .await
            .is_err());
    }
    // And the current tunnel still serves.
    let r = s
        .http
        .get(format!("http://{}/small", s.addr))
        .header("host", &host)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    let _ = stop_agent.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), agent).await;
}
