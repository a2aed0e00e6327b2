//! The device CA's SHA-256 fingerprint: what `burrow-agent enroll --ca-sha256` pins, so an
//! enrollment over plain HTTP cannot be answered with another CA.

use std::fmt;

use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};

/// SHA-256 of a certificate's DER (as `openssl x509 -noout -fingerprint -sha256` shows it,
/// without the colons).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CaFingerprint([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--ca-sha256 must be 64 hexadecimal digits (colons allowed), as the enrollment command shows it")]
pub struct FingerprintError;

impl CaFingerprint {
    pub fn of(der: &CertificateDer<'_>) -> CaFingerprint {
        CaFingerprint(Sha256::digest(der.as_ref()).into())
    }

    /// 64 hex digits, upper or lower case, optionally colon-separated.
    pub fn parse(text: &str) -> Result<CaFingerprint, FingerprintError> {
        let digits: String = text.trim().chars().filter(|c| *c != ':').collect();
        let mut out = [0u8; 32];
        hex::decode_to_slice(digits, &mut out).map_err(|_| FingerprintError)?;
        Ok(CaFingerprint(out))
    }
}

impl fmt::Display for CaFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for CaFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaFingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_colon_forms() {
        let der = CertificateDer::from(b"not really a certificate".to_vec());
        let fp = CaFingerprint::of(&der);
        let plain = fp.to_string();
        assert_eq!(plain.len(), 64);
        assert_eq!(CaFingerprint::parse(&plain), Ok(fp));
        let colons = plain
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_ascii_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(CaFingerprint::parse(&colons), Ok(fp));
        assert!(CaFingerprint::parse("abc").is_err());
        assert!(CaFingerprint::parse(&format!("{plain}00")).is_err());
        assert!(CaFingerprint::parse(&"zz".repeat(32)).is_err());
    }
}
