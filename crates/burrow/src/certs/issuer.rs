//! One ACME account per installation, kept sealed in `settings` (every node uses the same),
//! and the certificates it obtains, stored sealed under the name they serve.

use std::sync::Arc;

use burrow_acme::{AcmeClient, AcmeSettings, ChallengeKind, ChallengeSolver, Issued};
use burrow_store::{Store, StoredCertificate, Timestamp};
use tokio::sync::Mutex;

use super::seal::Sealer;

const ACCOUNT_SETTING: &str = "acme.account.v1";

pub struct Issuer {
    settings: AcmeSettings,
    store: Arc<dyn Store>,
    sealer: Arc<Sealer>,
    client: Mutex<Option<Arc<AcmeClient>>>,
}

impl Issuer {
    pub fn new(settings: AcmeSettings, store: Arc<dyn Store>, sealer: Arc<Sealer>) -> Issuer {
        Issuer {
            settings,
            store,
            sealer,
            client: Mutex::new(None),
        }
    }

    pub fn directory_url(&self) -> &str {
        &self.settings.directory_url
    }

    /// The account, loaded or registered on first use (a CA that is down is retried at the
    /// next use, not at startup).
    async fn client(&self) -> Result<Arc<AcmeClient>, String> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let stored = match self.store.get_setting(ACCOUNT_SETTING).await {
            Ok(s) => s,
            Err(e) => return Err(format!("reading the ACME account: {e}")),
        };
        let credentials = match stored.as_deref().map(|s| self.sealer.open_account(s)) {
            Some(Ok(c)) => Some(c),
            Some(Err(_)) => {
                tracing::warn!("the stored ACME account does not open with this server's key; registering a new one");
                None
            }
            None => None,
        };
        let (client, fresh) = AcmeClient::connect(&self.settings, credentials.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        if let Some(fresh) = fresh {
            let sealed = self.sealer.seal_account(&fresh);
            if let Err(e) = self.store.put_setting(ACCOUNT_SETTING, &sealed).await {
                tracing::warn!(error = %e, "storing the ACME account failed; it is registered again next time");
            }
            tracing::info!(directory = %self.settings.directory_url, "ACME account registered");
        }
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Obtains a certificate for `names` and stores it under `store_as`.
    pub async fn obtain(
        &self,
        store_as: &str,
        names: &[String],
        kind: ChallengeKind,
        solver: &dyn ChallengeSolver,
    ) -> Result<StoredCertificate, String> {
        let client = self.client().await?;
        let issued: Issued = match client.issue(names, kind, solver).await {
            Ok(i) => i,
            Err(e) => {
                // A later call registers or loads the account again (it may have been the cause).
                *self.client.lock().await = None;
                return Err(e.to_string());
            }
        };
        let cert = StoredCertificate {
            name: store_as.to_string(),
            chain_pem: issued.chain_pem,
            key_sealed: self.sealer.seal_cert_key(&issued.key_pem),
            not_before: issued.not_before,
            not_after: issued.not_after,
            updated_at: chrono::Utc::now(),
        };
        self.store
            .put_certificate(&cert)
            .await
            .map_err(|e| format!("storing the certificate: {e}"))?;
        Ok(cert)
    }
}

/// When a certificate is renewed: 30 days before it expires, or when a third of its life is
/// left if it is shorter-lived than 90 days (as Let's Encrypt advises).
pub fn renew_at(not_before: Timestamp, not_after: Timestamp) -> Timestamp {
    let life = not_after - not_before;
    let ahead = std::cmp::min(chrono::Duration::days(30), life / 3);
    not_after - ahead
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renews_thirty_days_or_a_third_ahead() {
        let t0 = chrono::Utc::now();
        assert_eq!(
            renew_at(t0, t0 + chrono::Duration::days(90)),
            t0 + chrono::Duration::days(60)
        );
        assert_eq!(
            renew_at(t0, t0 + chrono::Duration::days(365)),
            t0 + chrono::Duration::days(335)
        );
        assert_eq!(
            renew_at(t0, t0 + chrono::Duration::seconds(30)),
            t0 + chrono::Duration::seconds(20)
        );
    }
}
