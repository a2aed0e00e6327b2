//! HTTP/1.1 exchanges on a tunnel connection, driven by the task of the request they serve.
//!
//! hyper's client connection is a future that does the connection's I/O. Spawned as a task of
//! its own, it puts two more task switches on every request (the request's task → the
//! connection's task → the tunnel, and back) and needs a third task to notice when a
//! connection is idle again. Here the request's task polls the connection itself: while it
//! waits for the response head ([`TunnelConn::send`]), then while the response body is read
//! ([`DrivenBody`]), which parks the connection in the pool once the body has ended.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper::client::conn::TrySendError;
use hyper_util::rt::TokioIo;

use crate::dialer::TunnelIo;
use crate::pool::Pool;

type Conn = Connection<TokioIo<Box<dyn TunnelIo>>, Body>;

/// An open HTTP/1.1 connection through the tunnel: the handle requests go in by, and the
/// connection's future, which moves nothing unless it is polled.
pub struct TunnelConn {
    sender: SendRequest<Body>,
    /// `None` once the connection has ended.
    conn: Option<Conn>,
}

/// Polls the connection; false once it has ended (closed, failed or timed out).
fn drive(conn: &mut Option<Conn>, cx: &mut Context<'_>) -> bool {
    let Some(c) = conn else { return false };
    match Pin::new(c).poll(cx) {
        Poll::Pending => true,
        Poll::Ready(ended) => {
            if let Err(e) = ended {
                tracing::debug!(error = %e, "edge: tunnel connection ended");
            }
            *conn = None;
            false
        }
    }
}

impl TunnelConn {
    pub fn new(sender: SendRequest<Body>, conn: Conn) -> Self {
        TunnelConn {
            sender,
            conn: Some(conn),
        }
    }

    /// Whether a request can go out now: the connection is open and waits for one. Moves
    /// the connection along first (a response that just ended, a close from the device).
    pub fn is_idle(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        drive(&mut self.conn, &mut cx) && !self.sender.is_closed() && self.sender.is_ready()
    }

    /// Whether the connection is known to have closed (without polling it).
    pub fn is_closed(&self) -> bool {
        self.conn.is_none() || self.sender.is_closed()
    }

    /// Drives the connection until it can take another request (true) or has ended (false).
    pub fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if !drive(&mut self.conn, cx) {
            return Poll::Ready(false);
        }
        Poll::Ready(ready!(self.sender.poll_ready(cx)).is_ok())
    }

    /// Sends `req` and waits for the response head, driving the connection meanwhile. The
    /// request comes back in the error if it was not written (the connection had closed).
    pub async fn send(
        &mut self,
        req: Request<Body>,
    ) -> Result<Response<Incoming>, TrySendError<Request<Body>>> {
        let TunnelConn { sender, conn } = self;
        let mut answer = std::pin::pin!(sender.try_send_request(req));
        poll_fn(|cx| {
            drive(conn, cx);
            answer.as_mut().poll(cx)
        })
        .await
    }

    /// The connection for a WebSocket upgrade: it runs in a task of its own, which carries
    /// the upgraded bytes once the service has answered 101.
    pub fn into_upgradable(self) -> SendRequest<Body> {
        if let Some(conn) = self.conn {
            tokio::spawn(async move {
                if let Err(e) = conn.with_upgrades().await {
                    tracing::debug!(error = %e, "edge: tunnel connection ended");
                }
            });
        }
        self.sender
    }
}

/// A response body from the tunnel that drives its connection while it is read, and parks
/// the connection for the next request of the same route once it has been read to the end.
/// Dropped before the end, it closes the connection (the rest of the response is unread).
pub struct DrivenBody {
    body: Incoming,
    up: Option<TunnelConn>,
    pool: Arc<Pool>,
    route: String,
    ended: bool,
}

impl DrivenBody {
    pub fn new(body: Incoming, up: TunnelConn, pool: Arc<Pool>, route: String) -> Self {
        DrivenBody {
            body,
            up: Some(up),
            pool,
            route,
            ended: false,
        }
    }
}

impl HttpBody for DrivenBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(up) = &mut this.up {
            drive(&mut up.conn, cx);
        }
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        match &frame {
            None => this.ended = true,
            Some(Ok(_)) => this.ended = this.body.is_end_stream(),
            Some(Err(_)) => this.up = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for DrivenBody {
    fn drop(&mut self) {
        let Some(up) = self.up.take() else { return };
        // A body with nothing in it is never polled: it has ended all the same.
        if self.ended || self.body.is_end_stream() {
            self.pool.park(std::mem::take(&mut self.route), up);
        }
    }
}
