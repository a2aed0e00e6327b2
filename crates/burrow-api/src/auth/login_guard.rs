//! What keeps password logins (`/api/v1/auth/login`, the edge's `/edge/login`) from being
//! abused: attempts throttled per client address first, then per account, and a fixed number
//! of argon2 verifications at once.
//!
//! - **Memory.** Each argon2 verification takes 19 MiB. They run on a few dedicated threads
//!   (`verifiers`, default 2), each with its own working memory allocated once and reused, so
//!   logins hold `verifiers` × 19 MiB at most, however many arrive; a login that cannot get a
//!   verifier within `wait` answers 503 instead of queueing without bound.
//! - **Guessing.** Attempts are counted per client address (IPv6 by /64) in two tiers, a
//!   short burst and a slow hourly budget, so the wait grows as an address keeps failing;
//!   then per account, with a looser, short-lived quota: many addresses together can slow
//!   one account's guessing without locking its owner out for more than seconds.
//!   Throttled attempts answer 429 with `Retry-After` and spend no verification.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::password::verify_password_in;

/// Keys tracked per limiter before idle ones are swept (the sweep also runs every
/// [`SWEEP_EVERY`] checks).
const MAX_KEYS: usize = 100_000;
const SWEEP_EVERY: u64 = 4096;

/// Quotas and sizes of a [`LoginGuard`].
#[derive(Debug, Clone)]
pub struct LoginLimits {
    /// argon2 verifications running at once (each holds 19 MiB while it runs).
    pub verifiers: usize,
    /// How long a login waits for a free verifier before 503.
    pub wait: Duration,
    /// Per client address: burst, then one more attempt per period.
    pub per_address: (u32, Duration),
    /// Per client address, the slow tier: burst, then one per period.
    pub per_address_slow: (u32, Duration),
    /// Per account (existing users only): burst, then one per period.
    pub per_account: (u32, Duration),
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            verifiers: 2,
            wait: Duration::from_secs(2),
            per_address: (30, Duration::from_secs(2)),
            per_address_slow: (100, Duration::from_secs(60)),
            per_account: (50, Duration::from_secs(6)),
        }
    }
}

/// Why a login attempt was not even tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    /// Too many attempts: 429, try again after this long.
    Throttled(Duration),
    /// Every verifier is busy: 503.
    Busy,
}

struct Job {
    password: String,
    phc: Option<String>,
    reply: tokio::sync::oneshot::Sender<bool>,
}

struct Keyed<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    checks: AtomicU64,
}

impl<K: std::hash::Hash + Eq + Clone> Keyed<K> {
    fn new((burst, period): (u32, Duration)) -> Self {
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period.max(Duration::from_millis(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        Keyed {
            limiter: RateLimiter::keyed(quota),
            checks: AtomicU64::new(0),
        }
    }

    fn check(&self, key: &K) -> Result<(), LoginRefused> {
        let n = self.checks.fetch_add(1, Ordering::Relaxed);
        if n % SWEEP_EVERY == SWEEP_EVERY - 1 || self.limiter.len() > MAX_KEYS {
            self.limiter.retain_recent();
        }
        self.limiter.check_key(key).map_err(|not_until| {
            LoginRefused::Throttled(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }
}

/// Shared by every login endpoint of a server (see the module doc).
pub struct LoginGuard {
    limits: LoginLimits,
    slots: Arc<tokio::sync::Semaphore>,
    jobs: OnceLock<Mutex<mpsc::SyncSender<Job>>>,
    by_address: Keyed<IpAddr>,
    by_address_slow: Keyed<IpAddr>,
    by_account: Keyed<i64>,
}

impl std::fmt::Debug for LoginGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginGuard")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Default for LoginGuard {
    fn default() -> Self {
        LoginGuard::new(LoginLimits::default())
    }
}

/// The throttling key of a client address: IPv4 as is, IPv6 by /64 (one host usually owns a
/// whole /64), IPv4-mapped IPv6 as IPv4.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl LoginGuard {
    pub fn new(limits: LoginLimits) -> Self {
        LoginGuard {
            slots: Arc::new(tokio::sync::Semaphore::new(limits.verifiers.max(1))),
            jobs: OnceLock::new(),
            by_address: Keyed::new(limits.per_address),
            by_address_slow: Keyed::new(limits.per_address_slow),
            by_account: Keyed::new(limits.per_account),
            limits,
        }
    }

    /// Counts an attempt from `ip` (unknown address: one shared key); refused when the
    /// address is over either tier. Check this before anything else.
    pub fn check_address(&self, ip: Option<IpAddr>) -> Result<(), LoginRefused> {
        let key = ip.map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), client_key);
        self.by_address.check(&key)?;
        self.by_address_slow.check(&key)
    }

    /// Counts an attempt on account `user_id` (after [`LoginGuard::check_address`]).
    pub fn check_account(&self, user_id: i64) -> Result<(), LoginRefused> {
        self.by_account.check(&user_id)
    }

    /// Verifies `password` against `phc` (`None`: unknown user, same cost) on one of the
    /// verifier threads, waiting at most `wait` for a free one.
    pub async fn verify(
        &self,
        password: String,
        phc: Option<String>,
    ) -> Result<bool, LoginRefused> {
        let permit = tokio::time::timeout(self.limits.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| LoginRefused::Busy)?
            .map_err(|_| LoginRefused::Busy)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            password,
            phc,
            reply,
        };
        // At most `verifiers` jobs are in flight (one per permit), so this never blocks.
        let sent = self
            .jobs
            .get_or_init(|| Mutex::new(spawn_verifiers(self.limits.verifiers.max(1))))
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job);
        if sent.is_err() {
            return Err(LoginRefused::Busy);
        }
        let ok = answer.await.unwrap_or(false);
        drop(permit);
        Ok(ok)
    }
}

/// `n` threads that run argon2 verifications; they end when the guard (the sender) is dropped.
fn spawn_verifiers(n: usize) -> mpsc::SyncSender<Job> {
    let (tx, rx) = mpsc::sync_channel::<Job>(n);
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..n {
        let rx = rx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("burrow-argon2-{i}"))
            .spawn(move || {
                // Each verifier keeps its argon2 memory: allocated once, never given back.
                let mut memory = Vec::new();
                loop {
                    let job = {
                        let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
                        rx.recv()
                    };
                    let Ok(job) = job else { return };
                    let ok = verify_password_in(&mut memory, &job.password, job.phc.as_deref());
                    let _ = job.reply.send(ok);
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start a password verifier thread");
        }
    }
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_throttled_before_accounts() {
        let g = LoginGuard::new(LoginLimits {
            per_address: (3, Duration::from_secs(60)),
            per_account: (5, Duration::from_secs(60)),
            ..LoginLimits::default()
        });
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(g.check_address(Some(a)), Ok(()));
        }
        match g.check_address(Some(a)) {
            Err(LoginRefused::Throttled(wait)) => assert!(wait > Duration::from_secs(50)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            g.check_address(Some("10.0.0.2".parse().expect("ip"))),
            Ok(())
        );
        let v6a: IpAddr = "2001:db8::1".parse().expect("ip");
        let v6b: IpAddr = "2001:db8::2".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(g.check_address(Some(v6a)), Ok(()));
        }
        assert!(g.check_address(Some(v6b)).is_err(), "same /64");
        for _ in 0..5 {
            assert_eq!(g.check_account(7), Ok(()));
        }
        assert!(g.check_account(7).is_err());
        assert_eq!(g.check_account(8), Ok(()));
    }

    #[tokio::test]
    async fn verifications_are_bounded_and_answer() {
        let g = LoginGuard::new(LoginLimits {
            verifiers: 1,
            wait: Duration::from_millis(1),
            ..LoginLimits::default()
        });
        let hash = crate::hash_password("pw").expect("hash");
        assert_eq!(g.verify("pw".into(), Some(hash.clone())).await, Ok(true));
        let (a, b) = tokio::join!(
            g.verify("no".into(), Some(hash.clone())),
            g.verify("no".into(), Some(hash))
        );
        assert!(
            a == Err(LoginRefused::Busy) || b == Err(LoginRefused::Busy),
            "{a:?} {b:?}"
        );
    }
}
