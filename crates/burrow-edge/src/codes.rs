//! One-time login codes: minted on the API host after login, exchanged once on the tunnel
//! host for its session cookie. Random (256 bits), single use, short-lived, bound to one host
//! and to the login state of the browser that started the login (its state cookie on the
//! tunnel host).
//!
//! Codes live in the store, by hash, so a browser may finish the login on any node of a
//! cluster: the load balancer need not send the callback to the node that minted the code.
//! Taking a code deletes it in one statement, so of two nodes redeeming it only one succeeds.
//!
//! Outstanding codes are capped per user, not for the whole server: one user minting codes in
//! a loop only replaces their own oldest ones and never blocks anyone else's login.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use burrow_store::{LoginCode, StoreError};
use sha2::{Digest, Sha256};

use crate::backend::LoginCodes;

/// Outstanding codes per user; minting another drops that user's oldest.
pub const MAX_CODES_PER_USER: i64 = 20;

pub struct CodeStore {
    store: Arc<dyn LoginCodes>,
    ttl: Duration,
}

fn hash(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A fresh random login state (the value of the tunnel host's state cookie).
pub fn new_state() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Whether `s` looks like a state [`new_state`] makes (so a bad one is never echoed on).
pub fn valid_state(s: &str) -> bool {
    (16..=128).contains(&s.len()) && is_base64url(s)
}

/// Whether `s` could be a code [`CodeStore::mint`] makes (others never reach the store):
/// 32 bytes in unpadded base64url are 43 characters.
fn valid_code(s: &str) -> bool {
    s.len() == 43 && is_base64url(s)
}

fn is_base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl CodeStore {
    pub fn new(store: Arc<dyn LoginCodes>, ttl: Duration) -> Self {
        CodeStore { store, ttl }
    }

    /// A new code for `user_id` on tunnel host `host`, redeemable only together with `state`.
    pub async fn mint(&self, user_id: i64, host: &str, state: &str) -> Result<String, StoreError> {
        let code = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let now = chrono::Utc::now();
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        let row = LoginCode {
            code_hash: hash(&code),
            user_id,
            host: host.to_string(),
            state_hash: hash(state),
            expires_at: now.checked_add_signed(ttl).unwrap_or(now),
            created_at: now,
        };
        self.store
            .insert_login_code(&row, MAX_CODES_PER_USER)
            .await?;
        Ok(code)
    }

    /// The user of `code` if it is outstanding, unexpired, minted for `host` and presented
    /// with the state it was minted for. The code is spent by this call whatever the answer
    /// (a code presented on the wrong host or without its state is burnt).
    pub async fn redeem(
        &self,
        code: &str,
        host: &str,
        states: &[&str],
    ) -> Result<Option<i64>, StoreError> {
        if !valid_code(code) {
            return Ok(None);
        }
        let Some(c) = self.store.take_login_code(&hash(code)).await? else {
            return Ok(None);
        };
        let state_ok = states.iter().any(|s| hash(s) == c.state_hash);
        let fresh = c.expires_at > chrono::Utc::now();
        Ok((c.host == host && state_ok && fresh).then_some(c.user_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;

    /// Users 1 and 2: the memory backend keeps codes of any user id.
    fn store_with_users() -> (Arc<dyn LoginCodes>, i64, i64) {
        (Arc::new(MemoryBackend::default()), 1, 2)
    }

    #[tokio::test]
    async fn codes_are_single_use_host_and_state_bound() {
        let (store, u, _) = store_with_users();
        let s = CodeStore::new(store.clone(), Duration::from_secs(60));
        let c = s.mint(u, "a.localhost", "st").await.unwrap();
        assert_eq!(s.redeem(&c, "a.localhost", &["st"]).await.unwrap(), Some(u));
        let again = s.redeem(&c, "a.localhost", &["st"]).await.unwrap();
        assert_eq!(again, None, "replay");
        let c = s.mint(u, "a.localhost", "st").await.unwrap();
        assert_eq!(s.redeem(&c, "b.localhost", &["st"]).await.unwrap(), None);
        let burnt = s.redeem(&c, "a.localhost", &["st"]).await.unwrap();
        assert_eq!(burnt, None, "burnt on wrong host");
        let c = s.mint(u, "a.localhost", "st").await.unwrap();
        assert_eq!(
            s.redeem(&c, "a.localhost", &[]).await.unwrap(),
            None,
            "no state"
        );
        let c = s.mint(u, "a.localhost", "st").await.unwrap();
        let other = s.redeem(&c, "a.localhost", &["other"]).await.unwrap();
        assert_eq!(other, None, "other state");
        let c = s.mint(u, "a.localhost", "st").await.unwrap();
        let two = s.redeem(&c, "a.localhost", &["x", "st"]).await.unwrap();
        assert_eq!(two, Some(u));
        assert_eq!(
            s.redeem("not a code", "a.localhost", &["st"])
                .await
                .unwrap(),
            None
        );
        let s = CodeStore::new(store, Duration::ZERO);
        let c = s.mint(u, "a.localhost", "st").await.unwrap();
        let expired = s.redeem(&c, "a.localhost", &["st"]).await.unwrap();
        assert_eq!(expired, None, "expired");
    }

    #[tokio::test]
    async fn the_cap_is_per_user_and_any_instance_redeems() {
        let (store, u1, u2) = store_with_users();
        let s = CodeStore::new(store.clone(), Duration::from_secs(60));
        let first = s.mint(u1, "a.localhost", "st").await.unwrap();
        for _ in 0..MAX_CODES_PER_USER {
            s.mint(u1, "a.localhost", "st").await.unwrap();
        }
        let dropped = s.redeem(&first, "a.localhost", &["st"]).await.unwrap();
        assert_eq!(dropped, None, "oldest dropped");
        let other = s.mint(u2, "a.localhost", "st").await.unwrap();
        // Another node's code store on the same database redeems it.
        let node2 = CodeStore::new(store, Duration::from_secs(60));
        let got = node2.redeem(&other, "a.localhost", &["st"]).await.unwrap();
        assert_eq!(got, Some(u2));
    }
}
