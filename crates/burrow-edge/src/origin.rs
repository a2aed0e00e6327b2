//! Cross-origin requests riding on a tunnel's session cookie. Every tunnel host shares one
//! registrable domain, so to a browser they are *same-site*: a page served through tunnel A
//! can post a form to tunnel B, or open a WebSocket to it, and B's `SameSite=Lax` cookie is
//! attached. A cookie-authenticated request that can change state (any method but
//! GET/HEAD/OPTIONS, or a WebSocket handshake) must therefore come from B's own origin.
//!
//! Browsers send `Origin` on every such request (WebSocket handshakes included) and
//! `Sec-Fetch-Site` on all requests; a request with neither is not from a browser page and
//! carries no ambient authority worth checking.

use http::header::ORIGIN;
use http::{HeaderMap, Method};

use crate::headers::is_websocket;

/// Whether a request of `method` with `headers` can change state on the device's app.
pub fn is_unsafe(method: &Method, headers: &HeaderMap) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) || is_websocket(headers)
}

/// Whether the request comes from `own` (`scheme://authority` of the tunnel host) as far as
/// the browser tells: `Origin` if present (every value must match; `null` never does), else
/// `Sec-Fetch-Site` (`same-origin` or `none`, a typed URL or bookmark), else yes.
pub fn same_origin(headers: &HeaderMap, own: &str) -> bool {
    let mut origins = headers.get_all(ORIGIN).iter().peekable();
    if origins.peek().is_some() {
        return origins.all(|v| v.to_str().is_ok_and(|o| o.trim().eq_ignore_ascii_case(own)));
    }
    match headers.get("sec-fetch-site").map(|v| v.to_str()) {
        Some(Ok(site)) => matches!(site.trim(), "same-origin" | "none"),
        Some(Err(_)) => false,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origin_decides_then_fetch_metadata() {
        let own = "http://b.localhost:8700";
        assert!(same_origin(
            &headers(&[("origin", "http://b.localhost:8700")]),
            own
        ));
        assert!(same_origin(
            &headers(&[("origin", "HTTP://B.localhost:8700")]),
            own
        ));
        assert!(!same_origin(
            &headers(&[("origin", "http://a.localhost:8700")]),
            own
        ));
        assert!(!same_origin(
            &headers(&[("origin", "http://b.localhost:8701")]),
            own
        ));
        assert!(!same_origin(&headers(&[("origin", "null")]), own));
        let mixed = [
            ("origin", "http://b.localhost:8700"),
            ("origin", "http://a.localhost"),
        ];
        assert!(!same_origin(&headers(&mixed), own));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "same-site")]),
            own
        ));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            own
        ));
        assert!(same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            own
        ));
        assert!(same_origin(&headers(&[("sec-fetch-site", "none")]), own));
        assert!(same_origin(&HeaderMap::new(), own));
    }

    #[test]
    fn unsafe_requests() {
        assert!(!is_unsafe(&Method::GET, &HeaderMap::new()));
        assert!(is_unsafe(&Method::POST, &HeaderMap::new()));
        assert!(is_unsafe(&Method::DELETE, &HeaderMap::new()));
        let ws = headers(&[("connection", "Upgrade"), ("upgrade", "websocket")]);
        assert!(is_unsafe(&Method::GET, &ws));
    }
}
