//! The base domain's own certificate (`acme_base_domain`): `<base_domain>` and
//! `*.<base_domain>` by DNS-01, the TXT records written through an RFC 2136 server with a
//! TSIG key. Renewed like any certificate; one node at a time (`claim_job`), with backoff.

use std::sync::Arc;
use std::time::Instant;

use burrow_acme::{ChallengeKind, DnsUpdate};
use burrow_store::Store;
use tokio::sync::Mutex;

use super::issuer::{renew_at, Issuer};

pub struct BaseDomainCert {
    pub issuer: Arc<Issuer>,
    pub update: DnsUpdate,
    pub base_domain: String,
    pub retry: std::time::Duration,
    /// No attempt before this (backoff), and the failures in a row.
    pub backoff: Mutex<(Instant, u32)>,
}

impl BaseDomainCert {
    pub fn name(&self) -> String {
        format!("*.{}", self.base_domain)
    }

    /// Obtains or renews the certificate when due. Answers whether a new one was stored.
    pub async fn step(&self, store: &dyn Store) -> bool {
        let mut backoff = self.backoff.lock().await;
        if Instant::now() < backoff.0 {
            return false;
        }
        let now = chrono::Utc::now();
        match store.certificate(&self.name()).await {
            Ok(Some(c)) if now < renew_at(c.not_before, c.not_after) => return false,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading the base domain's certificate failed");
                return false;
            }
        }
        let interval =
            chrono::Duration::from_std(self.retry).unwrap_or(chrono::Duration::minutes(1));
        if !store
            .claim_job("acme-base-domain", now, interval)
            .await
            .unwrap_or(false)
        {
            return false;
        }
        let names = vec![self.base_domain.clone(), self.name()];
        match self
            .issuer
            .obtain(&self.name(), &names, ChallengeKind::Dns01, &self.update)
            .await
        {
            Ok(cert) => {
                tracing::info!(name = %cert.name, not_after = %cert.not_after, "base domain certificate obtained");
                *backoff = (Instant::now(), 0);
                true
            }
            Err(why) => {
                let failures = backoff.1.saturating_add(1);
                let wait = std::cmp::min(
                    self.retry * 2u32.saturating_pow(failures.min(20) - 1),
                    std::time::Duration::from_secs(3600),
                );
                tracing::error!(error = %why, retry_in = ?wait, "base domain certificate failed");
                *backoff = (Instant::now() + wait, failures);
                false
            }
        }
    }
}
