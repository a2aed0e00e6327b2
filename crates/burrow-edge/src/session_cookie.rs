//! The edge's browser session: an HMAC-signed `{user id, host, exp}` kept in a host-only cookie
//! of one tunnel host (no `Domain` attribute), and the helpers to read, strip and set cookies.
//!
//! Value: `v1.<user id>.<exp unix>.<base64url HMAC-SHA256>`; the host is inside the MAC but not
//! in the value, so a cookie minted for host A does not verify on host B.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use burrow_api::JwtKeys;
use hmac::{Hmac, Mac};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

/// The session cookie on a tunnel host (plain HTTP deployments).
pub const SESSION_COOKIE: &str = "__burrow_session";
/// The session cookie on a tunnel host over HTTPS: the `__Host-` prefix makes browsers refuse
/// any copy with a `Domain` attribute or without `Secure`/`Path=/`, so a sibling tunnel host
/// cannot plant ("toss") one for its neighbours.
pub const SECURE_SESSION_COOKIE: &str = "__Host-burrow_session";

/// The session cookie name for the deployment's scheme.
pub fn session_cookie_name(https: bool) -> &'static str {
    if https {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}
/// The edge-login cookie on the API host (path `/edge`), set by `POST /edge/session`.
pub const LOGIN_COOKIE: &str = "__burrow_edge_login";
/// The edge-login cookie over HTTPS (`Path=/`, as the `__Host-` prefix demands).
pub const SECURE_LOGIN_COOKIE: &str = "__Host-burrow_edge_login";
/// The login-state cookie on a tunnel host: binds a login code to the browser that started
/// the login (see `authorize.rs`).
pub const STATE_COOKIE: &str = "__burrow_state";
pub const SECURE_STATE_COOKIE: &str = "__Host-burrow_state";

/// The edge-login cookie's name and path for the deployment's scheme.
pub fn login_cookie(https: bool) -> (&'static str, &'static str) {
    if https {
        (SECURE_LOGIN_COOKIE, "/")
    } else {
        (LOGIN_COOKIE, "/edge")
    }
}

/// The login-state cookie name for the deployment's scheme.
pub fn state_cookie_name(https: bool) -> &'static str {
    if https {
        SECURE_STATE_COOKIE
    } else {
        STATE_COOKIE
    }
}

/// Whether a cookie name is one of burrow's own (any scheme, any prefix, any case): such a
/// cookie is never passed to a device, and a device can never set one.
pub fn is_burrow_cookie(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    let bare = name
        .strip_prefix("__host-")
        .or_else(|| name.strip_prefix("__secure-"))
        .unwrap_or(&name);
    bare.starts_with("__burrow") || bare.starts_with("burrow_")
}
/// The pseudo host the API-host login cookie is bound to (not a valid DNS name, so it can
/// never be confused with a tunnel host).
pub const API_SCOPE: &str = "@api";

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(***)")
    }
}

impl SessionKey {
    /// A key from secret material (hashed with a label, so the same material used elsewhere
    /// yields a different key here).
    pub fn new(material: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"burrow-edge-session-key/v1\0");
        h.update(material);
        SessionKey(h.finalize().into())
    }

    /// Derives a key from the JWT signing key without seeing it: the HS256 signature of a fixed
    /// claim set (user 0, issued at the Unix epoch, hence long expired and never handed out) is
    /// an HMAC of the JWT secret, the same on every node sharing that secret.
    pub fn derive_from_jwt(jwt: &JwtKeys) -> Self {
        let epoch = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        match jwt.issue(0, "burrow-edge-session-key", epoch) {
            Ok(token) => SessionKey::new(token.rsplit('.').next().unwrap_or_default().as_bytes()),
            Err(_) => SessionKey::new(&rand::random::<[u8; 32]>()),
        }
    }

    fn mac(&self, user_id: i64, host: &str, exp: i64) -> HmacSha256 {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes any key size");
        mac.update(format!("v1\0{user_id}\0{host}\0{exp}").as_bytes());
        mac
    }

    /// HMAC-SHA256 of `msg` under this key, for the edge's other signed values (each puts its
    /// own label first in `msg`, so no value verifies as another kind).
    pub fn tag(&self, msg: &[u8]) -> Vec<u8> {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes any key size");
        mac.update(msg);
        mac.finalize().into_bytes().to_vec()
    }

    /// Constant-time check of a [`SessionKey::tag`].
    pub fn verify_tag(&self, msg: &[u8], tag: &[u8]) -> bool {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes any key size");
        mac.update(msg);
        mac.verify_slice(tag).is_ok()
    }

    pub fn sign(&self, user_id: i64, host: &str, exp: i64) -> String {
        let tag = self.mac(user_id, host, exp).finalize().into_bytes();
        format!("v1.{user_id}.{exp}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The user id of a valid, unexpired session for `host` (constant-time MAC check).
    #[cfg(test)]
    pub fn verify(&self, value: &str, host: &str, now: i64) -> Option<i64> {
        self.verify_exp(value, host, now).map(|(id, _)| id)
    }

    /// [`SessionKey::verify`], with the session's expiry time.
    pub fn verify_exp(&self, value: &str, host: &str, now: i64) -> Option<(i64, i64)> {
        let mut parts = value.split('.');
        let (v, uid, exp, tag) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if v != "v1" || parts.next().is_some() {
            return None;
        }
        let user_id: i64 = uid.parse().ok()?;
        let exp: i64 = exp.parse().ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(user_id, host, exp).verify_slice(&tag).ok()?;
        (exp > now).then_some((user_id, exp))
    }
}

/// Values of every cookie named `name` in the request's `Cookie` headers.
pub fn cookie_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"'))
        })
        .collect()
}

/// Removes every cookie for which `drop(name, value)` holds and folds the others into one
/// `Cookie` header.
pub fn strip_cookies(headers: &mut HeaderMap, drop: impl Fn(&str, &str) -> bool) {
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            !drop(k.trim(), v.trim().trim_matches('"'))
        })
        .map(str::to_owned)
        .collect();
    headers.remove(COOKIE);
    if kept.is_empty() {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
        headers.insert(COOKIE, v);
    }
}

/// A host-only (`Domain`-less) `HttpOnly; SameSite=Lax` cookie; `max_age` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let s =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("__burrow_invalid=1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_bound_to_host_and_time() {
        let k = SessionKey::new(b"k");
        let v = k.sign(7, "a.localhost", 1000);
        assert_eq!(k.verify(&v, "a.localhost", 999), Some(7));
        assert_eq!(k.verify(&v, "b.localhost", 999), None);
        assert_eq!(k.verify(&v, "a.localhost", 1000), None);
        assert_eq!(SessionKey::new(b"other").verify(&v, "a.localhost", 0), None);
        let forged = v.replacen("v1.7.", "v1.8.", 1);
        assert_eq!(k.verify(&forged, "a.localhost", 0), None);
        assert_eq!(k.verify("garbage", "a.localhost", 0), None);
    }

    #[test]
    fn jwt_derived_keys_agree_across_instances() {
        let a = JwtKeys::new(
            b"0123456789abcdef0123456789abcdef",
            chrono::Duration::hours(1),
        );
        let b = JwtKeys::new(
            b"0123456789abcdef0123456789abcdef",
            chrono::Duration::hours(1),
        );
        let c = JwtKeys::new(
            b"another-key-another-key-another!",
            chrono::Duration::hours(1),
        );
        let v = SessionKey::derive_from_jwt(&a).sign(1, "h", i64::MAX);
        assert_eq!(SessionKey::derive_from_jwt(&b).verify(&v, "h", 0), Some(1));
        assert_eq!(SessionKey::derive_from_jwt(&c).verify(&v, "h", 0), None);
    }

    #[test]
    fn cookie_attributes() {
        let c = set_cookie(SESSION_COOKIE, "v", "/", 60, true);
        let c = c.to_str().expect("ascii");
        assert_eq!(
            c,
            "__burrow_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        let c = set_cookie(SESSION_COOKIE, "v", "/", 60, false);
        assert!(!c.to_str().expect("ascii").contains("Secure"));
    }

    #[test]
    fn burrow_cookie_names() {
        for n in [
            SESSION_COOKIE,
            SECURE_SESSION_COOKIE,
            LOGIN_COOKIE,
            SECURE_LOGIN_COOKIE,
            STATE_COOKIE,
            "__Secure-burrow_x",
            "__HOST-BURROW_SESSION",
            " __burrow_session ",
        ] {
            assert!(is_burrow_cookie(n), "{n}");
        }
        for n in ["app", "session", "__Host-app", "x__burrow"] {
            assert!(!is_burrow_cookie(n), "{n}");
        }
    }

    #[test]
    fn strips_only_the_edge_cookie() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; __burrow_session=x; b=2"),
        );
        h.append(COOKIE, HeaderValue::from_static("__burrow_session=y"));
        assert_eq!(cookie_values(&h, SESSION_COOKIE), vec!["x", "y"]);
        strip_cookies(&mut h, |k, _| k == SESSION_COOKIE);
        assert_eq!(h.get(COOKIE).expect("kept"), "a=1; b=2");
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("__burrow_session=x"));
        strip_cookies(&mut h, |k, _| k == SESSION_COOKIE);
        assert!(h.get(COOKIE).is_none());
    }
}
