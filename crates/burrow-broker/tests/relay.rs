//! Data exchange through the broker between burrow's source and destination clients, with
//! every subprotocol, and how resets, closes and replacements propagate.

mod common;

use burrow_client::{DestinationClient, SourceClient, Subprotocol, Targets};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn v3_several_services_and_simultaneous_connections() {
    for protocol in [Subprotocol::V3, Subprotocol::Burrow1] {
        let s = stack().await;
        let t = s.open(&["A", "B", "C"]).await;
        let mut targets = Targets::new();
        for (svc, tag) in [("A", b"A:"), ("B", b"B:"), ("C", b"C:")] {
            targets = targets.service(svc, tagged_echo_server(tag).await);
        }
        let dst_cfg = s.client(&t.destination_token).force_protocol(protocol);
        let dst = DestinationClient::connect(dst_cfg, targets).await.unwrap();
        assert_eq!(dst.subprotocol(), protocol);
        assert_eq!(dst.services(), ["A", "B", "C"]);
        let src = SourceClient::connect(s.client(&t.source_token).force_protocol(protocol))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for (i, svc) in ["A", "B", "C"].iter().cycle().take(12).enumerate() {
            let stream = src.open_stream(svc).await.unwrap();
            tasks.push(tokio::spawn(async move {
                let (mut r, mut w) = tokio::io::split(stream);
                let mut tag = [0u8; 2];
                r.read_exact(&mut tag).await.unwrap();
                assert_eq!(&tag[..1], svc.as_bytes(), "routed to its service");
                let data = pattern(100_000 + i * 1000, i as u64);
                let mut back = vec![0u8; data.len()];
                let (a, b) = tokio::join!(w.write_all(&data), r.read_exact(&mut back));
                a.unwrap();
                b.unwrap();
                assert!(back == data, "echo of connection {i}");
            }));
        }
        for task in tasks {
            within(20, task).await.unwrap();
        }
    }
}

#[tokio::test]
async fn v2_and_v1_peers_work() {
    // V2: one connection per service at a time, each a new stream.
    let s = stack().await;
    let t = s.open(&["A", "B"]).await;
    let targets = Targets::new()
        .service("A", tagged_echo_server(b"A:").await)
        .service("B", tagged_echo_server(b"B:").await);
    let dst = DestinationClient::connect(
        s.client(&t.destination_token)
            .force_protocol(Subprotocol::V2),
        targets,
    )
    .await
    .unwrap();
    assert_eq!(dst.subprotocol(), Subprotocol::V2);
    let src = SourceClient::connect(s.client(&t.source_token).force_protocol(Subprotocol::V2))
        .await
        .unwrap();
    for (i, svc) in ["A", "B", "A", "B"].iter().enumerate() {
        let stream = src.open_stream(svc).await.unwrap();
        let data = pattern(50_000, i as u64);
        let back = within(
            10,
            echo_round_trip(stream, &[svc.as_bytes(), b":", &data].concat()),
        )
        .await;
        assert_eq!(&back[..2], [svc.as_bytes(), b":"].concat().as_slice());
    }

    // V1: no serviceId at all; the destination uses its default target.
    let t = s.open(&["SSH"]).await;
    let echo = echo_server().await;
    let dst1 = DestinationClient::connect(
        s.client(&t.destination_token)
            .force_protocol(Subprotocol::V1),
        Targets::new().default_target(echo),
    )
    .await
    .unwrap();
    let src1 = SourceClient::connect(s.client(&t.source_token).force_protocol(Subprotocol::V1))
        .await
        .unwrap();
    for i in 0..3 {
        let data = pattern(70_000, 100 + i);
        let stream = src1.open_stream("SSH").await.unwrap();
        assert_eq!(within(10, echo_round_trip(stream, &data)).await, data);
    }
    drop((dst, dst1));
}

#[tokio::test]
async fn resets_propagate_both_ways() {
    for protocol in [Subprotocol::V2, Subprotocol::V3] {
        let s = stack().await;
        let t = s.open(&["ECHO", "BYE", "DEAD"]).await;
        // BYE: answers one line, then closes its socket.
        let bye = serve(|mut sock| async move {
            let _ = sock.write_all(b"bye\n").await;
        })
        .await;
        let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
        let echo = serve(move |mut sock| {
            let seen = seen_tx.clone();
            async move {
                let mut buf = Vec::new();
                let _ = sock.read_to_end(&mut buf).await;
                let _ = seen.send(buf.len());
            }
        })
        .await;
        let targets = Targets::new()
            .service("ECHO", echo)
            .service("BYE", bye)
            .service("DEAD", closed_port().await);
        let _dst = DestinationClient::connect(
            s.client(&t.destination_token).force_protocol(protocol),
            targets,
        )
        .await
        .unwrap();
        let src = SourceClient::connect(s.client(&t.source_token).force_protocol(protocol))
            .await
            .unwrap();

        // The destination's local socket closes → the source's stream ends after the data.
        let mut stream = src.open_stream("BYE").await.unwrap();
        let mut got = Vec::new();
        within(5, stream.read_to_end(&mut got)).await.unwrap();
        assert_eq!(got, b"bye\n", "{protocol}");

        // The local target refuses → the source's stream ends at once.
        let mut stream = src.open_stream("DEAD").await.unwrap();
        let mut got = Vec::new();
        within(15, stream.read_to_end(&mut got)).await.unwrap();
        assert!(got.is_empty());

        // The source closes → the destination's local socket sees EOF after the data.
        let mut stream = src.open_stream("ECHO").await.unwrap();
        stream.write_all(&[7u8; 5000]).await.unwrap();
        stream.flush().await.unwrap();
        drop(stream);
        assert_eq!(within(5, seen_rx.recv()).await, Some(5000), "{protocol}");
    }
}

#[tokio::test]
async fn a_source_without_destination_gets_its_streams_reset() {
    let s = stack().await;
    let t = s.open(&["SSH"]).await;
    let src = SourceClient::connect(s.client(&t.source_token))
        .await
        .unwrap();
    let mut stream = src.open_stream("SSH").await.unwrap();
    let mut got = Vec::new();
    within(5, stream.read_to_end(&mut got)).await.unwrap();
    assert!(got.is_empty());
}

/// Burrow1 against an AWS-style V3 peer, both ways round: the broker hands credit back to the
/// Burrow1 side itself, so transfers far larger than one window complete.
#[tokio::test]
async fn burrow1_and_v3_peers_share_a_tunnel() {
    let pairs = [
        (Subprotocol::Burrow1, Subprotocol::V3),
        (Subprotocol::V3, Subprotocol::Burrow1),
    ];
    for (dst_protocol, src_protocol) in pairs {
        let s = stack().await;
        let t = s.open(&["ECHO"]).await;
        let echo = echo_server().await;
        let dst = DestinationClient::connect(
            s.client(&t.destination_token).force_protocol(dst_protocol),
            Targets::new().service("ECHO", echo),
        )
        .await
        .unwrap();
        let src = SourceClient::connect(s.client(&t.source_token).force_protocol(src_protocol))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..3 {
            let stream = src.open_stream("ECHO").await.unwrap();
            tasks.push(tokio::spawn(async move {
                let data = pattern(3 * 1024 * 1024, i);
                assert!(echo_round_trip(stream, &data).await == data);
            }));
        }
        for task in tasks {
            within(30, task).await.unwrap();
        }
        drop(dst);
    }
}

/// `SourceClient::listen` (what `burrow connect` runs): every local TCP client gets its own
/// tunnel connection; V2 takes them one at a time.
#[tokio::test]
async fn listen_carries_local_tcp_clients() {
    for protocol in [Subprotocol::Burrow1, Subprotocol::V2] {
        let s = stack().await;
        let t = s.open(&["SSH"]).await;
        let echo = echo_server().await;
        let _dst = DestinationClient::connect(
            s.client(&t.destination_token).force_protocol(protocol),
            Targets::new().service("SSH", echo),
        )
        .await
        .unwrap();
        let src = SourceClient::connect(s.client(&t.source_token).force_protocol(protocol))
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap();
        let src = std::sync::Arc::new(src);
        let listening = tokio::spawn({
            let src = src.clone();
            async move { src.listen(None, listener).await }
        });
        for i in 0..3 {
            let tcp = tokio::net::TcpStream::connect(local).await.unwrap();
            let data = pattern(200_000, 40 + i);
            assert!(
                within(10, echo_round_trip(tcp, &data)).await == data,
                "{protocol} #{i}"
            );
        }
        s.broker.close(&t.tunnel.tunnel_id, false).await.unwrap();
        let ended = within(5, listening).await.unwrap().unwrap();
        assert_eq!(ended.code, 1000, "listen ends cleanly on the close frame");
    }
}

#[tokio::test]
async fn run_connect_reports_a_rejected_token_as_final() {
    let s = stack().await;
    let port = closed_port().await;
    let err = burrow_client::run_connect(&s.url(), "bogus-token", port, None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            burrow_client::ClientError::HandshakeRejected { status: 403, .. }
        ),
        "{err:?}"
    );
}
