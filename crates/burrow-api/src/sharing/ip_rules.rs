//! A tunnel's IP rules: `ip_allow` (empty: any client) and `ip_deny` (wins), CIDRs of IPv4
//! and IPv6. A bare address is a /32 or /128. IPv4-mapped IPv6 clients match IPv4 rules.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::ApiError;

/// Entries per list: rules are checked on every request.
pub const MAX_CIDRS: usize = 100;

/// Parses and normalises a CIDR list (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`): host bits
/// are cleared (`10.1.2.3/8` is `10.0.0.0/8`), duplicates dropped. `field` names the input.
pub fn parse_cidrs(field: &str, list: &[String]) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_CIDRS {
        return Err(ApiError::validation(
            field,
            format!("at most {MAX_CIDRS} entries"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for raw in list {
        let net = parse_one(raw).ok_or_else(|| {
            ApiError::validation(
                field,
                format!("{field}: {raw:?} is not an IPv4 or IPv6 CIDR such as 10.0.0.0/8"),
            )
        })?;
        let s = net.trunc().to_string();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

fn parse_one(raw: &str) -> Option<IpNet> {
    let raw = raw.trim();
    if raw.len() > 64 {
        return None;
    }
    raw.parse::<IpNet>()
        .ok()
        .or_else(|| raw.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Parsed rules, ready to check clients against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRules {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl IpRules {
    /// From stored lists; an entry that does not parse (never written by the API) is
    /// treated as matching nothing in `allow` and everything in `deny`: fail closed.
    pub fn new(allow: &[String], deny: &[String]) -> Self {
        let mut rules = IpRules::default();
        let mut deny_all = false;
        for raw in deny {
            match parse_one(raw) {
                Some(n) => rules.deny.push(n),
                None => deny_all = true,
            }
        }
        for raw in allow {
            if let Some(n) = parse_one(raw) {
                rules.allow.push(n);
            }
        }
        if deny_all || (rules.allow.is_empty() && !allow.is_empty()) {
            rules.deny.push("0.0.0.0/0".parse().expect("literal"));
            rules.deny.push("::/0".parse().expect("literal"));
        }
        rules
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Whether `client` may reach the tunnel: in no `deny` entry, and in an `allow` entry
    /// when there are any.
    pub fn admits(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        if self.deny.iter().any(|n| n.contains(&client)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&client))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(
            parse_cidrs(
                "ip_allow",
                &s(&["10.1.2.3/8", "10.0.0.0/8", "2001:db8::1/32", "192.0.2.7"])
            )
            .expect("ok"),
            s(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"])
        );
        for bad in [
            "10.0.0.0/33",
            "nope",
            "",
            "10.0.0.0/",
            "::/129",
            "1.2.3.4/8/8",
        ] {
            assert!(parse_cidrs("ip_deny", &s(&[bad])).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..=MAX_CIDRS)
            .map(|i| format!("10.0.{}.0/24", i % 250))
            .collect();
        assert!(parse_cidrs("ip_deny", &many).is_err());
    }

    #[test]
    fn deny_wins_and_allow_limits() {
        let ip = |x: &str| x.parse::<IpAddr>().expect("ip");
        let open = IpRules::new(&[], &[]);
        assert!(open.is_empty() && open.admits(ip("203.0.113.9")));
        let r = IpRules::new(&s(&["10.0.0.0/8", "2001:db8::/32"]), &s(&["10.9.0.0/16"]));
        assert!(r.admits(ip("10.1.1.1")));
        assert!(!r.admits(ip("10.9.1.1")), "deny wins");
        assert!(!r.admits(ip("192.0.2.1")), "not allowed");
        assert!(r.admits(ip("2001:db8::5")));
        assert!(r.admits(ip("::ffff:10.1.1.1")), "mapped v4");
        let deny_only = IpRules::new(&[], &s(&["192.0.2.0/24"]));
        assert!(!deny_only.admits(ip("192.0.2.77")));
        assert!(deny_only.admits(ip("198.51.100.1")));
        let broken = IpRules::new(&[], &s(&["garbage"]));
        assert!(!broken.admits(ip("198.51.100.1")), "fails closed");
    }
}
