//! One WebSocket peer: a reader that validates and relays what the peer sends, and a writer
//! that drains the peer's outbound queue into binary WebSocket messages.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use burrow_proto::{FrameDecoder, ProtocolError, MAX_WS_FRAME};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};

use crate::hub::{Hub, Peer, CLOSE_PROTOCOL};
use crate::queue::QueueRx;
use crate::relay::relay;

/// How long a close frame may take to go out before the socket is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Runs the peer until it leaves, is kicked, or breaks the protocol.
pub(crate) async fn run(hub: Arc<Hub>, peer: Arc<Peer>, rx: QueueRx, socket: WebSocket) {
    let (sink, stream) = socket.split();
    let reader = async {
        let result = read_loop(stream, &hub, &peer).await;
        match result {
            Err(err) => {
                tracing::info!(tunnel = %hub.id, role = %peer.role, %err, "peer broke the protocol");
                peer.kick(CLOSE_PROTOCOL, "protocol error");
            }
            // The peer left (or was kicked): stop the writer too.
            Ok(()) => peer.kick.cancel(),
        }
    };
    let writer = async {
        write_loop(sink, rx, &peer).await;
        peer.kick.cancel();
    };
    tokio::join!(reader, writer);
}

async fn read_loop(
    mut stream: SplitStream<WebSocket>,
    hub: &Hub,
    peer: &Peer,
) -> Result<(), ProtocolError> {
    let mut decoder = FrameDecoder::new();
    loop {
        let next = tokio::select! {
            biased;
            _ = peer.kick.cancelled() => return Ok(()),
            next = stream.next() => next,
        };
        let data = match next {
            // Pings are answered by the WebSocket layer itself while we read.
            Some(Ok(WsMessage::Binary(data))) => data,
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
            Some(Ok(WsMessage::Text(_))) => {
                return Err(ProtocolError::Malformed("text WebSocket frame".into()))
            }
            Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => return Ok(()),
        };
        decoder.push(&data)?;
        while let Some(frame) = decoder.next_frame()? {
            tokio::select! {
                biased;
                _ = peer.kick.cancelled() => return Ok(()),
                result = relay(hub, peer, frame) => { let _verdict = result?; }
            }
        }
    }
}

async fn write_loop(mut sink: SplitSink<WebSocket, WsMessage>, mut rx: QueueRx, peer: &Peer) {
    let mut pending: Option<Bytes> = None;
    loop {
        let first = match pending.take() {
            Some(frame) => frame,
            None => tokio::select! {
                biased;
                _ = peer.kick.cancelled() => break,
                frame = rx.recv() => match frame {
                    Some(frame) => frame,
                    None => break,
                },
            },
        };
        // Coalesce queued frames into one WebSocket message of at most MAX_WS_FRAME bytes:
        // fewer, larger writes (the protocol allows re-chunking; tunnel frames stay intact).
        let mut frames = vec![first];
        let mut len = frames[0].len();
        while let Some(next) = rx.try_recv() {
            if len + next.len() > MAX_WS_FRAME {
                pending = Some(next);
                break;
            }
            len += next.len();
            frames.push(next);
        }
        let payload = if frames.len() == 1 {
            frames[0].clone()
        } else {
            let mut buf = BytesMut::with_capacity(len);
            frames.iter().for_each(|f| buf.extend_from_slice(f));
            buf.freeze()
        };
        let sent = tokio::select! {
            biased;
            _ = peer.kick.cancelled() => Err(()),
            sent = sink.send(WsMessage::Binary(payload)) => sent.map_err(|_| ()),
        };
        frames.iter().for_each(|f| rx.release_frame(f));
        if sent.is_err() {
            break;
        }
    }
    if let Some(frame) = pending {
        rx.release_frame(&frame);
    }
    drop(rx);
    if let Some((code, reason)) = peer.close_reason() {
        let close = WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close)).await;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.close()).await;
}
