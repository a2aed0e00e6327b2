//! What can go wrong talking to DNS servers, for lookups and updates alike.

/// DNS failures, in words.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("DNS resolver setup: {0}")]
    Setup(String),
    #[error("DNS lookup failed: {0}")]
    Lookup(String),
    #[error("invalid DNS name {0:?}")]
    Name(String),
    #[error("DNS update for {name} refused: {rcode}")]
    Rejected { name: String, rcode: String },
    #[error("DNS update for {name} failed: {detail}")]
    Update { name: String, detail: String },
    #[error("TSIG key: {0}")]
    Key(String),
}
