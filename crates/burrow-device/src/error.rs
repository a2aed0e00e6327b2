use thiserror::Error;

/// Errors of the server side of device identity (CA, enrollment, mTLS).
///
/// Messages never carry a token or a key: they may end up in logs.
#[derive(Debug, Error)]
pub enum DeviceError {
    #[error("store: {0}")]
    Store(#[from] burrow_store::StoreError),
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid certificate signing request: {0}")]
    InvalidCsr(String),
    #[error("device CA files: {0}")]
    InvalidCa(String),
    #[error("invalid certificate: {0}")]
    InvalidCert(String),
}

pub type Result<T, E = DeviceError> = std::result::Result<T, E>;

/// A certificate that names no device is an invalid certificate like any other.
impl From<burrow_identity::InvalidCert> for DeviceError {
    fn from(e: burrow_identity::InvalidCert) -> Self {
        DeviceError::InvalidCert(e.0)
    }
}
