//! One step of a custom domain's life, run when it is due: prove ownership through DNS, then
//! obtain or renew its certificate, and record the outcome with a reason and the next check.
//!
//! - Never verified: `pending_verification` while records are missing, `failed` when they are
//!   wrong; re-checked with backoff (capped at five minutes, or at once by `.../check`).
//! - Verified: served at once; `issuing` while the CA validates; `active` with a certificate.
//!   An issuance that fails is `failed` with the CA's reason and retried with backoff.
//! - Re-checked every `domain_check_interval_secs`; ownership is lost (and the domain no longer
//!   served) only after three failed re-checks in a row, so a DNS hiccup does not take it down.

use std::sync::Arc;

use burrow_acme::{ChallengeKind, DnsChecker, Ownership};
use burrow_store::{domain_status, CustomDomain, DomainState, Store, Timestamp};
use chrono::Duration;

use super::challenges::StoreSolver;
use super::issuer::{renew_at, Issuer};

/// Failed re-checks in a row after which a served domain is no longer served.
const LOST_AFTER: i64 = 3;

pub struct DomainSteps {
    pub store: Arc<dyn Store>,
    /// `Err`: why there is no resolver (each check says so).
    pub dns: Result<DnsChecker, String>,
    /// `None`: this server has no TLS listener, so no certificate is needed.
    pub issuer: Option<Arc<Issuer>>,
    pub challenge: ChallengeKind,
    pub base_domain: String,
    pub recheck: Duration,
    pub retry: Duration,
}

impl DomainSteps {
    fn backoff(&self, failures: i64, cap: Duration) -> Duration {
        let exp = failures.clamp(1, 20) - 1;
        let wait = self.retry * 2i32.saturating_pow(exp as u32);
        std::cmp::min(wait, cap)
    }

    /// Runs the step of domain `d` (claimed by this node) and records the outcome.
    pub async fn run(&self, d: CustomDomain) -> anyhow::Result<CustomDomain> {
        let now = chrono::Utc::now();
        let Some(tunnel) = self.store.reverse_tunnel_by_id(d.reverse_tunnel_id).await? else {
            return Ok(d);
        };
        let targets = vec![tunnel.public_url.clone(), self.base_domain.clone()];
        let ownership = match &self.dns {
            Ok(dns) => {
                dns.check(&d.hostname, &d.verification_value, &targets)
                    .await
            }
            Err(why) => Ownership::Pending(why.clone()),
        };
        let state = match ownership {
            Ownership::Verified => return self.verified(d, now).await,
            Ownership::Pending(why) | Ownership::Failed(why) if d.verified_at.is_some() => {
                self.recheck_failed(&d, now, why)
            }
            Ownership::Pending(why) => {
                let failures = d.failures + 1;
                DomainState {
                    status: domain_status::PENDING_VERIFICATION.into(),
                    status_reason: Some(why),
                    verified_at: None,
                    checked_at: Some(now),
                    next_check_at: now + self.backoff(failures, Duration::minutes(5)),
                    failures,
                }
            }
            Ownership::Failed(why) => {
                let failures = d.failures + 1;
                DomainState {
                    status: domain_status::FAILED.into(),
                    status_reason: Some(why),
                    verified_at: None,
                    checked_at: Some(now),
                    next_check_at: now + self.backoff(failures, Duration::minutes(5)),
                    failures,
                }
            }
        };
        Ok(self.store.update_custom_domain_state(d.id, &state).await?)
    }

    fn recheck_failed(&self, d: &CustomDomain, now: Timestamp, why: String) -> DomainState {
        let failures = d.failures + 1;
        if failures >= LOST_AFTER {
            return DomainState {
                status: domain_status::FAILED.into(),
                status_reason: Some(format!("ownership no longer proven, not served: {why}")),
                verified_at: None,
                checked_at: Some(now),
                next_check_at: now + self.backoff(failures, Duration::minutes(5)),
                failures,
            };
        }
        DomainState {
            status: d.status.clone(),
            status_reason: Some(format!(
                "re-check {failures} of {LOST_AFTER} failed, still served: {why}"
            )),
            verified_at: d.verified_at,
            checked_at: Some(now),
            next_check_at: now + self.backoff(failures, Duration::minutes(5)),
            failures,
        }
    }

    async fn verified(&self, d: CustomDomain, now: Timestamp) -> anyhow::Result<CustomDomain> {
        let recheck_at = now + self.recheck;
        let Some(issuer) = &self.issuer else {
            let state = DomainState {
                status: domain_status::VERIFIED.into(),
                status_reason: Some(
                    "served over plain HTTP: this server has no TLS listener (tls_cert or \
                     acme_base_domain), so no certificate is obtained"
                        .into(),
                ),
                verified_at: Some(now),
                checked_at: Some(now),
                next_check_at: recheck_at,
                failures: 0,
            };
            return Ok(self.store.update_custom_domain_state(d.id, &state).await?);
        };
        let current = self.store.certificate(&d.hostname).await?;
        if let Some(c) = &current {
            let renew = renew_at(c.not_before, c.not_after);
            if now < renew {
                let state = DomainState {
                    status: domain_status::ACTIVE.into(),
                    status_reason: None,
                    verified_at: Some(now),
                    checked_at: Some(now),
                    next_check_at: std::cmp::min(recheck_at, renew),
                    failures: 0,
                };
                return Ok(self.store.update_custom_domain_state(d.id, &state).await?);
            }
        }
        // Served (ownership proven) while the CA validates: its challenge reaches us by name.
        let issuing = DomainState {
            status: domain_status::ISSUING.into(),
            status_reason: Some(format!(
                "obtaining a certificate ({}) from {}",
                self.challenge,
                issuer.directory_url()
            )),
            verified_at: Some(now),
            checked_at: Some(now),
            next_check_at: now + Duration::minutes(10),
            failures: d.failures,
        };
        self.store
            .update_custom_domain_state(d.id, &issuing)
            .await?;
        let solver = StoreSolver(self.store.clone());
        let names = vec![d.hostname.clone()];
        let outcome = issuer
            .obtain(&d.hostname, &names, self.challenge, &solver)
            .await;
        let done = chrono::Utc::now();
        if self.store.custom_domain_by_id(d.id).await?.is_none() {
            // Removed while the CA validated: its new certificate must not be served.
            self.store.delete_certificate(&d.hostname).await?;
            return Ok(d);
        }
        let state = match outcome {
            Ok(cert) => {
                tracing::info!(hostname = %d.hostname, not_after = %cert.not_after, "custom domain certificate obtained");
                DomainState {
                    status: domain_status::ACTIVE.into(),
                    status_reason: None,
                    verified_at: Some(now),
                    checked_at: Some(done),
                    next_check_at: std::cmp::min(
                        done + self.recheck,
                        renew_at(cert.not_before, cert.not_after),
                    ),
                    failures: 0,
                }
            }
            Err(why) => {
                let failures = d.failures + 1;
                let next = done + self.backoff(failures, Duration::hours(1));
                tracing::warn!(hostname = %d.hostname, error = %why, "custom domain certificate failed");
                let still_valid = current.as_ref().is_some_and(|c| c.not_after > done);
                DomainState {
                    status: if still_valid {
                        domain_status::ACTIVE.into()
                    } else {
                        domain_status::FAILED.into()
                    },
                    status_reason: Some(if still_valid {
                        format!("renewal failed, the current certificate is still served: {why}")
                    } else {
                        format!("certificate: {why}")
                    }),
                    verified_at: Some(now),
                    checked_at: Some(done),
                    next_check_at: next,
                    failures,
                }
            }
        };
        Ok(self.store.update_custom_domain_state(d.id, &state).await?)
    }
}
