//! One-time login codes: minted on the API host after login, exchanged once on the tunnel
//! host for its session cookie. Random (256 bits), single use, short-lived, bound to one host,
//! kept in memory only (a code minted on one node must be redeemed on the same node; see
//! docs/edge.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

const MAX_CODES: usize = 10_000;

struct Code {
    user_id: i64,
    host: String,
    expires: Instant,
}

pub struct CodeStore {
    ttl: Duration,
    codes: Mutex<HashMap<[u8; 32], Code>>,
}

fn key(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

impl CodeStore {
    pub fn new(ttl: Duration) -> Self {
        CodeStore {
            ttl,
            codes: Mutex::default(),
        }
    }

    /// A new code for `user_id` on tunnel host `host`; `None` if too many are outstanding.
    pub fn mint(&self, user_id: i64, host: &str) -> Option<String> {
        let code = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        if codes.len() >= MAX_CODES {
            let now = Instant::now();
            codes.retain(|_, c| c.expires > now);
            if codes.len() >= MAX_CODES {
                return None;
            }
        }
        codes.insert(
            key(&code),
            Code {
                user_id,
                host: host.to_string(),
                expires: Instant::now() + self.ttl,
            },
        );
        Some(code)
    }

    /// The user of `code` if it is outstanding, unexpired and minted for `host`. The code is
    /// spent by this call whatever the answer (a code presented on the wrong host is burnt).
    pub fn redeem(&self, code: &str, host: &str) -> Option<i64> {
        let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
        let c = codes.remove(&key(code))?;
        (c.host == host && c.expires > Instant::now()).then_some(c.user_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_single_use_and_host_bound() {
        let s = CodeStore::new(Duration::from_secs(60));
        let c = s.mint(7, "a.localhost").expect("code");
        assert_eq!(s.redeem(&c, "a.localhost"), Some(7));
        assert_eq!(s.redeem(&c, "a.localhost"), None, "replay");
        let c = s.mint(7, "a.localhost").expect("code");
        assert_eq!(s.redeem(&c, "b.localhost"), None);
        assert_eq!(s.redeem(&c, "a.localhost"), None, "burnt on wrong host");
        let s = CodeStore::new(Duration::ZERO);
        let c = s.mint(7, "a.localhost").expect("code");
        assert_eq!(s.redeem(&c, "a.localhost"), None, "expired");
    }
}
