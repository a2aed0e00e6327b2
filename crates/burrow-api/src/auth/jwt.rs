//! User access tokens: HS256 JWTs with `sub`, `email`, `iat`, `exp`.
//!
//! The algorithm is pinned (a token claiming `none` or RS256 is refused) and `exp` is required.
//! The signing key is generated on first start and kept in the data directory.

use chrono::{DateTime, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a string (RFC 7519 `sub`).
    pub sub: String,
    pub email: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: chrono::Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("key", &"***")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl: chrono::Duration) -> Self {
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
        }
    }

    pub fn ttl(&self) -> chrono::Duration {
        self.ttl
    }

    pub fn issue(&self, user_id: i64, email: &str, now: DateTime<Utc>) -> anyhow::Result<String> {
        let claims = Claims {
            sub: user_id.to_string(),
            email: email.to_string(),
            iat: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
        };
        Ok(encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// Verifies signature, algorithm and expiry (no leeway: an expired token is expired).
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 0;
        v.set_required_spec_claims(&["exp", "sub"]);
        decode::<Claims>(token, &self.decoding, &v)
            .ok()
            .map(|d| d.claims)
    }

    /// Whether `token` carries a valid signature of this key, expired or not: a credential
    /// burrow issued, which the edge must never hand to a device.
    pub fn signed_by_us(&self, token: &str) -> bool {
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_exp = false;
        v.set_required_spec_claims::<&str>(&[]);
        decode::<serde_json::Value>(token, &self.decoding, &v).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn keys() -> JwtKeys {
        JwtKeys::new(
            b"0123456789abcdef0123456789abcdef",
            chrono::Duration::minutes(5),
        )
    }

    #[test]
    fn issued_token_verifies() {
        let k = keys();
        let t = k.issue(7, "a@b.c", Utc::now()).expect("issue");
        let c = k.verify(&t).expect("valid");
        assert_eq!(c.sub, "7");
    }

    #[test]
    fn expired_forged_and_none_are_refused() {
        let k = keys();
        let old = k
            .issue(7, "a@b.c", Utc::now() - chrono::Duration::hours(1))
            .expect("issue");
        assert!(k.verify(&old).is_none(), "expired");

        let other = JwtKeys::new(
            b"another-key-another-key-another!",
            chrono::Duration::minutes(5),
        );
        let forged = other.issue(7, "a@b.c", Utc::now()).expect("issue");
        assert!(k.verify(&forged).is_none(), "wrong key");

        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let exp = Utc::now().timestamp() + 600;
        let body = b64.encode(format!(
            r#"{{"sub":"7","email":"a@b.c","iat":0,"exp":{exp}}}"#
        ));
        assert!(k.verify(&format!("{header}.{body}.")).is_none(), "alg none");
        assert!(!k.signed_by_us(&format!("{header}.{body}.")), "alg none");
        assert!(k.signed_by_us(&old), "expired but ours");
        assert!(!k.signed_by_us(&forged), "another key's");
        assert!(!k.signed_by_us("not-a-jwt"));
    }
}
