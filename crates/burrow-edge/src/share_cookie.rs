//! The session a share link gives a browser: a host-only cookie holding an HMAC-signed
//! `{link id, visitor id, host, exp}`, where `exp` is the link's own expiry. The link is looked
//! up on every request, so revoking it ends the session at once.
//!
//! Value: `s1.<link id>.<visitor>.<exp unix>.<base64url HMAC>`; the host is inside the MAC.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::HeaderMap;

use crate::session_cookie::{cookie_values, SessionKey};

/// The share session cookie (plain HTTP deployments).
pub const SHARE_COOKIE: &str = "__burrow_share";
/// Over HTTPS: `__Host-` keeps sibling tunnel hosts from planting one.
pub const SECURE_SHARE_COOKIE: &str = "__Host-burrow_share";

pub fn share_cookie_name(https: bool) -> &'static str {
    if https {
        SECURE_SHARE_COOKIE
    } else {
        SHARE_COOKIE
    }
}

/// A verified share session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareSession {
    pub link_id: i64,
    /// Random per browser: what `max_uses` counts.
    pub visitor: String,
    pub exp: i64,
}

fn msg(link_id: i64, visitor: &str, host: &str, exp: i64) -> Vec<u8> {
    format!("burrow-share/v1\0{link_id}\0{visitor}\0{host}\0{exp}").into_bytes()
}

/// A fresh visitor id: 128 random bits, hex.
pub fn new_visitor() -> String {
    hex_encode(&rand::random::<[u8; 16]>())
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sign(key: &SessionKey, s: &ShareSession, host: &str) -> String {
    let tag = key.tag(&msg(s.link_id, &s.visitor, host, s.exp));
    format!(
        "s1.{}.{}.{}.{}",
        s.link_id,
        s.visitor,
        s.exp,
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The session of a validly signed value for `host`, expired or not (the caller tells an
/// expired session from none, to show the right page).
pub fn verify(key: &SessionKey, value: &str, host: &str) -> Option<ShareSession> {
    let mut parts = value.split('.');
    let (v, id, visitor, exp, tag) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if v != "s1" || parts.next().is_some() || visitor.len() != 32 {
        return None;
    }
    let link_id: i64 = id.parse().ok()?;
    let exp: i64 = exp.parse().ok()?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    key.verify_tag(&msg(link_id, visitor, host, exp), &tag)
        .then(|| ShareSession {
            link_id,
            visitor: visitor.to_string(),
            exp,
        })
}

/// The share session of the request's cookie for `host`, if one verifies.
pub fn from_headers(
    key: &SessionKey,
    headers: &HeaderMap,
    https: bool,
    host: &str,
) -> Option<ShareSession> {
    cookie_values(headers, share_cookie_name(https))
        .into_iter()
        .find_map(|v| verify(key, v, host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_sessions_are_bound_to_key_and_host() {
        let k = SessionKey::new(b"k");
        let s = ShareSession {
            link_id: 5,
            visitor: new_visitor(),
            exp: 1000,
        };
        let v = sign(&k, &s, "a.localhost");
        assert_eq!(verify(&k, &v, "a.localhost"), Some(s.clone()));
        assert_eq!(verify(&k, &v, "b.localhost"), None);
        assert_eq!(verify(&SessionKey::new(b"x"), &v, "a.localhost"), None);
        let forged = v.replacen("s1.5.", "s1.6.", 1);
        assert_eq!(verify(&k, &forged, "a.localhost"), None);
        // A user session value never verifies as a share session.
        assert_eq!(
            verify(&k, &k.sign(5, "a.localhost", 1000), "a.localhost"),
            None
        );
        assert!(crate::session_cookie::is_burrow_cookie(SHARE_COOKIE));
        assert!(crate::session_cookie::is_burrow_cookie(SECURE_SHARE_COOKIE));
    }
}
