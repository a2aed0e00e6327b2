//! The SSO part of the configuration: checked at load, summarised (secret masked) for
//! `--check-config`, and turned into what the routes need.

use serde::{Deserialize, Deserializer};

use crate::config::Config;

/// The button's text when `oidc_button_label` is unset.
pub const DEFAULT_LABEL: &str = "Sign in with SSO";

/// How users sign in on this server.
#[derive(Debug, Clone)]
pub struct SsoSettings {
    /// Email and password (`password_login`).
    pub password_login: bool,
    /// OpenID Connect, when `oidc_issuer` is set.
    pub oidc: Option<OidcSettings>,
}

#[derive(Clone)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Lower-case email domains; empty: any.
    pub allowed_domains: Vec<String>,
    pub label: String,
    /// `<api origin>/api/v1/auth/oidc/callback`: what the provider must have registered.
    pub redirect_uri: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "***"))
            .field("allowed_domains", &self.allowed_domains)
            .field("label", &self.label)
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

impl OidcSettings {
    /// Whether `email`'s domain may sign in.
    pub fn domain_allowed(&self, email: &str) -> bool {
        if self.allowed_domains.is_empty() {
            return true;
        }
        let Some((_, domain)) = email.rsplit_once('@') else {
            return false;
        };
        let domain = domain.to_ascii_lowercase();
        self.allowed_domains.contains(&domain)
    }
}

impl SsoSettings {
    /// The settings of `config`; `api_origin` is where browsers reach this server.
    pub fn from_config(config: &Config, api_origin: &str) -> Self {
        let oidc = match (&config.oidc_issuer, &config.oidc_client_id) {
            (Some(issuer), Some(client_id)) => Some(OidcSettings {
                // Exactly as configured: discovery compares it with the provider's own, byte for byte.
                issuer: issuer.clone(),
                client_id: client_id.clone(),
                client_secret: config
                    .oidc_client_secret
                    .as_ref()
                    .map(|s| s.expose().to_string()),
                allowed_domains: normalized_domains(&config.oidc_allowed_domains),
                label: config
                    .oidc_button_label
                    .clone()
                    .filter(|l| !l.trim().is_empty())
                    .unwrap_or_else(|| DEFAULT_LABEL.to_string()),
                redirect_uri: format!("{api_origin}/api/v1/auth/oidc/callback"),
            }),
            _ => None,
        };
        SsoSettings {
            password_login: config.password_login,
            oidc,
        }
    }

    /// The SSO button's text, when SSO is on.
    pub fn label(&self) -> Option<&str> {
        self.oidc.as_ref().map(|o| o.label.as_str())
    }
}

fn normalized_domains(domains: &[String]) -> Vec<String> {
    domains
        .iter()
        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect()
}

/// `oidc_allowed_domains`: a list, or one comma-separated string (handy in the environment:
/// `BURROW_OIDC_ALLOWED_DOMAINS=example.com,example.org`).
pub fn deserialize_domains<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => s.split(',').map(str::to_string).collect(),
        OneOrMany::Many(v) => v,
    })
}

/// Checks the SSO keys of `config` (called by `Config::load`).
pub fn validate_config(config: &Config) -> Result<(), String> {
    if let Some(issuer) = &config.oidc_issuer {
        let ok = url_parts(issuer).is_some();
        if !ok {
            return Err(format!(
                "oidc_issuer {issuer:?} must be an http(s) URL, e.g. https://login.example.com/realm"
            ));
        }
        if config
            .oidc_client_id
            .as_deref()
            .is_none_or(|id| id.trim().is_empty())
        {
            return Err(
                "oidc_client_id is required with oidc_issuer (env BURROW_OIDC_CLIENT_ID)".into(),
            );
        }
    } else if config.oidc_client_id.is_some() || config.oidc_client_secret.is_some() {
        return Err("oidc_client_id and oidc_client_secret need oidc_issuer".into());
    }
    for d in normalized_domains(&config.oidc_allowed_domains) {
        let valid = d
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !valid {
            return Err(format!("oidc_allowed_domains: {d:?} is not a domain name"));
        }
    }
    if !config.password_login && config.oidc_issuer.is_none() {
        return Err(
            "password_login = false needs oidc_issuer: nobody could sign in otherwise".into(),
        );
    }
    Ok(())
}

/// `scheme://authority...` of an http(s) URL with a host and no fragment or query.
fn url_parts(url: &str) -> Option<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split('/').next()?;
    let clean = !host.is_empty()
        && !url.contains(['?', '#', ' '])
        && !host.contains('@')
        && url.bytes().all(|b| b > 0x20 && b != 0x7f);
    clean.then_some(())
}

/// The SSO lines of `Config::describe` (the client secret masked).
pub fn describe_config(config: &Config) -> String {
    let unset = || "(unset)".to_string();
    format!(
        "password_login = {}\noidc_issuer = {}\noidc_client_id = {}\noidc_client_secret = {}\n\
         oidc_allowed_domains = {:?}\noidc_button_label = {}\n",
        config.password_login,
        config.oidc_issuer.clone().unwrap_or_else(unset),
        config.oidc_client_id.clone().unwrap_or_else(unset),
        if config.oidc_client_secret.is_some() {
            "***"
        } else {
            "(unset)"
        },
        config.oidc_allowed_domains,
        config
            .oidc_button_label
            .clone()
            .unwrap_or_else(|| format!("(default: {DEFAULT_LABEL})")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(domains: &[&str]) -> OidcSettings {
        OidcSettings {
            issuer: "https://id.example".into(),
            client_id: "burrow".into(),
            client_secret: Some("s3cret".into()),
            allowed_domains: normalized_domains(
                &domains.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            ),
            label: DEFAULT_LABEL.into(),
            redirect_uri: "https://fleet.example/api/v1/auth/oidc/callback".into(),
        }
    }

    #[test]
    fn domains_are_matched_exactly_and_case_blind() {
        let s = settings(&[" @Example.com", "corp.example"]);
        assert!(s.domain_allowed("a@example.com"));
        assert!(s.domain_allowed("a@EXAMPLE.COM"));
        assert!(s.domain_allowed("a@corp.example"));
        assert!(!s.domain_allowed("a@evil-example.com"));
        assert!(!s.domain_allowed("a@sub.example.com"));
        assert!(!s.domain_allowed("no-at-sign"));
        assert!(settings(&[]).domain_allowed("anyone@anywhere.test"));
    }

    #[test]
    fn debug_masks_the_secret() {
        let text = format!("{:?}", settings(&[]));
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("***"), "{text}");
    }

    fn load(toml: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("burrow.toml");
        std::fs::write(&path, toml).expect("write");
        Config::load(Some(&path), crate::config::FlagOverrides::default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn config_keys_load_validate_and_mask() {
        let c = load(
            "oidc_issuer = \"https://id.example/realms/x\"\noidc_client_id = \"burrow\"\n\
             oidc_client_secret = \"s3cret-value\"\noidc_allowed_domains = \"Example.com, corp.example\"\n",
        )
        .expect("valid");
        assert_eq!(c.oidc_allowed_domains, ["Example.com", " corp.example"]);
        assert!(c.password_login, "default");
        let s = SsoSettings::from_config(&c, "https://fleet.example");
        let oidc = s.oidc.expect("on");
        assert_eq!(oidc.allowed_domains, ["example.com", "corp.example"]);
        assert_eq!(oidc.label, DEFAULT_LABEL);
        assert_eq!(
            oidc.redirect_uri,
            "https://fleet.example/api/v1/auth/oidc/callback"
        );
        let shown = c.describe();
        assert!(shown.contains("oidc_client_secret = ***"), "{shown}");
        assert!(!shown.contains("s3cret-value"), "{shown}");
        assert!(!format!("{c:?}").contains("s3cret-value"));

        let list = load(
            "oidc_issuer = \"http://127.0.0.1:5556\"\noidc_client_id = \"b\"\n\
             oidc_allowed_domains = [\"a.example\"]\npassword_login = false\n",
        )
        .expect("valid");
        assert_eq!(list.oidc_allowed_domains, ["a.example"]);
        assert!(!list.password_login);

        for (toml, why) in [
            (
                "oidc_issuer = \"id.example\"\noidc_client_id = \"b\"\n",
                "http(s) URL",
            ),
            (
                "oidc_issuer = \"https://id.example\"\n",
                "oidc_client_id is required",
            ),
            ("oidc_client_id = \"b\"\n", "need oidc_issuer"),
            ("password_login = false\n", "nobody could sign in"),
            (
                "oidc_issuer = \"https://id.example\"\noidc_client_id = \"b\"\n\
                 oidc_allowed_domains = [\"not a domain\"]\n",
                "not a domain name",
            ),
        ] {
            let err = load(toml).expect_err(why);
            assert!(err.contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn issuer_urls() {
        assert!(url_parts("https://id.example/realms/x").is_some());
        assert!(url_parts("http://127.0.0.1:5556").is_some());
        for bad in [
            "id.example",
            "ftp://id.example",
            "https://",
            "https://id.example/?x=1",
            "https://u@id.example",
        ] {
            assert!(url_parts(bad).is_none(), "{bad}");
        }
    }
}
