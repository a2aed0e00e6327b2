//! The ACME and custom-domain settings of the configuration, checked at load so that a typo
//! fails at start, not at the first certificate.

use burrow_acme::{AcmeSettings, ChallengeKind, TsigKey};

use crate::config::Config;

pub fn validate_config(c: &Config) -> Result<(), String> {
    if !c.acme_directory_url.starts_with("https://") {
        return Err("acme_directory_url must be an https:// URL".into());
    }
    if let Some(e) = &c.acme_email {
        if !e.contains('@') || e.contains(char::is_whitespace) {
            return Err("acme_email must be an email address".into());
        }
    }
    match c.acme_challenge.as_deref() {
        None | Some("tls-alpn-01") => {}
        Some("http-01") if c.http_redirect_listen.is_some() => {}
        Some("http-01") => {
            return Err("acme_challenge = \"http-01\" needs http_redirect_listen (port 80)".into())
        }
        Some(other) => {
            return Err(format!(
                "acme_challenge must be http-01 or tls-alpn-01, not {other:?}"
            ))
        }
    }
    if c.acme_base_domain {
        if c.tls().is_some() {
            return Err(
                "acme_base_domain replaces tls_cert and tls_key: set one or the other".into(),
            );
        }
        if c.acme_dns_update.is_none() || c.acme_dns_update_key_file.is_none() {
            return Err(
                "acme_base_domain needs acme_dns_update (the RFC 2136 server) and \
                 acme_dns_update_key_file (its TSIG key)"
                    .into(),
            );
        }
        tsig_key(c)?;
    }
    if !(10..=7 * 24 * 3600).contains(&c.domain_check_interval_secs) {
        return Err("domain_check_interval_secs must be 10-604800".into());
    }
    if !(1..=3600).contains(&c.acme_retry_secs) {
        return Err("acme_retry_secs must be 1-3600".into());
    }
    Ok(())
}

/// The TSIG key of `acme_dns_update_key_file`.
pub fn tsig_key(c: &Config) -> Result<TsigKey, String> {
    let Some(path) = &c.acme_dns_update_key_file else {
        return Err("acme_dns_update_key_file is not set".into());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("acme_dns_update_key_file {}: {e}", path.display()))?;
    TsigKey::from_bind_file(&text)
        .map_err(|e| format!("acme_dns_update_key_file {}: {e}", path.display()))
}

/// The `--check-config` lines of these settings (the TSIG key file's path, never the key).
pub fn describe_config(c: &Config) -> String {
    let unset = || "(unset)".to_string();
    let path =
        |p: &Option<std::path::PathBuf>| p.as_ref().map_or_else(unset, |p| p.display().to_string());
    format!(
        "dns_resolver = {}\nacme_directory_url = {}\nacme_email = {}\nacme_ca_file = {}\n\
         acme_challenge = {}\nacme_base_domain = {}\nacme_dns_update = {}\n\
         acme_dns_update_zone = {}\nacme_dns_update_key_file = {}\n\
         domain_check_interval_secs = {}\nacme_retry_secs = {}\n",
        c.dns_resolver
            .map_or_else(|| "(the system's)".into(), |a| a.to_string()),
        c.acme_directory_url,
        c.acme_email.clone().unwrap_or_else(unset),
        path(&c.acme_ca_file),
        challenge_kind(c),
        c.acme_base_domain,
        c.acme_dns_update.map_or_else(unset, |a| a.to_string()),
        c.acme_dns_update_zone
            .clone()
            .unwrap_or_else(|| c.base_domain.clone()),
        path(&c.acme_dns_update_key_file),
        c.domain_check_interval_secs,
        c.acme_retry_secs,
    )
}

pub fn acme_settings(c: &Config) -> AcmeSettings {
    AcmeSettings {
        directory_url: c.acme_directory_url.clone(),
        contact_email: c.acme_email.clone(),
        ca_file: c.acme_ca_file.clone(),
    }
}

/// The challenge custom domains are validated with.
pub fn challenge_kind(c: &Config) -> ChallengeKind {
    match c.acme_challenge.as_deref() {
        Some("http-01") => ChallengeKind::Http01,
        Some(_) => ChallengeKind::TlsAlpn01,
        None if c.http_redirect_listen.is_some() => ChallengeKind::Http01,
        None => ChallengeKind::TlsAlpn01,
    }
}
