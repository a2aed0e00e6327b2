//! A peer's outbound queue: tunnel frames waiting to be written to it, capped in bytes.
//!
//! Why bytes and not a message count: frames range from 10 bytes to 64 KiB, so a count cap
//! would either waste the budget or not bound memory. A sender waits for capacity (a
//! semaphore of one permit per byte) instead of buffering, so a peer that stops reading
//! stalls only the senders into its own queue, and the broker's memory stays bounded. Permits
//! return when the writer has handed the frame to the socket, so the gauge counts exactly the
//! bytes the broker holds for that peer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};

/// Buffered-bytes counters: one per tunnel and one for the whole broker.
#[derive(Clone, Default)]
pub(crate) struct Gauge {
    pub tunnel: Arc<AtomicUsize>,
    pub total: Arc<AtomicUsize>,
}

impl Gauge {
    fn add(&self, n: usize) {
        self.tunnel.fetch_add(n, Ordering::Relaxed);
        self.total.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, n: usize) {
        self.tunnel.fetch_sub(n, Ordering::Relaxed);
        self.total.fetch_sub(n, Ordering::Relaxed);
    }
}

/// The receiving peer is gone.
#[derive(Debug)]
pub(crate) struct QueueClosed;

pub(crate) fn frame_queue(cap: usize, gauge: Gauge) -> (QueueTx, QueueRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sem = Arc::new(Semaphore::new(cap));
    let tx = QueueTx {
        tx,
        sem: sem.clone(),
        gauge: gauge.clone(),
        cap,
    };
    (
        tx,
        QueueRx {
            rx,
            sem,
            gauge,
            cap,
        },
    )
}

#[derive(Clone)]
pub(crate) struct QueueTx {
    tx: mpsc::UnboundedSender<Bytes>,
    sem: Arc<Semaphore>,
    gauge: Gauge,
    cap: usize,
}

impl QueueTx {
    fn permits(&self, frame: &Bytes) -> usize {
        frame.len().min(self.cap)
    }

    /// Waits until the queue has room for `frame`, then queues it.
    pub async fn send(&self, frame: Bytes) -> Result<(), QueueClosed> {
        let n = self.permits(&frame);
        let permit = self
            .sem
            .acquire_many(n as u32)
            .await
            .map_err(|_| QueueClosed)?;
        permit.forget();
        self.push(frame, n)
    }

    /// Queues `frame` only if there is room now (for frames the broker generates where it
    /// must not wait, such as SERVICE_IDS into a fresh queue).
    pub fn try_send(&self, frame: Bytes) -> Result<(), QueueClosed> {
        let n = self.permits(&frame);
        let permit = self
            .sem
            .try_acquire_many(n as u32)
            .map_err(|_| QueueClosed)?;
        permit.forget();
        self.push(frame, n)
    }

    fn push(&self, frame: Bytes, n: usize) -> Result<(), QueueClosed> {
        let len = frame.len();
        self.gauge.add(len);
        self.tx.send(frame).map_err(|_| {
            self.gauge.sub(len);
            self.sem.add_permits(n);
            QueueClosed
        })
    }
}

pub(crate) struct QueueRx {
    rx: mpsc::UnboundedReceiver<Bytes>,
    sem: Arc<Semaphore>,
    gauge: Gauge,
    cap: usize,
}

impl QueueRx {
    /// The next frame; call [`QueueRx::release`] with its length once it left the broker.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.rx.try_recv().ok()
    }

    /// Returns the capacity of frames totalling `len` bytes.
    pub fn release(&self, len: usize) {
        self.gauge.sub(len);
        self.sem.add_permits(len.min(self.cap));
    }

    /// Releases one frame (several frames must be released one by one, because the permits
    /// of each are capped separately).
    pub fn release_frame(&self, frame: &Bytes) {
        self.release(frame.len());
    }
}

impl Drop for QueueRx {
    fn drop(&mut self) {
        // Wake senders waiting for room (they get QueueClosed), refuse new frames, and take
        // what is left off the gauge.
        self.sem.close();
        self.rx.close();
        while let Ok(frame) = self.rx.try_recv() {
            self.gauge.sub(frame.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn senders_wait_for_room_and_the_gauge_tracks_bytes() {
        let gauge = Gauge::default();
        let (tx, mut rx) = frame_queue(100, gauge.clone());
        tx.send(Bytes::from(vec![1u8; 60])).await.unwrap();
        assert!(tx.try_send(Bytes::from(vec![2u8; 60])).is_err(), "no room");
        assert_eq!(gauge.total.load(Ordering::Relaxed), 60);
        let blocked = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(Bytes::from(vec![3u8; 60])).await }
        });
        let first = rx.recv().await.unwrap();
        rx.release_frame(&first);
        blocked.await.unwrap().unwrap();
        assert_eq!(gauge.tunnel.load(Ordering::Relaxed), 60);
        drop(rx);
        assert_eq!(gauge.total.load(Ordering::Relaxed), 0);
        assert!(tx.send(Bytes::from_static(b"x")).await.is_err());
    }
}
