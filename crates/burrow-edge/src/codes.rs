//! One-time login codes: minted on the API host after login, exchanged once on the tunnel
//! host for its session cookie. Random (256 bits), single use, short-lived, bound to one host
//! and to the login state of the browser that started the login (its state cookie on the
//! tunnel host), kept in memory only (a code minted on one node must be redeemed on the same
//! node; see docs/edge.md).
//!
//! Outstanding codes are capped per user, not for the whole server: one user minting codes in
//! a loop only replaces their own oldest ones and never blocks anyone else's login.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Outstanding codes per user; minting another drops that user's oldest.
pub const MAX_CODES_PER_USER: usize = 20;
/// Above this many codes in all, expired ones are swept before a new one is added.
const SWEEP_ABOVE: usize = 10_000;

struct Code {
    user_id: i64,
    host: String,
    state: [u8; 32],
    expires: Instant,
}

#[derive(Default)]
struct Codes {
    by_key: HashMap<[u8; 32], Code>,
    by_user: HashMap<i64, VecDeque<[u8; 32]>>,
}

pub struct CodeStore {
    ttl: Duration,
    codes: Mutex<Codes>,
}

fn key(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

/// A fresh random login state (the value of the tunnel host's state cookie).
pub fn new_state() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Whether `s` looks like a state [`new_state`] makes (so a bad one is never echoed on).
pub fn valid_state(s: &str) -> bool {
    (16..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl CodeStore {
    pub fn new(ttl: Duration) -> Self {
        CodeStore {
            ttl,
            codes: Mutex::default(),
        }
    }

    /// A new code for `user_id` on tunnel host `host`, redeemable only together with `state`.
    pub fn mint(&self, user_id: i64, host: &str, state: &str) -> String {
        let code = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let now = Instant::now();
        let mut guard = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        let codes = &mut *guard;
        if codes.by_key.len() >= SWEEP_ABOVE {
            codes.by_key.retain(|_, c| c.expires > now);
            let live = &codes.by_key;
            codes.by_user.retain(|_, q| {
                q.retain(|k| live.contains_key(k));
                !q.is_empty()
            });
        }
        let mine = codes.by_user.entry(user_id).or_default();
        mine.retain(|k| codes.by_key.get(k).is_some_and(|c| c.expires > now));
        while mine.len() >= MAX_CODES_PER_USER {
            if let Some(oldest) = mine.pop_front() {
                codes.by_key.remove(&oldest);
            }
        }
        let k = key(&code);
        mine.push_back(k);
        codes.by_key.insert(
            k,
            Code {
                user_id,
                host: host.to_string(),
                state: key(state),
                expires: now + self.ttl,
            },
        );
        code
    }

    /// The user of `code` if it is outstanding, unexpired, minted for `host` and presented
    /// with the state it was minted for. The code is spent by this call whatever the answer
    /// (a code presented on the wrong host or without its state is burnt).
    pub fn redeem(&self, code: &str, host: &str, states: &[&str]) -> Option<i64> {
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        let c = codes.by_key.remove(&key(code))?;
        if let Some(q) = codes.by_user.get_mut(&c.user_id) {
            q.retain(|k| *k != key(code));
            if q.is_empty() {
                codes.by_user.remove(&c.user_id);
            }
        }
        let state_ok = states.iter().any(|s| key(s) == c.state);
        (c.host == host && state_ok && c.expires > Instant::now()).then_some(c.user_id)
    }

    /// Outstanding codes (expired ones not yet swept included).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        let codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_single_use_host_and_state_bound() {
        let s = CodeStore::new(Duration::from_secs(60));
        let c = s.mint(7, "a.localhost", "st");
        assert_eq!(s.redeem(&c, "a.localhost", &["st"]), Some(7));
        assert_eq!(s.redeem(&c, "a.localhost", &["st"]), None, "replay");
        let c = s.mint(7, "a.localhost", "st");
        assert_eq!(s.redeem(&c, "b.localhost", &["st"]), None);
        assert_eq!(
            s.redeem(&c, "a.localhost", &["st"]),
            None,
            "burnt on wrong host"
        );
        let c = s.mint(7, "a.localhost", "st");
        assert_eq!(s.redeem(&c, "a.localhost", &[]), None, "no state");
        let c = s.mint(7, "a.localhost", "st");
        assert_eq!(s.redeem(&c, "a.localhost", &["other"]), None, "other state");
        let c = s.mint(7, "a.localhost", "st");
        assert_eq!(s.redeem(&c, "a.localhost", &["x", "st"]), Some(7));
        let s = CodeStore::new(Duration::ZERO);
        let c = s.mint(7, "a.localhost", "st");
        assert_eq!(s.redeem(&c, "a.localhost", &["st"]), None, "expired");
    }

    #[test]
    fn the_cap_is_per_user() {
        let s = CodeStore::new(Duration::from_secs(60));
        let first = s.mint(1, "a.localhost", "st");
        for _ in 0..100_000 / 1000 {
            s.mint(1, "a.localhost", "st");
        }
        assert!(s.len() <= MAX_CODES_PER_USER);
        assert_eq!(
            s.redeem(&first, "a.localhost", &["st"]),
            None,
            "oldest dropped"
        );
        let other = s.mint(2, "a.localhost", "st");
        assert_eq!(s.redeem(&other, "a.localhost", &["st"]), Some(2));
    }
}
