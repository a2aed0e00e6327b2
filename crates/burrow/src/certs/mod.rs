//! Certificates burrow obtains itself by ACME, and custom domains (docs/custom-domains.md):
//! ownership proven through DNS, certificates by HTTP-01 or TLS-ALPN-01 for custom hostnames
//! and by DNS-01 (RFC 2136) for the base domain's wildcard, all stored (sealed) in the
//! database so that every node serves them.

mod challenges;
mod domains;
mod issuer;
mod seal;
mod served;
mod settings;
mod wildcard;
mod worker;

pub use challenges::{wants_acme_tls, Challenges, HTTP01_PREFIX};
pub use domains::DomainSteps;
pub use issuer::{renew_at, Issuer};
pub use seal::Sealer;
pub use served::ServedCerts;
pub use settings::{acme_settings, challenge_kind, describe_config, tsig_key, validate_config};
pub use wildcard::BaseDomainCert;
pub use worker::CertWorker;

use std::sync::Arc;

/// The worker of this node, from the configuration: custom domains always (verified and
/// routed); certificates when the server terminates TLS; the base domain's with
/// `acme_base_domain`.
pub fn worker_for(
    config: &crate::config::Config,
    store: Arc<dyn burrow_store::Store>,
    edge: Arc<burrow_edge::Edge>,
    served: Option<Arc<ServedCerts>>,
    sealer: Arc<Sealer>,
    changed: Arc<tokio::sync::Notify>,
) -> anyhow::Result<CertWorker> {
    use anyhow::Context;
    // A system without a readable resolver configuration still starts: its domains wait,
    // saying why, until `dns_resolver` is set.
    let dns = burrow_acme::DnsChecker::new(config.dns_resolver).map_err(|e| {
        let why = format!("no DNS resolver ({e}): set dns_resolver");
        tracing::warn!("custom domains: {why}");
        why
    });
    let issuer = served.is_some().then(|| {
        Arc::new(Issuer::new(
            acme_settings(config),
            store.clone(),
            sealer.clone(),
        ))
    });
    let retry = std::time::Duration::from_secs(config.acme_retry_secs);
    let base = match (&issuer, config.acme_base_domain, config.acme_dns_update) {
        (Some(issuer), true, Some(server)) => {
            let zone = config
                .acme_dns_update_zone
                .clone()
                .unwrap_or_else(|| config.base_domain.clone());
            let key = tsig_key(config).map_err(anyhow::Error::msg)?;
            Some(Arc::new(BaseDomainCert {
                issuer: issuer.clone(),
                update: burrow_acme::DnsUpdate::new(server, &zone, key)
                    .context("acme_dns_update")?,
                base_domain: config
                    .base_domain
                    .trim_end_matches('.')
                    .to_ascii_lowercase(),
                retry,
                backoff: tokio::sync::Mutex::new((std::time::Instant::now(), 0)),
            }))
        }
        _ => None,
    };
    let steps = Arc::new(DomainSteps {
        store: store.clone(),
        dns,
        issuer,
        challenge: challenge_kind(config),
        base_domain: config
            .base_domain
            .trim_end_matches('.')
            .to_ascii_lowercase(),
        recheck: chrono::Duration::seconds(config.domain_check_interval_secs as i64),
        retry: chrono::Duration::seconds(config.acme_retry_secs as i64),
    });
    Ok(CertWorker {
        store,
        steps,
        base,
        served,
        sealer,
        edge,
        changed,
        tick: std::time::Duration::from_secs(2),
    })
}
