//! The certificates the TLS listener serves, by SNI: a custom domain's own (obtained by ACME),
//! else the base domain's wildcard — obtained by ACME (`acme_base_domain`) or from
//! `tls_cert`/`tls_key`. Every node loads them from the database, so each node serves what any
//! node obtained; a certificate that fails to load keeps the previous one and says why.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use burrow_edge::CertStore;
use burrow_store::{Store, Timestamp};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use super::seal::Sealer;

#[derive(Debug)]
pub struct ServedCerts {
    base_domain: String,
    provider: Arc<CryptoProvider>,
    files: Option<Arc<CertStore>>,
    /// Name (a hostname, or `*.<base_domain>`) → its key and the `updated_at` it was read at.
    loaded: RwLock<HashMap<String, (Timestamp, Arc<CertifiedKey>)>>,
}

impl ServedCerts {
    pub fn new(base_domain: &str, files: Option<Arc<CertStore>>) -> Arc<ServedCerts> {
        Arc::new(ServedCerts {
            base_domain: base_domain.trim_end_matches('.').to_ascii_lowercase(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            files,
            loaded: RwLock::default(),
        })
    }

    /// The listener's config: this resolver, HTTP/2 and HTTP/1.1 by ALPN.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, rustls::Error> {
        let mut cfg = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// Reads what changed in the store since the last call: new and renewed certificates
    /// are loaded, removed ones dropped. Answers how many names changed.
    pub async fn refresh(&self, store: &dyn Store, sealer: &Sealer) -> anyhow::Result<usize> {
        let stamps = store.certificate_stamps().await?;
        let known: HashMap<String, Timestamp> = self
            .loaded
            .read()
            .map(|m| m.iter().map(|(k, (t, _))| (k.clone(), *t)).collect())
            .unwrap_or_default();
        let mut changed = 0;
        for (name, stamp) in &stamps {
            if known.get(name) == Some(stamp) {
                continue;
            }
            let Some(cert) = store.certificate(name).await? else {
                continue;
            };
            match self.certified_key(&cert.chain_pem, &cert.key_sealed, sealer) {
                Ok(key) => {
                    if let Ok(mut m) = self.loaded.write() {
                        m.insert(name.clone(), (cert.updated_at, key));
                    }
                    changed += 1;
                    tracing::info!(name = %name, not_after = %cert.not_after, "serving certificate");
                }
                Err(e) => {
                    tracing::error!(name = %name, error = %e, "certificate does not load; keeping the previous one")
                }
            }
        }
        if let Ok(mut m) = self.loaded.write() {
            let before = m.len();
            m.retain(|name, _| stamps.iter().any(|(n, _)| n == name));
            changed += before - m.len();
        }
        Ok(changed)
    }

    fn certified_key(
        &self,
        chain_pem: &str,
        key_sealed: &str,
        sealer: &Sealer,
    ) -> anyhow::Result<Arc<CertifiedKey>> {
        let chain: Vec<CertificateDer<'static>> =
            rustls_pemfile::certs(&mut chain_pem.as_bytes()).collect::<Result<_, _>>()?;
        anyhow::ensure!(!chain.is_empty(), "no certificate in the chain");
        let key_pem = sealer.open_cert_key(key_sealed)?;
        let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())?
            .ok_or_else(|| anyhow::anyhow!("no private key"))?;
        let signing = self.provider.key_provider.load_private_key(key)?;
        Ok(Arc::new(CertifiedKey::new(chain, signing)))
    }

    fn lookup(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        self.loaded
            .read()
            .ok()
            .and_then(|m| m.get(name).map(|(_, k)| k.clone()))
    }

    /// The ACME wildcard covers the base domain and the names one label below it.
    fn wildcard_for(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let covered = name == self.base_domain
            || name
                .strip_suffix(&self.base_domain)
                .and_then(|p| p.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.'));
        if !covered {
            return None;
        }
        self.lookup(&format!("*.{}", self.base_domain))
    }

    /// Whether a certificate of this exact name is served (tests, status).
    pub fn serves(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }
}

impl ResolvesServerCert for ServedCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello
            .server_name()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
        if let Some(name) = &name {
            if let Some(key) = self.lookup(name).or_else(|| self.wildcard_for(name)) {
                return Some(key);
            }
        }
        match &self.files {
            Some(files) => files.current(),
            // No SNI (or an unknown name) without certificate files: the base domain's.
            None => self.wildcard_for(&self.base_domain),
        }
    }
}
