//! Who a device is, read from its certificate: the DSN in the SAN URI
//! `urn:burrow:device:<dsn>` (percent-encoded), else the subject CN. The agent reads its own
//! certificate with this; the server reads only certificates that chained to the device CA.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use x509_parser::extensions::GeneralName;

pub const DEVICE_URN_PREFIX: &str = "urn:burrow:device:";

/// Everything but unreserved URI characters is escaped, so any DSN makes a valid URI.
const URN_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A certificate that names no device (unparsable, or without a DSN).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid certificate: {0}")]
pub struct InvalidCert(pub String);

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
pub fn identity_from_der(der: &[u8]) -> Result<DeviceIdentity, InvalidCert> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|e| InvalidCert(e.to_string()))?;
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
            .ok_or_else(|| InvalidCert("no device identity in certificate".into()))?,
    };
    if dsn.is_empty() {
        return Err(InvalidCert("empty device identity".into()));
    }
    Ok(DeviceIdentity {
        dsn,
        serial_hex: hex::encode(cert.raw_serial()),
        not_after: cert.validity().not_after.timestamp(),
    })
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
}
