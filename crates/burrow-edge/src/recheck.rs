//! Long-lived connections re-check their access: a WebSocket pipe, or a response body still
//! streaming (a download, SSE) after `access_recheck`, is ended once its user may no longer use
//! the tunnel (removed from the project or from `allowed_user_ids`, signed out everywhere,
//! tunnel disabled, deleted or made private), its API key or share link is revoked or expires,
//! or the tunnel's IP rules now refuse its client. Short responses cost a timer, no task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use crate::edge::Edge;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What let a connection in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Nothing: a public tunnel.
    Public,
    /// A user, and when their credential was issued.
    User { id: i64, issued_at: i64 },
    /// A tunnel API key (by its hash).
    Key { hash: String },
    /// A share link's session.
    Share { link_id: i64 },
}

/// Who is using a connection, to re-check.
#[derive(Clone)]
pub struct Recheck {
    pub edge: Arc<Edge>,
    pub host: String,
    pub principal: Principal,
    /// The client's address (the tunnel's IP rules may change).
    pub client: std::net::IpAddr,
}

impl Recheck {
    /// A task that re-checks every `access_recheck` and fires the answer once access is gone;
    /// it ends by itself when the answer is dropped (the connection ended).
    pub fn watch(self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let mut tx = tx;
            let mut tick = tokio::time::interval(self.edge.config.access_recheck);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    () = tx.closed() => return,
                    _ = tick.tick() => {
                        if !self.edge.still_allowed(&self.host, &self.principal, self.client).await {
                            tracing::debug!(host = %self.host, "edge: access revoked, connection closed");
                            let _ = tx.send(());
                            return;
                        }
                    }
                }
            }
        });
        rx
    }
}

#[derive(Debug, thiserror::Error)]
#[error("access to the tunnel was revoked")]
struct Revoked;

/// A device's response body that ends with an error (the client sees the stream cut) once
/// access is revoked; the watcher starts only if the body is still open after
/// `access_recheck`. The timer is armed only when the body has to wait: most responses end
/// on their first polls, and a timer per response (allocated, registered and removed) was a
/// measurable share of the edge's CPU per request.
pub struct Revocable<B> {
    inner: B,
    /// When the watcher starts, until it has.
    deadline: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    recheck: Option<Recheck>,
    revoked: Option<oneshot::Receiver<()>>,
}

impl<B> Revocable<B> {
    pub fn new(inner: B, recheck: Recheck) -> Self {
        Revocable {
            inner,
            deadline: Some(Instant::now() + recheck.edge.config.access_recheck),
            timer: None,
            recheck: Some(recheck),
            revoked: None,
        }
    }

    fn start_watch(&mut self) {
        self.deadline = None;
        self.timer = None;
        self.revoked = self.recheck.take().map(Recheck::watch);
    }

    /// Whether the watcher has answered that access is gone (registers for its answer).
    fn poll_revoked(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(revoked) = &mut self.revoked else {
            return false;
        };
        match Pin::new(revoked).poll(cx) {
            Poll::Ready(Ok(())) => {
                self.revoked = None;
                true
            }
            // The watcher ended without an answer (it cannot outlive the body otherwise).
            Poll::Ready(Err(_)) => {
                self.revoked = None;
                false
            }
            Poll::Pending => false,
        }
    }
}

impl<B> Body for Revocable<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.deadline.is_some_and(|d| Instant::now() >= d) {
            this.start_watch();
        }
        if this.poll_revoked(cx) {
            return Poll::Ready(Some(Err(Box::new(Revoked))));
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into);
        if polled.is_pending() {
            if let Some(deadline) = this.deadline {
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.start_watch();
                    if this.poll_revoked(cx) {
                        return Poll::Ready(Some(Err(Box::new(Revoked))));
                    }
                }
            }
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
