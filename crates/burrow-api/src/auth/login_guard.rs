//! What keeps password logins (`/api/v1/auth/login`, the edge's `/edge/login`) from being
//! abused: attempts throttled per client address first, then per account, and a fixed number
//! of argon2 verifications at once.
//!
//! - **Memory.** Each argon2 verification takes 19 MiB. They run on a few dedicated threads
//!   (`verifiers`, default 2), each with its own working memory allocated once and reused, so
//!   logins hold `verifiers` × 19 MiB at most, however many arrive; a login that cannot get a
//!   verifier within `wait` answers 503 instead of queueing without bound.
//! - **Guessing.** Failed logins are counted per client address (IPv6 by /64) in two tiers,
//!   a short burst and a slow hourly budget, so the wait grows as an address keeps failing;
//!   then per account, with a looser, short-lived quota: many addresses together can slow
//!   one account's guessing without locking its owner out for more than seconds. The failure
//!   that goes over a quota answers 429 with `Retry-After`, and so does every attempt until
//!   the wait is over, without spending a verification. Successful logins are not counted.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::password::verify_password_in;

/// Keys tracked per limiter before idle ones are swept (the sweep also runs every
/// [`SWEEP_EVERY`] failures).
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

/// Failed logins per key, in tiers (each a governor GCRA quota), and the keys that went over
/// one, until when. Only failures are counted: a user who signs in often is never throttled.
pub(super) struct Failures<K: std::hash::Hash + Eq + Clone> {
    tiers: Vec<DefaultKeyedRateLimiter<K>>,
    blocked: Mutex<HashMap<K, Instant>>,
    checks: AtomicU64,
}

impl<K: std::hash::Hash + Eq + Clone> Failures<K> {
    pub(super) fn new(tiers: &[(u32, Duration)]) -> Self {
        let tiers = tiers
            .iter()
            .map(|&(burst, period)| {
                let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
                let quota = Quota::with_period(period.max(Duration::from_millis(1)))
                    .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                    .allow_burst(burst);
                RateLimiter::keyed(quota)
            })
            .collect();
        Failures {
            tiers,
            blocked: Mutex::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// How long `key` must still wait, if it is over a quota.
    pub(super) fn blocked(&self, key: &K) -> Option<Duration> {
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let until = *blocked.get(key)?;
        let now = Instant::now();
        if until <= now {
            blocked.remove(key);
            return None;
        }
        Some(until - now)
    }

    /// Counts a failure of `key`; the wait when it went over a quota (the longest tier's).
    pub(super) fn fail(&self, key: &K) -> Option<Duration> {
        let n = self.checks.fetch_add(1, Ordering::Relaxed);
        let sweep = n % SWEEP_EVERY == SWEEP_EVERY - 1;
        let clock = DefaultClock::default();
        let mut wait: Option<Duration> = None;
        for tier in &self.tiers {
            if sweep || tier.len() > MAX_KEYS {
                tier.retain_recent();
            }
            if let Err(not_until) = tier.check_key(key) {
                let w = not_until.wait_time_from(clock.now());
                wait = Some(wait.map_or(w, |cur| cur.max(w)));
            }
        }
        let w = wait?;
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        if sweep || blocked.len() > MAX_KEYS {
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(key.clone(), now + w);
        Some(w)
    }
}

/// Shared by every login endpoint of a server (see the module doc).
pub struct LoginGuard {
    limits: LoginLimits,
    slots: Arc<tokio::sync::Semaphore>,
    jobs: OnceLock<Mutex<mpsc::SyncSender<Job>>>,
    by_address: Failures<IpAddr>,
    by_account: Failures<i64>,
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

pub(super) fn address_key(ip: Option<IpAddr>) -> IpAddr {
    ip.map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), client_key)
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
            by_address: Failures::new(&[limits.per_address, limits.per_address_slow]),
            by_account: Failures::new(&[limits.per_account]),
            limits,
        }
    }

    /// Refused while `ip` (unknown address: one shared key) is over its failure quota. Check
    /// this before anything else.
    pub fn check_address(&self, ip: Option<IpAddr>) -> Result<(), LoginRefused> {
        match self.by_address.blocked(&address_key(ip)) {
            Some(wait) => Err(LoginRefused::Throttled(wait)),
            None => Ok(()),
        }
    }

    /// Refused while account `user_id` is over its failure quota (check after the address).
    pub fn check_account(&self, user_id: i64) -> Result<(), LoginRefused> {
        match self.by_account.blocked(&user_id) {
            Some(wait) => Err(LoginRefused::Throttled(wait)),
            None => Ok(()),
        }
    }

    /// Counts a failed login from `ip` on `account` (`None`: no such user). `Err` when this
    /// failure went over a quota: answer it 429 rather than 401. An address over its quota
    /// does not count against the account, so one attacker cannot lock a user out.
    pub fn failed(&self, ip: Option<IpAddr>, account: Option<i64>) -> Result<(), LoginRefused> {
        if let Some(wait) = self.by_address.fail(&address_key(ip)) {
            return Err(LoginRefused::Throttled(wait));
        }
        match account.and_then(|id| self.by_account.fail(&id)) {
            Some(wait) => Err(LoginRefused::Throttled(wait)),
            None => Ok(()),
        }
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
    fn failures_are_throttled_by_address_then_account() {
        let g = LoginGuard::new(LoginLimits {
            per_address: (3, Duration::from_secs(60)),
            per_account: (5, Duration::from_secs(60)),
            ..LoginLimits::default()
        });
        let a: Option<IpAddr> = Some("10.0.0.1".parse().expect("ip"));
        for _ in 0..3 {
            assert_eq!(g.check_address(a), Ok(()));
            assert_eq!(g.failed(a, Some(7)), Ok(()));
        }
        assert_eq!(g.check_address(a), Ok(()), "not over yet");
        match g.failed(a, Some(7)) {
            Err(LoginRefused::Throttled(wait)) => assert!(wait > Duration::from_secs(50)),
            other => panic!("{other:?}"),
        }
        assert!(
            g.check_address(a).is_err(),
            "blocked until the wait is over"
        );
        assert_eq!(
            g.check_account(7),
            Ok(()),
            "3 failures so far on the account"
        );
        let b = Some("10.0.0.2".parse().expect("ip"));
        assert_eq!(g.check_address(b), Ok(()));
        assert_eq!(g.failed(b, Some(7)), Ok(()));
        assert_eq!(g.failed(b, Some(7)), Ok(()));
        assert!(g.failed(b, Some(7)).is_err(), "6th failure on the account");
        assert!(g.check_account(7).is_err());
        assert_eq!(g.check_account(8), Ok(()));
        let v6a = Some("2001:db8::1".parse().expect("ip"));
        let v6b = Some("2001:db8::2".parse().expect("ip"));
        for _ in 0..3 {
            assert_eq!(g.failed(v6a, None), Ok(()));
        }
        assert!(g.failed(v6a, None).is_err());
        assert!(g.check_address(v6b).is_err(), "same /64");
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
