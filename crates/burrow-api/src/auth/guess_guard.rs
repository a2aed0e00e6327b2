//! Slows the guessing of secrets sent to the edge (per-tunnel API keys, share links): failed
//! attempts are counted per client address (IPv6 by /64) in the login guard's two tiers, a
//! burst and an hourly budget; an address over either is refused (429, `Retry-After`) until
//! its wait is over, without a lookup. Successes are not counted.

use std::net::IpAddr;
use std::time::Duration;

use super::login_guard::{address_key, Failures};

/// Quotas of a [`GuessGuard`]: (burst, then one more per period), fast and slow tier.
#[derive(Debug, Clone)]
pub struct GuessLimits {
    pub burst: (u32, Duration),
    pub slow: (u32, Duration),
}

impl Default for GuessLimits {
    fn default() -> Self {
        GuessLimits {
            burst: (10, Duration::from_secs(6)),
            slow: (60, Duration::from_secs(60)),
        }
    }
}

pub struct GuessGuard {
    by_address: Failures<IpAddr>,
}

impl std::fmt::Debug for GuessGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuessGuard")
    }
}

impl Default for GuessGuard {
    fn default() -> Self {
        GuessGuard::new(GuessLimits::default())
    }
}

impl GuessGuard {
    pub fn new(limits: GuessLimits) -> Self {
        GuessGuard {
            by_address: Failures::new(&[limits.burst, limits.slow]),
        }
    }

    /// `Err(wait)` while `ip` is over its failure quota: check before looking a secret up.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        match self.by_address.blocked(&address_key(Some(ip))) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt from `ip`; `Err(wait)` when it went over a quota.
    pub fn failed(&self, ip: IpAddr) -> Result<(), Duration> {
        match self.by_address.fail(&address_key(Some(ip))) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_past_the_burst_are_refused_per_address() {
        let g = GuessGuard::new(GuessLimits {
            burst: (3, Duration::from_secs(60)),
            slow: (100, Duration::from_secs(60)),
        });
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        for _ in 0..3 {
            assert!(g.check(a).is_ok());
            assert!(g.failed(a).is_ok());
        }
        assert!(g.failed(a).is_err(), "over the burst");
        assert!(g.check(a).is_err(), "blocked afterwards");
        assert!(g.check(b).is_ok(), "another client is not");
    }
}
