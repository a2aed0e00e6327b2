//! Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
//! Jitter"): the n-th delay is uniform in `[0, min(cap, base * 2^n)]`, so a fleet of agents
//! that lost the server at the same moment does not come back in lockstep.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// Delays for retrying a connection or a request.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    /// A connection that stayed up this long counts as a success: the next failure starts
    /// again from `base`.
    stable_after: Duration,
    attempt: u32,
}

/// Reconnecting destinations: 250 ms base, 30 s cap, reset after 30 s up.
pub const CONNECT: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(30));
/// A refused config request (device revoked or unknown): slower, capped at 60 s.
pub const REFUSED: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            stable_after: Duration::from_secs(30),
            attempt: 0,
        }
    }

    pub fn from_pair((base, cap): (Duration, Duration)) -> Self {
        Self::new(base, cap)
    }

    pub fn with_stable_after(mut self, stable_after: Duration) -> Self {
        self.stable_after = stable_after;
        self
    }

    /// Failures since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The upper bound of the next delay: `min(cap, base * 2^attempts)`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next delay, uniform in `[0, ceiling]`, and one more attempt counted.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// A connection that was up since `up_since` ended: reset if it was up long enough.
    pub fn connection_ended(&mut self, up_since: Instant) {
        if up_since.elapsed() >= self.stable_after {
            self.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            ceilings.push(b.ceiling().as_millis());
            b.next_delay();
        }
        assert_eq!(
            ceilings,
            [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(
            b.ceiling(),
            Duration::from_secs(30),
            "no overflow past the cap"
        );
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_ceiling() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let mut below_half = 0;
        for _ in 0..2000 {
            let ceiling = b.ceiling();
            let d = b.next_delay();
            assert!(d <= ceiling, "{d:?} > {ceiling:?}");
            assert!(d <= Duration::from_secs(30));
            if d < ceiling / 2 {
                below_half += 1;
            }
        }
        // Full jitter, not "half jitter": about half the delays are below ceiling/2.
        assert!((600..1400).contains(&below_half), "{below_half}");
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
        let delays: std::collections::HashSet<_> = (0..50).map(|_| b.next_delay()).collect();
        assert!(delays.len() > 10, "delays are random: {delays:?}");
    }

    #[test]
    fn reset_starts_again_from_base() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        for _ in 0..5 {
            b.next_delay();
        }
        assert_eq!(b.attempts(), 5);
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.ceiling(), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_stable_connection_resets() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        for _ in 0..4 {
            b.next_delay();
        }
        let up = Instant::now();
        tokio::time::advance(Duration::from_secs(29)).await;
        b.connection_ended(up);
        assert_eq!(b.attempts(), 4, "29 s up is not stable yet");
        let up = Instant::now();
        tokio::time::advance(Duration::from_secs(30)).await;
        b.connection_ended(up);
        assert_eq!(b.attempts(), 0, "30 s up resets");
    }

    #[tokio::test(start_paused = true)]
    async fn sleeping_the_delays_takes_bounded_time() {
        // Ten failures in a row never take longer than the sum of the ceilings.
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let start = Instant::now();
        let mut bound = Duration::ZERO;
        for _ in 0..10 {
            bound += b.ceiling();
            tokio::time::sleep(b.next_delay()).await;
        }
        assert!(start.elapsed() <= bound);
    }
}
