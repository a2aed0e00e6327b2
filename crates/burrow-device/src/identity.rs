//! Who is calling the device listener: the verified client certificate of the connection
//! ([`PeerCertificate`]), or the seed's `X-Device-Certificate` header from a trusted
//! TLS-terminating proxy. Reading the identity out of a certificate is device-side code too
//! (the agent checks its own), so it lives in `burrow-identity` and is re-exported here.

use std::net::{IpAddr, SocketAddr};

use percent_encoding::percent_decode_str;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;

pub use burrow_identity::identity::{
    device_urn, identity_from_der, DeviceIdentity, InvalidCert, DEVICE_URN_PREFIX,
};

use crate::error::{DeviceError, Result};

/// The DER certificate the client presented on this TLS connection, put into each request's
/// extensions by [`crate::mtls::serve_device_listener`]. Only set once rustls verified it.
#[derive(Clone)]
pub struct PeerCertificate(pub Vec<u8>);

impl std::fmt::Debug for PeerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerCertificate({} bytes)", self.0.len())
    }
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
