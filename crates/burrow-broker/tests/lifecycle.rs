//! Close, expiry and replacement as the peers see them, and the connection states that
//! DescribeTunnel reports along the way.

mod common;

use burrow_broker::{Broker, TunnelStatus};
use burrow_client::{DestinationClient, SourceClient, Targets};
use common::*;
use tokio::io::AsyncReadExt;

async fn states(broker: &Broker, id: &str) -> (bool, bool) {
    let info = broker.describe(id).await.unwrap();
    (info.source.connected, info.destination.connected)
}

#[tokio::test]
async fn close_disconnects_both_peers_with_a_close_frame() {
    let s = stack().await;
    let t = s.open(&["SSH"]).await;
    let id = t.tunnel.tunnel_id.clone();
    let echo = echo_server().await;
    let dst = DestinationClient::connect(
        s.client(&t.destination_token),
        Targets::new().service("SSH", echo),
    )
    .await
    .unwrap();
    let src = SourceClient::connect(s.client(&t.source_token))
        .await
        .unwrap();
    assert_eq!(states(&s.broker, &id).await, (true, true));
    let info = s.broker.describe(&id).await.unwrap();
    assert!(info.source.last_updated_at.is_some() && info.destination.last_updated_at.is_some());

    s.broker.close(&id, false).await.unwrap();
    let (a, b) = within(5, async { tokio::join!(src.wait(), dst.wait()) }).await;
    assert_eq!(a.unwrap().code, 1000);
    assert_eq!(b.unwrap().code, 1000);
    assert_eq!(
        s.broker.describe(&id).await.unwrap().status,
        TunnelStatus::Closed
    );
    eventually(|| async { states(&s.broker, &id).await == (false, false) }).await;
    assert!(!s.broker.is_destination_connected(&id));

    s.broker.close(&id, true).await.unwrap();
    assert!(matches!(
        s.broker.describe(&id).await,
        Err(burrow_broker::BrokerError::NotFound)
    ));
}

#[tokio::test]
async fn expiry_disconnects_both_peers() {
    let s = stack().await;
    let t = s.open(&["SSH"]).await;
    let id = t.tunnel.tunnel_id.clone();
    let other = s.open(&["SSH"]).await;
    let echo = echo_server().await;
    let dst = DestinationClient::connect(
        s.client(&t.destination_token),
        Targets::new().service("SSH", echo),
    )
    .await
    .unwrap();
    let src = SourceClient::connect(s.client(&t.source_token))
        .await
        .unwrap();

    assert!(s.broker.expire_due().await.unwrap().is_empty());
    s.clock.advance(chrono::Duration::minutes(721));
    let mut expired = s.broker.expire_due().await.unwrap();
    expired.sort();
    let mut want = vec![id.clone(), other.tunnel.tunnel_id.clone()];
    want.sort();
    assert_eq!(expired, want);
    let (a, b) = within(5, async { tokio::join!(src.wait(), dst.wait()) }).await;
    assert_eq!((a.unwrap().code, b.unwrap().code), (1000, 1000));
    assert_eq!(
        s.broker.describe(&id).await.unwrap().status,
        TunnelStatus::Closed
    );
    assert!(
        s.broker.expire_due().await.unwrap().is_empty(),
        "only OPEN tunnels expire"
    );
}

#[tokio::test]
async fn a_new_destination_replaces_the_old_one_and_the_source_sees_stream_reset() {
    let s = stack().await;
    let t = s.open(&["SSH"]).await;
    let id = t.tunnel.tunnel_id.clone();
    let echo = echo_server().await;
    let targets = || Targets::new().service("SSH", echo);
    let first = DestinationClient::connect(s.client(&t.destination_token), targets())
        .await
        .unwrap();
    assert_eq!(states(&s.broker, &id).await, (false, true));
    let src = SourceClient::connect(s.client(&t.source_token))
        .await
        .unwrap();
    let mut stream = src.open_stream("SSH").await.unwrap();
    let data = pattern(10_000, 1);
    let back = within(5, echo_round_trip(&mut stream, &data)).await;
    assert_eq!(back, data);
    let before = s
        .broker
        .describe(&id)
        .await
        .unwrap()
        .destination
        .last_updated_at;

    // The destination token is rotated for the device, which reconnects with it.
    let rotated = s
        .broker
        .rotate(&id, burrow_broker::RotateMode::Destination, None, None);
    let token = rotated.await.unwrap().destination_token.unwrap();
    let second = DestinationClient::connect(s.client(&token), targets())
        .await
        .unwrap();
    let closed = within(5, first.wait())
        .await
        .expect("old destination gets a close frame");
    assert_eq!(closed.code, 1000);
    // The source's stream was reset: its connection ends.
    let mut rest = Vec::new();
    within(5, stream.read_to_end(&mut rest)).await.unwrap();
    assert_eq!(states(&s.broker, &id).await, (true, true));
    let after = s
        .broker
        .describe(&id)
        .await
        .unwrap()
        .destination
        .last_updated_at;
    assert!(after >= before);

    // New connections go to the new destination.
    let stream = src.open_stream("SSH").await.unwrap();
    assert_eq!(within(5, echo_round_trip(stream, &data)).await, data);

    second.close();
    within(5, second.wait()).await.unwrap();
    eventually(|| async { states(&s.broker, &id).await == (true, false) }).await;
    src.close();
    eventually(|| async { states(&s.broker, &id).await == (false, false) }).await;
    // Nothing live is left behind for the tunnel.
    eventually(|| async { s.broker.tunnel_stats(&id).is_none() }).await;
}

#[tokio::test]
async fn rotation_keeps_live_peers_unless_configured() {
    for closes_live in [false, true] {
        let config = burrow_broker::BrokerConfig {
            rotation_closes_live: closes_live,
            ..Default::default()
        };
        let s = stack_with(config).await;
        let t = s.open(&["SSH"]).await;
        let echo = echo_server().await;
        let dst = DestinationClient::connect(
            s.client(&t.destination_token),
            Targets::new().service("SSH", echo),
        )
        .await
        .unwrap();
        let rotated = s
            .broker
            .rotate(
                &t.tunnel.tunnel_id,
                burrow_broker::RotateMode::All,
                Some(vec!["SSH".into(), "WEB".into()]),
                None,
            )
            .await
            .unwrap();
        assert!(rotated.source_token.is_some() && rotated.destination_token.is_some());
        assert_eq!(rotated.tunnel.services, ["SSH", "WEB"]);
        assert_eq!(
            rotated.tunnel.expires_at, t.tunnel.expires_at,
            "never extends the lifetime"
        );
        if closes_live {
            assert_eq!(within(5, dst.wait()).await.unwrap().code, 1000);
        } else {
            let src = SourceClient::connect(s.client(rotated.source_token.as_ref().unwrap()))
                .await
                .unwrap();
            assert_eq!(
                src.services(),
                ["SSH", "WEB"],
                "new peers see the new services"
            );
            let data = pattern(1000, 3);
            let stream = src.open_stream("SSH").await.unwrap();
            assert_eq!(within(5, echo_round_trip(stream, &data)).await, data);
        }
    }
}
