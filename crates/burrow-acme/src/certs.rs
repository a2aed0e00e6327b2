//! Certificates made or read here: the CSR of an order, the TLS-ALPN-01 challenge
//! certificate, the validity of an issued chain.

use chrono::{DateTime, Utc};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::AcmeError;

/// A fresh ECDSA P-256 key and a CSR for `names`.
pub(crate) fn csr(names: &[String]) -> Result<(Vec<u8>, String), AcmeError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| AcmeError::Certificate(format!("generating a key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| AcmeError::Certificate(format!("names: {e}")))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .map_err(|e| AcmeError::Certificate(format!("making the CSR: {e}")))?;
    Ok((csr.der().to_vec(), key.serialize_pem()))
}

/// The RFC 8737 certificate answering a TLS-ALPN-01 challenge for `domain`: self-signed, the
/// domain as its only SAN, and the critical acmeIdentifier extension holding the SHA-256 of
/// the key authorization. Serve it for ALPN `acme-tls/1`.
pub fn tls_alpn01_certificate(
    domain: &str,
    key_authorization: &str,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), AcmeError> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key_authorization.as_bytes());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| AcmeError::Certificate(format!("generating a key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()])
        .map_err(|e| AcmeError::Certificate(format!("name {domain:?}: {e}")))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(&digest)];
    let cert = params
        .self_signed(&key)
        .map_err(|e| AcmeError::Certificate(format!("signing: {e}")))?;
    Ok((
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    ))
}

/// Validity (not_before, not_after) of the first certificate (the leaf) of a PEM chain.
pub fn certificate_validity(chain_pem: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), AcmeError> {
    let leaf = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .ok_or_else(|| AcmeError::Certificate("no certificate in the chain".into()))?
        .map_err(|e| AcmeError::Certificate(format!("reading the chain: {e}")))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf)
        .map_err(|e| AcmeError::Certificate(format!("parsing the leaf: {e}")))?;
    let validity = cert.validity();
    let at = |t: x509_parser::time::ASN1Time| {
        DateTime::<Utc>::from_timestamp(t.timestamp(), 0)
            .ok_or_else(|| AcmeError::Certificate("validity out of range".into()))
    };
    Ok((at(validity.not_before)?, at(validity.not_after)?))
}
