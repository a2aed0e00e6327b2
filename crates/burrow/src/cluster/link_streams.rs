//! The streams this node's link serves, with when each last carried a byte, so that a
//! draining node can close the idle ones (keep-alive connections other nodes' edges parked
//! on it) while the busy ones finish.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

struct Entry {
    last: Arc<AtomicU64>,
    close: Arc<Notify>,
}

pub struct LinkStreams {
    epoch: Instant,
    next: AtomicU64,
    live: Mutex<HashMap<u64, Entry>>,
}

/// A registered stream: dropped, it leaves the registry.
pub struct Registration {
    streams: Arc<LinkStreams>,
    id: u64,
    pub last: Arc<AtomicU64>,
    pub close: Arc<Notify>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.streams.map().remove(&self.id);
    }
}

impl Default for LinkStreams {
    fn default() -> Self {
        LinkStreams {
            epoch: Instant::now(),
            next: AtomicU64::new(0),
            live: Mutex::new(HashMap::new()),
        }
    }
}

impl LinkStreams {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn register(self: &Arc<Self>) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let last = Arc::new(AtomicU64::new(self.now_ms()));
        let close = Arc::new(Notify::new());
        self.map().insert(
            id,
            Entry {
                last: last.clone(),
                close: close.clone(),
            },
        );
        Registration {
            streams: self.clone(),
            id,
            last,
            close,
        }
    }

    /// Wraps `io` so that every byte through it counts as activity of `reg`.
    pub fn track<T>(self: &Arc<Self>, io: T, reg: &Registration) -> Tracked<T> {
        Tracked {
            io,
            streams: self.clone(),
            last: reg.last.clone(),
        }
    }

    /// Asks every stream idle for at least `idle` to close; answers how many remain open.
    pub fn close_idle(&self, idle: Duration) -> usize {
        let now = self.now_ms();
        let idle = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let map = self.map();
        for e in map.values() {
            if now.saturating_sub(e.last.load(Ordering::Relaxed)) >= idle {
                e.close.notify_one();
            }
        }
        map.len()
    }

    pub fn open(&self) -> usize {
        self.map().len()
    }
}

pub struct Tracked<T> {
    io: T,
    streams: Arc<LinkStreams>,
    last: Arc<AtomicU64>,
}

impl<T> Tracked<T> {
    fn touch(&self) {
        self.last.store(self.streams.now_ms(), Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn only_idle_streams_are_asked_to_close() {
        let streams = Arc::new(LinkStreams::default());
        let (a, mut b) = tokio::io::duplex(64);
        let reg = streams.register();
        let mut tracked = streams.track(a, &reg);
        let idle = streams.register();
        tokio::time::sleep(Duration::from_millis(30)).await;
        tracked.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        b.read_exact(&mut one).await.unwrap();
        assert_eq!(streams.close_idle(Duration::from_millis(20)), 2);
        // The idle one was told; the busy one was not.
        tokio::time::timeout(Duration::from_secs(1), idle.close.notified())
            .await
            .expect("idle stream asked to close");
        let busy = tokio::time::timeout(Duration::from_millis(50), reg.close.notified()).await;
        assert!(busy.is_err(), "a busy stream is left alone");
        drop(idle);
        assert_eq!(streams.open(), 1);
    }
}
