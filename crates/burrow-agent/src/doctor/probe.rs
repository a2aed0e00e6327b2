//! What both doctors look at: certificates (validity, names, key match), name resolution
//! and a TLS handshake against a device URL. Every probe is bounded by [`PROBE_TIMEOUT`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use burrow_identity::DeviceUrl;
use chrono::{DateTime, Utc};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;

use super::report::Report;

pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Certificates closer than this to their end are a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// The first certificate of a PEM file, as far as the doctors care.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// DNS names and IP addresses of the subject alternative names.
    pub names: Vec<String>,
    /// The raw public key bits (compared with a private key's).
    pub public_key: Vec<u8>,
    pub der: CertificateDer<'static>,
}

/// Every certificate of a PEM text.
pub fn pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(certs)
}

pub fn read_cert(path: &Path) -> Result<CertInfo, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let der = pem_certs(&pem)?.remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let time = |t: x509_parser::time::ASN1Time| {
        DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default()
    };
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|i| i.to_string()));
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        not_before: time(cert.validity().not_before),
        not_after: time(cert.validity().not_after),
        names,
        public_key: cert.public_key().subject_public_key.data.to_vec(),
        der: der.clone(),
    })
}

/// Whether the private key in `key_pem` belongs to `cert`.
pub fn key_matches(cert: &CertInfo, key_pem: &str) -> Result<bool, String> {
    let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| format!("unreadable key: {e}"))?;
    Ok(key.public_key_raw() == cert.public_key.as_slice())
}

/// Whether a certificate name (`*.example.com` or `example.com`) covers `host`.
pub fn name_covers(name: &str, host: &str) -> bool {
    let (name, host) = (name.to_ascii_lowercase(), host.to_ascii_lowercase());
    match name.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => name == host,
    }
}

/// Adds the validity checks of the certificate at `path` under `label`; answers it when it
/// could be read.
pub fn check_validity(
    report: &mut Report,
    label: &str,
    path: &Path,
    renew: &str,
) -> Option<CertInfo> {
    let name = format!("{label} ({})", path.display());
    let info = match read_cert(path) {
        Ok(i) => i,
        Err(e) => {
            report.fail(name, e, renew);
            return None;
        }
    };
    let now = Utc::now();
    let until = info.not_after.format("%Y-%m-%d %H:%M UTC");
    if info.not_after <= now {
        report.fail(name, format!("expired on {until}"), renew);
    } else if info.not_before > now {
        let from = info.not_before.format("%Y-%m-%d %H:%M UTC");
        report.fail(
            name,
            format!("not valid before {from}"),
            "check this machine's clock (NTP), or reissue the certificate",
        );
    } else if info.not_after - now < chrono::Duration::days(EXPIRY_WARNING_DAYS) {
        report.warn(name, format!("expires soon, on {until}"), renew);
    } else {
        report.ok(name, format!("valid until {until}"));
    }
    Some(info)
}

/// The addresses `host:port` resolves to.
pub async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let lookup = tokio::net::lookup_host((host, port));
    match tokio::time::timeout(PROBE_TIMEOUT, lookup).await {
        Err(_) => Err(format!("resolving {host} timed out")),
        Ok(Err(e)) => Err(format!("{host} does not resolve: {e}")),
        Ok(Ok(addrs)) => {
            let addrs: Vec<_> = addrs.collect();
            if addrs.is_empty() {
                Err(format!("{host} resolves to no address"))
            } else {
                Ok(addrs)
            }
        }
    }
}

pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for c in pem_certs(pem)? {
        roots.add(c).map_err(|e| format!("not a usable CA: {e}"))?;
    }
    Ok(roots)
}

/// Connects to `addr` and, with `roots`, completes a TLS handshake for `host` that must
/// chain to them (no client certificate: a server requiring one still shows its own).
/// Without `roots`, only the TCP connection is tried.
pub async fn tls_probe(
    addr: SocketAddr,
    host: &str,
    roots: Option<RootCertStore>,
) -> Result<(), String> {
    let tcp = match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await
    {
        Err(_) => return Err(format!("connecting to {addr} timed out")),
        Ok(Err(e)) => return Err(format!("nothing answers on {addr}: {e}")),
        Ok(Ok(s)) => s,
    };
    let Some(roots) = roots else { return Ok(()) };
    let config =
        rustls::ClientConfig::builder_with_provider(burrow_identity::mtls::crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
    let server_name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    match tokio::time::timeout(PROBE_TIMEOUT, connector.connect(server_name, tcp)).await {
        Err(_) => Err(format!("TLS handshake with {addr} timed out")),
        Ok(Err(e)) => Err(format!("TLS handshake with {addr} failed: {e}")),
        Ok(Ok(_)) => Ok(()),
    }
}

/// The port of a device URL (443 when it names none).
pub fn url_port(url: &DeviceUrl) -> u16 {
    let authority = url.as_str().trim_start_matches("https://");
    authority
        .rsplit_once(':')
        .filter(|(_, p)| !p.contains(']'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(443)
}

/// Two lines for `url`: it resolves, and it answers TLS (chaining to `roots` when given).
pub async fn check_device_url(report: &mut Report, url: &DeviceUrl, roots: Option<RootCertStore>) {
    let port = url_port(url);
    let addrs = match resolve(url.host(), port).await {
        Ok(a) => {
            let list: Vec<String> = a.iter().map(ToString::to_string).collect();
            report.ok(format!("device URL {url} resolves"), list.join(", "));
            a
        }
        Err(e) => {
            report.fail(
                format!("device URL {url} resolves"),
                e,
                "add a DNS record for this name (or fix device_url: devices dial exactly it)",
            );
            return;
        }
    };
    let verified = roots.is_some();
    let mut last = String::new();
    for addr in addrs {
        match tls_probe(addr, url.host(), roots.clone()).await {
            Ok(()) => {
                let detail = if verified {
                    format!("{addr}: TLS handshake OK, certificate from the device CA")
                } else {
                    format!("{addr}: TCP connection OK (TLS not verified: no device CA here)")
                };
                report.ok(format!("device URL {url} answers"), detail);
                return;
            }
            Err(e) => last = e,
        }
    }
    report.fail(
        format!("device URL {url} answers"),
        last,
        "check that the server runs and listens there (device_listen), that firewalls and \
         port forwards let the port through, and that nothing else terminates TLS on it",
    );
}

/// Skew between this machine's clock and `remote` (positive: the remote clock is ahead).
pub fn check_skew(report: &mut Report, name: &str, remote: DateTime<Utc>, local: DateTime<Utc>) {
    let skew = (remote - local).num_milliseconds() as f64 / 1000.0;
    let detail = format!("{skew:+.1} s against {name}");
    let fix = "synchronise the clocks with NTP (e.g. systemd-timesyncd or chrony): certificates \
               and sessions are checked against the time";
    if skew.abs() > 60.0 {
        report.fail("clock skew", detail, fix);
    } else if skew.abs() > 5.0 {
        report.warn("clock skew", detail, fix);
    } else {
        report.ok("clock skew", detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_covers("*.example.com", "a.example.com"));
        assert!(!name_covers("*.example.com", "example.com"));
        assert!(!name_covers("*.example.com", "a.b.example.com"));
        assert!(name_covers("Example.com", "example.COM"));
    }

    #[test]
    fn ports_of_device_urls() {
        let port = |s: &str| url_port(&DeviceUrl::parse(s).expect("url"));
        assert_eq!(port("https://a.example:8443"), 8443);
        assert_eq!(port("https://a.example"), 443);
        assert_eq!(port("https://[::1]:9000"), 9000);
        assert_eq!(port("https://[::1]"), 443);
    }
}
