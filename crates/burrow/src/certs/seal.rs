//! Sealing what the database keeps for ACME: certificates' private keys and the ACME account
//! key. The sealing key is derived from the server's token key (the cluster's, on PostgreSQL),
//! so every node opens what any node sealed, and a copy of the database alone opens nothing.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::cluster::cluster_key::ClusterKey;

const CERT_KEY_LABEL: &[u8] = b"burrow certificate key v1";
const ACCOUNT_LABEL: &[u8] = b"burrow acme account v1";

pub struct Sealer(ClusterKey);

impl Sealer {
    pub fn from_token_key(token_key: &[u8]) -> anyhow::Result<Sealer> {
        let mut mac = Hmac::<Sha256>::new_from_slice(token_key)
            .map_err(|_| anyhow::anyhow!("the token key has an invalid length"))?;
        mac.update(b"burrow acme sealing key v1");
        let bytes: [u8; 32] = mac.finalize().into_bytes().into();
        Ok(Sealer(ClusterKey::from_bytes(bytes)))
    }

    pub fn seal_cert_key(&self, pem: &str) -> String {
        self.0.seal(CERT_KEY_LABEL, pem.as_bytes())
    }

    pub fn open_cert_key(&self, sealed: &str) -> anyhow::Result<String> {
        let plain = self.0.open(CERT_KEY_LABEL, sealed)?;
        Ok(String::from_utf8(plain)?)
    }

    pub fn seal_account(&self, credentials: &str) -> String {
        self.0.seal(ACCOUNT_LABEL, credentials.as_bytes())
    }

    pub fn open_account(&self, sealed: &str) -> anyhow::Result<String> {
        let plain = self.0.open(ACCOUNT_LABEL, sealed)?;
        Ok(String::from_utf8(plain)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_per_purpose_and_key() {
        let s = Sealer::from_token_key(&[7u8; 32]).expect("sealer");
        let sealed = s.seal_cert_key("-----BEGIN PRIVATE KEY-----");
        assert!(!sealed.contains("PRIVATE"));
        assert_eq!(
            s.open_cert_key(&sealed).expect("opens"),
            "-----BEGIN PRIVATE KEY-----"
        );
        assert!(
            s.open_account(&sealed).is_err(),
            "labels keep purposes apart"
        );
        let other = Sealer::from_token_key(&[8u8; 32]).expect("sealer");
        assert!(other.open_cert_key(&sealed).is_err());
    }
}
