//! Custom domains on reverse tunnels, the certificates burrow obtains for them (and for the
//! base domain's wildcard) by ACME, and the pending challenge answers (docs/custom-domains.md).

use crate::model::Timestamp;

/// The states of a custom domain, as the API shows them.
pub mod domain_status {
    pub const PENDING_VERIFICATION: &str = "pending_verification";
    pub const VERIFIED: &str = "verified";
    pub const ISSUING: &str = "issuing";
    pub const ACTIVE: &str = "active";
    pub const FAILED: &str = "failed";
}

/// A hostname of the owner's on a tunnel. Served while `verified_at` is set (ownership
/// proven, and not lost since).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomDomain {
    pub id: i64,
    pub reverse_tunnel_id: i64,
    /// Lower-case ASCII; an IDN as punycode.
    pub hostname: String,
    /// The value the owner publishes at `_burrow-challenge.<hostname>`.
    pub verification_value: String,
    pub status: String,
    pub status_reason: Option<String>,
    pub verified_at: Option<Timestamp>,
    pub checked_at: Option<Timestamp>,
    pub next_check_at: Timestamp,
    /// Consecutive failed checks or issuances (the backoff's exponent).
    pub failures: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewCustomDomain {
    pub reverse_tunnel_id: i64,
    pub hostname: String,
    pub verification_value: String,
    pub created_at: Timestamp,
}

/// What a check or an issuance left a domain in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainState {
    pub status: String,
    pub status_reason: Option<String>,
    pub verified_at: Option<Timestamp>,
    pub checked_at: Option<Timestamp>,
    pub next_check_at: Timestamp,
    pub failures: i64,
}

/// A certificate and its sealed private key, under the name it serves (a hostname, or
/// `*.<base_domain>`).
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredCertificate {
    pub name: String,
    pub chain_pem: String,
    pub key_sealed: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    pub updated_at: Timestamp,
}

impl std::fmt::Debug for StoredCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCertificate")
            .field("name", &self.name)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}
