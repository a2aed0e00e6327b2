//! The TLS crypto provider both ends of the device listener use.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// ring, named explicitly: if another crate in the binary enables rustls' aws-lc-rs too,
/// rustls cannot pick a process default and `ServerConfig::builder()` would panic.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
