//! Byte movement of the in-process source: the byte stream of one connection ([`ConnIo`],
//! inside [`crate::TunnelStream`]), and [`dispatch`], which routes the destination's frames
//! to the connections from the task that read them.
//!
//! The stream reads and writes the connection's channels directly, without a task or a pipe
//! of its own: a read takes the payloads dispatched to it, a write frames its
//! bytes into a DATA message and relays it inline. Only a send that has to wait (for send
//! credit, or for room in the destination's queue) moves into a task, so that it makes
//! progress even if the user does not poll the stream again; the next write waits for it,
//! which keeps the frames in order and bounds what the stream holds to one frame.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll, Waker};

use burrow_proto::WINDOW_INITIAL;
use burrow_proto::{Frame, Message, MessageType, RecvWindow, MAX_PAYLOAD};
use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::hub::{encode, lock, Hub, Peer};
use crate::queue::QueueRx;
use crate::relay::relay;
use crate::source::{Conn, ConnKey, Format, InProcess, Inbound, BOUNDED_INBOUND};

/// Credit beyond which a (buggy) destination's WINDOW_UPDATEs are ignored.
const MAX_CREDIT: usize = 16 * WINDOW_INITIAL as usize;

/// The connection-side ends of a new connection, until its stream is made.
pub(crate) struct Parts {
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
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        match self {
            Receiver::Unbounded(rx) => rx.poll_recv(cx),
            Receiver::Bounded(rx) => rx.poll_recv(cx),
        }
    }
}

pub(crate) fn conn(ip: &InProcess, format: Format) -> (Conn, Parts) {
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
    let parts = Parts {
        inbound: receiver,
        credit,
        cancel,
        window,
        format,
        flow_control,
    };
    (conn, parts)
}

impl Parts {
    /// The user's end of the connection, once its start message went out.
    pub fn into_io(
        self,
        hub: Arc<Hub>,
        peer: Arc<Peer>,
        ip: Arc<InProcess>,
        key: ConnKey,
    ) -> ConnIo {
        let wire_conn = if self.format == Format::V3 { key.2 } else { 0 };
        let ctx = Arc::new(Ctx {
            hub,
            peer,
            ip,
            key,
            wire_conn,
            format: self.format,
            flow_control: self.flow_control,
            credit: self.credit,
            cancel: self.cancel,
        });
        ConnIo {
            ctx,
            inbound: self.inbound,
            leftover: Bytes::new(),
            window: self.window,
            pending: None,
            failed: false,
            ended: false,
        }
    }
}

/// What a connection's sends need, shared with the sends that run in tasks.
struct Ctx {
    hub: Arc<Hub>,
    peer: Arc<Peer>,
    ip: Arc<InProcess>,
    key: ConnKey,
    wire_conn: u32,
    format: Format,
    flow_control: bool,
    /// Send credit (Burrow1), granted by the destination's WINDOW_UPDATEs.
    credit: Arc<Semaphore>,
    /// Cancelled when the destination ends the connection.
    cancel: CancellationToken,
}

impl Ctx {
    /// Sends one DATA payload within the send credit. False: the connection or peer is gone.
    async fn send_data(self: Arc<Self>, payload: Bytes) -> bool {
        if self.flow_control {
            // `payload` is at most MAX_PAYLOAD bytes, far below u32::MAX.
            let n = payload.len() as u32;
            tokio::select! {
                _ = self.cancel.cancelled() => return false,
                permit = self.credit.acquire_many(n) => match permit {
                    Ok(p) => p.forget(),
                    Err(_) => return false,
                },
            }
        }
        let msg = Message::data(self.key.1, self.key.0.clone(), self.wire_conn, payload);
        self.send(msg, &self.cancel).await
    }

    /// Ends the connection (the user closed its end), unless the destination already did.
    async fn end(self: Arc<Self>) -> bool {
        let known = lock(&self.ip.inner).conns.remove(&self.key).is_some();
        if known {
            let (service, sid) = (self.key.0.clone(), self.key.1);
            let reset = match self.format {
                Format::V3 => Message::connection_reset(sid, service, self.wire_conn),
                Format::V1 | Format::V2 => Message::stream_reset(sid, service, 0),
            };
            // Not cancellable by the connection's token: that is what it ends.
            self.send(reset, &CancellationToken::new()).await;
        }
        true
    }

    /// Hands `credit` bytes of receive window back to the destination.
    async fn window_update(self: Arc<Self>, credit: u32) {
        let msg = Message::window_update(self.key.1, self.key.0.clone(), self.wire_conn, credit);
        if let Some(raw) = encode(&msg) {
            let frame = Frame { raw, message: msg };
            let _ = relay(&self.hub, &self.peer, frame).await;
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

type SendFuture = Pin<Box<dyn Future<Output = bool> + Send>>;

/// A send that could not finish when it was started.
enum InFlight {
    /// Running in a task of its own.
    Task(JoinHandle<bool>),
    /// No runtime to spawn on: driven by the stream's own polls. (The mutex only makes the
    /// stream `Sync`, as a pipe was; it is reached through `get_mut`, never locked.)
    Local(Mutex<SendFuture>),
}

/// Polls `fut` once; answers its result, or where it continues when it has to wait.
fn start(mut fut: SendFuture) -> Result<bool, InFlight> {
    // A no-op waker: if the future waits, the task it moves to polls it again at once and
    // registers itself; the caller's task is not woken for nothing.
    let mut cx = Context::from_waker(Waker::noop());
    if let Poll::Ready(ok) = fut.as_mut().poll(&mut cx) {
        return Ok(ok);
    }
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => Err(InFlight::Task(rt.spawn(fut))),
        Err(_) => Err(InFlight::Local(Mutex::new(fut))),
    }
}

/// Runs `fut` to the end without anyone waiting for it.
fn detach(fut: impl Future<Output = ()> + Send + 'static) {
    let fut: SendFuture = Box::pin(async move {
        fut.await;
        true
    });
    // Without a runtime nothing could relay the message anyway (no peer task runs).
    let _ = start(fut);
}

/// One connection's byte stream.
pub(crate) struct ConnIo {
    ctx: Arc<Ctx>,
    inbound: Receiver,
    /// The rest of the payload a read did not take.
    leftover: Bytes,
    /// The receive window (Burrow1): reads hand credit back.
    window: Option<Arc<Mutex<RecvWindow>>>,
    /// The last send, if it is still going.
    pending: Option<InFlight>,
    /// A send failed: the connection is gone.
    failed: bool,
    /// The user shut the connection down.
    ended: bool,
}

impl ConnIo {
    /// Waits for the send in flight. `Err` when it failed.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let ok = match &mut self.pending {
            None => true,
            Some(InFlight::Task(task)) => ready!(Pin::new(task).poll(cx)).unwrap_or(false),
            Some(InFlight::Local(fut)) => {
                let fut = fut.get_mut().unwrap_or_else(|e| e.into_inner());
                ready!(fut.as_mut().poll(cx))
            }
        };
        self.pending = None;
        if !ok {
            self.failed = true;
        }
        Poll::Ready(self.check())
    }

    fn check(&self) -> io::Result<()> {
        if self.failed || self.ended || self.ctx.cancel.is_cancelled() {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        Ok(())
    }

    /// Accounts for `n` bytes the user read; returns credit to the destination.
    fn consumed(&self, n: usize) {
        let credit = self.window.as_ref().and_then(|w| lock(w).on_consumed(n));
        if let Some(credit) = credit {
            detach(self.ctx.clone().window_update(credit));
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut read = 0;
        // Takes as many queued payloads as fit: one read, one wake-up for several frames.
        while buf.remaining() > 0 {
            if this.leftover.is_empty() {
                match this.inbound.poll_recv(cx) {
                    Poll::Ready(Some(payload)) => this.leftover = payload,
                    // The connection ended (destination reset, or the peer left): EOF once
                    // the data before it was read.
                    Poll::Ready(None) => break,
                    Poll::Pending if read == 0 => return Poll::Pending,
                    Poll::Pending => break,
                }
                continue;
            }
            let n = this.leftover.len().min(buf.remaining());
            buf.put_slice(&this.leftover[..n]);
            this.leftover.advance(n);
            read += n;
        }
        if read > 0 {
            this.consumed(read);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(MAX_PAYLOAD);
        let payload = Bytes::copy_from_slice(&buf[..n]);
        match start(Box::pin(this.ctx.clone().send_data(payload))) {
            Ok(true) => {}
            Ok(false) => {
                this.failed = true;
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            // Accepted: the next write, flush or shutdown waits for it.
            Err(in_flight) => this.pending = Some(in_flight),
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A failed send is the next write's error. Flush itself never fails, as with the pipe
        // this replaces: a reader (hyper polls flush all along) may still be taking the data
        // the destination sent before it ended the connection.
        let _ = ready!(self.get_mut().poll_pending(cx));
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Whatever the last send did, the connection ends now; a failed one already ended it.
        let _ = ready!(this.poll_pending(cx));
        if this.ended {
            return Poll::Ready(Ok(()));
        }
        this.ended = true;
        if let Err(in_flight) = start(Box::pin(this.ctx.clone().end())) {
            this.pending = Some(in_flight);
            // Registers this task to hear when the reset went out.
            let _ = ready!(this.poll_pending(cx));
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.ended {
            // A reset still in flight finishes in its task.
            return;
        }
        // The protocol has no half-close: dropping the stream ends the connection, after
        // the last write (whose credit may still be coming: the connection stays known
        // until then).
        let ctx = self.ctx.clone();
        match self.pending.take() {
            None => detach(async move {
                ctx.end().await;
            }),
            Some(InFlight::Task(task)) => detach(async move {
                let _ = task.await;
                ctx.end().await;
            }),
            Some(InFlight::Local(fut)) => {
                let fut = fut.into_inner().unwrap_or_else(|e| e.into_inner());
                detach(async move {
                    fut.await;
                    ctx.end().await;
                })
            }
        }
    }
}

/// Ends the in-process source's connections once its peer is kicked (replaced, destination
/// gone, tunnel closed). Frames reach the connections directly, in the sending peer's task
/// ([`Peer::deliver`]), so the peer's queue stays empty.
pub(crate) async fn close_on_kick(peer: Arc<Peer>, ip: Arc<InProcess>, rx: QueueRx) {
    peer.kick.cancelled().await;
    drop(rx);
    ip.close_where(|_| true);
}

/// Routes one message from the destination to the connection it is for.
pub(crate) async fn dispatch(ip: &InProcess, msg: &Message) {
    let Ok(kind) = msg.kind() else { return };
    let key = (
        msg.service_id.clone(),
        msg.stream_id,
        msg.effective_connection_id(),
    );
    match kind {
        MessageType::Data => deliver(ip, &key, msg.payload.clone()).await,
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
