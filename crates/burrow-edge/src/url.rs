//! Small URL helpers: query parameters, percent-encoding, and the redirect-target check that
//! keeps the login flow from being an open redirect.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but unreserved characters is encoded (safe inside a query parameter).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// The first value of query parameter `name` (`+` as space, percent-decoded, UTF-8 only).
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k != name {
            return None;
        }
        percent_decode_str(&v.replace('+', " "))
            .decode_utf8()
            .ok()
            .map(|c| c.into_owned())
    })
}

/// A redirect target on the same host: an absolute path (`/...`), not scheme-relative
/// (`//host`), no backslash (browsers read `/\host` as `//host`), no control characters or
/// spaces, not into the edge's own `/__burrow/` paths.
pub fn valid_return(ret: &str, max_len: usize) -> bool {
    ret.starts_with('/')
        && !ret.starts_with("//")
        && ret.len() <= max_len
        && !ret.starts_with("/__burrow/")
        && ret.bytes().all(|b| b > 0x20 && b != 0x7f && b != b'\\')
}

/// `scheme://authority` of an absolute URL (`None` if `url` is not one).
pub fn origin(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_targets() {
        for ok in ["/", "/a/b?c=d", "/https://evil.com"] {
            assert!(valid_return(ok, 100), "{ok}");
        }
        for bad in [
            "https://evil.com",
            "//evil.com",
            "/\\evil.com",
            "evil",
            "",
            "/a b",
            "/__burrow/callback",
        ] {
            assert!(!valid_return(bad, 100), "{bad}");
        }
        assert!(!valid_return("/aaaa", 3));
    }

    #[test]
    fn query_params_round_trip() {
        let q = format!("host=a.localhost%3A80&return={}", encode("/x?y=1&z=2"));
        assert_eq!(
            query_param(Some(&q), "host").as_deref(),
            Some("a.localhost:80")
        );
        assert_eq!(
            query_param(Some(&q), "return").as_deref(),
            Some("/x?y=1&z=2")
        );
        assert_eq!(query_param(Some(&q), "code"), None);
        assert_eq!(
            origin("http://localhost:8080/login").as_deref(),
            Some("http://localhost:8080")
        );
        assert_eq!(origin("/login"), None);
    }
}
