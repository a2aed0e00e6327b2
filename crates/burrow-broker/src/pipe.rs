//! Byte movement of the in-process source: one pair of tasks per connection between its
//! [`crate::TunnelStream`] and the relay, and one demultiplexer per in-process peer that
//! routes the destination's frames to the connections.

use std::sync::{Arc, Mutex};

use burrow_proto::WINDOW_INITIAL;
use burrow_proto::{decode_message_bytes, Frame, Message, MessageType, RecvWindow, MAX_PAYLOAD};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::hub::{encode, lock, Hub, Peer};
use crate::queue::QueueRx;
use crate::relay::relay;
use crate::source::{Conn, ConnKey, Format, InProcess, Inbound, BOUNDED_INBOUND};

/// Bytes buffered between a connection's tasks and its `TunnelStream`, each way.
const DUPLEX_BUFFER: usize = 64 * 1024;
/// Credit beyond which a (buggy) destination's WINDOW_UPDATEs are ignored.
const MAX_CREDIT: usize = 16 * WINDOW_INITIAL as usize;

/// The connection-side ends of a new connection, until its tasks are spawned.
pub(crate) struct Pending {
    inbound: Receiver,
    credit: Arc<Semaphore>,
    cancel: CancellationToken,
    window: Option<Arc<Mutex<RecvWindow>>>,
    format: Format,
    flow_control: bool,
}

enum Receiver {
    Unbounded(mpsc::UnboundedReceiver<Bytes>),
    Bounded(mpsc::Receiver<Bytes>),
}

impl Receiver {
    async fn recv(&mut self) -> Option<Bytes> {
        match self {
            Receiver::Unbounded(rx) => rx.recv().await,
            Receiver::Bounded(rx) => rx.recv().await,
        }
    }
}

pub(crate) fn conn(ip: &InProcess, format: Format) -> (Conn, Pending) {
    let flow_control = ip.subprotocol.has_flow_control();
    let credit = Arc::new(Semaphore::new(WINDOW_INITIAL as usize));
    let cancel = CancellationToken::new();
    let (inbound, receiver, window) = if flow_control {
        let window = Arc::new(Mutex::new(RecvWindow::new()));
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Inbound::Windowed(tx, window.clone()),
            Receiver::Unbounded(rx),
            Some(window),
        )
    } else {
        let (tx, rx) = mpsc::channel(BOUNDED_INBOUND);
        (Inbound::Bounded(tx), Receiver::Bounded(rx), None)
    };
    let conn = Conn {
        inbound,
        credit: credit.clone(),
        cancel: cancel.clone(),
    };
    let pending = Pending {
        inbound: receiver,
        credit,
        cancel,
        window,
        format,
        flow_control,
    };
    (conn, pending)
}

impl Pending {
    /// Starts the connection's two tasks and answers the user's end of the byte stream.
    pub fn spawn(
        self,
        hub: Arc<Hub>,
        peer: Arc<Peer>,
        ip: Arc<InProcess>,
        key: ConnKey,
    ) -> DuplexStream {
        let (user, ours) = tokio::io::duplex(DUPLEX_BUFFER);
        let (rd, wr) = tokio::io::split(ours);
        let wire_conn = if self.format == Format::V3 { key.2 } else { 0 };
        let up = Up {
            hub: hub.clone(),
            peer: peer.clone(),
            ip,
            key: key.clone(),
            wire_conn,
            format: self.format,
        };
        tokio::spawn(up.run(rd, self.credit, self.cancel.clone(), self.flow_control));
        let down = Down {
            hub,
            peer,
            key,
            wire_conn,
        };
        tokio::spawn(down.run(wr, self.inbound, self.window));
        user
    }
}

/// TunnelStream → destination.
struct Up {
    hub: Arc<Hub>,
    peer: Arc<Peer>,
    ip: Arc<InProcess>,
    key: ConnKey,
    wire_conn: u32,
    format: Format,
}

impl Up {
    async fn run(
        self,
        mut rd: tokio::io::ReadHalf<DuplexStream>,
        credit: Arc<Semaphore>,
        cancel: CancellationToken,
        flow_control: bool,
    ) {
        let (service, sid) = (self.key.0.clone(), self.key.1);
        loop {
            let mut buf = BytesMut::with_capacity(MAX_PAYLOAD);
            let read = tokio::select! {
                _ = cancel.cancelled() => return,
                read = rd.read_buf(&mut buf) => read,
            };
            let n = match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if flow_control {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    permit = credit.acquire_many(n as u32) => match permit {
                        Ok(p) => p.forget(),
                        Err(_) => return,
                    },
                }
            }
            let msg = Message::data(sid, service.clone(), self.wire_conn, buf.freeze());
            if !self.send(msg, &cancel).await {
                return;
            }
        }
        // The user closed its end: end the connection unless the destination already did.
        let known = lock(&self.ip.inner).conns.remove(&self.key).is_some();
        if known {
            let reset = match self.format {
                Format::V3 => Message::connection_reset(sid, service, self.wire_conn),
                Format::V1 | Format::V2 => Message::stream_reset(sid, service, 0),
            };
            self.send(reset, &CancellationToken::new()).await;
        }
    }

    async fn send(&self, msg: Message, cancel: &CancellationToken) -> bool {
        let Some(raw) = encode(&msg) else {
            return false;
        };
        let frame = Frame { raw, message: msg };
        tokio::select! {
            _ = cancel.cancelled() => false,
            _ = self.peer.kick.cancelled() => false,
            res = relay(&self.hub, &self.peer, frame) => res.is_ok(),
        }
    }
}

/// Destination → TunnelStream.
struct Down {
    hub: Arc<Hub>,
    peer: Arc<Peer>,
    key: ConnKey,
    wire_conn: u32,
}

impl Down {
    async fn run(
        self,
        mut wr: tokio::io::WriteHalf<DuplexStream>,
        mut inbound: Receiver,
        window: Option<Arc<Mutex<RecvWindow>>>,
    ) {
        while let Some(payload) = inbound.recv().await {
            if wr.write_all(&payload).await.is_err() {
                break;
            }
            let credit = window
                .as_ref()
                .and_then(|w| lock(w).on_consumed(payload.len()));
            if let Some(credit) = credit {
                let msg =
                    Message::window_update(self.key.1, self.key.0.clone(), self.wire_conn, credit);
                if let Some(raw) = encode(&msg) {
                    let frame = Frame { raw, message: msg };
                    let _ = relay(&self.hub, &self.peer, frame).await;
                }
            }
        }
        let _ = wr.shutdown().await;
    }
}

/// Routes the frames queued for the in-process source to its connections, until the peer
/// is kicked (replaced, destination gone, tunnel closed).
pub(crate) async fn demux(peer: Arc<Peer>, ip: Arc<InProcess>, mut rx: QueueRx) {
    loop {
        let raw = tokio::select! {
            _ = peer.kick.cancelled() => break,
            raw = rx.recv() => match raw {
                Some(raw) => raw,
                None => break,
            },
        };
        let done = tokio::select! {
            _ = peer.kick.cancelled() => true,
            _ = dispatch(&ip, &raw) => false,
        };
        rx.release_frame(&raw);
        if done {
            break;
        }
    }
    ip.close_where(|_| true);
}

async fn dispatch(ip: &InProcess, raw: &Bytes) {
    // Frames here were validated against the destination's state or generated by the broker.
    let Ok(msg) = decode_message_bytes(raw.slice(2..)) else {
        return;
    };
    let Ok(kind) = msg.kind() else { return };
    let key = (
        msg.service_id.clone(),
        msg.stream_id,
        msg.effective_connection_id(),
    );
    match kind {
        MessageType::Data => deliver(ip, &key, msg.payload).await,
        MessageType::ConnectionReset => ip.close_where(|k| *k == key),
        MessageType::StreamReset => {
            {
                let mut inner = lock(&ip.inner);
                if inner.active.get(&key.0) == Some(&key.1) {
                    inner.active.remove(&key.0);
                }
            }
            ip.close_where(|k| k.0 == key.0 && k.1 == key.1);
        }
        MessageType::SessionReset => {
            lock(&ip.inner).active.clear();
            ip.close_where(|_| true);
        }
        MessageType::WindowUpdate => {
            let inner = lock(&ip.inner);
            if let (Some(conn), Some(credit)) = (inner.conns.get(&key), msg.window_credit()) {
                if conn.credit.available_permits() < MAX_CREDIT {
                    conn.credit.add_permits(credit as usize);
                }
            }
        }
        _ => {}
    }
}

async fn deliver(ip: &InProcess, key: &ConnKey, payload: Bytes) {
    let bounded = {
        let mut inner = lock(&ip.inner);
        let Some(conn) = inner.conns.get(key) else {
            return;
        };
        match &conn.inbound {
            Inbound::Windowed(tx, window) => {
                if lock(window).on_data(payload.len()).is_ok() {
                    let _ = tx.send(payload);
                } else if let Some(conn) = inner.conns.remove(key) {
                    // The destination overran the window: refuse to buffer, drop the
                    // connection (its stream sees EOF).
                    conn.cancel.cancel();
                }
                None
            }
            Inbound::Bounded(tx) => Some((tx.clone(), payload)),
        }
    };
    if let Some((tx, payload)) = bounded {
        let _ = tx.send(payload).await;
    }
}
