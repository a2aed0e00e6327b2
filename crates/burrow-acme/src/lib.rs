//! Custom domains for burrow: certificates from an ACME CA (HTTP-01, TLS-ALPN-01 or DNS-01),
//! ownership checks through DNS, and RFC 2136 updates for DNS-01.

mod acme;
mod certs;
mod dns_error;
mod dns_update;
mod ownership;
#[cfg(feature = "testing")]
pub mod testing;

pub use acme::{
    AcmeClient, AcmeError, AcmeSettings, Challenge, ChallengeKind, ChallengeSolver, Issued,
};
pub use certs::{certificate_validity, tls_alpn01_certificate};
pub use dns_error::DnsError;
pub use dns_update::{DnsUpdate, TsigKey};
pub use ownership::{DnsChecker, Ownership, CHALLENGE_LABEL};
