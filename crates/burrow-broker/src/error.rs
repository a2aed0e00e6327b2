//! The broker's error type, shared by the control operations and the data plane.

use burrow_store::StoreError;

/// Why a broker operation failed. The API layer maps these to HTTP statuses and AWS error
/// types (`NotFound` → ResourceNotFoundException, `Invalid` → 400, `LimitExceeded` →
/// LimitExceededException).
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("tunnel not found")]
    NotFound,
    #[error("tunnel is closed")]
    Closed,
    /// A request field failed validation; the text says which and why (never a secret).
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("limit exceeded")]
    LimitExceeded,
    /// `connect_source` needs a connected destination; failing fast lets the edge answer 502
    /// at once instead of holding the request.
    #[error("no destination is connected to the tunnel")]
    NotConnected,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn invalid(msg: impl Into<String>) -> BrokerError {
    BrokerError::Invalid(msg.into())
}
