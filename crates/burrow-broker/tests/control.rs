//! The control operations: validation, describe/list, rotation, ensure, token re-derivation.

mod common;

use burrow_broker::{BrokerError, BrokerTunnelFilter, OpenRequest, RotateMode, Tag, TunnelStatus};
use burrow_client::{DestinationClient, Targets};
use common::*;

fn req(services: &[&str]) -> OpenRequest {
    OpenRequest {
        services: services.iter().map(|s| s.to_string()).collect(),
        ..OpenRequest::default()
    }
}

#[tokio::test]
async fn open_validates_and_describe_reports() {
    let s = stack().await;
    let bad = [
        OpenRequest {
            lifetime_minutes: Some(0),
            ..req(&["A"])
        },
        OpenRequest {
            lifetime_minutes: Some(721),
            ..req(&["A"])
        },
        req(&["A", "B", "C", "D"]),
        req(&["bad service"]),
        OpenRequest {
            thing_name: Some("no spaces".into()),
            ..req(&[])
        },
        OpenRequest {
            description: Some("a\u{7}b".into()),
            ..req(&[])
        },
        OpenRequest {
            tags: vec![Tag {
                key: "".into(),
                value: "v".into(),
            }],
            ..req(&[])
        },
    ];
    for r in bad {
        assert!(
            matches!(s.broker.open(r.clone()).await, Err(BrokerError::Invalid(_))),
            "{r:?}"
        );
    }
    let opened = s
        .broker
        .open(OpenRequest {
            description: Some("robot dashboard".into()),
            thing_name: Some("dev-1".into()),
            lifetime_minutes: Some(30),
            tags: vec![Tag {
                key: "k".into(),
                value: "v".into(),
            }],
            ..req(&["SSH", "HTTP"])
        })
        .await
        .unwrap();
    assert_eq!(
        format!("{opened:?}").matches("AccessToken(***)").count(),
        2,
        "tokens are masked"
    );
    assert_ne!(opened.source_token, opened.destination_token);
    assert!(opened.source_token.expose().len() >= 43);
    let info = s.broker.describe(&opened.tunnel.tunnel_id).await.unwrap();
    assert_eq!(info, opened.tunnel);
    assert!(uuid::Uuid::parse_str(&info.tunnel_id).is_ok());
    assert_eq!(
        info.tunnel_arn,
        format!(
            "arn:aws:iot:us-east-1:000000000000:tunnel/{}",
            info.tunnel_id
        )
    );
    assert_eq!(info.status, TunnelStatus::Open);
    assert_eq!(
        info.expires_at - info.created_at,
        chrono::Duration::minutes(30)
    );
    assert!(!info.source.connected && !info.destination.connected);
    assert_eq!(
        s.broker
            .open(req(&[]))
            .await
            .unwrap()
            .tunnel
            .max_lifetime_minutes,
        720
    );

    let all = s.broker.list(BrokerTunnelFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2);
    let by_thing = s
        .broker
        .list(BrokerTunnelFilter {
            thing_name: Some("dev-1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_thing.len(), 1);
    assert!(matches!(
        s.broker.describe("nope").await,
        Err(BrokerError::NotFound)
    ));
    assert!(matches!(
        s.broker.close("nope", false).await,
        Err(BrokerError::NotFound)
    ));
}

#[tokio::test]
async fn rotation_rules() {
    let s = stack().await;
    let t = s.open(&["SSH"]).await;
    let id = &t.tunnel.tunnel_id;
    let err = s
        .broker
        .rotate(id, RotateMode::Source, Some(vec!["X".into()]), None)
        .await;
    assert!(
        matches!(err, Err(BrokerError::Invalid(_))),
        "destinationConfig needs DESTINATION"
    );
    let r = s
        .broker
        .rotate(id, RotateMode::Source, None, None)
        .await
        .unwrap();
    assert!(r.source_token.is_some() && r.destination_token.is_none());
    assert_ne!(r.source_token.as_ref(), Some(&t.source_token));
    let r = s
        .broker
        .rotate(
            id,
            RotateMode::Destination,
            Some(vec!["WEB".into()]),
            Some("dev-2".into()),
        )
        .await
        .unwrap();
    assert!(r.source_token.is_none());
    assert_eq!(r.tunnel.services, ["WEB"]);
    assert_eq!(r.tunnel.thing_name.as_deref(), Some("dev-2"));
    assert_eq!(r.tunnel.expires_at, t.tunnel.expires_at);
    assert_eq!(RotateMode::parse("ALL"), Some(RotateMode::All));
    assert_eq!(RotateMode::parse("BOTH"), None);
    s.broker.close(id, false).await.unwrap();
    assert!(matches!(
        s.broker.rotate(id, RotateMode::All, None, None).await,
        Err(BrokerError::Closed)
    ));
    assert!(matches!(
        s.broker.destination_token(id).await,
        Err(BrokerError::Closed)
    ));
}

#[tokio::test]
async fn destination_token_is_rederived_then_rotated_once_spent() {
    let s = stack().await;
    let t = s.open(&["SSH"]).await;
    let id = &t.tunnel.tunnel_id;
    assert_eq!(
        s.broker.destination_token(id).await.unwrap(),
        t.destination_token
    );
    assert_eq!(
        s.broker.destination_token(id).await.unwrap(),
        t.destination_token
    );
    let dst = DestinationClient::connect(s.client(&t.destination_token), Targets::new())
        .await
        .unwrap();
    // Connected right now: the (spent) current token is answered as is.
    assert!(s.broker.is_destination_connected(id));
    assert_eq!(
        s.broker.destination_token(id).await.unwrap(),
        t.destination_token
    );
    // Once nobody is connected, a spent token is rotated so the device gets a working one.
    dst.close();
    eventually(|| async { !s.broker.is_destination_connected(id) }).await;
    let fresh = s.broker.destination_token(id).await.unwrap();
    assert_ne!(fresh, t.destination_token);
    let (status, _, _) = raw_upgrade(s.addr, DST, &[("access-token", fresh.expose())]).await;
    assert_eq!(status, 101);
}

#[tokio::test]
async fn ensure_active_opens_a_new_tunnel_only_when_needed() {
    let s = stack().await;
    let threshold = chrono::Duration::minutes(60);
    let first = s
        .broker
        .ensure_active(None, req(&["SSH"]), threshold)
        .await
        .unwrap();
    assert!(first.replaced);
    let id = first.tunnel.tunnel_id.clone();
    let same = s
        .broker
        .ensure_active(Some(&id), req(&["SSH"]), threshold)
        .await
        .unwrap();
    assert!(!same.replaced);
    assert_eq!(same.tunnel.tunnel_id, id);
    let missing = s
        .broker
        .ensure_active(Some("gone"), req(&["SSH"]), threshold)
        .await
        .unwrap();
    assert!(missing.replaced);

    s.clock.advance(chrono::Duration::minutes(720 - 30));
    let expiring = s
        .broker
        .ensure_active(Some(&id), req(&["SSH"]), threshold)
        .await
        .unwrap();
    assert!(expiring.replaced, "expires within the threshold");
    assert_ne!(expiring.tunnel.tunnel_id, id);
    assert_eq!(
        s.broker.describe(&id).await.unwrap().status,
        TunnelStatus::Open,
        "closing is the caller's job"
    );

    let fresh = expiring.tunnel.tunnel_id.clone();
    s.broker.close(&fresh, false).await.unwrap();
    let after_close = s
        .broker
        .ensure_active(Some(&fresh), req(&["SSH"]), threshold)
        .await
        .unwrap();
    assert!(after_close.replaced);
}
