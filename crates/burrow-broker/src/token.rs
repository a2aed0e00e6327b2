//! Client access tokens (CATs): how they are made, stored and checked.
//!
//! A token is never stored. The tunnel row keeps, per mode, the SHA-256 of the current token (a
//! lookup key that reveals nothing) and a random nonce; the token itself is
//! `base64url(HMAC-SHA256(server key, "burrow-cat-v1|" tunnel_id "|" mode "|" nonce))`, so the
//! broker can hand the current destination token to a device again without keeping it in
//! plain text. The nonce is 256 random bits, so the token carries well over 128 bits of
//! randomness, and leaking the database alone does not leak a usable token.

use std::fmt;

use base64::Engine as _;
use burrow_store::TokenMode;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{invalid, BrokerError};

/// A secret access token. `Debug` and `Display` mask it so that it cannot end up in a log by
/// accident; [`AccessToken::expose`] is the one deliberate way to read it.
#[derive(Clone)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(value: impl Into<String>) -> Self {
        AccessToken(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl From<String> for AccessToken {
    fn from(value: String) -> Self {
        AccessToken(value)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(***)")
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Constant time, so that comparing a presented token leaks nothing through timing.
impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for AccessToken {}

/// For `#[serde(serialize_with = "burrow_broker::serialize_exposed")]` on the one response
/// field that must carry a token (OpenTunnel / RotateTunnelAccessToken answers). There is no
/// blanket `Serialize` impl on purpose.
pub fn serialize_exposed<S: serde::Serializer>(
    token: &AccessToken,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(token.expose())
}

/// Same, for `Option<AccessToken>` fields.
pub fn serialize_exposed_opt<S: serde::Serializer>(
    token: &Option<AccessToken>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match token {
        Some(t) => serializer.serialize_some(t.expose()),
        None => serializer.serialize_none(),
    }
}

const KEY_LEN: usize = 32;

/// The server secret tokens are derived with. The binary keeps it in the data directory:
/// losing it invalidates every outstanding token (tunnels stay, rotation issues new ones).
#[derive(Clone)]
pub struct TokenKey([u8; KEY_LEN]);

impl TokenKey {
    pub fn generate() -> Self {
        let mut key = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut key);
        TokenKey(key)
    }

    /// Exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BrokerError> {
        let key: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| invalid(format!("token key must be {KEY_LEN} bytes")))?;
        Ok(TokenKey(key))
    }

    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0
    }

    /// The token of `tunnel_id`/`mode` for the stored `nonce`.
    pub(crate) fn derive(&self, tunnel_id: &str, mode: TokenMode, nonce: &str) -> AccessToken {
        // new_from_slice only fails for key lengths HMAC cannot take; SHA-256 takes any.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        for part in ["burrow-cat-v1", tunnel_id, mode.as_str(), nonce] {
            mac.update(part.as_bytes());
            mac.update(b"|");
        }
        let tag = mac.finalize().into_bytes();
        AccessToken(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag))
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

/// A fresh nonce and the token, hash it yields.
pub(crate) struct Minted {
    pub token: AccessToken,
    pub nonce: String,
    pub hash: String,
}

pub(crate) fn mint(key: &TokenKey, tunnel_id: &str, mode: TokenMode) -> Minted {
    let mut nonce = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let nonce = hex::encode(nonce);
    let token = key.derive(tunnel_id, mode, &nonce);
    let hash = hash(token.expose());
    Minted { token, nonce, hash }
}

/// Hex SHA-256: the lookup key of a token or client token.
pub(crate) fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// `^[a-zA-Z0-9-]{32,128}$` (protocol page, section 1).
pub(crate) fn client_token_is_valid(value: &str) -> bool {
    (32..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_masked_and_compare_by_value() {
        let t = AccessToken::new("secret-value");
        assert_eq!(format!("{t:?}"), "AccessToken(***)");
        assert_eq!(t.to_string(), "***");
        assert_eq!(t, AccessToken::new("secret-value"));
        assert_ne!(t, AccessToken::new("secret-valuf"));
    }

    #[test]
    fn derivation_is_stable_per_key_tunnel_mode_and_nonce() {
        let key = TokenKey::generate();
        let m = mint(&key, "t1", TokenMode::Source);
        assert!(m.token.expose().len() >= 43, "256-bit tag");
        assert_eq!(key.derive("t1", TokenMode::Source, &m.nonce), m.token);
        assert_ne!(key.derive("t1", TokenMode::Destination, &m.nonce), m.token);
        assert_ne!(key.derive("t2", TokenMode::Source, &m.nonce), m.token);
        let other = TokenKey::from_bytes(&TokenKey::generate().to_bytes()).unwrap();
        assert_ne!(other.derive("t1", TokenMode::Source, &m.nonce), m.token);
        assert_eq!(hash(m.token.expose()), m.hash);
        assert!(TokenKey::from_bytes(&[0u8; 31]).is_err());
    }

    #[test]
    fn client_token_pattern() {
        assert!(client_token_is_valid(&"a-1".repeat(11)[..32]));
        assert!(!client_token_is_valid(&"a".repeat(31)));
        assert!(!client_token_is_valid(&"a".repeat(129)));
        assert!(!client_token_is_valid(&format!("{}_", "a".repeat(40))));
    }
}
