//! One tunnel connection on the client side: a local byte stream (TCP socket or in-memory
//! duplex) piped to DATA messages and back, with Burrow1 flow control when negotiated.

use std::sync::{Arc, Mutex};

use burrow_proto::{Message, RecvWindow, MAX_PAYLOAD, WINDOW_INITIAL};
use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken as Cancel;

use crate::session::{lock, Shared};

/// serviceId, streamId, connectionId (absent = 1).
pub(crate) type ConnKey = (String, i32, u32);

/// Frames per connection buffered for a peer without flow control before the whole session
/// stops reading (head-of-line blocking: the fallback with AWS peers).
const BOUNDED_INBOUND: usize = 8;
/// Credit beyond which WINDOW_UPDATEs are ignored (a misbehaving peer cannot overflow us).
const MAX_CREDIT: usize = 16 * WINDOW_INITIAL as usize;
/// The first read of a connection's local socket takes up to this much.
const READ_MIN: usize = 8 * 1024;

/// How a connection looks on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wire {
    /// V3: connectionId on every message, CONNECTION_RESET when it ends.
    V3,
    /// V1/V2 (or a V3 peer in V2 compatibility): no connectionId, STREAM_RESET when it ends.
    Stream,
}

pub(crate) enum Inbound {
    /// Burrow1. A peer that honours the window never makes `room` wait, so one slow local
    /// socket does not hold up the session. An AWS peer on the other side of the broker does
    /// not know about windows: then `room` (one window of bytes) fills and the session waits,
    /// which is the bounded fallback.
    Windowed {
        tx: mpsc::UnboundedSender<Bytes>,
        window: Arc<Mutex<RecvWindow>>,
        room: Arc<Semaphore>,
    },
    Bounded(mpsc::Sender<Bytes>),
}

/// The session's handle on a connection.
pub(crate) struct Conn {
    inbound: Inbound,
    credit: Arc<Semaphore>,
    pub cancel: Cancel,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // A delivery waiting for room in a connection that is gone must not wait forever.
        if let Inbound::Windowed { room, .. } = &self.inbound {
            room.close();
        }
    }
}

impl Conn {
    pub fn add_credit(&self, credit: u32) {
        if self.credit.available_permits() < MAX_CREDIT {
            self.credit.add_permits(credit as usize);
        }
    }
}

/// The connection's own ends, until its tasks start.
pub(crate) struct Pending {
    rx: Receiver,
    window: Option<(Arc<Mutex<RecvWindow>>, Arc<Semaphore>)>,
    credit: Arc<Semaphore>,
    cancel: Cancel,
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

pub(crate) fn new_conn(flow_control: bool) -> (Conn, Pending) {
    let credit = Arc::new(Semaphore::new(WINDOW_INITIAL as usize));
    let cancel = Cancel::new();
    let (inbound, rx, window) = if flow_control {
        let window = Arc::new(Mutex::new(RecvWindow::new()));
        let room = Arc::new(Semaphore::new(WINDOW_INITIAL as usize));
        let (tx, rx) = mpsc::unbounded_channel();
        let inbound = Inbound::Windowed {
            tx,
            window: window.clone(),
            room: room.clone(),
        };
        (inbound, Receiver::Unbounded(rx), Some((window, room)))
    } else {
        let (tx, rx) = mpsc::channel(BOUNDED_INBOUND);
        (Inbound::Bounded(tx), Receiver::Bounded(rx), None)
    };
    let conn = Conn {
        inbound,
        credit: credit.clone(),
        cancel: cancel.clone(),
    };
    (
        conn,
        Pending {
            rx,
            window,
            credit,
            cancel,
        },
    )
}

/// Hands a DATA payload to its connection. Waits only when the sender ignores windows.
pub(crate) async fn deliver(shared: &Shared, key: &ConnKey, payload: Bytes) {
    let (tx, room) = {
        let state = lock(&shared.state);
        let Some(conn) = state.conns.get(key) else {
            return;
        };
        match &conn.inbound {
            Inbound::Windowed { tx, window, room } => {
                // An error means an AWS sender that ignores windows; `room` bounds it.
                let _ = lock(window).on_data(payload.len());
                (Ok(tx.clone()), Some(room.clone()))
            }
            Inbound::Bounded(tx) => (Err(tx.clone()), None),
        }
    };
    if let Some(room) = room {
        let n = payload.len().min(WINDOW_INITIAL as usize) as u32;
        match room.acquire_many(n).await {
            Ok(permit) => permit.forget(),
            Err(_) => return,
        }
    }
    let _ = match tx {
        Ok(tx) => tx.send(payload).map_err(|_| ()),
        Err(tx) => tx.send(payload).await.map_err(|_| ()),
    };
}

/// Starts piping `io` for the connection `key` in a task of its own; the handle completes
/// when both directions are done.
pub(crate) fn spawn_pipe<S>(
    shared: Arc<Shared>,
    key: ConnKey,
    wire: Wire,
    io: S,
    p: Pending,
) -> JoinHandle<()>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    tokio::spawn(pipe(shared, key, wire, io, p))
}

/// Pipes `io` for the connection `key` until both directions are done. Both run in the
/// caller's task: data either way wakes one task, not one per direction.
pub(crate) async fn pipe<S>(shared: Arc<Shared>, key: ConnKey, wire: Wire, io: S, p: Pending)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (rd, wr) = tokio::io::split(io);
    let wire_conn = if wire == Wire::V3 { key.2 } else { 0 };
    tokio::join!(
        up(
            shared.clone(),
            key.clone(),
            wire,
            wire_conn,
            rd,
            p.credit,
            p.cancel,
        ),
        down(shared, key, wire_conn, wr, p.rx, p.window),
    );
}

/// Local → tunnel.
async fn up<R>(
    shared: Arc<Shared>,
    key: ConnKey,
    wire: Wire,
    wire_conn: u32,
    mut rd: tokio::io::ReadHalf<R>,
    credit: Arc<Semaphore>,
    cancel: Cancel,
) where
    R: AsyncRead + AsyncWrite + Send,
{
    let (service, sid) = (key.0.clone(), key.1);
    let flow_control = shared.subprotocol.has_flow_control();
    // One buffer for the connection's life: each read's bytes are split off it and, once
    // framed and sent, their room is reused. It starts small (an idle connection holds
    // little) and grows while reads fill it (a bulk transfer).
    let mut buf = BytesMut::new();
    let mut want = READ_MIN;
    loop {
        buf.reserve(want);
        let mut room = (&mut buf).limit(want);
        let read = tokio::select! {
            _ = cancel.cancelled() => return,
            read = rd.read_buf(&mut room) => read,
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if n == want {
            want = (want * 2).min(MAX_PAYLOAD);
        }
        if flow_control {
            tokio::select! {
                _ = cancel.cancelled() => return,
                permit = credit.acquire_many(n as u32) => match permit {
                    Ok(p) => p.forget(),
                    Err(_) => return,
                },
            }
        }
        let msg = Message::data(sid, service.clone(), wire_conn, buf.split().freeze());
        tokio::select! {
            _ = cancel.cancelled() => return,
            sent = shared.send(&msg) => if !sent { return },
        }
    }
    // The local side closed: end the connection, unless the peer already did.
    let known = {
        let mut state = lock(&shared.state);
        let known = state.conns.remove(&key).is_some();
        if known && wire == Wire::Stream && state.active.get(&service) == Some(&sid) {
            state.active.remove(&service);
        }
        known
    };
    if known {
        let reset = match wire {
            Wire::V3 => Message::connection_reset(sid, service, wire_conn),
            Wire::Stream => Message::stream_reset(sid, service, 0),
        };
        shared.send(&reset).await;
    }
}

/// Tunnel → local.
async fn down<W>(
    shared: Arc<Shared>,
    key: ConnKey,
    wire_conn: u32,
    mut wr: tokio::io::WriteHalf<W>,
    mut rx: Receiver,
    window: Option<(Arc<Mutex<RecvWindow>>, Arc<Semaphore>)>,
) where
    W: AsyncRead + AsyncWrite + Send,
{
    while let Some(payload) = rx.recv().await {
        if wr.write_all(&payload).await.is_err() {
            break;
        }
        let credit = window.as_ref().and_then(|(w, room)| {
            room.add_permits(payload.len().min(WINDOW_INITIAL as usize));
            lock(w).on_consumed(payload.len())
        });
        if let Some(credit) = credit {
            let update = Message::window_update(key.1, key.0.clone(), wire_conn, credit);
            shared.send(&update).await;
        }
    }
    if let Some((_, room)) = &window {
        room.close();
    }
    let _ = wr.shutdown().await;
}
