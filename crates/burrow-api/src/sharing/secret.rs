//! Secrets of keys (`bk_...`) and share links (`bs_...`): 256 random bits, base64url, behind a
//! fixed prefix so that secret scanners recognise leaked ones. Only the SHA-256 is stored
//! (a fast hash is enough: the secret is random, not a password).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Every per-tunnel API key starts with this.
pub const KEY_PREFIX: &str = "bk_";
/// Every share link secret starts with this.
pub const LINK_PREFIX: &str = "bs_";

/// Random bytes in a secret (256 bits, well above the 128 the issue asks for).
const SECRET_BYTES: usize = 32;
/// base64url of [`SECRET_BYTES`] without padding.
const SECRET_CHARS: usize = 43;
/// Characters of the secret shown in lists (the prefix and 6 more): enough to tell keys
/// apart, far too few to guess the rest.
const SHOWN_CHARS: usize = 9;

/// A fresh secret, its hash (to store) and the part that may be shown again.
#[derive(Debug)]
pub struct NewSecret {
    pub secret: String,
    pub hash: String,
    pub prefix: String,
}

pub fn new_secret(prefix: &str) -> NewSecret {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    NewSecret {
        hash: hash_secret(&secret),
        prefix: secret.chars().take(SHOWN_CHARS).collect(),
        secret,
    }
}

/// SHA-256 of a secret, lower-case hex: what the store keeps and is searched by.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality of two stored hashes.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn shaped(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == SECRET_CHARS
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Whether `s` has the shape of a per-tunnel API key (says nothing of its validity).
pub fn is_key_shaped(s: &str) -> bool {
    shaped(s, KEY_PREFIX)
}

/// Whether `s` has the shape of a share link secret.
pub fn is_link_shaped(s: &str) -> bool {
    shaped(s, LINK_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hashed() {
        let a = new_secret(KEY_PREFIX);
        let b = new_secret(KEY_PREFIX);
        assert_ne!(a.secret, b.secret);
        assert!(is_key_shaped(&a.secret), "{}", a.secret);
        assert!(!is_link_shaped(&a.secret));
        assert!(a.secret.starts_with(&a.prefix) && a.prefix.starts_with("bk_"));
        assert_eq!(a.hash, hash_secret(&a.secret));
        assert_eq!(a.hash.len(), 64);
        assert!(same_hash(&a.hash, &hash_secret(&a.secret)));
        assert!(!same_hash(&a.hash, &b.hash));
        assert!(is_link_shaped(&new_secret(LINK_PREFIX).secret));
        assert!(!is_key_shaped("bk_short"));
        assert!(!is_key_shaped(&format!("bk_{}", "é".repeat(43))));
    }
}
