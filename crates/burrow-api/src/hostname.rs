//! A custom hostname as its owner gives it, parsed at the boundary: lower-case ASCII, an
//! internationalised name converted to punycode (and the caller told so), never an IP
//! address, a wildcard, or a name under the base domain (those are the tunnels' own).

use std::net::IpAddr;

use crate::error::ApiError;

/// A hostname a tunnel may be served at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomHostname {
    name: String,
    /// The owner gave a Unicode name; `name` is its punycode form.
    converted: bool,
}

impl CustomHostname {
    /// `reserved`: other names of this installation (the API's host), refused like the base
    /// domain.
    pub fn parse(raw: &str, base_domain: &str, reserved: &[&str]) -> Result<Self, ApiError> {
        let bad = |m: &str| ApiError::validation("hostname", m);
        let trimmed = raw.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err(bad("hostname is required"));
        }
        if trimmed.len() > 1024 {
            return Err(bad("hostname is longer than 253 characters"));
        }
        if trimmed.contains('*') {
            return Err(bad(
                "wildcards are not supported: add each hostname on its own",
            ));
        }
        let unbracketed = trimmed.trim_start_matches('[').trim_end_matches(']');
        if unbracketed.parse::<IpAddr>().is_ok() {
            return Err(bad("an IP address is not a hostname"));
        }
        let converted = !trimmed.is_ascii();
        let name = if converted {
            idna::domain_to_ascii(trimmed).map_err(|_| {
                bad("not a valid internationalised domain name; give it in punycode (xn--...)")
            })?
        } else {
            trimmed.to_ascii_lowercase()
        };
        if name.len() > 253 {
            return Err(bad("hostname is longer than 253 characters"));
        }
        let labels: Vec<&str> = name.split('.').collect();
        if labels.len() < 2 {
            return Err(bad(
                "hostname must be a fully qualified name such as app.example.com",
            ));
        }
        for label in &labels {
            let ok = (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(bad(
                    "each label of the hostname must be 1-63 letters, digits or inner '-'",
                ));
            }
        }
        if labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(bad("an IP address is not a hostname"));
        }
        let base = base_domain.trim_end_matches('.').to_ascii_lowercase();
        if name == base || name.ends_with(&format!(".{base}")) {
            return Err(bad(&format!(
                "names under {base} are the tunnels' own; give a domain of yours"
            )));
        }
        if reserved.iter().any(|r| r.eq_ignore_ascii_case(&name)) {
            return Err(bad("this name is the server's own"));
        }
        if name == "localhost" || name.ends_with(".localhost") {
            return Err(bad("localhost names cannot get a certificate"));
        }
        Ok(CustomHostname { name, converted })
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Whether the given name was Unicode and was converted to punycode.
    pub fn converted(&self) -> bool {
        self.converted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        let h = CustomHostname::parse(" Robot7.Customer.COM. ", "fleet.example.com", &[]).unwrap();
        assert_eq!(h.as_str(), "robot7.customer.com");
        assert!(!h.converted());
        let h = CustomHostname::parse("bücher.example", "fleet.example.com", &[]).unwrap();
        assert_eq!(h.as_str(), "xn--bcher-kva.example");
        assert!(h.converted());
        let h = CustomHostname::parse("xn--bcher-kva.example", "fleet.example.com", &[]).unwrap();
        assert!(!h.converted());
    }

    #[test]
    fn refuses_what_cannot_be_a_custom_domain() {
        let long = format!("{}.com", "a.".repeat(130));
        let label = format!("{}.com", "a".repeat(64));
        for bad in [
            "",
            "   ",
            "*.customer.com",
            "a.*.customer.com",
            "10.0.0.1",
            "[::1]",
            "::1",
            "1.2.3.4.5",
            "customer",
            "a..b.com",
            "-a.b.com",
            "a-.b.com",
            "a_b.com",
            "a b.com",
            "a/b.com",
            "fleet.example.com",
            "dev-1.fleet.example.com",
            "x.localhost",
            "API.example.com",
            long.as_str(),
            label.as_str(),
        ] {
            assert!(
                CustomHostname::parse(bad, "fleet.example.com", &["api.example.com"]).is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
