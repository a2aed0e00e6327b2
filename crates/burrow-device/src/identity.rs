//! Who a device is, read from its certificate: the DSN in the SAN URI
//! `urn:burrow:device:<dsn>` (percent-encoded), else the subject CN. Only certificates that
//! chained to the device CA reach this code (rustls' verifier or [`verify_header_cert`]).

use std::net::{IpAddr, SocketAddr};

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use x509_parser::extensions::GeneralName;

use crate::error::{DeviceError, Result};

pub const DEVICE_URN_PREFIX: &str = "urn:burrow:device:";

/// Everything but unreserved URI characters is escaped, so any DSN makes a valid URI.
const URN_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The DER certificate the client presented on this TLS connection, put into each request's
/// extensions by [`crate::mtls::serve_device_listener`]. Only set once rustls verified it.
#[derive(Clone)]
pub struct PeerCertificate(pub Vec<u8>);

impl std::fmt::Debug for PeerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerCertificate({} bytes)", self.0.len())
    }
}

/// The identity a device certificate carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIdentity {
    pub dsn: String,
    /// Lower-case hex of the serial's DER bytes, as stored in `Device::cert_serial`.
    pub serial_hex: String,
    /// Unix seconds; checked per request since a keep-alive connection can outlive it.
    pub not_after: i64,
}

pub fn device_urn(dsn: &str) -> String {
    format!(
        "{DEVICE_URN_PREFIX}{}",
        utf8_percent_encode(dsn, URN_ESCAPE)
    )
}

/// Reads the DSN and serial of a DER certificate. Does not check the signature or validity:
/// callers only pass certificates already verified against the device CA.
pub fn identity_from_der(der: &[u8]) -> Result<DeviceIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| DeviceError::InvalidCert(e.to_string()))?;
    let from_san = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .and_then(|san| {
            san.value.general_names.iter().find_map(|name| match name {
                GeneralName::URI(uri) => uri.strip_prefix(DEVICE_URN_PREFIX).map(str::to_string),
                _ => None,
            })
        })
        .and_then(|enc| {
            percent_decode_str(&enc)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        });
    let dsn = match from_san {
        Some(dsn) => dsn,
        None => cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string)
            .ok_or_else(|| DeviceError::InvalidCert("no device identity in certificate".into()))?,
    };
    if dsn.is_empty() {
        return Err(DeviceError::InvalidCert("empty device identity".into()));
    }
    Ok(DeviceIdentity {
        dsn,
        serial_hex: hex::encode(cert.raw_serial()),
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Whether `peer` is one of the configured TLS-terminating proxies. IPv4-mapped IPv6
/// addresses (dual-stack listeners) compare as their IPv4 form.
pub fn is_trusted_proxy(peer: SocketAddr, trusted: &[IpAddr]) -> bool {
    let ip = peer.ip().to_canonical();
    trusted.iter().any(|t| t.to_canonical() == ip)
}

/// Decodes the seed's `X-Device-Certificate` header (URL-encoded PEM, as nginx's
/// `$ssl_client_escaped_cert`; the leaf first, intermediates after) and verifies the chain
/// against the device CA exactly as the TLS handshake would. Answers the leaf's DER.
pub fn verify_header_cert(value: &str, verifier: &dyn ClientCertVerifier) -> Result<Vec<u8>> {
    let pem = percent_decode_str(value)
        .decode_utf8()
        .map_err(|_| DeviceError::InvalidCert("header is not URL-encoded UTF-8".into()))?;
    let mut reader = pem.as_bytes();
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut reader)
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| DeviceError::InvalidCert("header is not a PEM certificate".into()))?;
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or_else(|| DeviceError::InvalidCert("no certificate in header".into()))?;
    verifier.verify_client_cert(leaf, intermediates, UnixTime::now())?;
    Ok(leaf.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urn_escapes_and_round_trips() {
        assert_eq!(device_urn("ABC123-x_y.z"), "urn:burrow:device:ABC123-x_y.z");
        let urn = device_urn("a b/c:é");
        assert!(urn.is_ascii() && !urn.contains(' '));
        let enc = urn.strip_prefix(DEVICE_URN_PREFIX).unwrap();
        assert_eq!(percent_decode_str(enc).decode_utf8().unwrap(), "a b/c:é");
    }

    #[test]
    fn trusted_proxy_matches_mapped_ipv4() {
        let trusted = vec!["10.0.0.1".parse().unwrap()];
        assert!(is_trusted_proxy("10.0.0.1:5".parse().unwrap(), &trusted));
        assert!(is_trusted_proxy(
            "[::ffff:10.0.0.1]:5".parse().unwrap(),
            &trusted
        ));
        assert!(!is_trusted_proxy("10.0.0.2:5".parse().unwrap(), &trusted));
        assert!(!is_trusted_proxy("10.0.0.1:5".parse().unwrap(), &[]));
    }
}
