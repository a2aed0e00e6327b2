//! 1 GiB each way through a public URL (client → edge → broker → device peer → local
//! service), sha256-exact, with the process's memory bounded: the edge, the broker and the
//! device side stream, they never hold a body. One test in its own binary, so that the
//! process's peak memory is this transfer's alone.

use std::net::SocketAddr;

use axum::body::Body;
use axum::body::Bytes;
use axum::extract::Query;
use axum::routing::{get, put};
use burrow::testkit::{reset_peak_rss, rss_bytes, Backend, TestStack};
use futures_util::StreamExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const GIB: u64 = 1 << 30;
const CHUNK: usize = 64 * 1024;
/// Far below the 1 GiB moved each way: holding a body would blow it.
const MAX_GROWTH: u64 = 128 << 20;

/// Chunk `i` of the deterministic test stream: a fixed pattern stamped with its index, so
/// a reordered or repeated chunk changes the hash.
fn chunk(i: u64) -> Bytes {
    let mut b: Vec<u8> = (0..CHUNK).map(|j| (j * 31 % 251) as u8).collect();
    b[..8].copy_from_slice(&i.to_le_bytes());
    Bytes::from(b)
}

fn stream_of(total: u64) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::iter(0..total / CHUNK as u64).map(|i| Ok(chunk(i)))
}

fn expected_sha(total: u64) -> String {
    let mut h = Sha256::new();
    for i in 0..total / CHUNK as u64 {
        h.update(chunk(i));
    }
    hex(h.finalize().as_slice())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(serde::Deserialize)]
struct Size {
    bytes: u64,
}

/// The device's service: `/sink` hashes what it receives, `/source` streams `bytes` bytes.
async fn device_service() -> SocketAddr {
    let app = axum::Router::new()
        .route(
            "/sink",
            put(|body: Body| async move {
                let mut h = Sha256::new();
                let mut len = 0u64;
                let mut s = body.into_data_stream();
                while let Some(c) = s.next().await {
                    let Ok(c) = c else {
                        return axum::Json(json!({"error": "body cut"}));
                    };
                    len += c.len() as u64;
                    h.update(&c);
                }
                axum::Json(json!({"len": len, "sha256": hex(h.finalize().as_slice())}))
            }),
        )
        .route(
            "/source",
            get(|Query(q): Query<Size>| async move { Body::from_stream(stream_of(q.bytes)) }),
        );
    burrow::testkit::serve_local(app)
        .await
        .expect("local service")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_each_way_is_exact_with_memory_bounded() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("login");
    let svc = device_service().await;
    let (t, _peer) = s.public_tunnel(&admin, "BULK1", svc).await.expect("tunnel");
    let host = t["public_url"].as_str().expect("host").to_string();
    let url = |p: &str| format!("http://{}{p}", s.addr);

    // Warm up every part of the path, then measure from here.
    let warm = s
        .http
        .get(url("/source?bytes=4194304"))
        .header("host", &host)
        .send()
        .await
        .expect("warm-up")
        .bytes()
        .await
        .expect("body");
    assert_eq!(warm.len(), 4 << 20);
    reset_peak_rss().expect("reset peak RSS");
    let (base, _) = rss_bytes().expect("RSS");

    // Upload: streamed from a generator, hashed by the device's service.
    let r = s
        .http
        .put(url("/sink"))
        .header("host", &host)
        .body(reqwest::Body::wrap_stream(stream_of(GIB)))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await.expect("json");
    assert_eq!(got["len"], GIB, "{got}");
    let want = expected_sha(GIB);
    assert_eq!(got["sha256"], want.as_str());

    // Download: hashed while read, never held.
    let r = s
        .http
        .get(url(&format!("/source?bytes={GIB}")))
        .header("host", &host)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    let mut h = Sha256::new();
    let mut len = 0u64;
    let mut body = r.bytes_stream();
    while let Some(c) = body.next().await {
        let c = c.expect("body chunk");
        len += c.len() as u64;
        h.update(&c);
    }
    assert_eq!(len, GIB);
    assert_eq!(hex(h.finalize().as_slice()), want);

    let (_, peak) = rss_bytes().expect("RSS");
    let growth = peak.saturating_sub(base);
    eprintln!(
        "RSS base {} MiB, peak {} MiB over 2 GiB moved",
        base >> 20,
        peak >> 20
    );
    assert!(
        growth < MAX_GROWTH,
        "peak RSS grew by {} MiB while moving 1 GiB each way",
        growth >> 20
    );
}
