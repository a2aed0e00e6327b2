//! Volume through the broker: byte-exact bulk transfer, and bounded memory when a reader
//! stops reading.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burrow_broker::BrokerConfig;
use burrow_client::{DestinationClient, SourceClient, Subprotocol, Targets};
use common::*;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOTAL: usize = 100 * 1024 * 1024;
const CONNECTIONS: usize = 16;

/// 100 MiB up and the same 100 MiB back down (an echo service), over 16 simultaneous
/// connections, checked with SHA-256 on each connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_megabytes_each_way_on_16_connections() {
    let s = stack().await;
    let t = s.open(&["ECHO"]).await;
    let echo = echo_server().await;
    let _dst = DestinationClient::connect(
        s.client(&t.destination_token),
        Targets::new().service("ECHO", echo),
    )
    .await
    .unwrap();
    let src = SourceClient::connect(s.client(&t.source_token))
        .await
        .unwrap();
    assert_eq!(src.subprotocol(), Subprotocol::Burrow1);
    let started = Instant::now();
    let per_conn = TOTAL / CONNECTIONS;
    let mut tasks = Vec::new();
    for i in 0..CONNECTIONS {
        let stream = src.open_stream("ECHO").await.unwrap();
        tasks.push(tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(stream);
            let writer = async move {
                let mut hash = Sha256::new();
                let block = pattern(256 * 1024, i as u64);
                let mut sent = 0;
                while sent < per_conn {
                    let n = block.len().min(per_conn - sent);
                    // Vary the bytes per block so a misplaced block cannot hash the same.
                    let mut chunk = block[..n].to_vec();
                    chunk[0] = (sent / block.len()) as u8;
                    hash.update(&chunk);
                    w.write_all(&chunk).await.unwrap();
                    sent += n;
                }
                (hash.finalize(), w)
            };
            let reader = async move {
                let mut hash = Sha256::new();
                let mut buf = vec![0u8; 128 * 1024];
                let mut got = 0;
                while got < per_conn {
                    let n = r.read(&mut buf).await.unwrap();
                    assert!(n > 0, "early EOF on connection {i} after {got} bytes");
                    hash.update(&buf[..n]);
                    got += n;
                }
                hash.finalize()
            };
            let ((sent, _w), received) = tokio::join!(writer, reader);
            assert_eq!(sent, received, "connection {i} is byte-exact");
        }));
    }
    for task in tasks {
        within(300, task).await.unwrap();
    }
    let took = started.elapsed();
    println!("100 MiB each way on {CONNECTIONS} connections: {took:.2?}");
    assert!(s.broker.buffered_bytes() <= s.broker.config().per_tunnel_buffer);
}

/// Writes into `stream` until the writes stop making progress, and answers how much went in.
async fn write_until_stalled(stream: impl tokio::io::AsyncWrite + Send + 'static) -> usize {
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let writer = tokio::spawn(async move {
        let mut stream = Box::pin(stream);
        let block = vec![0x5Au8; 16 * 1024];
        while stream.write_all(&block).await.is_ok() {
            counter.fetch_add(block.len(), Ordering::Relaxed);
        }
    });
    // Stalled = no progress for 500 ms (bounded: 30 s).
    within(30, async {
        let mut last = usize::MAX;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = written.load(Ordering::Relaxed);
            if now == last {
                break;
            }
            last = now;
        }
    })
    .await;
    writer.abort();
    written.load(Ordering::Relaxed)
}

/// A destination-side local service that never reads: the AWS-compatible path (V3, no flow
/// control) stalls, and the broker holds at most its documented cap for the tunnel while
/// another tunnel keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_reader_keeps_broker_memory_bounded() {
    let cap = 256 * 1024;
    let s = stack_with(BrokerConfig {
        per_tunnel_buffer: cap,
        ..Default::default()
    })
    .await;
    for protocol in [Subprotocol::V3, Subprotocol::Burrow1] {
        let t = s.open(&["SINK"]).await;
        let (hold_tx, mut hold_rx) = tokio::sync::mpsc::unbounded_channel();
        // Accepts and keeps the socket open without reading it.
        let sink = serve(move |sock| {
            let hold = hold_tx.clone();
            async move {
                let _ = hold.send(sock);
            }
        })
        .await;
        let _dst = DestinationClient::connect(
            s.client(&t.destination_token).force_protocol(protocol),
            Targets::new().service("SINK", sink),
        )
        .await
        .unwrap();
        let src = SourceClient::connect(s.client(&t.source_token).force_protocol(protocol))
            .await
            .unwrap();
        let stream = src.open_stream("SINK").await.unwrap();
        let written = write_until_stalled(stream).await;
        let stats = s.broker.tunnel_stats(&t.tunnel.tunnel_id).unwrap();
        println!(
            "{protocol}: writer stalled after {written} bytes; broker holds {} bytes",
            stats.buffered_bytes
        );
        assert!(
            stats.buffered_bytes <= cap,
            "{protocol}: {} > cap {cap}",
            stats.buffered_bytes
        );
        assert!(s.broker.buffered_bytes() <= cap);
        if protocol == Subprotocol::V3 {
            assert!(
                stats.buffered_bytes > 0,
                "the relay queue is what holds the writer back"
            );
        }
        let _held = within(5, hold_rx.recv()).await;

        // Another tunnel is not affected.
        let t2 = s.open(&["ECHO"]).await;
        let echo = echo_server().await;
        let _dst2 = DestinationClient::connect(
            s.client(&t2.destination_token),
            Targets::new().service("ECHO", echo),
        )
        .await
        .unwrap();
        let src2 = SourceClient::connect(s.client(&t2.source_token))
            .await
            .unwrap();
        let data = pattern(1024 * 1024, 9);
        let stream = src2.open_stream("ECHO").await.unwrap();
        assert!(within(20, echo_round_trip(stream, &data)).await == data);
    }
}
