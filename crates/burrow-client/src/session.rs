//! A tunnel session: the WebSocket, its reader and writer tasks, and the table of
//! connections multiplexed over it. Shared by the source and the destination client.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use burrow_proto::{
    Batch, FrameDecoder, Message, MessageType, Role, StreamIds, Subprotocol, MAX_WS_FRAME,
};
use bytes::{Bytes, BytesMut};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use crate::config::ClientConfig;
use crate::conn::{deliver, Conn, ConnKey};
use crate::connect::{connect, Ws};
use crate::destination::{on_start, Targets};
use crate::error::{ClientError, CloseReason};

/// Encoded frames waiting for the writer. Bounded so that a stalled WebSocket stops the
/// connections' readers instead of growing memory.
const OUT_QUEUE: usize = 64;
const PING_EVERY: Duration = Duration::from_secs(20);

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections are short map updates; a poisoned lock still holds consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) type Outcome = Option<Result<CloseReason, ClientError>>;

#[derive(Default)]
pub(crate) struct State {
    pub conns: HashMap<ConnKey, Conn>,
    /// The active stream of each serviceId ("" for V1 style).
    pub active: HashMap<String, i32>,
    /// Source only: id allocation.
    pub ids: StreamIds,
}

impl State {
    pub fn close_where(&mut self, pred: impl Fn(&ConnKey) -> bool) {
        self.conns.retain(|key, conn| {
            let keep = !pred(key);
            if !keep {
                conn.cancel.cancel();
            }
            keep
        });
    }
}

pub(crate) struct Shared {
    pub role: Role,
    pub subprotocol: Subprotocol,
    pub config: ClientConfig,
    pub targets: Targets,
    pub state: Mutex<State>,
    out: mpsc::Sender<Bytes>,
    services: watch::Sender<Option<Vec<String>>>,
    outcome: watch::Sender<Outcome>,
    /// Cancelled when the session is over.
    pub ended: CancellationToken,
    /// Cancelled to close the session from this side.
    closing: CancellationToken,
    /// Destination: new connections are refused, the open ones go on (the agent stopping).
    pub draining: AtomicBool,
}

impl Shared {
    /// Queues a message for the broker; false once the session is over.
    pub async fn send(&self, msg: &Message) -> bool {
        let mut buf = BytesMut::new();
        if burrow_proto::encode(msg, &mut buf).is_err() {
            return false;
        }
        tokio::select! {
            _ = self.ended.cancelled() => false,
            sent = self.out.send(buf.freeze()) => sent.is_ok(),
        }
    }

    pub fn services(&self) -> Vec<String> {
        self.services.borrow().clone().unwrap_or_default()
    }

    fn finish(&self, outcome: Result<CloseReason, ClientError>) {
        self.outcome.send_if_modified(|o| {
            if o.is_none() {
                *o = Some(outcome);
                true
            } else {
                false
            }
        });
        self.ended.cancel();
        lock(&self.state).close_where(|_| true);
    }

    pub async fn wait(&self) -> Result<CloseReason, ClientError> {
        let mut rx = self.outcome.subscribe();
        let outcome = rx.wait_for(Option::is_some).await.map(|o| o.clone());
        match outcome {
            Ok(Some(outcome)) => outcome,
            _ => Err(ClientError::ConnectionLost("session dropped".into())),
        }
    }

    pub fn close(&self) {
        self.closing.cancel();
    }
}

/// Connects, starts the reader and writer, and returns once SERVICE_IDS arrived (peers must
/// not act before it, spec section 5).
pub(crate) async fn start(
    config: ClientConfig,
    role: Role,
    targets: Targets,
) -> Result<Arc<Shared>, ClientError> {
    let (ws, subprotocol) = connect(&config, role).await?;
    let (sink, stream) = ws.split();
    let (out, out_rx) = mpsc::channel(OUT_QUEUE);
    let shared = Arc::new(Shared {
        role,
        subprotocol,
        config,
        targets,
        state: Mutex::new(State::default()),
        out,
        services: watch::Sender::new(None),
        outcome: watch::Sender::new(None),
        ended: CancellationToken::new(),
        closing: CancellationToken::new(),
        draining: AtomicBool::new(false),
    });
    tokio::spawn(write_loop(shared.clone(), sink, out_rx));
    tokio::spawn(read_loop(shared.clone(), stream));
    let mut services = shared.services.subscribe();
    let timeout = shared.config.connect_timeout;
    let ready = tokio::time::timeout(timeout, async {
        tokio::select! {
            // Map away the `watch::Ref` at once: held across the other branch's await it
            // would make `connect` a non-`Send` future.
            _ = async { services.wait_for(Option::is_some).await.map(|_| ()) } => Ok(()),
            _ = shared.ended.cancelled() => Err(shared.wait().await.err().unwrap_or_else(|| {
                ClientError::ConnectionLost("closed before SERVICE_IDS".into())
            })),
        }
    })
    .await;
    match ready {
        Ok(Ok(())) => Ok(shared),
        Ok(Err(err)) => Err(err),
        Err(_) => {
            shared.finish(Err(ClientError::Connect(
                "no SERVICE_IDS from the broker".into(),
            )));
            Err(ClientError::Connect(
                "no SERVICE_IDS from the broker".into(),
            ))
        }
    }
}

/// Everything queued for the broker now, as one WebSocket message of at most MAX_WS_FRAME
/// bytes (tunnel frames stay intact): one TLS record and one socket write for many frames. A
/// frame that does not fit goes to `pending`.
///
/// Before taking the rest of the queue the writer gives the tasks that are ready one turn:
/// tokio runs a task right after the one that woke it (its LIFO slot), so the writer would
/// otherwise send the first frame alone while the connections woken by the same I/O poll
/// are still about to queue theirs. With nothing else ready the turn costs a scheduler pass.
async fn gather(
    first: Bytes,
    rx: &mut mpsc::Receiver<Bytes>,
    pending: &mut Option<Bytes>,
) -> Batch {
    let mut batch = Batch::new(first, MAX_WS_FRAME);
    *pending = batch.fill(|| rx.try_recv().ok());
    if pending.is_none() {
        tokio::task::yield_now().await;
        *pending = batch.fill(|| rx.try_recv().ok());
    }
    batch
}

async fn write_loop(
    shared: Arc<Shared>,
    mut sink: SplitSink<Ws, WsMessage>,
    mut rx: mpsc::Receiver<Bytes>,
) {
    let mut pending: Option<Bytes> = None;
    // Keeps NAT and proxy mappings of an idle tunnel alive, like localproxy's 20 s pings.
    let mut keepalive =
        tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    loop {
        let first = match pending.take() {
            Some(frame) => frame,
            None => tokio::select! {
                biased;
                _ = shared.ended.cancelled() => break,
                _ = keepalive.tick() => {
                    if sink.send(WsMessage::Ping(Bytes::new())).await.is_err() {
                        shared.finish(Err(ClientError::ConnectionLost("ping failed".into())));
                        break;
                    }
                    continue;
                }
                _ = shared.closing.cancelled() => {
                    // What is queued goes out first: a drained connection's last bytes and
                    // its reset must not lose the race with the close frame.
                    let flush = async {
                        while let Ok(frame) = rx.try_recv() {
                            sink.feed(WsMessage::Binary(frame)).await?;
                        }
                        sink.flush().await
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(1), flush).await;
                    let close = CloseFrame { code: CloseCode::Normal, reason: "closed by client".into() };
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(WsMessage::Close(Some(close)))).await;
                    shared.finish(Ok(CloseReason { code: 1000, reason: "closed by client".into() }));
                    break;
                }
                frame = rx.recv() => match frame {
                    Some(frame) => frame,
                    None => break,
                },
            },
        };
        let batch = gather(first, &mut rx, &mut pending).await;
        let sent = tokio::select! {
            _ = shared.ended.cancelled() => break,
            sent = sink.send(WsMessage::Binary(batch.payload())) => sent,
        };
        if let Err(err) = sent {
            shared.finish(Err(ClientError::ConnectionLost(err.to_string())));
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}

async fn read_loop(shared: Arc<Shared>, mut stream: SplitStream<Ws>) {
    let mut decoder = FrameDecoder::new();
    let outcome = loop {
        let next = tokio::select! {
            _ = shared.ended.cancelled() => return,
            next = stream.next() => next,
        };
        let data = match next {
            Some(Ok(WsMessage::Binary(data))) => data,
            Some(Ok(WsMessage::Close(frame))) => {
                break Ok(frame.map_or(
                    CloseReason {
                        code: 1005,
                        reason: String::new(),
                    },
                    |f| CloseReason {
                        code: f.code.into(),
                        reason: f.reason.to_string(),
                    },
                ))
            }
            Some(Ok(WsMessage::Text(_))) => {
                break Err(ClientError::Protocol("text WebSocket frame".into()))
            }
            Some(Ok(_)) => continue,
            Some(Err(err)) => break Err(ClientError::ConnectionLost(err.to_string())),
            None => {
                break Err(ClientError::ConnectionLost(
                    "connection closed without a close frame".into(),
                ))
            }
        };
        if let Err(err) = decoder.push(&data) {
            break Err(ClientError::Protocol(err.to_string()));
        }
        let mut failed = None;
        loop {
            match decoder.next_message() {
                Ok(Some(msg)) => {
                    if let Err(err) = dispatch(&shared, msg).await {
                        failed = Some(err);
                        break;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    failed = Some(ClientError::Protocol(err.to_string()));
                    break;
                }
            }
        }
        if let Some(err) = failed {
            break Err(err);
        }
    };
    shared.finish(outcome);
}

/// Acts on one message from the broker.
async fn dispatch(shared: &Arc<Shared>, msg: Message) -> Result<(), ClientError> {
    let kind = match msg.kind() {
        Ok(kind) => kind,
        Err(_) if msg.ignorable => return Ok(()),
        Err(err) => return Err(ClientError::Protocol(err.to_string())),
    };
    let key = (
        msg.service_id.clone(),
        msg.stream_id,
        msg.effective_connection_id(),
    );
    match kind {
        MessageType::ServiceIds => {
            // Later SERVICE_IDS are ignored, as localproxy does.
            shared.services.send_if_modified(|s| {
                let first = s.is_none();
                if first {
                    *s = Some(msg.available_service_ids.clone());
                }
                first
            });
        }
        MessageType::Data => {
            let active = lock(&shared.state).active.get(&key.0) == Some(&key.1);
            if active {
                deliver(shared, &key, msg.payload).await;
            }
        }
        MessageType::StreamStart | MessageType::ConnectionStart => {
            if shared.role == Role::Source {
                return Err(ClientError::Protocol(format!("a source received {kind}")));
            }
            on_start(shared, &msg, kind).await;
        }
        MessageType::StreamReset => {
            let mut state = lock(&shared.state);
            if state.active.get(&key.0) == Some(&key.1) {
                state.active.remove(&key.0);
            }
            state.close_where(|k| k.0 == key.0 && k.1 == key.1);
        }
        MessageType::ConnectionReset => lock(&shared.state).close_where(|k| *k == key),
        MessageType::SessionReset => {
            let mut state = lock(&shared.state);
            state.active.clear();
            state.close_where(|_| true);
        }
        MessageType::WindowUpdate => {
            if let (Some(conn), Some(credit)) =
                (lock(&shared.state).conns.get(&key), msg.window_credit())
            {
                conn.add_credit(credit);
            }
        }
        MessageType::Unknown => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, len: usize) -> Bytes {
        Bytes::from(vec![tag; len])
    }

    #[tokio::test]
    async fn queued_frames_leave_in_one_message_in_order() {
        let (tx, mut rx) = mpsc::channel(OUT_QUEUE);
        for tag in 0..3 {
            tx.send(frame(tag, 50)).await.unwrap();
        }
        // A connection task that is ready but has not run yet (a current-thread runtime runs
        // it only when this task yields) still makes this message.
        let late = tokio::spawn({
            let tx = tx.clone();
            async move {
                for tag in 3..6 {
                    tx.send(frame(tag, 50)).await.unwrap();
                }
            }
        });
        let mut pending = None;
        let first = rx.recv().await.unwrap();
        let batch = gather(first, &mut rx, &mut pending).await;
        late.await.unwrap();
        assert!(pending.is_none());
        let payload = batch.payload();
        assert_eq!(payload.len(), 300);
        let tags: Vec<u8> = payload.chunks(50).map(|c| c[0]).collect();
        assert_eq!(tags, vec![0, 1, 2, 3, 4, 5]);
        assert!(rx.try_recv().is_err(), "nothing left behind");
    }

    #[tokio::test]
    async fn a_message_never_exceeds_the_websocket_frame_limit() {
        let (tx, mut rx) = mpsc::channel(OUT_QUEUE);
        for tag in 0..5 {
            tx.send(frame(tag, 65_537)).await.unwrap();
        }
        drop(tx);
        let mut pending = None;
        let mut sizes = Vec::new();
        let mut tags = Vec::new();
        let mut next = rx.recv().await;
        while let Some(first) = next {
            let batch = gather(first, &mut rx, &mut pending).await;
            assert!(batch.payload().len() <= MAX_WS_FRAME);
            sizes.push(batch.frames().len());
            tags.extend(batch.frames().iter().map(|f| f[0]));
            next = pending.take().or_else(|| rx.try_recv().ok());
        }
        assert_eq!(sizes, vec![2, 2, 1], "two maximal frames per message");
        assert_eq!(tags, vec![0, 1, 2, 3, 4]);
    }
}
