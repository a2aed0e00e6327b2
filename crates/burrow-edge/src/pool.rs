//! Keep-alive connections over the tunnel, reused per tunnel: a small bounded set of idle
//! HTTP/1.1 senders per broker tunnel id, never shared across tunnels. A sender goes back to
//! the pool only once its connection is idle again (the response body was read to the end);
//! a connection that closed or failed is dropped.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::client::conn::http1::SendRequest;

pub type Sender = SendRequest<Body>;

pub struct Pool {
    max_idle: usize,
    idle: Mutex<HashMap<String, Vec<Sender>>>,
}

impl Pool {
    pub fn new(max_idle_per_tunnel: usize) -> Self {
        Pool {
            max_idle: max_idle_per_tunnel,
            idle: Mutex::default(),
        }
    }

    /// An idle, open connection of `tunnel_id`, if one is parked.
    pub fn take(&self, tunnel_id: &str) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(tunnel_id)?;
        let mut found = None;
        while let Some(s) = list.pop() {
            if !s.is_closed() && s.is_ready() {
                found = Some(s);
                break;
            }
        }
        if list.is_empty() {
            idle.remove(tunnel_id);
        }
        found
    }

    fn put(&self, tunnel_id: &str, sender: Sender) {
        if sender.is_closed() || self.max_idle == 0 {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(tunnel_id.to_string()).or_default();
        list.retain(|s| !s.is_closed());
        if list.len() < self.max_idle {
            list.push(sender);
        }
    }

    /// Parks `sender` once its current response has been read to the end: at once when its
    /// connection is idle again already, else from a task that waits for it.
    fn park_when_ready(self: &Arc<Self>, tunnel_id: String, mut sender: Sender) {
        if self.max_idle == 0 {
            return;
        }
        if sender.is_ready() {
            self.put(&tunnel_id, sender);
            return;
        }
        let pool = self.clone();
        tokio::spawn(async move {
            if sender.ready().await.is_ok() {
                pool.put(&tunnel_id, sender);
            }
        });
    }

    /// Closes the idle connections parked for `tunnel_id` (a rotated-out tunnel: they would
    /// keep it open, and no new request is routed to it).
    /// Also the routes through other nodes of a cluster (`<tunnel_id>@<node>`).
    pub fn evict(&self, tunnel_id: &str) -> usize {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = idle.remove(tunnel_id).map_or(0, |l| l.len());
        let remote = format!("{tunnel_id}@");
        idle.retain(|route, l| {
            let keep = !route.starts_with(&remote);
            if !keep {
                n += l.len();
            }
            keep
        });
        n
    }

    /// Idle connections parked for `tunnel_id` (tests, metrics).
    pub fn idle_count(&self, tunnel_id: &str) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.get(tunnel_id)
            .map_or(0, |l| l.iter().filter(|s| !s.is_closed()).count())
    }
}

/// A device's response body that gives its connection back to the pool once the body has been
/// read to the end, without a task per response in the usual case (the connection is idle
/// again by then). A body dropped before its end drops its connection, which is mid-response;
/// an empty body (204, 304, HEAD) that hyper drops unread is at its end.
pub struct ParkOnEnd<B: hyper::body::Body> {
    inner: B,
    park: Option<(Arc<Pool>, String, Sender)>,
}

impl<B: hyper::body::Body> ParkOnEnd<B> {
    pub fn new(inner: B, pool: Arc<Pool>, tunnel_id: &str, sender: Sender) -> Self {
        ParkOnEnd {
            inner,
            park: Some((pool, tunnel_id.to_string(), sender)),
        }
    }

    fn park(&mut self) {
        if let Some((pool, tunnel_id, sender)) = self.park.take() {
            pool.park_when_ready(tunnel_id, sender);
        }
    }
}

impl<B> hyper::body::Body for ParkOnEnd<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.park(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.park(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: hyper::body::Body> Drop for ParkOnEnd<B> {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.park();
        }
    }
}
