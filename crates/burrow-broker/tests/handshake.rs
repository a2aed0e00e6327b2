//! Every refusal of the upgrade (tunnel-protocol.md sections 1, 7.1, 8) gets its 4xx, and
//! the accepted handshakes behave as the protocol says.

mod common;

use burrow_broker::RotateMode;
use burrow_client::{ClientError, DestinationClient, Targets};
use common::*;

const CT_A: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const CT_B: &str = "bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee";

#[tokio::test]
async fn a_valid_handshake_echoes_the_subprotocol_and_answers_pings() {
    let s = stack().await;
    let t = s.open(&["SSH"]).await;
    let token = t.destination_token.expose();
    let (status, head, _) = raw_upgrade_with(
        s.addr,
        DST,
        Some("chat, aws.iot.securetunneling-2.0, aws.iot.securetunneling-3.0"),
        &[("access-token", token)],
    )
    .await;
    assert_eq!(status, 101, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("sec-websocket-protocol: aws.iot.securetunneling-3.0"),
        "{head}"
    );

    // Through a real client: ping → pong with the same payload, SERVICE_IDS first.
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};
    let t = s.open(&["SSH"]).await;
    let mut req = format!("ws://{}{DST}", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "access-token",
        t.destination_token.expose().parse().unwrap(),
    );
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "burrow.tunnel-1.0".parse().unwrap(),
    );
    let (mut ws, resp) = within(5, tokio_tungstenite::connect_async(req))
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "burrow.tunnel-1.0"
    );
    let first = within(5, ws.next()).await.unwrap().unwrap();
    let mut dec = burrow_proto::FrameDecoder::new();
    dec.push(&first.into_data()).unwrap();
    let ids = dec.next_message().unwrap().unwrap();
    assert_eq!(ids, burrow_proto::Message::service_ids(["SSH"]));
    ws.send(Message::Ping(b"12345".to_vec().into()))
        .await
        .unwrap();
    let pong = within(5, ws.next()).await.unwrap().unwrap();
    assert_eq!(pong, Message::Pong(b"12345".to_vec().into()));
}

/// Name, request target, offered subprotocols, extra headers, expected status.
type Case<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Vec<(&'a str, &'a str)>,
    u16,
);

#[tokio::test]
async fn malformed_requests_are_refused_with_400_or_401_or_431() {
    let s = stack().await;
    let t = s.open(&["SSH"]).await;
    let dst = t.destination_token.expose().to_owned();
    let cookie = format!("awsiot-tunnel-token={dst}");

    let cases: Vec<Case> = vec![
        (
            "missing token",
            DST,
            Some("aws.iot.securetunneling-3.0"),
            vec![],
            401,
        ),
        (
            "header and cookie",
            DST,
            Some("aws.iot.securetunneling-3.0"),
            vec![("access-token", &dst), ("cookie", &cookie)],
            400,
        ),
        (
            "repeated header",
            DST,
            Some("aws.iot.securetunneling-3.0"),
            vec![("access-token", &dst), ("access-token", &dst)],
            400,
        ),
        (
            "bad mode",
            "/tunnel?local-proxy-mode=both",
            Some("aws.iot.securetunneling-3.0"),
            vec![("access-token", &dst)],
            400,
        ),
        (
            "no mode",
            "/tunnel",
            Some("aws.iot.securetunneling-3.0"),
            vec![("access-token", &dst)],
            400,
        ),
        (
            "bad path",
            "/tunnel/x?local-proxy-mode=destination",
            Some("aws.iot.securetunneling-3.0"),
            vec![("access-token", &dst)],
            400,
        ),
        (
            "bad client token",
            DST,
            Some("aws.iot.securetunneling-3.0"),
            vec![("access-token", &dst), ("client-token", "short_and_bad")],
            400,
        ),
        (
            "two client tokens",
            DST,
            Some("aws.iot.securetunneling-3.0"),
            vec![
                ("access-token", &dst),
                ("client-token", CT_A),
                ("client-token", CT_B),
            ],
            400,
        ),
        (
            "no supported subprotocol",
            DST,
            Some("chat, aws.iot.securetunneling-4.0"),
            vec![("access-token", &dst)],
            400,
        ),
        (
            "no subprotocol at all",
            DST,
            None,
            vec![("access-token", &dst)],
            400,
        ),
    ];
    for (name, target, proto, headers, want) in cases {
        let (status, _, body) = raw_upgrade_with(s.addr, target, proto, &headers).await;
        assert_eq!(status, want, "{name}: {body}");
        assert!(
            !body.is_empty() && body.len() < 200,
            "{name}: short text body, got {body:?}"
        );
    }
    let big = "x".repeat(4200);
    let (status, _, _) =
        raw_upgrade(s.addr, DST, &[("access-token", &dst), ("x-padding", &big)]).await;
    assert_eq!(status, 431, "oversize handshake");

    // None of these spent the token.
    let (status, _, _) = raw_upgrade(s.addr, DST, &[("access-token", &dst)]).await;
    assert_eq!(status, 101);
    // The cookie alone works too.
    let t = s.open(&[]).await;
    let cookie = format!("a=b; awsiot-tunnel-token={}", t.source_token.expose());
    let (status, _, _) = raw_upgrade(s.addr, SRC, &[("cookie", &cookie)]).await;
    assert_eq!(status, 101);
}

#[tokio::test]
async fn token_refusals_are_403_or_410() {
    let s = stack().await;
    let t = s.open(&["SSH"]).await;
    let (src, dst) = (t.source_token.expose(), t.destination_token.expose());

    let (status, _, body) = raw_upgrade(s.addr, DST, &[("access-token", src)]).await;
    assert_eq!(status, 403, "wrong mode: {body}");
    let (status, _, body) = raw_upgrade(s.addr, DST, &[("access-token", "not-a-token")]).await;
    assert_eq!(status, 403, "unknown token: {body}");

    let (status, _, _) = raw_upgrade(s.addr, DST, &[("access-token", dst)]).await;
    assert_eq!(status, 101);
    let (status, _, body) = raw_upgrade(s.addr, DST, &[("access-token", dst)]).await;
    assert_eq!(status, 403, "spent: {body}");
    assert!(body.contains("previously used"), "{body}");

    let rotated = s
        .broker
        .rotate(&t.tunnel.tunnel_id, RotateMode::Source, None, None)
        .await
        .unwrap();
    let (status, _, body) = raw_upgrade(s.addr, SRC, &[("access-token", src)]).await;
    assert_eq!(status, 403, "rotated away: {body}");
    let new_src = rotated.source_token.unwrap();
    s.broker.close(&t.tunnel.tunnel_id, false).await.unwrap();
    let (status, _, body) = raw_upgrade(s.addr, SRC, &[("access-token", new_src.expose())]).await;
    assert_eq!(status, 410, "closed: {body}");
}

#[tokio::test]
async fn a_client_token_allows_reconnecting_with_the_same_access_token() {
    let s = stack().await;
    let t = s.open(&["SSH"]).await;
    let echo = echo_server().await;
    let targets = || Targets::new().service("SSH", echo);
    let config = s.client(&t.destination_token).with_client_token(CT_A);

    let first = DestinationClient::connect(config.clone(), targets())
        .await
        .unwrap();
    // A reconnect with the same pair replaces the live peer (which gets a close frame).
    let second = within(5, DestinationClient::connect(config.clone(), targets()))
        .await
        .unwrap();
    let closed = within(5, first.wait())
        .await
        .expect("replaced peer gets a close frame");
    assert_eq!(closed.code, 1000);
    second.close();
    within(5, second.wait()).await.unwrap();

    let dst = t.destination_token.expose();
    let (status, _, body) = raw_upgrade(
        s.addr,
        DST,
        &[("access-token", dst), ("client-token", CT_B)],
    )
    .await;
    assert_eq!(status, 403, "wrong client token: {body}");
    assert!(body.contains("client token"), "{body}");
    let (status, _, _) = raw_upgrade(s.addr, DST, &[("access-token", dst)]).await;
    assert_eq!(status, 403, "no client token on a spent access token");
    let third = DestinationClient::connect(config, targets())
        .await
        .expect("same pair again");
    third.close();

    // The client sees a 4xx as a typed, final error.
    let t2 = s.open(&["SSH"]).await;
    let bad = s.client(&t2.source_token);
    let err = DestinationClient::connect(bad, targets())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, ClientError::HandshakeRejected { status: 403, .. }),
        "{err:?}"
    );
}
