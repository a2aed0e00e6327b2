//! One WebSocket peer: a reader that validates and relays what the peer sends, and a writer
//! that drains the peer's outbound queue into binary WebSocket messages.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use burrow_proto::{Batch, FrameDecoder, ProtocolError, MAX_WS_FRAME};
use bytes::Bytes;
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

/// Everything queued for the peer now, as one WebSocket message of at most MAX_WS_FRAME
/// bytes (the protocol allows re-chunking; tunnel frames stay intact): one TLS record and one
/// socket write for many frames. A frame that does not fit goes to `pending`.
///
/// Before taking the rest of the queue the writer gives the tasks that are ready one turn:
/// tokio runs a task right after the one that woke it (its LIFO slot), so the writer would
/// otherwise send the first frame alone while the connections woken by the same I/O poll
/// are still about to queue theirs. With nothing else ready the turn costs a scheduler pass.
async fn gather(first: Bytes, rx: &mut QueueRx, pending: &mut Option<Bytes>) -> Batch {
    let mut batch = Batch::new(first, MAX_WS_FRAME);
    *pending = batch.fill(|| rx.try_recv());
    if pending.is_none() {
        tokio::task::yield_now().await;
        *pending = batch.fill(|| rx.try_recv());
    }
    batch
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
        let batch = gather(first, &mut rx, &mut pending).await;
        let sent = tokio::select! {
            biased;
            _ = peer.kick.cancelled() => Err(()),
            sent = sink.send(WsMessage::Binary(batch.payload())) => sent.map_err(|_| ()),
        };
        batch.frames().iter().for_each(|f| rx.release_frame(f));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{frame_queue, Gauge};

    fn frame(tag: u8, len: usize) -> Bytes {
        Bytes::from(vec![tag; len])
    }

    #[tokio::test]
    async fn queued_frames_leave_in_one_message_in_order() {
        let (tx, mut rx) = frame_queue(1 << 20, Gauge::default());
        for tag in 0..3 {
            tx.send(frame(tag, 100)).await.unwrap();
        }
        // Senders that are ready but have not run yet (a current-thread runtime runs them
        // only when this task yields) still make this message.
        let late = tokio::spawn({
            let tx = tx.clone();
            async move {
                for tag in 3..6 {
                    tx.send(frame(tag, 100)).await.unwrap();
                }
            }
        });
        let mut pending = None;
        let first = rx.recv().await.unwrap();
        let batch = gather(first, &mut rx, &mut pending).await;
        late.await.unwrap();
        assert!(pending.is_none());
        let tags: Vec<u8> = batch.frames().iter().map(|f| f[0]).collect();
        assert_eq!(tags, vec![0, 1, 2, 3, 4, 5]);
        let payload = batch.payload();
        assert_eq!(payload.len(), 600);
        assert!(payload
            .chunks(100)
            .enumerate()
            .all(|(i, c)| c.iter().all(|b| *b == i as u8)));
        assert!(rx.try_recv().is_none(), "nothing left behind");
    }

    #[tokio::test]
    async fn a_message_never_exceeds_the_websocket_frame_limit() {
        let (tx, mut rx) = frame_queue(1 << 20, Gauge::default());
        let big = 65_537;
        for tag in 0..5 {
            tx.send(frame(tag, big)).await.unwrap();
        }
        let mut pending = None;
        let mut sizes = Vec::new();
        let mut tags = Vec::new();
        let mut next = rx.recv().await;
        while let Some(first) = next {
            let batch = gather(first, &mut rx, &mut pending).await;
            assert!(batch.payload().len() <= MAX_WS_FRAME);
            sizes.push(batch.frames().len());
            tags.extend(batch.frames().iter().map(|f| f[0]));
            next = pending.take().or_else(|| rx.try_recv());
        }
        assert_eq!(sizes, vec![2, 2, 1], "two maximal frames per message");
        assert_eq!(tags, vec![0, 1, 2, 3, 4]);
    }
}
