//! The edge's own answers: a small HTML page for browsers, `{"detail","code"}` JSON for API
//! clients (`Accept: application/json`). Never cached.

use axum::body::Body;
use burrow_store::Timestamp;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

/// Why the edge answers a request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeError {
    BadRequest(&'static str),
    NotFound,
    Unauthorized(&'static str),
    Forbidden,
    /// A cookie-authenticated state-changing request from another origin.
    CrossOrigin,
    Offline {
        last_seen: Option<Timestamp>,
    },
    NotActive,
    Refused,
    BadGateway(&'static str),
    Timeout,
    HeadersTooLarge,
    UriTooLong,
    Unavailable(&'static str),
    /// Authenticated (a key, a share link) but not for this: 403 with the reason.
    NotPermitted(&'static str),
    /// The client's address is refused by the tunnel's IP rules (before any login).
    IpRefused,
    /// A share link (or its session) that was revoked or expired: a clear page, not a login.
    Gone(&'static str),
    /// Too many failed key or link attempts from this client: 429 with `Retry-After`.
    Throttled(std::time::Duration),
}

impl EdgeError {
    pub fn status(&self) -> StatusCode {
        match self {
            EdgeError::BadRequest(_) => StatusCode::BAD_REQUEST,
            EdgeError::NotFound => StatusCode::NOT_FOUND,
            EdgeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            EdgeError::Forbidden
            | EdgeError::CrossOrigin
            | EdgeError::NotPermitted(_)
            | EdgeError::IpRefused => StatusCode::FORBIDDEN,
            EdgeError::Gone(_) => StatusCode::GONE,
            EdgeError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            EdgeError::Offline { .. } | EdgeError::NotActive | EdgeError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            EdgeError::Refused | EdgeError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            EdgeError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            EdgeError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            EdgeError::UriTooLong => StatusCode::URI_TOO_LONG,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            EdgeError::BadRequest(_) => "bad_request",
            EdgeError::NotFound => "not_found",
            EdgeError::Unauthorized(_) => "unauthorized",
            EdgeError::Forbidden => "forbidden",
            EdgeError::CrossOrigin => "cross_origin",
            EdgeError::Offline { .. } => "device_offline",
            EdgeError::NotActive => "tunnel_not_active",
            EdgeError::Refused => "service_refused",
            EdgeError::BadGateway(_) => "bad_gateway",
            EdgeError::Timeout => "device_timeout",
            EdgeError::HeadersTooLarge => "headers_too_large",
            EdgeError::UriTooLong => "uri_too_long",
            EdgeError::Unavailable(_) => "unavailable",
            EdgeError::NotPermitted(_) => "forbidden",
            EdgeError::IpRefused => "ip_refused",
            EdgeError::Gone(_) => "share_link_ended",
            EdgeError::Throttled(_) => "too_many_requests",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            EdgeError::BadRequest(d) | EdgeError::Unauthorized(d) | EdgeError::BadGateway(d) => {
                (*d).to_string()
            }
            EdgeError::Unavailable(d) | EdgeError::NotPermitted(d) | EdgeError::Gone(d) => {
                (*d).to_string()
            }
            EdgeError::IpRefused => "your network address may not use this tunnel".to_string(),
            EdgeError::Throttled(_) => {
                "too many failed attempts from your address; try again later".to_string()
            }
            EdgeError::NotFound => "no tunnel is served at this address".to_string(),
            EdgeError::Forbidden => "you do not have access to this tunnel".to_string(),
            EdgeError::CrossOrigin => {
                "a request from another site may not use this tunnel's sign-in".to_string()
            }
            EdgeError::Offline { last_seen } => match last_seen {
                Some(t) => format!(
                    "the device is offline (last seen {})",
                    t.format("%Y-%m-%d %H:%M:%S UTC")
                ),
                None => "the device is offline (never seen)".to_string(),
            },
            EdgeError::NotActive => {
                "the tunnel is not active yet: the device has not connected".into()
            }
            EdgeError::Refused => {
                "the device's local service refused or reset the connection".to_string()
            }
            EdgeError::Timeout => "the device did not answer in time".to_string(),
            EdgeError::HeadersTooLarge => "request header fields too large".to_string(),
            EdgeError::UriTooLong => "request URI too long".to_string(),
        }
    }

    pub fn response(&self, json: bool) -> Response<Body> {
        let mut resp = error_page(self.status(), self.code(), &self.detail(), json);
        if let EdgeError::Throttled(wait) = self {
            resp.headers_mut().insert(
                http::header::RETRY_AFTER,
                HeaderValue::from(burrow_api::retry_after_secs(*wait)),
            );
        }
        resp
    }
}

/// Whether the client asked for JSON (API clients) rather than a page.
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("application/json"))
}

pub fn error_page(status: StatusCode, code: &str, detail: &str, json: bool) -> Response<Body> {
    let (ctype, body) = if json {
        let body = serde_json::json!({ "detail": detail, "code": code }).to_string();
        ("application/json", body)
    } else {
        let title = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        );
        let body = crate::look::page(
            &title,
            &format!(
                "<p>{}</p><p class=\"sub\"><code>{}</code> &middot; burrow edge</p>",
                escape(detail),
                escape(code)
            ),
        );
        ("text/html; charset=utf-8", body)
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A `302 Found` to `location` (which the caller has built from validated parts).
pub fn redirect(location: &str) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::FOUND;
    match HeaderValue::from_str(location) {
        Ok(v) => {
            resp.headers_mut().insert(LOCATION, v);
        }
        Err(_) => *resp.status_mut() = StatusCode::BAD_REQUEST,
    }
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_page_mentions_last_seen() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let e = EdgeError::Offline { last_seen: Some(t) };
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            e.detail().contains("2023-11-14 22:13:20 UTC"),
            "{}",
            e.detail()
        );
        assert_eq!(escape("<a href='x'>"), "&lt;a href=&#39;x&#39;&gt;");
    }
}
