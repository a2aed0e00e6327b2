//! What the device sees and what the client gets back: hop-by-hop headers removed, the edge's
//! own credentials removed (its session cookie, a bearer token it consumed), client copies of
//! the headers the edge sets removed, then the edge's `X-Forwarded-*` and `X-Burrow-User-*`.

use std::net::IpAddr;

use http::header::{
    HeaderName, AUTHORIZATION, CONNECTION, HOST, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    SET_COOKIE, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderValue};

use crate::session_cookie::{strip_cookie, SECURE_SESSION_COOKIE, SESSION_COOKIE};

pub const X_BURROW_USER_ID: &str = "x-burrow-user-id";
pub const X_BURROW_USER_EMAIL: &str = "x-burrow-user-email";

/// Headers the edge alone sets (any client copy is removed first).
const EDGE_SET: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-real-ip",
];

/// The authenticated user, as told to the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeUser {
    pub id: i64,
    pub email: String,
    /// The user came with `Authorization: Bearer` (the edge consumed it: not forwarded).
    pub via_bearer: bool,
}

pub struct Upstream<'a> {
    pub authority: &'a str,
    pub peer: IpAddr,
    pub https: bool,
    pub user: Option<&'a EdgeUser>,
    /// Keep `Connection: upgrade` + `Upgrade` (a WebSocket handshake).
    pub websocket: bool,
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
    h.remove("keep-alive");
    h.remove("proxy-connection");
}

/// `Expect: 100-continue` is answered by the edge's own server; not passed on.
fn strip_expect(h: &mut HeaderMap) {
    h.remove(http::header::EXPECT);
}

/// Whether an `Authorization` value uses the bearer scheme.
pub fn is_bearer(v: &HeaderValue) -> bool {
    v.as_bytes().len() > 7 && v.as_bytes()[..7].eq_ignore_ascii_case(b"bearer ")
}

/// The request headers the device gets.
pub fn to_device(orig: &HeaderMap, u: &Upstream<'_>) -> HeaderMap {
    let mut h = orig.clone();
    let upgrade = h.get(UPGRADE).cloned();
    strip_hop_by_hop(&mut h);
    strip_expect(&mut h);
    h.remove(HOST);
    for name in EDGE_SET {
        h.remove(*name);
    }
    let burrow: Vec<HeaderName> = h
        .keys()
        .filter(|k| k.as_str().starts_with("x-burrow-"))
        .cloned()
        .collect();
    for k in burrow {
        h.remove(k);
    }
    strip_cookie(&mut h, SESSION_COOKIE);
    strip_cookie(&mut h, SECURE_SESSION_COOKIE);
    if u.user.is_some_and(|user| user.via_bearer) {
        let others: Vec<HeaderValue> = h
            .get_all(AUTHORIZATION)
            .iter()
            .filter(|v| !is_bearer(v))
            .cloned()
            .collect();
        h.remove(AUTHORIZATION);
        for v in others {
            h.append(AUTHORIZATION, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(u.authority) {
        h.insert(HOST, v.clone());
        h.insert("x-forwarded-host", v);
    }
    if let Ok(v) = HeaderValue::from_str(&u.peer.to_string()) {
        h.insert("x-forwarded-for", v);
    }
    let proto = if u.https { "https" } else { "http" };
    h.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    if let Some(user) = u.user {
        h.insert(X_BURROW_USER_ID, HeaderValue::from(user.id));
        if let Ok(v) = HeaderValue::from_str(&user.email) {
            h.insert(X_BURROW_USER_EMAIL, v);
        }
    }
    if u.websocket {
        if let Some(up) = upgrade {
            h.insert(CONNECTION, HeaderValue::from_static("upgrade"));
            h.insert(UPGRADE, up);
        }
    }
    h
}

/// The response headers the client gets (the device cannot set the edge's cookie).
pub fn to_client(h: &mut HeaderMap, switching: bool) {
    let upgrade = h.get(UPGRADE).cloned();
    strip_hop_by_hop(h);
    let cookies: Vec<HeaderValue> = h
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| {
            let name = v
                .to_str()
                .ok()
                .and_then(|s| s.split('=').next())
                .unwrap_or("");
            let name = name.trim();
            name != SESSION_COOKIE && name != SECURE_SESSION_COOKIE
        })
        .cloned()
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
        };
        let u = Upstream {
            authority: "a.localhost:8080",
            peer: "10.1.2.3".parse().expect("ip"),
            https: true,
            user: Some(&user),
            websocket: false,
        };
        let out = to_device(&h, &u);
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
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        to_client(&mut h, false);
        assert_eq!(h.get_all(SET_COOKIE).iter().count(), 1);
        assert!(h.get(TRANSFER_ENCODING).is_none());
    }
}
