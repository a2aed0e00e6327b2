//! The one host name of a request: parsed once from the `Host` header or the authority of an
//! absolute-form (HTTP/1.1) or HTTP/2 (`:authority`) request, normalised (lower case, trailing
//! dot and default port dropped), and classified as the API host, a tunnel host, or neither.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use http::header::HOST;
use http::Request;

/// A normalised request host: `name` is lower case without a trailing dot; `port` is kept only
/// when it is not the default port of the edge's scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub name: String,
    pub port: Option<u16>,
}

impl HostInfo {
    /// `name[:port]`, as a browser would put it in a URL.
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.name),
            None => self.name.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// Neither a `Host` header nor an absolute URI.
    Missing,
    /// Not a syntactically valid host.
    Invalid,
    /// Several `Host` headers, or one that disagrees with the request URI's authority.
    Conflict,
}

/// Parses and normalises `raw` (`host[:port]`, or `[v6][:port]`).
pub fn normalize(raw: &str, default_port: u16) -> Option<HostInfo> {
    if raw.is_empty() || raw.len() > 300 {
        return None;
    }
    let (name, port) = if let Some(rest) = raw.strip_prefix('[') {
        let end = rest.find(']')?;
        let (inner, after) = (&rest[..end], &rest[end + 1..]);
        if inner.is_empty()
            || !inner
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(parse_port(p.strip_prefix(':')?)?),
        };
        (format!("[{}]", inner.to_ascii_lowercase()), port)
    } else {
        let (name, port) = match raw.rsplit_once(':') {
            Some((n, p)) => (n, Some(parse_port(p)?)),
            None => (raw, None),
        };
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if !valid_dns_name(&name) {
            return None;
        }
        (name, port)
    };
    let port = port.filter(|p| *p != default_port);
    Some(HostInfo { name, port })
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The host of `req`: the `Host` header and the URI authority must agree when both are there.
pub fn request_host<B>(req: &Request<B>, default_port: u16) -> Result<HostInfo, HostError> {
    let mut headers = req.headers().get_all(HOST).iter();
    let header = headers.next();
    if headers.next().is_some() {
        return Err(HostError::Conflict);
    }
    let from_header = match header {
        Some(v) => {
            let s = v.to_str().map_err(|_| HostError::Invalid)?;
            Some(normalize(s, default_port).ok_or(HostError::Invalid)?)
        }
        None => None,
    };
    let from_uri = match req.uri().authority() {
        Some(a) => {
            if a.as_str().contains('@') {
                return Err(HostError::Invalid);
            }
            Some(normalize(a.as_str(), default_port).ok_or(HostError::Invalid)?)
        }
        None => None,
    };
    match (from_header, from_uri) {
        (Some(h), Some(u)) if h != u => Err(HostError::Conflict),
        (Some(h), _) => Ok(h),
        (None, Some(u)) => Ok(u),
        (None, None) => Err(HostError::Missing),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    Api,
    Tunnel,
    Other,
}

/// Decides which names are tunnel hosts: any name under `base_domain` other than the API host,
/// and the custom domains whose ownership is proven.
#[derive(Debug, Clone)]
pub struct HostMatcher {
    base: String,
    api_host: Option<String>,
    custom: Arc<CustomHosts>,
}

/// The custom hostnames the edge serves now; the server refreshes it from the store.
#[derive(Debug, Default)]
pub struct CustomHosts(RwLock<HashSet<String>>);

impl CustomHosts {
    /// Replaces the set; answers whether it changed.
    pub fn replace(&self, names: HashSet<String>) -> bool {
        let Ok(mut cur) = self.0.write() else {
            return false;
        };
        if *cur == names {
            return false;
        }
        *cur = names;
        true
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.read().map(|s| s.contains(name)).unwrap_or(false)
    }

    pub fn len(&self) -> usize {
        self.0.read().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl HostMatcher {
    pub fn new(base_domain: &str, api_host: Option<&str>) -> Self {
        let clean = |s: &str| s.trim().trim_end_matches('.').to_ascii_lowercase();
        let api_host = api_host.map(|h| match normalize(h.trim(), 0) {
            Some(info) => info.name,
            None => clean(h),
        });
        HostMatcher {
            base: clean(base_domain),
            api_host,
            custom: Arc::default(),
        }
    }

    /// The custom hostnames this matcher also takes as tunnel hosts.
    pub fn custom_hosts(&self) -> &Arc<CustomHosts> {
        &self.custom
    }

    pub fn classify(&self, name: &str) -> HostKind {
        let is_api = match &self.api_host {
            Some(api) => name == api,
            None => name == self.base || matches!(name, "localhost" | "127.0.0.1" | "[::1]"),
        };
        if is_api {
            return HostKind::Api;
        }
        match name.strip_suffix(self.base.as_str()) {
            Some(prefix) if prefix.len() > 1 && prefix.ends_with('.') => HostKind::Tunnel,
            _ if self.custom.contains(name) => HostKind::Tunnel,
            _ => HostKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_dot_and_default_port() {
        let h = normalize("A.LOCALHOST.:80", 80).expect("valid");
        assert_eq!(
            h,
            HostInfo {
                name: "a.localhost".into(),
                port: None
            }
        );
        let h = normalize("a.localhost:8080", 80).expect("valid");
        assert_eq!(h.authority(), "a.localhost:8080");
        assert_eq!(normalize("[::1]:80", 80).expect("v6").name, "[::1]");
        for bad in [
            "",
            "a..b",
            "a b",
            "a.localhost:",
            "a.localhost:99999",
            "a/b",
            "x:y:z",
        ] {
            assert!(normalize(bad, 80).is_none(), "{bad}");
        }
        assert!(normalize("évil.com", 80).is_none());
    }

    #[test]
    fn host_and_absolute_uri_must_agree() {
        let req = Request::builder()
            .uri("http://b.localhost/")
            .header(HOST, "a.localhost")
            .body(())
            .expect("request");
        assert_eq!(request_host(&req, 80), Err(HostError::Conflict));
        let req = Request::builder()
            .uri("http://a.localhost:80/")
            .header(HOST, "A.localhost")
            .body(())
            .expect("request");
        assert_eq!(request_host(&req, 80).expect("ok").name, "a.localhost");
        let req = Request::builder()
            .uri("/")
            .header(HOST, "a.localhost")
            .header(HOST, "b.localhost")
            .body(())
            .expect("request");
        assert_eq!(request_host(&req, 80), Err(HostError::Conflict));
        let req = Request::builder().uri("/").body(()).expect("request");
        assert_eq!(request_host(&req, 80), Err(HostError::Missing));
    }

    #[test]
    fn classifies_hosts() {
        let m = HostMatcher::new("localhost", None);
        assert_eq!(m.classify("localhost"), HostKind::Api);
        assert_eq!(m.classify("127.0.0.1"), HostKind::Api);
        assert_eq!(m.classify("device-a.localhost"), HostKind::Tunnel);
        assert_eq!(m.classify("xlocalhost"), HostKind::Other);
        assert_eq!(m.classify("evil.com"), HostKind::Other);
        let m = HostMatcher::new("fleet.example.com", Some("api.fleet.example.com"));
        assert_eq!(m.classify("api.fleet.example.com"), HostKind::Api);
        assert_eq!(m.classify("fleet.example.com"), HostKind::Other);
        assert_eq!(m.classify("d.fleet.example.com"), HostKind::Tunnel);
        // Custom domains are tunnel hosts while served.
        assert_eq!(m.classify("robot7.customer.com"), HostKind::Other);
        let names = HashSet::from(["robot7.customer.com".to_string()]);
        assert!(m.custom_hosts().replace(names.clone()));
        assert!(!m.custom_hosts().replace(names));
        assert_eq!(m.classify("robot7.customer.com"), HostKind::Tunnel);
        m.custom_hosts().replace(HashSet::new());
        assert_eq!(m.classify("robot7.customer.com"), HostKind::Other);
    }
}
