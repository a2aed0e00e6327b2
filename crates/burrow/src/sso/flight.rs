//! The login in flight between `/oidc/start` and `/oidc/callback`: state, nonce, PKCE
//! verifier and `next`, sealed (XChaCha20-Poly1305: encrypted and authenticated) into a
//! short-lived cookie on the API host. The key comes from the JWT signing key, which every
//! node of a cluster shares, so the callback may land on any node; no server-side map.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How long a login may take at the provider.
pub const FLIGHT_TTL_SECS: i64 = 10 * 60;
/// The cookie over plain HTTP (path-scoped to the SSO routes).
const COOKIE: &str = "__burrow_oidc";
/// The cookie over HTTPS: `__Host-` demands `Secure` and `Path=/`.
const SECURE_COOKIE: &str = "__Host-burrow_oidc";
/// Binds the sealed bytes to their purpose (no other sealed value opens as a flight).
const LABEL: &[u8] = b"burrow-oidc-flight/v1";

/// The cookie's name and path for the deployment's scheme.
pub fn cookie_name_and_path(https: bool) -> (&'static str, &'static str) {
    if https {
        (SECURE_COOKIE, "/")
    } else {
        (COOKIE, "/api/v1/auth/oidc")
    }
}

/// One login in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flight {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Where to go after signing in: a local path.
    pub next: String,
    /// Unix time after which the flight is refused.
    pub exp: i64,
}

pub struct FlightKey(XChaCha20Poly1305);

impl FlightKey {
    /// A key of its own from shared secret material (hashed with a label).
    pub fn derive(secret: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(LABEL);
        h.update([0]);
        h.update(secret);
        let key: [u8; 32] = h.finalize().into();
        FlightKey(XChaCha20Poly1305::new(&key.into()))
    }

    /// The cookie value for `flight`: base64url(nonce ‖ ciphertext).
    pub fn seal(&self, flight: &Flight) -> anyhow::Result<String> {
        let plain = serde_json::to_vec(flight)?;
        let nonce: [u8; 24] = rand::random();
        let sealed = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: LABEL,
                },
            )
            .map_err(|_| anyhow::anyhow!("sealing the login state failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// The flight sealed in `value`, if it opens with this key and has not expired.
    pub fn open(&self, value: &str, now: i64) -> Option<Flight> {
        if value.len() > 4096 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(24);
        let plain = self
            .0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: LABEL,
                },
            )
            .ok()?;
        let flight: Flight = serde_json::from_slice(&plain).ok()?;
        (flight.exp > now).then_some(flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flight(exp: i64) -> Flight {
        Flight {
            state: "st".into(),
            nonce: "no".into(),
            pkce_verifier: "ve".into(),
            next: "/devices".into(),
            exp,
        }
    }

    #[test]
    fn sealed_flights_open_only_with_the_same_key_and_in_time() {
        let key = FlightKey::derive(b"shared jwt secret");
        let value = key.seal(&flight(100)).expect("seal");
        assert!(!value.contains("/devices"), "encrypted: {value}");
        // Another node with the same secret opens it.
        let other_node = FlightKey::derive(b"shared jwt secret");
        assert_eq!(other_node.open(&value, 99), Some(flight(100)));
        assert_eq!(key.open(&value, 100), None, "expired");
        assert_eq!(FlightKey::derive(b"other").open(&value, 0), None);
        // Any changed byte fails authentication.
        let mut bytes = URL_SAFE_NO_PAD.decode(&value).expect("b64");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(key.open(&URL_SAFE_NO_PAD.encode(bytes), 0), None);
        assert_eq!(key.open("garbage!", 0), None);
        assert_eq!(key.open("", 0), None);
    }
}
