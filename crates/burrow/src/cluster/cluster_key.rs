//! The cluster key: 32 random bytes, base64 in a file of each node (`cluster_key_file`), that
//! seals the shared keys in the database (ChaCha20-Poly1305). The database never holds it, so
//! a copy of the database alone reveals no key.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

/// How to make the file, for error messages.
pub const HOW_TO_MAKE: &str = "make one with `umask 077; openssl rand -base64 32 > \
/etc/burrow/cluster.key`, give every node the same file, and set cluster_key_file (env \
BURROW_CLUSTER_KEY_FILE) to its path";

/// Sealed values start with this (room for another format later).
const FORMAT: &str = "v1.";
const NONCE_LEN: usize = 12;

pub struct ClusterKey(Key);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(***)")
    }
}

/// The sealed value did not open: another key sealed it, or it was altered.
#[derive(Debug, thiserror::Error)]
#[error("the sealed value does not open with this cluster key")]
pub struct Unseal;

impl ClusterKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ClusterKey(Key::from(bytes))
    }

    /// Reads `path`: 32 bytes in base64 (surrounding whitespace ignored).
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading cluster_key_file {} ({HOW_TO_MAKE})",
                path.display()
            )
        })?;
        let bytes = STANDARD.decode(text.trim()).map_err(|_| {
            anyhow::anyhow!(
                "cluster_key_file {} is not base64 ({HOW_TO_MAKE})",
                path.display()
            )
        })?;
        let Ok(bytes) = <[u8; 32]>::try_from(bytes.as_slice()) else {
            bail!(
                "cluster_key_file {} holds {} bytes, not 32 ({HOW_TO_MAKE})",
                path.display(),
                bytes.len()
            );
        };
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(),
                    "cluster_key_file is readable by others than its owner; chmod 600 it");
            }
        }
        Ok(Self::from_bytes(bytes))
    }

    /// Seals `plain`, bound to `label` (a value sealed for one purpose opens for no other).
    pub fn seal(&self, label: &[u8], plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = ChaCha20Poly1305::new(&self.0)
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: label,
                },
            )
            .expect("ChaCha20-Poly1305 seals any length burrow uses");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{FORMAT}{}", STANDARD.encode(out))
    }

    /// Opens what [`ClusterKey::seal`] made with the same key and label.
    pub fn open(&self, label: &[u8], sealed: &str) -> Result<Vec<u8>, Unseal> {
        let raw = sealed
            .strip_prefix(FORMAT)
            .and_then(|b| STANDARD.decode(b).ok())
            .ok_or(Unseal)?;
        if raw.len() < NONCE_LEN {
            return Err(Unseal);
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        ChaCha20Poly1305::new(&self.0)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: label,
                },
            )
            .map_err(|_| Unseal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_its_key_and_label() {
        let k = ClusterKey::from_bytes([7; 32]);
        let sealed = k.seal(b"a", b"secret");
        assert!(!sealed.contains("secret"));
        assert_eq!(k.open(b"a", &sealed).unwrap(), b"secret");
        assert!(k.open(b"b", &sealed).is_err());
        assert!(ClusterKey::from_bytes([8; 32]).open(b"a", &sealed).is_err());
        assert!(k.open(b"a", "v1.AAAA").is_err());
        assert!(k.open(b"a", "garbage").is_err());
        // Two seals of one value differ (fresh nonce).
        assert_ne!(k.seal(b"a", b"secret"), sealed);
    }

    #[test]
    fn reads_openssl_output_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        std::fs::write(&good, format!("{}\n", STANDARD.encode([1u8; 32]))).unwrap();
        let k = ClusterKey::read(&good).unwrap();
        assert_eq!(format!("{k:?}"), "ClusterKey(***)");
        let short = dir.path().join("short");
        std::fs::write(&short, STANDARD.encode([1u8; 16])).unwrap();
        let e = ClusterKey::read(&short).unwrap_err().to_string();
        assert!(
            e.contains("16 bytes, not 32") && e.contains("openssl rand"),
            "{e}"
        );
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "not base64 !").unwrap();
        assert!(ClusterKey::read(&junk).is_err());
        assert!(ClusterKey::read(&dir.path().join("missing")).is_err());
    }
}
