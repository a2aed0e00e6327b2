//! What enrolled devices dial: one or more `https://host[:port]` URLs of the device listener
//! (config endpoint and broker). Parsed once at the boundary (server config, enrollment
//! answer, config answer); the rest of the code trusts a [`DeviceUrls`].
//!
//! A URL may carry a region label, written `REGION=https://host[:port]` (e.g.
//! `eu=https://eu.devices.example.com:8701`): agents configured with a region try their
//! region's URLs first (see [`DeviceUrls::preferring`]).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// One device URL: `https`, a host that is a DNS name or an IP address, an optional port,
/// no path, query, fragment or credentials. Kept in its canonical text form, with its
/// region label if it has one (serialized as `REGION=URL`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeviceUrl {
    text: String,
    host: String,
    region: Option<String>,
}

/// A region label (`default`, `eu-west`, ...), trimmed and lower-cased: `None` unless 1 to 63
/// letters, digits, `-` and `_`.
pub fn parse_region(s: &str) -> Option<String> {
    let r = s.trim().to_ascii_lowercase();
    let ok = (1..=63).contains(&r.len())
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    ok.then_some(r)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeviceUrlError(String);

impl DeviceUrl {
    pub fn parse(input: &str) -> Result<DeviceUrl, DeviceUrlError> {
        let input = input.trim();
        let (region, s) = match input.split_once('=') {
            Some((r, url)) if !r.contains('/') => {
                let r = parse_region(r).ok_or_else(|| {
                    DeviceUrlError(format!(
                        "{input:?} has an invalid region label (letters, digits, - and _)"
                    ))
                })?;
                (Some(r), url.trim())
            }
            _ => (None, input),
        };
        let bad = |why: &str| DeviceUrlError(format!("{s:?} {why}"));
        let rest = s
            .strip_prefix("https://")
            .ok_or_else(|| bad("is not an https:// URL"))?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(bad(
                "must be https://host[:port], without path, query or user",
            ));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("has no valid host"))?;
        let port = match port.map(str::parse::<u16>) {
            None => None,
            Some(Ok(n)) if n > 0 => Some(n),
            Some(_) => return Err(bad("has an invalid port")),
        };
        let host = host.to_ascii_lowercase();
        let host = host.trim_end_matches('.').to_string();
        let ip = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&host)
            .parse::<IpAddr>();
        let bare = match ip {
            Ok(ip) => ip.to_string(),
            Err(_) if is_dns_name(&host) => host.clone(),
            Err(_) => {
                return Err(bad(
                    "has a host that is neither a DNS name nor an IP address",
                ))
            }
        };
        Ok(DeviceUrl {
            text: text_of(&bare, matches!(ip, Ok(IpAddr::V6(_))), port),
            host: bare,
            region,
        })
    }

    /// The device listener's own address, `https://IP:PORT`: the default when `device_url` is
    /// unset, which configuration allows only for a loopback listener. Its address, not the
    /// name `localhost`, which may resolve to the other loopback family.
    pub fn of_listener(addr: SocketAddr) -> DeviceUrl {
        let host = addr.ip().to_string();
        DeviceUrl {
            text: text_of(&host, addr.is_ipv6(), Some(addr.port())),
            host,
            region: None,
        }
    }

    /// The URL itself (without the region label).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The region label, if the URL has one.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The host as the listener's certificate must name it (an IP address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The broker on the same listener: `wss://host[:port]`.
    pub fn broker_url(&self) -> String {
        self.text.replacen("https://", "wss://", 1)
    }
}

impl fmt::Display for DeviceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl TryFrom<String> for DeviceUrl {
    type Error = DeviceUrlError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        DeviceUrl::parse(&s)
    }
}

impl From<DeviceUrl> for String {
    fn from(u: DeviceUrl) -> String {
        match u.region {
            Some(r) => format!("{r}={}", u.text),
            None => u.text,
        }
    }
}

/// A non-empty, duplicate-free list of device URLs, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<DeviceUrl>", into = "Vec<DeviceUrl>")]
pub struct DeviceUrls(Vec<DeviceUrl>);

impl DeviceUrls {
    /// A comma-separated list, as the `device_url` key takes it.
    pub fn parse(list: &str) -> Result<DeviceUrls, DeviceUrlError> {
        let urls = list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(DeviceUrl::parse)
            .collect::<Result<Vec<_>, _>>()?;
        DeviceUrls::try_from(urls)
    }

    pub fn one(url: DeviceUrl) -> DeviceUrls {
        DeviceUrls(vec![url])
    }

    pub fn first(&self) -> &DeviceUrl {
        // Non-empty by construction.
        &self.0[0]
    }

    pub fn iter(&self) -> impl Iterator<Item = &DeviceUrl> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn contains(&self, url: &DeviceUrl) -> bool {
        self.0.contains(url)
    }

    /// The same URLs with `region`'s first (each group in its own order): an agent in a
    /// region dials a node of its region while one answers, and the others after.
    pub fn preferring(&self, region: Option<&str>) -> DeviceUrls {
        let Some(region) = region else {
            return self.clone();
        };
        let (mut mine, others): (Vec<_>, Vec<_>) = self
            .0
            .iter()
            .cloned()
            .partition(|u| u.region() == Some(region));
        mine.extend(others);
        DeviceUrls(mine)
    }

    /// Every host the device listener's certificate must name.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = Vec::new();
        for u in &self.0 {
            if !hosts.iter().any(|h| h == u.host()) {
                hosts.push(u.host().to_string());
            }
        }
        hosts
    }
}

impl TryFrom<Vec<DeviceUrl>> for DeviceUrls {
    type Error = DeviceUrlError;
    fn try_from(urls: Vec<DeviceUrl>) -> Result<Self, Self::Error> {
        if urls.is_empty() {
            return Err(DeviceUrlError("no device URL given".into()));
        }
        let mut unique: Vec<DeviceUrl> = Vec::with_capacity(urls.len());
        for u in urls {
            if !unique.contains(&u) {
                unique.push(u);
            }
        }
        Ok(DeviceUrls(unique))
    }
}

impl From<DeviceUrls> for Vec<DeviceUrl> {
    fn from(u: DeviceUrls) -> Vec<DeviceUrl> {
        u.0
    }
}

impl fmt::Display for DeviceUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, u) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match u.region() {
                Some(r) => write!(f, "{r}={}", u.as_str())?,
                None => f.write_str(u.as_str())?,
            }
        }
        Ok(())
    }
}

/// `https://host[:port]` as burrow writes it: IPv6 in brackets, no `:443`.
fn text_of(host: &str, ipv6: bool, port: Option<u16>) -> String {
    let shown = if ipv6 {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    match port {
        Some(p) if p != 443 => format!("https://{shown}:{p}"),
        _ => format!("https://{shown}"),
    }
}

fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        return match rest {
            "" => Some((host, None)),
            r => Some((host, Some(r.strip_prefix(':')?))),
        };
    }
    match authority.rsplit_once(':') {
        Some((h, _)) if h.contains(':') => None, // an IPv6 address needs brackets
        Some((h, p)) => Some((h, Some(p))).filter(|(h, _)| !h.is_empty()),
        None => Some((authority, None)).filter(|(h, _)| !h.is_empty()),
    }
}

fn is_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        // All digits and dots is a malformed IPv4 address, not a name.
        && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_addresses_and_ports() {
        let u = DeviceUrl::parse("https://Devices.Fleet.example.com:8701/").unwrap();
        assert_eq!(u.as_str(), "https://devices.fleet.example.com:8701");
        assert_eq!(u.host(), "devices.fleet.example.com");
        assert_eq!(u.broker_url(), "wss://devices.fleet.example.com:8701");
        assert_eq!(
            DeviceUrl::parse("https://x.test:443").unwrap().as_str(),
            "https://x.test"
        );
        let v4 = DeviceUrl::parse("https://10.1.2.3:9").unwrap();
        assert_eq!(v4.host(), "10.1.2.3");
        let v6 = DeviceUrl::parse("https://[::1]:8701").unwrap();
        assert_eq!((v6.as_str(), v6.host()), ("https://[::1]:8701", "::1"));
    }

    #[test]
    fn a_listeners_url_is_written_as_a_parsed_one() {
        for (addr, url) in [
            ("127.0.0.1:8701", "https://127.0.0.1:8701"),
            ("[::1]:8701", "https://[::1]:8701"),
            ("127.0.0.1:443", "https://127.0.0.1"),
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(DeviceUrl::of_listener(addr), DeviceUrl::parse(url).unwrap());
        }
    }

    #[test]
    fn region_labels_order_the_list() {
        let urls = DeviceUrls::parse(
            "us=https://us.test:8701, EU=https://eu1.test:8701,https://any.test,eu=https://eu2.test",
        )
        .unwrap();
        let eu: Vec<_> = urls
            .preferring(Some("eu"))
            .iter()
            .map(|u| u.to_string())
            .collect();
        assert_eq!(
            eu,
            [
                "https://eu1.test:8701",
                "https://eu2.test",
                "https://us.test:8701",
                "https://any.test"
            ]
        );
        assert_eq!(urls.preferring(None), urls);
        assert_eq!(urls.preferring(Some("mars")), urls);
        assert_eq!(urls.first().region(), Some("us"));
        assert_eq!(urls.first().as_str(), "https://us.test:8701");
        // The labelled form survives a round trip through the config answer and agent.toml.
        let json = serde_json::to_string(&urls).unwrap();
        assert!(json.contains("\"eu=https://eu1.test:8701\""), "{json}");
        assert_eq!(serde_json::from_str::<DeviceUrls>(&json).unwrap(), urls);
        assert_eq!(DeviceUrls::parse(&urls.to_string()).unwrap(), urls);
        for bad in ["=https://x.test", "e u=https://x.test", "eu=ftp://x.test"] {
            assert!(DeviceUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_what_the_server_cannot_serve() {
        for bad in [
            "ftp://x",
            "https://",
            "http://x.test",
            "https://x.test/path",
            "https://user@x.test",
            "https://x_y.test",
            "https://x.test:0",
            "https://x.test:99999",
            "https://::1:80",
            "https://1.2.3",
            "https://-x.test",
            "x.test",
        ] {
            assert!(DeviceUrl::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(DeviceUrls::parse("").is_err());
        assert!(DeviceUrls::parse(" , ").is_err());
    }

    #[test]
    fn lists_keep_order_drop_duplicates_and_name_every_host() {
        let l = DeviceUrls::parse(
            "https://a.test:1, https://b.test:2,https://a.test:1,https://a.test:3",
        )
        .unwrap();
        assert_eq!(
            l.to_string(),
            "https://a.test:1,https://b.test:2,https://a.test:3"
        );
        assert_eq!(l.hosts(), ["a.test", "b.test"]);
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(
            json,
            r#"["https://a.test:1","https://b.test:2","https://a.test:3"]"#
        );
        assert_eq!(serde_json::from_str::<DeviceUrls>(&json).unwrap(), l);
        assert!(serde_json::from_str::<DeviceUrls>("[]").is_err());
        assert!(serde_json::from_str::<DeviceUrls>(r#"["ftp://x"]"#).is_err());
    }
}
