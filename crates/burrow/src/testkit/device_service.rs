//! A device's local service for tests: what a robot's dashboard serves, on a real socket.
//! `/` says hello, `/big?bytes=N` sends N bytes of [`pattern`], `/events?n=N` streams N
//! server-sent events 20 ms apart, `/ws` echoes WebSocket text messages, `/count` answers
//! how many requests it has seen.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::Query;
use axum::routing::get;
use serde::Deserialize;

/// Byte `i` of a `/big` body.
pub fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) % 251) as u8
}

#[derive(Deserialize)]
struct Big {
    bytes: usize,
}

#[derive(Deserialize)]
struct Events {
    n: usize,
}

/// The most a `/big` request may ask for (a test service, not a disk filler).
const BIG_MAX: usize = 2 << 30;
const CHUNK: usize = 64 * 1024;

/// Serves on `127.0.0.1:0` until the runtime ends; answers the address and the request count.
pub async fn start() -> std::io::Result<(SocketAddr, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let app = axum::Router::new()
        .route("/", get(|| async { "hello from the device" }))
        .route("/big", get(big))
        .route("/events", get(events))
        .route("/ws", get(echo))
        .route(
            "/count",
            get({
                let hits = hits.clone();
                move || async move { hits.load(Ordering::SeqCst).to_string() }
            }),
        )
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                seen.fetch_add(1, Ordering::SeqCst);
                next.run(req)
            },
        ));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, hits))
}

async fn big(Query(q): Query<Big>) -> Body {
    let total = q.bytes.min(BIG_MAX);
    let chunks = futures_util::stream::unfold(0usize, move |at| async move {
        if at >= total {
            return None;
        }
        let n = CHUNK.min(total - at);
        let chunk: Vec<u8> = (at..at + n).map(pattern).collect();
        Some((Ok::<_, std::io::Error>(chunk), at + n))
    });
    Body::from_stream(chunks)
}

async fn events(Query(q): Query<Events>) -> axum::response::Response {
    let stream = futures_util::stream::unfold(0usize, move |i| async move {
        if i >= q.n {
            return None;
        }
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some((
            Ok::<_, std::io::Error>(format!("data: event {i}\n\n")),
            i + 1,
        ))
    });
    axum::response::Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

async fn echo(ws: WebSocketUpgrade) -> axum::response::Response {
    ws.on_upgrade(|mut socket| async move {
        while let Some(Ok(msg)) = socket.recv().await {
            if let Message::Text(t) = msg {
                if socket.send(Message::Text(t)).await.is_err() {
                    break;
                }
            }
        }
    })
}

/// Three text messages through `/ws` of the tunnel host `host`, reached at `addr` (the
/// edge), each echoed back within 5 s; then a clean close. Panics otherwise (tests).
pub async fn ws_echo_roundtrip(addr: SocketAddr, host: &str) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite;
    let mut req =
        tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}/ws"))
            .expect("request");
    req.headers_mut()
        .insert("host", host.parse().expect("host header"));
    let (mut ws, resp) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket through the tunnel");
    assert_eq!(resp.status(), 101);
    for i in 0..3 {
        ws.send(tungstenite::Message::text(format!("m{i}")))
            .await
            .expect("send");
        let got = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("echo in time")
            .expect("open")
            .expect("message");
        assert_eq!(got.into_text().expect("text").as_str(), format!("m{i}"));
    }
    ws.close(None).await.expect("close");
}
