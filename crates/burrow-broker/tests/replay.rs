//! The recorded localproxy session (tunnel-protocol.md section 10) replayed through a real
//! broker by two raw WebSocket peers: each side receives exactly the frames the other sent,
//! byte for byte, after its SERVICE_IDS.

mod common;

use burrow_proto::fixtures::{recorded_session, sent_by, Origin, SERVICES};
use burrow_proto::{encode, FrameDecoder, Message};
use bytes::{Bytes, BytesMut};
use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Peer {
    ws: Ws,
    decoder: FrameDecoder,
}

impl Peer {
    async fn connect(addr: std::net::SocketAddr, target: &str, token: &str) -> Peer {
        let mut req = format!("ws://{addr}{target}")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("access-token", token.parse().unwrap());
        req.headers_mut().insert(
            "sec-websocket-protocol",
            "aws.iot.securetunneling-3.0".parse().unwrap(),
        );
        let (ws, _) = within(5, tokio_tungstenite::connect_async(req))
            .await
            .unwrap();
        Peer {
            ws,
            decoder: FrameDecoder::new(),
        }
    }

    /// Sends one tunnel frame, split over two WebSocket messages when it is large (the
    /// broker must reassemble).
    async fn send(&mut self, msg: &Message) {
        let mut buf = BytesMut::new();
        encode(msg, &mut buf).unwrap();
        let raw = buf.freeze();
        if raw.len() > 1000 {
            let (a, b) = (raw.slice(..700), raw.slice(700..));
            self.ws.send(WsMessage::Binary(a)).await.unwrap();
            self.ws.send(WsMessage::Binary(b)).await.unwrap();
        } else {
            self.ws.send(WsMessage::Binary(raw)).await.unwrap();
        }
    }

    /// The next tunnel frame received, raw.
    async fn recv(&mut self) -> Bytes {
        loop {
            if let Some(raw) = self.decoder.next_raw() {
                return raw;
            }
            let msg = within(5, self.ws.next())
                .await
                .expect("socket open")
                .unwrap();
            if let WsMessage::Binary(data) = msg {
                self.decoder.push(&data).unwrap();
            }
        }
    }
}

fn raw_of(msg: &Message) -> Bytes {
    let mut buf = BytesMut::new();
    encode(msg, &mut buf).unwrap();
    buf.freeze()
}

#[tokio::test]
async fn the_recorded_session_is_relayed_frame_for_frame() {
    let s = stack().await;
    let t = s.open(&SERVICES).await;
    let mut dst = Peer::connect(s.addr, DST, t.destination_token.expose()).await;
    let mut src = Peer::connect(s.addr, SRC, t.source_token.expose()).await;

    let mut to_src = Vec::new();
    let mut to_dst = Vec::new();
    for step in recorded_session() {
        match step.from {
            Origin::Broker => {
                // SERVICE_IDS arrives first, on each side.
                to_dst.push((raw_of(&step.message), dst.recv().await));
                to_src.push((raw_of(&step.message), src.recv().await));
            }
            Origin::Source => {
                src.send(&step.message).await;
                to_dst.push((raw_of(&step.message), dst.recv().await));
            }
            Origin::Destination => {
                dst.send(&step.message).await;
                to_src.push((raw_of(&step.message), src.recv().await));
            }
        }
    }
    for (i, (sent, got)) in to_dst.iter().chain(to_src.iter()).enumerate() {
        assert_eq!(sent, got, "frame {i} relayed unchanged");
    }
    assert_eq!(to_dst.len(), 1 + sent_by(Origin::Source).len());
    assert_eq!(to_src.len(), 1 + sent_by(Origin::Destination).len());
}

/// A protocol violation closes the offending peer (close code 1002), not the tunnel.
#[tokio::test]
async fn a_protocol_violation_closes_that_peer() {
    let s = stack().await;
    let t = s.open(&SERVICES).await;
    let mut dst = Peer::connect(s.addr, DST, t.destination_token.expose()).await;
    dst.recv().await; // SERVICE_IDS
    let mut src = Peer::connect(s.addr, SRC, t.source_token.expose()).await;
    src.recv().await;
    // A client must never send SERVICE_IDS.
    src.send(&Message::service_ids(["SSH1"])).await;
    let closed = loop {
        match within(5, src.ws.next()).await {
            Some(Ok(WsMessage::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(closed.map(|f| u16::from(f.code)), Some(1002));
    // The destination stays connected.
    assert!(s.broker.is_destination_connected(&t.tunnel.tunnel_id));
}
