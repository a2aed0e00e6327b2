//! What the SSO routes read from and write to the browser: query parameters, `next`,
//! cookies and redirects.

use axum::body::Body;
use axum::response::Response;
use http::header::{CACHE_CONTROL, COOKIE, LOCATION};
use http::{HeaderMap, HeaderValue, StatusCode};

/// Where the browser goes after signing in when `next` is absent or not a local path.
pub const DEFAULT_NEXT: &str = "/";

/// The first value of `name` in a query string, decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    openidconnect::url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `next` if it is a path on this host (no scheme, no `//host`, no backslash or control
/// characters that browsers might read as another origin), else the default.
pub fn local_next(next: Option<String>) -> String {
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && n.len() <= 2048
            && n.bytes().all(|b| b > 0x20 && b != 0x7f && b != b'\\')
    })
    .unwrap_or_else(|| DEFAULT_NEXT.to_string())
}

/// A 303 to `to`, never cached.
pub fn redirect(to: &str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A host-only `HttpOnly; SameSite=Lax` cookie; `max_age` 0 deletes it.
pub fn cookie(https: bool, name: &str, path: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("__burrow_invalid=1"))
}

/// Values of every cookie named `name` in the request.
pub fn cookie_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_local_path_or_the_default() {
        assert_eq!(local_next(Some("/devices?x=1".into())), "/devices?x=1");
        assert_eq!(
            local_next(Some("/edge/authorize?host=a.localhost".into())),
            "/edge/authorize?host=a.localhost"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "devices",
            "/a b",
            "",
        ] {
            assert_eq!(local_next(Some(bad.into())), "/", "{bad}");
        }
        assert_eq!(local_next(None), "/");
    }
}
