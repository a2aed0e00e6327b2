//! Where a request's time went: the moments the edge handed it to the tunnel, had a tunnel
//! connection, and had the device's response head, as offsets from its arrival.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Phases {
    origin: Instant,
    /// Microseconds after `origin`, 0 = not reached.
    dispatched: AtomicU64,
    connected: AtomicU64,
    answered: AtomicU64,
}

/// (edge, tunnel, device) time of a finished request.
pub type Split = (Duration, Duration, Duration);

impl Phases {
    pub fn new(origin: Instant) -> Self {
        Phases {
            origin,
            dispatched: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            answered: AtomicU64::new(0),
        }
    }

    fn mark(&self, slot: &AtomicU64) {
        let us = u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        let _ = slot.compare_exchange(0, us.max(1), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The edge is done with routing, auth and limits; forwarding starts.
    pub fn dispatched(&self) {
        self.mark(&self.dispatched);
    }

    /// A connection through the tunnel is ready (pooled or new).
    pub fn connected(&self) {
        self.mark(&self.connected);
    }

    /// The device's response head arrived.
    pub fn answered(&self) {
        self.mark(&self.answered);
    }

    /// Edge time (arrival to dispatch; the whole request when never dispatched), tunnel
    /// time (dispatch to connection) and device time (connection to response head).
    pub fn split(&self, total: Duration) -> Split {
        let at = |a: &AtomicU64| Duration::from_micros(a.load(Ordering::Relaxed));
        let (d, c, a) = (
            at(&self.dispatched),
            at(&self.connected),
            at(&self.answered),
        );
        if d.is_zero() {
            return (total, Duration::ZERO, Duration::ZERO);
        }
        let tunnel = if c.is_zero() {
            Duration::ZERO
        } else {
            c.saturating_sub(d)
        };
        let device = if a.is_zero() || c.is_zero() {
            Duration::ZERO
        } else {
            a.saturating_sub(c)
        };
        (d, tunnel, device)
    }
}
