//! Input parsed at the boundary into types the handlers trust.

use crate::error::ApiError;

/// A device serial number: 1-64 of `[A-Za-z0-9_-]`, as AWS thing names allow (minus `:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn(String);

impl Dsn {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Dsn(s.to_string()))
        } else {
            Err(ApiError::validation(
                "dsn",
                "dsn must be 1-64 characters of letters, digits, '-' or '_'",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The DNS-label form: lower case, `_` as `-`.
    pub fn label(&self) -> String {
        self.0.to_ascii_lowercase().replace('_', "-")
    }
}

/// One DNS label (RFC 1123): 1-63 of `[a-z0-9-]`, not starting or ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subdomain(String);

impl Subdomain {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let s = s.to_ascii_lowercase();
        let ok = (1..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Subdomain(s))
        } else {
            Err(ApiError::validation(
                "subdomain",
                "subdomain must be a DNS label: 1-63 of a-z, 0-9 and '-', not starting or ending with '-'",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the edge speaks to the device's local service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum TunnelProtocol {
    Http,
    Https,
    Ws,
    Wss,
}

impl TunnelProtocol {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "http" => Ok(Self::Http),
            "https" => Ok(Self::Https),
            "ws" => Ok(Self::Ws),
            "wss" => Ok(Self::Wss),
            _ => Err(ApiError::validation(
                "protocol",
                "protocol must be one of http, https, ws, wss",
            )),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::Ws => "ws",
            Self::Wss => "wss",
        }
    }
}

pub fn tunnel_name(s: &str) -> Result<String, ApiError> {
    let t = s.trim();
    if t.is_empty() || s.chars().count() > 255 {
        return Err(ApiError::validation(
            "name",
            "name must be 1-255 characters",
        ));
    }
    Ok(s.to_string())
}

pub fn plain_name(field: &'static str, s: &str, max: usize) -> Result<String, ApiError> {
    // The length is the one sent (as the OpenAPI document's maxLength counts it).
    let t = s.trim();
    if t.is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
        return Err(ApiError::validation(
            field,
            format!("{field} must be 1-{max} characters without control characters"),
        ));
    }
    Ok(t.to_string())
}

pub fn description(s: Option<String>) -> Result<Option<String>, ApiError> {
    match s {
        Some(d) if d.chars().count() > 2048 => Err(ApiError::validation(
            "description",
            "description must be at most 2048 characters",
        )),
        other => Ok(other),
    }
}

pub fn local_port(p: i64) -> Result<i64, ApiError> {
    if (1..=65535).contains(&p) {
        Ok(p)
    } else {
        Err(ApiError::validation(
            "local_port",
            "local_port must be 1-65535",
        ))
    }
}

pub fn email(s: &str) -> Result<String, ApiError> {
    let s = s.trim().to_ascii_lowercase();
    let valid = s.len() <= 254
        && s.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(s)
    } else {
        Err(ApiError::validation(
            "email",
            "a valid email address is required",
        ))
    }
}

pub fn password(s: &str) -> Result<&str, ApiError> {
    // Characters, not bytes: as the OpenAPI document's minLength/maxLength count.
    if (8..=1024).contains(&s.chars().count()) {
        Ok(s)
    } else {
        Err(ApiError::validation(
            "password",
            "password must be 8-1024 characters",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_and_labels() {
        assert_eq!(Dsn::parse("ABC_123").expect("dsn").label(), "abc-123");
        for bad in ["", "a b", "x.y", "ü", &"a".repeat(65)] {
            assert!(Dsn::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subdomains() {
        assert_eq!(Subdomain::parse("My-Cam").expect("ok").as_str(), "my-cam");
        for bad in ["", "-a", "a-", "a.b", "a_b", &"a".repeat(64)] {
            assert!(Subdomain::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_and_ports() {
        assert_eq!(email(" A@B.io ").expect("ok"), "a@b.io");
        assert!(email("nope").is_err());
        assert!(local_port(0).is_err() && local_port(65536).is_err() && local_port(80).is_ok());
    }
}
