//! ACME challenge answers, kept in the database so that whichever node the CA reaches answers:
//! HTTP-01 at `/.well-known/acme-challenge/<token>` (the HTTP listeners) and TLS-ALPN-01 for
//! ALPN `acme-tls/1` (the TLS listener). The solver writes them before the CA is told to
//! validate, and removes them afterwards.

use std::sync::Arc;

use async_trait::async_trait;
use burrow_acme::{Challenge, ChallengeSolver};
use burrow_store::Store;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// The path prefix of HTTP-01 answers.
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// The ALPN protocol of TLS-ALPN-01 (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// How long an answer is kept at most (a validation takes seconds).
const ANSWER_TTL_MINUTES: i64 = 15;

fn key(c: &Challenge) -> Option<String> {
    match c {
        Challenge::Http01 { token, .. } => Some(format!("http-01:{token}")),
        Challenge::TlsAlpn01 { domain, .. } => Some(format!("tls-alpn-01:{domain}")),
        Challenge::Dns01 { .. } => None,
    }
}

#[derive(Clone)]
pub struct Challenges {
    store: Arc<dyn Store>,
}

impl Challenges {
    pub fn new(store: Arc<dyn Store>) -> Challenges {
        Challenges { store }
    }

    /// The key authorization for an HTTP-01 `token`, if one is pending.
    pub async fn http01(&self, token: &str) -> Option<String> {
        if token.is_empty()
            || token.len() > 128
            || !token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        let key = format!("http-01:{token}");
        self.store
            .acme_challenge(&key, chrono::Utc::now())
            .await
            .ok()
            .flatten()
    }

    /// The TLS config answering a TLS-ALPN-01 validation of `domain`, if one is pending.
    pub async fn tls_alpn01_config(&self, domain: &str) -> Option<Arc<ServerConfig>> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let key = format!("tls-alpn-01:{domain}");
        let auth = self
            .store
            .acme_challenge(&key, chrono::Utc::now())
            .await
            .ok()
            .flatten()?;
        let (cert, key) = burrow_acme::tls_alpn01_certificate(&domain, &auth).ok()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signing = provider.key_provider.load_private_key(key).ok()?;
        let certified = Arc::new(CertifiedKey::new(vec![cert], signing));
        let mut cfg = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .ok()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(One(certified)));
        cfg.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        Some(Arc::new(cfg))
    }
}

#[derive(Debug)]
struct One(Arc<CertifiedKey>);

impl ResolvesServerCert for One {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// Whether a ClientHello asks for TLS-ALPN-01.
pub fn wants_acme_tls(hello: &ClientHello<'_>) -> bool {
    hello
        .alpn()
        .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN))
}

/// Presents HTTP-01 and TLS-ALPN-01 answers through the store.
pub struct StoreSolver(pub Arc<dyn Store>);

#[async_trait]
impl ChallengeSolver for StoreSolver {
    async fn present(&self, c: &Challenge) -> Result<(), String> {
        let Some(k) = key(c) else {
            return Err("DNS-01 needs acme_dns_update".into());
        };
        let value = match c {
            Challenge::Http01 {
                key_authorization, ..
            }
            | Challenge::TlsAlpn01 {
                key_authorization, ..
            } => key_authorization,
            Challenge::Dns01 { .. } => return Err("DNS-01 needs acme_dns_update".into()),
        };
        let expires = chrono::Utc::now() + chrono::Duration::minutes(ANSWER_TTL_MINUTES);
        self.0
            .put_acme_challenge(&k, value, expires)
            .await
            .map_err(|e| format!("storing the challenge answer: {e}"))
    }

    async fn cleanup(&self, c: &Challenge) {
        if let Some(k) = key(c) {
            if let Err(e) = self.0.delete_acme_challenge(&k).await {
                tracing::warn!(error = %e, "removing a challenge answer failed (it expires anyway)");
            }
        }
    }
}
