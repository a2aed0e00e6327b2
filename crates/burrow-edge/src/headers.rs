//! What the device sees and what the client gets back: hop-by-hop headers removed, the edge's
//! own credentials removed (its session cookie, a bearer token it consumed), client copies of
//! the headers the edge sets removed, then the edge's `X-Forwarded-*` and `X-Burrow-User-*`.

use std::net::IpAddr;

use http::header::{
    HeaderName, AUTHORIZATION, CONNECTION, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    SET_COOKIE, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderValue};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::session_cookie::{is_burrow_cookie, strip_cookies};

pub const X_BURROW_USER_ID: &str = "x-burrow-user-id";
pub const X_BURROW_USER_EMAIL: &str = "x-burrow-user-email";

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Headers the edge alone sets (any client copy is removed first). Names, not strings: a
/// string is parsed again on every request.
const EDGE_SET: [HeaderName; 6] = [
    HeaderName::from_static("forwarded"),
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-real-ip"),
];

/// The authenticated user, as told to the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeUser {
    pub id: i64,
    pub email: String,
    /// The user came with `Authorization: Bearer` (the edge consumed it: not forwarded).
    pub via_bearer: bool,
    /// When the credential was issued (Unix seconds): "sign out everywhere" ends it.
    pub issued_at: i64,
}

pub struct Upstream<'a> {
    pub authority: &'a str,
    pub peer: IpAddr,
    pub https: bool,
    pub user: Option<&'a EdgeUser>,
    /// Keep `Connection: upgrade` + `Upgrade` (a WebSocket handshake).
    pub websocket: bool,
    /// Whether a token is a credential burrow issued (a user JWT signed with its key,
    /// expired or not): such a token never reaches a device, whatever the tunnel.
    pub issued: &'a (dyn Fn(&str) -> bool + Sync),
}

/// Removes `Connection`, every header it names, and the other hop-by-hop headers.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        h.remove(name);
    }
    for name in [
        CONNECTION,
        TE,
        TRAILER,
        TRANSFER_ENCODING,
        UPGRADE,
        PROXY_AUTHORIZATION,
        PROXY_AUTHENTICATE,
    ] {
        h.remove(name);
    }
    h.remove(KEEP_ALIVE);
    h.remove(PROXY_CONNECTION);
}

/// `Expect: 100-continue` is answered by the edge's own server; not passed on.
fn strip_expect(h: &mut HeaderMap) {
    h.remove(http::header::EXPECT);
}

/// Whether an `Authorization` value uses the bearer scheme.
pub fn is_bearer(v: &HeaderValue) -> bool {
    v.as_bytes().len() > 7 && v.as_bytes()[..7].eq_ignore_ascii_case(b"bearer ")
}

/// Whether an `Authorization` value carries a credential burrow issued: the token after any
/// scheme (`Bearer`, `token`, ...), or either half of `Basic` user:password.
fn carries_issued(v: &HeaderValue, issued: &dyn Fn(&str) -> bool) -> bool {
    let Ok(v) = v.to_str() else {
        return false;
    };
    let v = v.trim();
    let (scheme, cred) = v.split_once(' ').unwrap_or(("", v));
    let cred = cred.trim();
    if issued(cred) || issued(v) {
        return true;
    }
    if scheme.eq_ignore_ascii_case("basic") {
        if let Some(pair) = STANDARD
            .decode(cred)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        {
            let (user, pass) = pair.split_once(':').unwrap_or((&pair, ""));
            return issued(user) || issued(pass);
        }
    }
    false
}

/// Removes burrow's own credentials: its cookies (session, edge login, login state), any
/// cookie or `Authorization` value holding a token burrow issued, and the bearer the edge
/// consumed. A device app's own credentials pass untouched.
fn strip_burrow_credentials(h: &mut HeaderMap, u: &Upstream<'_>) {
    strip_cookies(h, |name, value| is_burrow_cookie(name) || (u.issued)(value));
    let consumed = u.user.is_some_and(|user| user.via_bearer);
    let kept: Vec<HeaderValue> = h
        .get_all(AUTHORIZATION)
        .iter()
        .filter(|v| !(carries_issued(v, u.issued) || (consumed && is_bearer(v))))
        .cloned()
        .collect();
    h.remove(AUTHORIZATION);
    for v in kept {
        h.append(AUTHORIZATION, v);
    }
}

/// Rewrites the client's request headers, in place, into the ones the device gets.
pub fn to_device(h: &mut HeaderMap, u: &Upstream<'_>) {
    let upgrade = if u.websocket {
        h.get(UPGRADE).cloned()
    } else {
        None
    };
    strip_hop_by_hop(h);
    strip_expect(h);
    h.remove(HOST);
    for name in EDGE_SET {
        h.remove(name);
    }
    let burrow: Vec<HeaderName> = h
        .keys()
        .filter(|k| k.as_str().starts_with("x-burrow-"))
        .cloned()
        .collect();
    for k in burrow {
        h.remove(k);
    }
    strip_burrow_credentials(h, u);
    if let Ok(v) = HeaderValue::from_str(u.authority) {
        h.insert(HOST, v.clone());
        h.insert(X_FORWARDED_HOST, v);
    }
    if let Ok(v) = HeaderValue::from_str(&u.peer.to_string()) {
        h.insert(X_FORWARDED_FOR, v);
    }
    let proto = if u.https { "https" } else { "http" };
    h.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(user) = u.user {
        h.insert(X_BURROW_USER_ID, HeaderValue::from(user.id));
        if let Ok(v) = HeaderValue::from_str(&user.email) {
            h.insert(X_BURROW_USER_EMAIL, v);
        }
    }
    if let Some(up) = upgrade {
        h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(UPGRADE, up);
    }
}

/// A device's `Set-Cookie`, confined to its own tunnel host: `None` for one of burrow's own
/// cookie names (a device cannot log its users in or out of the edge) or an unreadable
/// value; otherwise the cookie without any `Domain` attribute, so it stays host-only and
/// never reaches a sibling tunnel or the API host.
fn confine_set_cookie(v: &HeaderValue) -> Option<HeaderValue> {
    let s = v.to_str().ok()?;
    let mut parts = s.split(';');
    let pair = parts.next()?;
    let name = pair.split_once('=').map_or(pair, |(k, _)| k);
    if is_burrow_cookie(name) {
        return None;
    }
    let attrs: Vec<&str> = parts
        .filter(|a| {
            let key = a.split_once('=').map_or(*a, |(k, _)| k);
            !key.trim().eq_ignore_ascii_case("domain")
        })
        .collect();
    if attrs.len() == s.split(';').count() - 1 {
        return Some(v.clone());
    }
    let mut out = pair.to_string();
    for a in attrs {
        out.push(';');
        out.push_str(a);
    }
    HeaderValue::from_str(&out).ok()
}

/// The response headers the client gets (device cookies confined to the tunnel host).
pub fn to_client(h: &mut HeaderMap, switching: bool) {
    let upgrade = h.get(UPGRADE).cloned();
    strip_hop_by_hop(h);
    let cookies: Vec<HeaderValue> = h
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(confine_set_cookie)
        .collect();
    h.remove(SET_COOKIE);
    for c in cookies {
        h.append(SET_COOKIE, c);
    }
    if switching {
        if let Some(up) = upgrade {
            h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
            h.insert(UPGRADE, up);
        }
    }
}

/// An HTTP/1.1 WebSocket handshake (`Connection: upgrade` + `Upgrade: websocket`).
pub fn is_websocket(h: &HeaderMap) -> bool {
    let has_token = |name: HeaderName, token: &str| {
        h.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has_token(CONNECTION, "upgrade") && has_token(UPGRADE, "websocket")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::COOKIE;

    #[test]
    fn device_headers_are_rewritten() {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(TE, HeaderValue::from_static("trailers"));
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        h.insert("x-burrow-user-id", HeaderValue::from_static("1"));
        h.insert("X-Burrow-Anything", HeaderValue::from_static("1"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        h.insert(
            COOKIE,
            HeaderValue::from_static("__burrow_session=s; app=1"),
        );
        h.insert(HOST, HeaderValue::from_static("evil"));
        let user = EdgeUser {
            id: 5,
            email: "u@x.y".into(),
            via_bearer: true,
            issued_at: 0,
        };
        let u = Upstream {
            authority: "a.localhost:8080",
            peer: "10.1.2.3".parse().expect("ip"),
            https: true,
            user: Some(&user),
            websocket: false,
            issued: &|_| false,
        };
        let mut out = h.clone();
        to_device(&mut out, &u);
        for gone in [
            "x-secret",
            "keep-alive",
            "te",
            "connection",
            "authorization",
            "x-burrow-anything",
        ] {
            assert!(out.get(gone).is_none(), "{gone}");
        }
        assert_eq!(out[HOST], "a.localhost:8080");
        assert_eq!(out["x-forwarded-for"], "10.1.2.3");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["x-forwarded-host"], "a.localhost:8080");
        assert_eq!(out[X_BURROW_USER_ID], "5");
        assert_eq!(out[X_BURROW_USER_EMAIL], "u@x.y");
        assert_eq!(out[COOKIE], "app=1");
    }

    #[test]
    fn response_cannot_set_edge_cookie() {
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("__burrow_session=x; Path=/"),
        );
        h.append(SET_COOKIE, HeaderValue::from_static("app=1"));
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("__Host-burrow_edge_login=x; Path=/; Secure"),
        );
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("wide=1; Path=/; domain=.localhost; HttpOnly"),
        );
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        to_client(&mut h, false);
        let set: Vec<_> = h.get_all(SET_COOKIE).iter().collect();
        assert_eq!(set, ["app=1", "wide=1; Path=/; HttpOnly"]);
        assert!(h.get(TRANSFER_ENCODING).is_none());
    }

    #[test]
    fn issued_tokens_never_reach_the_device() {
        let mut h = HeaderMap::new();
        h.append(AUTHORIZATION, HeaderValue::from_static("Bearer ours"));
        h.append(AUTHORIZATION, HeaderValue::from_static("token ours"));
        h.append(AUTHORIZATION, HeaderValue::from_static("Bearer theirs"));
        let basic = format!("Basic {}", STANDARD.encode("x:ours"));
        h.append(AUTHORIZATION, HeaderValue::from_str(&basic).expect("ascii"));
        h.insert(
            COOKIE,
            HeaderValue::from_static(
                "jwt=ours; app=1; __burrow_state=s; __Host-burrow_edge_login=l",
            ),
        );
        let u = Upstream {
            authority: "a.localhost",
            peer: "10.1.2.3".parse().expect("ip"),
            https: false,
            user: None,
            websocket: false,
            issued: &|t| t == "ours",
        };
        let mut out = h.clone();
        to_device(&mut out, &u);
        let auth: Vec<_> = out.get_all(AUTHORIZATION).iter().collect();
        assert_eq!(auth, ["Bearer theirs"]);
        assert_eq!(out[COOKIE], "app=1");
    }
}
