//! `Broker::connect_source`, the in-process source the edge uses.

mod common;

use burrow_broker::BrokerError;
use burrow_client::{DestinationClient, Subprotocol, Targets};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn in_process_source_round_trips_with_every_destination_protocol() {
    for protocol in [
        Subprotocol::Burrow1,
        Subprotocol::V3,
        Subprotocol::V2,
        Subprotocol::V1,
    ] {
        let s = stack().await;
        let t = s.open(&["WEB"]).await;
        let id = &t.tunnel.tunnel_id;
        assert!(matches!(
            s.broker.connect_source(id, "WEB").await,
            Err(BrokerError::NotConnected)
        ));
        let echo = echo_server().await;
        let targets = Targets::new().service("WEB", echo).default_target(echo);
        let dst = DestinationClient::connect(
            s.client(&t.destination_token).force_protocol(protocol),
            targets,
        )
        .await
        .unwrap();
        assert!(s.broker.is_destination_connected(id));
        assert!(matches!(
            s.broker.connect_source(id, "NOPE").await,
            Err(BrokerError::Invalid(_))
        ));
        for i in 0..3 {
            let data = pattern(300_000, i);
            let stream = s.broker.connect_source(id, "WEB").await.unwrap();
            assert!(
                within(10, echo_round_trip(stream, &data)).await == data,
                "{protocol} #{i}"
            );
        }
        if protocol >= Subprotocol::V3 {
            // Simultaneous connections on one stream.
            let mut tasks = Vec::new();
            for i in 0..4 {
                let stream = s.broker.connect_source(id, "WEB").await.unwrap();
                tasks.push(tokio::spawn(async move {
                    let data = pattern(200_000, 50 + i);
                    assert!(echo_round_trip(stream, &data).await == data);
                }));
            }
            for task in tasks {
                within(10, task).await.unwrap();
            }
        }
        dst.close();
        within(5, dst.wait()).await.unwrap();
        eventually(|| async { !s.broker.is_destination_connected(id) }).await;
        assert!(matches!(
            s.broker.connect_source(id, "WEB").await,
            Err(BrokerError::NotConnected)
        ));
    }
}

#[tokio::test]
async fn a_stalled_connection_does_not_stall_the_others_with_flow_control() {
    let s = stack().await;
    let t = s.open(&["FLOOD", "SINK", "ECHO"]).await;
    let id = &t.tunnel.tunnel_id;
    // FLOOD writes without end; SINK never reads; ECHO echoes.
    let flood = serve(|mut sock| async move {
        let block = vec![1u8; 64 * 1024];
        while sock.write_all(&block).await.is_ok() {}
    })
    .await;
    let (hold_tx, _hold_rx) = tokio::sync::mpsc::unbounded_channel();
    let sink = serve(move |sock| {
        let hold = hold_tx.clone();
        async move {
            let _ = hold.send(sock);
        }
    })
    .await;
    let echo = echo_server().await;
    let targets = Targets::new()
        .service("FLOOD", flood)
        .service("SINK", sink)
        .service("ECHO", echo);
    let _dst = DestinationClient::connect(s.client(&t.destination_token), targets)
        .await
        .unwrap();

    // A connection whose reader (here, the edge side) never reads.
    let mut flooded = s.broker.connect_source(id, "FLOOD").await.unwrap();
    let mut first = [0u8; 1];
    within(5, flooded.read_exact(&mut first)).await.unwrap();
    // A connection whose destination-side reader never reads.
    let mut sunk = s.broker.connect_source(id, "SINK").await.unwrap();
    let stuck_writer = tokio::spawn(async move {
        let block = vec![2u8; 64 * 1024];
        while sunk.write_all(&block).await.is_ok() {}
    });

    // Meanwhile another connection of the same tunnel still completes a 1 MB echo, twice.
    for i in 0..2 {
        let data = pattern(1024 * 1024, 77 + i);
        let stream = s.broker.connect_source(id, "ECHO").await.unwrap();
        assert!(within(20, echo_round_trip(stream, &data)).await == data);
    }
    let buffered = s.broker.tunnel_stats(id).unwrap().buffered_bytes;
    assert!(
        buffered <= s.broker.config().per_tunnel_buffer,
        "{buffered}"
    );
    stuck_writer.abort();
    drop(flooded);
}

#[tokio::test]
async fn the_in_process_source_replaces_a_websocket_source() {
    let s = stack().await;
    let t = s.open(&["WEB"]).await;
    let id = &t.tunnel.tunnel_id;
    let echo = echo_server().await;
    let _dst = DestinationClient::connect(
        s.client(&t.destination_token),
        Targets::new().service("WEB", echo),
    )
    .await
    .unwrap();
    let ws_source = burrow_client::SourceClient::connect(s.client(&t.source_token))
        .await
        .unwrap();
    let mut old = ws_source.open_stream("WEB").await.unwrap();
    let data = pattern(10_000, 1);
    assert!(within(5, echo_round_trip(&mut old, &data)).await == data);

    let stream = s.broker.connect_source(id, "WEB").await.unwrap();
    assert_eq!(within(5, ws_source.wait()).await.unwrap().code, 1000);
    let mut rest = Vec::new();
    within(5, old.read_to_end(&mut rest)).await.unwrap();
    assert!(within(5, echo_round_trip(stream, &data)).await == data);
    // Concurrent first connections share one in-process source.
    let (a, b) = tokio::join!(
        s.broker.connect_source(id, "WEB"),
        s.broker.connect_source(id, "WEB")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (x, y) = tokio::join!(echo_round_trip(a, &data), echo_round_trip(b, &data));
    assert!(x == data && y == data);
}
