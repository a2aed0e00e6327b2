//! The in-process source: the edge reaches a device through the tunnel without a WebSocket.
//!
//! It is a source peer like any other (it sits in the hub's source slot, its frames go
//! through the same relay and checks), owned by the broker. It is bound to one destination
//! peer: it speaks that destination's subprotocol (V1/V2/V3 message formats, Burrow1 flow
//! control) and goes away with it. Each [`TunnelStream`] is one connection of the tunnel;
//! `pipe.rs` moves its bytes.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use burrow_proto::{Frame, Message, RecvWindow, Role, StreamIds, Subprotocol, Verdict};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::{invalid, BrokerError};
use crate::hub::{encode, lock, Hub, Peer, PeerKind, CLOSE_NORMAL};
use crate::relay::relay;
use crate::Broker;

/// One connection of a tunnel, opened by [`Broker::connect_source`]. Dropping it (or shutting
/// it down) ends the connection: the protocol has no half-close.
pub struct TunnelStream {
    io: crate::pipe::ConnIo,
}

// The edge keeps streams as `Box<dyn TunnelIo>`; they were a pipe end, which is all of these.
const _: () = {
    const fn assert_traits<T: Send + Sync + Unpin + 'static>() {}
    assert_traits::<TunnelStream>();
};

impl AsyncRead for TunnelStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TunnelStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Identifies a connection: serviceId, streamId, connectionId (absent = 1).
pub(crate) type ConnKey = (String, i32, u32);

/// Bytes received for one connection, on their way to its [`TunnelStream`].
pub(crate) enum Inbound {
    /// Burrow1: bounded by the connection's window, so a send never waits (no head-of-line
    /// blocking); the window is policed on receipt.
    Windowed(mpsc::UnboundedSender<bytes::Bytes>, Arc<Mutex<RecvWindow>>),
    /// AWS destinations: a small bounded buffer; when it is full the demultiplexer waits,
    /// which stalls the tunnel (the documented fallback).
    Bounded(mpsc::Sender<bytes::Bytes>),
}

pub(crate) struct Conn {
    pub inbound: Inbound,
    /// Send credit (Burrow1): payload bytes this connection may still send.
    pub credit: Arc<Semaphore>,
    /// Cancelled when the destination ends the connection.
    pub cancel: CancellationToken,
}

/// Frames per connection buffered for an AWS destination before the tunnel stalls.
pub(crate) const BOUNDED_INBOUND: usize = 8;

/// The in-process source peer's own state.
pub(crate) struct InProcess {
    /// The destination peer this source was made for.
    pub dest_generation: u64,
    pub subprotocol: Subprotocol,
    /// Serialises opening connections, so start messages reach the destination in the order
    /// their ids were allocated.
    open_lock: tokio::sync::Mutex<()>,
    pub inner: Mutex<Inner>,
}

#[derive(Default)]
pub(crate) struct Inner {
    ids: StreamIds,
    /// The stream each service's connections are opened on (V3 formats).
    pub active: HashMap<String, i32>,
    pub conns: HashMap<ConnKey, Conn>,
}

impl InProcess {
    /// Forgets the connections the destination reset; their streams see their token cancelled.
    pub fn close_where(&self, pred: impl Fn(&ConnKey) -> bool) {
        let mut inner = lock(&self.inner);
        inner.conns.retain(|key, conn| {
            let keep = !pred(key);
            if !keep {
                conn.cancel.cancel();
            }
            keep
        });
    }
}

/// How connections look on the wire for the destination's subprotocol.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// One stream per connection, no serviceId.
    V1,
    /// One stream per connection.
    V2,
    /// One stream per service, one connectionId per connection.
    V3,
}

impl Format {
    fn of(subprotocol: Subprotocol) -> Self {
        match subprotocol {
            Subprotocol::V1 => Format::V1,
            Subprotocol::V2 => Format::V2,
            Subprotocol::V3 | Subprotocol::Burrow1 => Format::V3,
        }
    }
}

impl Broker {
    /// Opens one connection to `service` of the tunnel and answers it as a byte stream.
    /// Fails fast with [`BrokerError::NotConnected`] when no destination is connected here.
    ///
    /// With a V1/V2 destination a service carries one connection at a time: a new one
    /// replaces (ends) the previous one, as a new STREAM_START does in the protocol.
    pub async fn connect_source(
        &self,
        tunnel_id: &str,
        service: &str,
    ) -> Result<TunnelStream, BrokerError> {
        let hub = self
            .registry
            .get(tunnel_id)
            .ok_or(BrokerError::NotConnected)?;
        let dest = hub
            .peer(Role::Destination)
            .ok_or(BrokerError::NotConnected)?;
        let format = Format::of(dest.subprotocol);
        let services = hub.services();
        if !services.is_empty() && !services.iter().any(|s| s == service) {
            return Err(invalid(format!(
                "{service:?} is not a service of the tunnel"
            )));
        }
        let service_id = if format == Format::V1 || services.is_empty() {
            String::new()
        } else {
            service.to_owned()
        };
        let (peer, ip) = self.in_process_source(&hub, &dest).await?;
        let _open = ip.open_lock.lock().await;
        // A CONNECTION_START can turn out stale if the destination reset the stream at the
        // same moment; the second attempt then starts a new stream.
        for _ in 0..2 {
            let (start, key) = allocate(&ip, &peer, &service_id, format);
            let (conn, parts) = crate::pipe::conn(&ip, format);
            lock(&ip.inner).conns.insert(key.clone(), conn);
            let frame = Frame {
                raw: encode(&start).ok_or_else(|| invalid("start message too large"))?,
                message: start,
            };
            match relay(&hub, &peer, frame).await {
                Ok(Verdict::Forward) => {
                    let io = parts.into_io(hub.clone(), peer.clone(), ip.clone(), key);
                    return Ok(TunnelStream { io });
                }
                Ok(Verdict::Drop) => {
                    lock(&ip.inner).conns.remove(&key);
                    lock(&ip.inner).active.remove(&service_id);
                }
                Err(err) => {
                    lock(&ip.inner).conns.remove(&key);
                    return Err(invalid(format!("in-process source: {err}")));
                }
            }
        }
        Err(BrokerError::NotConnected)
    }

    /// The in-process source bound to `dest`, attached now if there is none yet. It replaces
    /// a WebSocket source, if one is connected (the newer peer wins, as for any source).
    async fn in_process_source(
        &self,
        hub: &Arc<Hub>,
        dest: &Arc<Peer>,
    ) -> Result<(Arc<Peer>, Arc<InProcess>), BrokerError> {
        let current = || {
            let peer = hub.peer(Role::Source)?;
            match &peer.kind {
                PeerKind::InProcess(ip) if ip.dest_generation == dest.generation => {
                    Some((peer.clone(), ip.clone()))
                }
                _ => None,
            }
        };
        if let Some(found) = current() {
            return Ok(found);
        }
        // Two first requests at once must not each attach a source (the second would replace
        // the first and end its connection).
        let _guard = self.lock_tunnel(&hub.id).await;
        if let Some(found) = current() {
            return Ok(found);
        }
        let ip = Arc::new(InProcess {
            dest_generation: dest.generation,
            subprotocol: dest.subprotocol,
            open_lock: tokio::sync::Mutex::new(()),
            inner: Mutex::new(Inner::default()),
        });
        let kind = PeerKind::InProcess(ip.clone());
        let (hub2, attached, _) = self
            .registry
            .attach(
                &hub.id,
                &hub.services(),
                Role::Source,
                dest.subprotocol,
                kind,
            )
            .ok_or(BrokerError::Closed)?;
        let peer = attached.peer.clone();
        if let Some(old) = &attached.replaced {
            // A WebSocket source (`burrow connect`) was connected: it goes, and the
            // destination's streams from it are reset.
            old.kick(CLOSE_NORMAL, "replaced by a newer connection");
            crate::lifecycle::other_side_lost_its_peer(&hub2, Role::Source).await;
        }
        tokio::spawn(crate::pipe::close_on_kick(
            peer.clone(),
            ip.clone(),
            attached.rx,
        ));
        // The destination may have left meanwhile: then this source has nobody to talk to.
        let current = hub2.peer(Role::Destination);
        if !Arc::ptr_eq(&hub2, hub) || current.is_none_or(|d| d.generation != dest.generation) {
            hub2.detach(&peer);
            peer.kick(CLOSE_NORMAL, "destination left");
            self.registry.remove_if_idle(&hub2);
            return Err(BrokerError::NotConnected);
        }
        Ok((peer, ip))
    }
}

/// Picks the ids and start message of a new connection.
fn allocate(ip: &InProcess, peer: &Peer, service: &str, format: Format) -> (Message, ConnKey) {
    let mut inner = lock(&ip.inner);
    if format == Format::V3 {
        let current = inner.active.get(service).copied();
        let live = lock(&peer.state).active_stream(service);
        if let (Some(sid), true) = (current, current == live) {
            let cid = inner.ids.next_connection(service);
            let key = (service.to_owned(), sid, cid);
            return (Message::connection_start(sid, service, cid), key);
        }
    }
    let sid = inner.ids.next_stream(service);
    if format == Format::V3 {
        inner.active.insert(service.to_owned(), sid);
        let cid = inner.ids.next_connection(service);
        return (
            Message::stream_start(sid, service, cid),
            (service.to_owned(), sid, cid),
        );
    }
    // V1/V2: the new stream replaces the service's previous one (and its connection).
    inner.conns.retain(|key, conn| {
        let keep = key.0 != service;
        if !keep {
            conn.cancel.cancel();
        }
        keep
    });
    (
        Message::stream_start(sid, service, 0),
        (service.to_owned(), sid, 1),
    )
}
