//! A WebSocket through a tunnel stays under the tunnel's limits once upgraded: its bytes are
//! shaped by `bandwidth_limit` (each direction, nothing lost), and it keeps counting against
//! `max_connections_per_client` until it closes. Client → edge → broker → a destination peer
//! connected the way the agent connects → the test device service's `/ws` echo.

use std::time::{Duration, Instant};

use burrow::testkit::processes::eventually;
use burrow::testkit::{device_service, Backend, TestStack};
use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, Message};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The test device service behind a public `ws` tunnel of `dsn` with `limits`; answers the
/// tunnel host and the device side (dropped: disconnected).
async fn ws_tunnel(
    s: &TestStack,
    admin: &str,
    dsn: &str,
    limits: Value,
) -> (String, burrow_client::DestinationClient) {
    let (svc, _) = device_service::start().await.expect("device service");
    let (t, peer) = s
        .public_tunnel_with(admin, dsn, svc, "ws")
        .await
        .expect("tunnel");
    let path = format!(
        "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{}",
        t["id"]
    );
    let (status, t) = s
        .call(Method::PUT, &path, admin, Some(&limits))
        .await
        .expect("limits");
    assert_eq!(status, StatusCode::OK, "{t}");
    (t["public_url"].as_str().expect("host").to_string(), peer)
}

async fn open_ws(s: &TestStack, host: &str) -> Ws {
    let mut req =
        tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{}/ws", s.addr))
            .expect("request");
    req.headers_mut()
        .insert("host", host.parse().expect("host header"));
    let (ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket through the tunnel");
    assert_eq!(resp.status(), 101);
    ws
}

/// Message `i` of the bandwidth test: `len` bytes of printable text.
fn message(i: usize, len: usize) -> String {
    (0..len)
        .map(|j| char::from(b'a' + ((i * 7 + j) % 26) as u8))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_bytes_are_shaped_by_the_bandwidth_limit() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("admin");
    const RATE: usize = 512 * 1024;
    let limits = json!({"bandwidth_limit": {"bytes_per_second": RATE}});
    let (host, _peer) = ws_tunnel(&s, &admin, "WSBW1", limits).await;
    let mut ws = open_ws(&s, &host).await;

    // 2 MiB each way, echoed: at 512 KiB/s per direction (pipelined) about 4 s, minus the
    // shaper's quarter second of burst.
    const MESSAGES: usize = 8;
    const LEN: usize = 256 * 1024;
    let started = Instant::now();
    let (mut tx, mut rx) = ws.split();
    let sender = tokio::spawn(async move {
        for i in 0..MESSAGES {
            tx.send(Message::text(message(i, LEN))).await.expect("send");
        }
        tx
    });
    for i in 0..MESSAGES {
        let got = tokio::time::timeout(Duration::from_secs(20), rx.next())
            .await
            .expect("echo in time")
            .expect("open")
            .expect("message");
        assert!(
            got.into_text().expect("text").as_str() == message(i, LEN),
            "message {i} byte-exact"
        );
    }
    let took = started.elapsed();
    let total = (MESSAGES * LEN) as f64;
    let expected = Duration::from_secs_f64(total / RATE as f64);
    assert!(
        took >= expected.mul_f64(0.8) && took <= expected.mul_f64(1.8),
        "{} bytes each way at {RATE} B/s took {took:?} (expected about {expected:?})",
        MESSAGES * LEN
    );
    ws = sender.await.expect("sender").reunite(rx).expect("reunite");
    ws.close(None).await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_websocket_keeps_its_connection_slot() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("admin");
    let limits = json!({"max_connections_per_client": 1});
    let (host, _peer) = ws_tunnel(&s, &admin, "WSCONN1", limits).await;
    let get = || async {
        s.http
            .get(s.url("/"))
            .header("host", &host)
            .send()
            .await
            .expect("send")
            .status()
    };
    assert_eq!(get().await, StatusCode::OK, "a free slot before");

    let mut ws = open_ws(&s, &host).await;
    ws.send(Message::text("ping")).await.expect("send");
    let echoed = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("echo in time")
        .expect("open")
        .expect("message");
    assert_eq!(echoed.into_text().expect("text").as_str(), "ping");
    assert_eq!(
        get().await,
        StatusCode::TOO_MANY_REQUESTS,
        "the open WebSocket holds the client's only slot"
    );
    let second =
        tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{}/ws", s.addr))
            .map(|mut r| {
                r.headers_mut()
                    .insert("host", host.parse().expect("host header"));
                r
            })
            .expect("request");
    match tokio_tungstenite::connect_async(second).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 429),
        other => panic!("a second WebSocket must be refused with 429: {other:?}"),
    }

    ws.close(None).await.expect("close");
    drop(ws);
    eventually(
        "the slot is given back once the WebSocket closed",
        Duration::from_secs(10),
        || async { (get().await == StatusCode::OK).then_some(()) },
    )
    .await;
}
