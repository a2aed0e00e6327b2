//! The public listener's certificate: a wildcard `*.<domain>` chain and key from PEM files,
//! reloaded when the files change (a renewal by certbot or cert-manager needs no restart).
//! A reload that fails to parse keeps serving the previous certificate and logs why, so a
//! half-written file never takes the edge down.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM certificate found")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no PEM private key found")]
    NoKey { path: PathBuf },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// The PEM files of the public certificate and the key in use; serves as rustls' resolver.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    /// Modification times and sizes of both files when they were read.
    stamp: Stamp,
}

type Stamp = [(Option<SystemTime>, u64); 2];

impl CertStore {
    /// Loads both files now; an error here is a startup error.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<CertStore>, CertError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stamp = stamp(cert_path, key_path);
        let key = read_pair(cert_path, key_path, &provider)?;
        Ok(Arc::new(CertStore {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
            current: RwLock::new(Loaded { key, stamp }),
        }))
    }

    /// A rustls server config using this store, offering HTTP/2 and HTTP/1.1 by ALPN.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, rustls::Error> {
        let mut cfg = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// Re-reads the files if their modification time or size changed. Returns whether a new
    /// certificate is now served.
    pub fn reload_if_changed(&self) -> Result<bool, CertError> {
        let now = stamp(&self.cert_path, &self.key_path);
        let unchanged = self.current.read().map(|c| c.stamp == now).unwrap_or(false);
        if unchanged {
            return Ok(false);
        }
        let key = read_pair(&self.cert_path, &self.key_path, &self.provider)?;
        if let Ok(mut cur) = self.current.write() {
            *cur = Loaded { key, stamp: now };
        }
        Ok(true)
    }

    /// Checks the files every `every` until dropped (spawn it).
    pub async fn watch(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_error: Option<String> = None;
        loop {
            tick.tick().await;
            match self.reload_if_changed() {
                Ok(true) => {
                    last_error = None;
                    tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
                }
                Ok(false) => {}
                Err(e) => {
                    // Said once per distinct problem, not every tick.
                    let msg = e.to_string();
                    if last_error.as_deref() != Some(msg.as_str()) {
                        tracing::error!(error = %msg, "TLS certificate reload failed; still serving the previous one");
                        last_error = Some(msg);
                    }
                }
            }
        }
    }

    /// The certificate served now.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.key.clone())
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // One wildcard certificate covers the API host and every tunnel host.
        self.current()
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |p: &Path| match std::fs::metadata(p) {
        Ok(m) => (m.modified().ok(), m.len()),
        Err(_) => (None, 0),
    };
    [one(cert), one(key)]
}

fn read_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, CertError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| CertError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    let chain: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::Invalid {
            path: cert_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(CertError::NoCertificate {
            path: cert_path.to_path_buf(),
        });
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| CertError::Invalid {
            path: key_path.to_path_buf(),
            reason: e.to_string(),
        })?
        .ok_or_else(|| CertError::NoKey {
            path: key_path.to_path_buf(),
        })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| CertError::Invalid {
            path: key_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    // A key that does not match the certificate would fail every handshake: refuse it here.
    certified.keys_match().map_err(|e| CertError::Invalid {
        path: key_path.to_path_buf(),
        reason: format!("key does not match the certificate: {e}"),
    })?;
    Ok(Arc::new(certified))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, names: &[&str]) -> (PathBuf, PathBuf) {
        let ck = rcgen::generate_simple_self_signed(
            names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .expect("cert");
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, ck.cert.pem()).expect("write cert");
        std::fs::write(&k, ck.key_pair.serialize_pem()).expect("write key");
        (c, k)
    }

    fn served(store: &CertStore) -> Vec<u8> {
        store.current().expect("a key").cert[0].to_vec()
    }

    #[test]
    fn reloads_on_change_and_keeps_the_old_one_on_a_bad_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, k) = write_pair(dir.path(), &["*.fleet.test"]);
        let store = CertStore::load(&c, &k).expect("load");
        let first = served(&store);
        assert!(!store.reload_if_changed().expect("no change"));

        write_pair(dir.path(), &["*.fleet.test", "fleet.test"]);
        // Same-second writes may keep the mtime; the size differs for the longer SAN list.
        assert!(store.reload_if_changed().expect("reloaded"));
        let second = served(&store);
        assert_ne!(first, second);

        std::fs::write(&c, "not a pem").expect("write");
        assert!(store.reload_if_changed().is_err());
        assert_eq!(
            served(&store),
            second,
            "a bad file keeps the previous certificate"
        );
    }

    #[test]
    fn refuses_missing_files_and_mismatched_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = CertStore::load(&dir.path().join("c"), &dir.path().join("k"));
        assert!(matches!(missing, Err(CertError::Read { .. })));
        let (c, _) = write_pair(dir.path(), &["a.test"]);
        let other = rcgen::KeyPair::generate().expect("key");
        let k2 = dir.path().join("other.pem");
        std::fs::write(&k2, other.serialize_pem()).expect("write");
        let err = CertStore::load(&c, &k2).expect_err("mismatch");
        assert!(err.to_string().contains("does not match"), "{err}");
    }
}
