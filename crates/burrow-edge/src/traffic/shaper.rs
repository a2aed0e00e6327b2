//! Bandwidth shaping: a token bucket per tunnel and direction, and a body wrapper that holds
//! each data frame back until the bucket has paid for it. Bytes are delayed, never dropped.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// The bucket holds a quarter of a second of traffic (at least 16 KiB), so that a transfer
/// starts at once but its average rate is the limit within a fraction of a second.
const BURST_SECONDS: f64 = 0.25;
const MIN_BURST: f64 = 16.0 * 1024.0;

pub struct Shaper {
    rate: f64,
    capacity: f64,
    /// (tokens, when they were counted); tokens go negative for a frame larger than them,
    /// which is the debt the next frames wait for.
    state: Mutex<(f64, Instant)>,
}

impl Shaper {
    pub fn new(bytes_per_second: u64) -> Self {
        let rate = (bytes_per_second.max(1)) as f64;
        let capacity = (rate * BURST_SECONDS).max(MIN_BURST);
        Shaper {
            rate,
            capacity,
            state: Mutex::new((capacity, Instant::now())),
        }
    }

    /// Takes `n` bytes from the bucket; answers how long the sender must wait first.
    pub fn reserve(&self, n: usize) -> Duration {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
        s.0 = (s.0 + refill).min(self.capacity) - n as f64;
        s.1 = now;
        if s.0 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.0 / self.rate)
        }
    }
}

/// A body whose data frames pass at the shaper's rate.
pub struct Shaped<B> {
    inner: B,
    shaper: Arc<Shaper>,
    /// A frame already paid for, released when the sleep ends.
    held: Option<(Frame<Bytes>, Pin<Box<tokio::time::Sleep>>)>,
}

impl<B> Shaped<B> {
    pub fn new(inner: B, shaper: Arc<Shaper>) -> Self {
        Shaped {
            inner,
            shaper,
            held: None,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Shaped<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some((_, sleep)) = &mut self.held {
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if let Some((frame, _)) = self.held.take() {
                return Poll::Ready(Some(Ok(frame)));
            }
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, Bytes::len);
                let wait = self.shaper.reserve(n);
                if wait.is_zero() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                let mut sleep = Box::pin(tokio::time::sleep(wait));
                if sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                self.held = Some((frame, sleep));
                Poll::Pending
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debt_is_waited_for_at_the_rate() {
        let s = Shaper::new(100_000);
        assert_eq!(
            s.reserve(25_000),
            Duration::ZERO,
            "the burst passes at once"
        );
        let wait = s.reserve(50_000);
        assert!(
            wait > Duration::from_millis(450) && wait <= Duration::from_millis(510),
            "{wait:?}"
        );
    }
}
