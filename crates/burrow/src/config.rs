//! burrow's configuration, layered: defaults → file (`--config`, `BURROW_CONFIG`, or
//! `./burrow.toml` when present) → environment (`BURROW_*`, nested keys with `__`) → flags.
//! Secrets are [`Secret`]s: masked in `Debug`, in logs and in `--check-config`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use burrow_device::{DeviceUrl, DeviceUrls};

use crate::secret::{mask_url, Secret};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The one HTTP port: API, web UI, broker data plane and (development) tunnel hosts.
    pub listen: SocketAddr,
    /// Where the SQLite database and the server's keys live.
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://...`; default: SQLite in `data_dir`.
    pub database_url: Option<Secret>,
    /// Tunnels get `<name>.<base_domain>`; `localhost` in development.
    pub base_domain: String,
    /// Where devices reach the config endpoint over mutual TLS.
    pub device_listen: SocketAddr,
    /// What enrolled devices dial for the device listener (config endpoint and broker): one
    /// `https://host[:port]` URL or several, comma-separated, in order of preference. Its
    /// hosts are what the listener's certificate names. Default: `https://<device_listen>`, the
    /// listener's own (loopback) address, which only a device on this machine can use.
    pub device_url: Option<String>,
    /// The first administrator, when no user exists yet (else one is generated and printed).
    pub admin_email: Option<String>,
    pub admin_password: Option<Secret>,
    /// Lifetime of user JWTs.
    pub jwt_ttl_minutes: i64,
    /// Default log filter (`RUST_LOG` overrides it).
    pub log: String,
    /// Region and account id that appear in tunnel ARNs.
    pub region: String,
    pub account_id: String,
    /// Addresses of TLS-terminating proxies allowed to send `X-Device-Certificate`, and whose
    /// `X-Forwarded-For` names the client on the main port (login throttling, the edge).
    pub trusted_proxies: Vec<IpAddr>,
    /// Production: the wildcard certificate (`*.<base_domain>` and `<base_domain>`) and its
    /// key, PEM. With both set, `listen` serves HTTPS (HTTP/2 and HTTP/1.1 by ALPN); the
    /// files are re-read when they change.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// With TLS: a plain-HTTP listener that redirects every request to HTTPS (e.g. `0.0.0.0:80`).
    pub http_redirect_listen: Option<SocketAddr>,
    /// The API/UI origin users' browsers see (`https://fleet.example.com`); default: the
    /// scheme of `listen`, `base_domain`, and `listen`'s port unless it is the default one.
    pub api_origin: Option<String>,
    /// The scheme browsers use (`http` or `https`); default: `https` with `tls_cert`, else
    /// `http`. Set `https` behind a TLS-terminating proxy, so that cookies are `Secure` and
    /// `__Host-` prefixed and the login handoff sends browsers to `https://`.
    #[serde(default)]
    pub public_scheme: Option<String>,
    /// Concurrent connections per client address on `device_listen` (IPv6 by /64); devices
    /// behind one NAT share it, so it is larger than the main port's.
    #[serde(default = "default_device_conns_per_address")]
    pub device_conns_per_address: usize,
    /// Concurrent connections per client address on the main port (IPv6 by /64), open
    /// WebSockets included; users behind one office NAT share it.
    #[serde(default = "default_conns_per_client")]
    pub conns_per_client: usize,
    /// Cluster (PostgreSQL): this node's name, unique among the nodes; default the host name.
    #[serde(default)]
    pub node_name: Option<String>,
    /// Cluster: this node's region, for routing preferences (not the ARN `region`).
    #[serde(default = "default_node_region")]
    pub node_region: String,
    /// What this node does: any of `api`, `edge`, `broker`, `scheduler` (default all).
    #[serde(
        default = "default_roles",
        deserialize_with = "crate::cluster::roles::deserialize"
    )]
    pub roles: Vec<crate::cluster::roles::Role>,
    /// Cluster: where this node listens for the other nodes (mutual TLS with certificates
    /// of the cluster's link CA): public requests and `burrow connect` sources for a device
    /// held by this node arrive here from the node that received them.
    #[serde(default)]
    pub cluster_listen: Option<SocketAddr>,
    /// Cluster: the URL other nodes reach `cluster_listen` at (`https://host:port`, recorded
    /// in `nodes`); default `https://<cluster_listen>` when that is a specific address.
    #[serde(default)]
    pub cluster_url: Option<String>,
    /// Cluster: the file holding the 32-byte key (base64) that seals the shared keys in
    /// the database. Required with PostgreSQL; never stored in the database.
    #[serde(default)]
    pub cluster_key_file: Option<PathBuf>,
    /// The longest lifetime a share link may be given, in minutes (default 7 days).
    #[serde(default = "default_share_link_max_minutes")]
    pub share_link_max_minutes: i64,
    /// Bearer token that `GET /metrics` on the main port requires; without it (and without
    /// `metrics_listen`) the main port does not serve `/metrics`.
    #[serde(default)]
    pub metrics_token: Option<Secret>,
    /// A listener of its own for `/metrics`, `/healthz` and `/readyz` (e.g. an address only
    /// the monitoring network reaches). `metrics_token` is required there too when set.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Days the access log is kept (1-3650; default 7).
    #[serde(default = "default_retention_access_log_days")]
    pub retention_access_log_days: i64,
    /// Days minute rollups are kept (default 30).
    #[serde(default = "default_retention_minute_days")]
    pub retention_minute_days: i64,
    /// Days hourly rollups are kept (default 365).
    #[serde(default = "default_retention_hourly_days")]
    pub retention_hourly_days: i64,
    /// Per-request analytics (rollups for the charts, usage per user × device, the access
    /// log); `false` keeps only `total_requests`, `last_accessed_at` and `/metrics`.
    #[serde(default = "default_analytics")]
    pub analytics: bool,
    /// Where invitation mails go out: `smtp://[user:password@]host:port` (plain),
    /// `...?tls=required` (STARTTLS) or `smtps://...`. Unset: the link is only shown to the
    /// inviter. A secret (it may hold a password).
    #[serde(default)]
    pub smtp_url: Option<Secret>,
    /// The mails' sender; default `burrow <burrow@<base_domain>>`.
    #[serde(default)]
    pub smtp_from: Option<String>,
    /// Single sign-on: the OpenID Connect provider's issuer URL (discovery at
    /// `<issuer>/.well-known/openid-configuration`); unset = no SSO. See docs/sso.md.
    #[serde(default)]
    pub oidc_issuer: Option<String>,
    /// The client id burrow is registered with at the provider (required with `oidc_issuer`).
    #[serde(default)]
    pub oidc_client_id: Option<String>,
    /// The client secret (`client_secret_basic`); unset for a public client (PKCE only).
    #[serde(default)]
    pub oidc_client_secret: Option<Secret>,
    /// Email domains allowed to sign in through SSO (empty: any); a list, or one string
    /// separated by commas.
    #[serde(default, deserialize_with = "crate::sso::deserialize_domains")]
    pub oidc_allowed_domains: Vec<String>,
    /// The SSO button's text (default "Sign in with SSO").
    #[serde(default)]
    pub oidc_button_label: Option<String>,
    /// Whether email and password sign in (`false`: SSO only; the login forms hide them).
    #[serde(default = "default_password_login")]
    pub password_login: bool,
    /// Custom domains and ACME (docs/custom-domains.md). The DNS server that ownership checks
    /// ask (`host:port`); default: the system's resolvers.
    #[serde(default)]
    pub dns_resolver: Option<SocketAddr>,
    /// The ACME directory certificates come from; default Let's Encrypt's.
    #[serde(default = "default_acme_directory_url")]
    pub acme_directory_url: String,
    /// The contact address of the ACME account (expiry notices).
    #[serde(default)]
    pub acme_email: Option<String>,
    /// PEM roots to trust for the ACME server's own HTTPS (a private ACME server).
    #[serde(default)]
    pub acme_ca_file: Option<PathBuf>,
    /// `http-01` (on `http_redirect_listen`) or `tls-alpn-01` (on `listen`); default: http-01
    /// when there is an HTTP listener, else tls-alpn-01.
    #[serde(default)]
    pub acme_challenge: Option<String>,
    /// Obtain and renew `*.<base_domain>` (and `<base_domain>`) by DNS-01 through
    /// `acme_dns_update`, instead of `tls_cert`/`tls_key`.
    #[serde(default)]
    pub acme_base_domain: bool,
    /// The RFC 2136 (dynamic update) DNS server of the base domain's zone, `host:port`.
    #[serde(default)]
    pub acme_dns_update: Option<SocketAddr>,
    /// The zone updated there; default `base_domain`.
    #[serde(default)]
    pub acme_dns_update_zone: Option<String>,
    /// The TSIG key for those updates, as `tsig-keygen` prints it (a file, mode 0600).
    #[serde(default)]
    pub acme_dns_update_key_file: Option<PathBuf>,
    /// How often a served custom domain's DNS is checked again, in seconds (default an hour).
    #[serde(default = "default_domain_check_interval_secs")]
    pub domain_check_interval_secs: u64,
    /// The first wait after a failed check or issuance, in seconds (doubling, up to an hour).
    #[serde(default = "default_acme_retry_secs")]
    pub acme_retry_secs: u64,
}

fn default_acme_directory_url() -> String {
    "https://acme-v02.api.letsencrypt.org/directory".to_string()
}

fn default_domain_check_interval_secs() -> u64 {
    3600
}

fn default_acme_retry_secs() -> u64 {
    60
}

fn default_password_login() -> bool {
    true
}

fn default_analytics() -> bool {
    true
}

fn default_share_link_max_minutes() -> i64 {
    burrow_api::DEFAULT_SHARE_LINK_MAX_MINUTES
}

fn default_retention_access_log_days() -> i64 {
    7
}

fn default_retention_minute_days() -> i64 {
    30
}

fn default_retention_hourly_days() -> i64 {
    365
}

fn default_roles() -> Vec<crate::cluster::roles::Role> {
    crate::cluster::roles::ALL.to_vec()
}

fn default_node_region() -> String {
    "default".into()
}

fn default_device_conns_per_address() -> usize {
    1024
}

fn default_conns_per_client() -> usize {
    256
}

/// Values given as flags (only those present override the layers below).
#[derive(Debug, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc_issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc_client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_login: Option<bool>,
}

#[derive(Serialize)]
struct Defaults {
    listen: SocketAddr,
    data_dir: PathBuf,
    base_domain: &'static str,
    device_listen: SocketAddr,
    jwt_ttl_minutes: i64,
    log: &'static str,
    region: &'static str,
    account_id: &'static str,
    trusted_proxies: Vec<IpAddr>,
}

const KNOWN_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "base_domain",
    "device_listen",
    "device_url",
    "admin_email",
    "admin_password",
    "jwt_ttl_minutes",
    "log",
    "region",
    "account_id",
    "trusted_proxies",
    "tls_cert",
    "tls_key",
    "http_redirect_listen",
    "api_origin",
    "public_scheme",
    "device_conns_per_address",
    "conns_per_client",
    "node_name",
    "node_region",
    "roles",
    "cluster_listen",
    "cluster_url",
    "cluster_key_file",
    "share_link_max_minutes",
    "metrics_token",
    "smtp_url",
    "smtp_from",
    "metrics_listen",
    "retention_access_log_days",
    "retention_minute_days",
    "retention_hourly_days",
    "analytics",
    "oidc_issuer",
    "oidc_client_id",
    "oidc_client_secret",
    "oidc_allowed_domains",
    "oidc_button_label",
    "password_login",
    "dns_resolver",
    "acme_directory_url",
    "acme_email",
    "acme_ca_file",
    "acme_challenge",
    "acme_base_domain",
    "acme_dns_update",
    "acme_dns_update_zone",
    "acme_dns_update_key_file",
    "domain_check_interval_secs",
    "acme_retry_secs",
];

pub const DEFAULT_PORT: u16 = 8700;

fn defaults() -> Defaults {
    Defaults {
        listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT)),
        data_dir: PathBuf::from("burrow-data"),
        base_domain: "localhost",
        device_listen: SocketAddr::from(([127, 0, 0, 1], DEFAULT_PORT + 1)),
        jwt_ttl_minutes: 60,
        log: "info",
        region: "us-east-1",
        account_id: "000000000000",
        trusted_proxies: Vec::new(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Figment(#[from] Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the layers. `file` is the `--config` flag; `BURROW_CONFIG` is read as its fallback.
    pub fn load(file: Option<&Path>, flags: FlagOverrides) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(defaults()));
        let env_file = std::env::var_os("BURROW_CONFIG").map(PathBuf::from);
        match file.map(Path::to_path_buf).or(env_file) {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError::Invalid(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                fig = fig.merge(Toml::file(path));
            }
            None => fig = fig.merge(Toml::file("burrow.toml")),
        }
        // Only keys of this struct: other BURROW_* variables (test switches, the agent's)
        // are not configuration errors of the server.
        let env = Env::prefixed("BURROW_")
            .filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                KNOWN_KEYS
                    .iter()
                    .any(|known| k == *known || k.starts_with(&format!("{known}__")))
            })
            .split("__");
        fig = fig.merge(env).merge(Serialized::defaults(flags));
        let config: Config = fig.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url {
            let u = url.expose();
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://"))
            {
                return Err(ConfigError::Invalid(
                    "database_url must start with sqlite: or postgres://".into(),
                ));
            }
        }
        if !(1..=24 * 60).contains(&self.jwt_ttl_minutes) {
            return Err(ConfigError::Invalid(
                "jwt_ttl_minutes must be 1-1440".into(),
            ));
        }
        let d = self.base_domain.trim_end_matches('.');
        if d.is_empty()
            || !d.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
        {
            return Err(ConfigError::Invalid(format!(
                "base_domain {d:?} is not a domain name"
            )));
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key go together".into(),
            ));
        }
        if self.http_redirect_listen.is_some() && !self.serves_tls() {
            return Err(ConfigError::Invalid(
                "http_redirect_listen needs tls_cert and tls_key (or acme_base_domain)".into(),
            ));
        }
        crate::certs::validate_config(self).map_err(ConfigError::Invalid)?;
        if let Some(o) = &self.api_origin {
            if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                return Err(ConfigError::Invalid(
                    "api_origin must look like https://host[:port], without a path".into(),
                ));
            }
        }
        self.device_urls_parsed()?;
        // Without device_url devices are told to dial the listener's own address, which only
        // names it on this machine when it is loopback: one open to other hosts needs its name.
        if self.device_url.is_none() && !self.device_listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "device_listen {} is reachable from other hosts, but without device_url devices \
                 would be told to dial {}: set device_url to the https://host[:port] they dial \
                 (env BURROW_DEVICE_URL, flag --device-url)",
                self.device_listen,
                DeviceUrl::of_listener(self.device_listen)
            )));
        }
        if let Some(s) = &self.public_scheme {
            if s != "http" && s != "https" {
                return Err(ConfigError::Invalid(
                    "public_scheme must be http or https".into(),
                ));
            }
        }
        if !(1..=366 * 24 * 60).contains(&self.share_link_max_minutes) {
            return Err(ConfigError::Invalid(
                "share_link_max_minutes must be 1-527040 (a year)".into(),
            ));
        }
        crate::cluster::validate_config(self).map_err(ConfigError::Invalid)?;
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 16 || t.expose().contains(char::is_whitespace))
        {
            return Err(ConfigError::Invalid(
                "metrics_token must be at least 16 characters, without spaces".into(),
            ));
        }
        for (key, days) in [
            ("retention_access_log_days", self.retention_access_log_days),
            ("retention_minute_days", self.retention_minute_days),
            ("retention_hourly_days", self.retention_hourly_days),
        ] {
            if !(1..=3650).contains(&days) {
                return Err(ConfigError::Invalid(format!("{key} must be 1-3650")));
            }
        }
        crate::sso::validate_config(self).map_err(ConfigError::Invalid)?;
        if self.admin_email.is_some() != self.admin_password.is_some() {
            return Err(ConfigError::Invalid(
                "admin_email and admin_password go together".into(),
            ));
        }
        // A bad smtp_url fails at start, not at the first invitation.
        self.mailer()?;
        Ok(())
    }

    /// The retention of traffic data, as the scheduler applies it.
    pub fn retention(&self) -> crate::scheduler::Retention {
        crate::scheduler::Retention {
            access_log: chrono::Duration::days(self.retention_access_log_days),
            minute_rollups: chrono::Duration::days(self.retention_minute_days),
            hourly_rollups: chrono::Duration::days(self.retention_hourly_days),
        }
    }

    /// The database URL in effect (SQLite in the data directory by default).
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.expose().to_string(),
            None => format!("sqlite://{}", self.data_dir.join("burrow.db").display()),
        }
    }

    /// The configured device URLs, parsed; `None` when `device_url` is unset.
    fn device_urls_parsed(&self) -> Result<Option<DeviceUrls>, ConfigError> {
        match &self.device_url {
            None => Ok(None),
            Some(list) => DeviceUrls::parse(list).map(Some).map_err(|e| {
                ConfigError::Invalid(format!(
                    "device_url: {e} (expected https://host[:port], comma-separated for several; \
                     env BURROW_DEVICE_URL, flag --device-url)"
                ))
            }),
        }
    }

    /// What devices dial, given the address the device listener was bound to.
    pub fn device_urls(&self, bound_device_listener: SocketAddr) -> DeviceUrls {
        match self.device_urls_parsed() {
            Ok(Some(urls)) => urls,
            // Validated at load: without device_url the listener is loopback, and its own
            // address is what a device on this machine dials.
            _ => DeviceUrls::one(DeviceUrl::of_listener(bound_device_listener)),
        }
    }

    /// This node's name: `node_name`, else the host name.
    pub fn node_name(&self) -> String {
        self.node_name
            .clone()
            .unwrap_or_else(crate::cluster::host_name)
    }

    /// Whether the main listener serves HTTPS.
    pub fn tls(&self) -> Option<(&Path, &Path)> {
        Some((self.tls_cert.as_deref()?, self.tls_key.as_deref()?))
    }

    /// Whether the main listener serves HTTPS: with certificate files, or with the base
    /// domain's certificate obtained by ACME.
    pub fn serves_tls(&self) -> bool {
        self.tls().is_some() || self.acme_base_domain
    }

    /// Whether browsers reach this server over HTTPS (its own TLS, or a proxy's).
    pub fn public_https(&self) -> bool {
        match self.public_scheme.as_deref() {
            Some(s) => s == "https",
            None => self.serves_tls(),
        }
    }

    /// The port browsers reach the API and the tunnel hosts on, `None` for the scheme's
    /// default (the port of [`Config::api_origin`]).
    pub fn public_port(&self, bound_port: u16) -> Option<u16> {
        let origin = self.api_origin(bound_port);
        let authority = origin.split_once("://").map_or(origin.as_str(), |(_, a)| a);
        let port = authority
            .rsplit_once(':')
            .filter(|(_, p)| !p.contains(']'))
            .and_then(|(_, p)| p.parse::<u16>().ok());
        let default = if origin.starts_with("https://") {
            443
        } else {
            80
        };
        port.filter(|p| *p != default)
    }

    /// The API/UI origin for browsers, given the port `listen` was actually bound to.
    pub fn api_origin(&self, bound_port: u16) -> String {
        if let Some(o) = &self.api_origin {
            return o.clone();
        }
        let (scheme, default) = if self.public_https() {
            ("https", 443)
        } else {
            ("http", 80)
        };
        let host = self.base_domain.trim_end_matches('.');
        if bound_port == default {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{bound_port}")
        }
    }

    /// This node's roles (checked at load: never empty).
    pub fn roles(&self) -> crate::cluster::roles::Roles {
        crate::cluster::roles::Roles::new(&self.roles).unwrap_or_default()
    }

    /// What other nodes dial for this node's link: `cluster_url`, else `https://` and
    /// `cluster_listen` when that names a specific address.
    pub fn cluster_url(&self) -> Option<String> {
        if let Some(u) = &self.cluster_url {
            return Some(u.trim_end_matches('/').to_string());
        }
        let addr = self.cluster_listen?;
        (!addr.ip().is_unspecified()).then(|| format!("https://{addr}"))
    }

    /// A human-readable summary with every secret masked (for `--check-config` and logs).
    /// The invitation mails' sender.
    pub fn smtp_from(&self) -> String {
        self.smtp_from
            .clone()
            .unwrap_or_else(|| format!("burrow <burrow@{}>", self.base_domain))
    }

    /// The mailer of `smtp_url`, if set.
    pub fn mailer(&self) -> Result<Option<burrow_api::mail::Mailer>, ConfigError> {
        self.smtp_url
            .as_ref()
            .map(|u| burrow_api::mail::Mailer::new(u.expose(), &self.smtp_from()))
            .transpose()
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    pub fn describe(&self) -> String {
        format!(
            "listen = {}\ndata_dir = {}\ndatabase_url = {}\nbase_domain = {}\ndevice_listen = {}\n\
             device_url = {} (what devices dial)\n\
             admin_email = {}\nadmin_password = {}\njwt_ttl_minutes = {}\nregion = {}\naccount_id = {}\n\
             trusted_proxies = {:?}\ntls_cert = {}\ntls_key = {}\nhttp_redirect_listen = {}\n\
             node_name = {}\nnode_region = {}\nroles = {}\ncluster_listen = {}\ncluster_url = {}\ncluster_key_file = {}\n\
             share_link_max_minutes = {}\n\
             metrics_token = {}\nmetrics_listen = {}\n\
             retention_access_log_days = {}\nretention_minute_days = {}\nretention_hourly_days = {}\nanalytics = {}\n\
             smtp_url = {}\nsmtp_from = {}\n{}{}",
            self.listen,
            self.data_dir.display(),
            mask_url(&self.database_url()),
            self.base_domain,
            self.device_listen,
            self.device_urls(self.device_listen),
            self.admin_email.as_deref().unwrap_or("(generated on first start)"),
            if self.admin_password.is_some() { "***" } else { "(unset)" },
            self.jwt_ttl_minutes,
            self.region,
            self.account_id,
            self.trusted_proxies,
            self.tls_cert.as_deref().map_or("(unset: plain HTTP)".into(), |p| p.display().to_string()),
            self.tls_key.as_deref().map_or("(unset)".into(), |p| p.display().to_string()),
            self.http_redirect_listen.map_or("(unset)".into(), |a| a.to_string()),
            self.node_name(),
            self.node_region,
            self.roles().joined(),
            self.cluster_listen.map_or("(unset)".into(), |a| a.to_string()),
            self.cluster_url().unwrap_or_else(|| "(unset)".into()),
            self.cluster_key_file.as_deref().map_or("(unset)".into(), |p| p.display().to_string()),
            self.share_link_max_minutes,
            if self.metrics_token.is_some() { "***" } else { "(unset)" },
            self.metrics_listen.map_or("(unset)".into(), |a| a.to_string()),
            self.retention_access_log_days,
            self.retention_minute_days,
            self.retention_hourly_days,
            self.analytics,
            self.smtp_url.as_ref().map_or("(unset: invitation links are only shown)".into(), |u| mask_url(u.expose())),
            self.smtp_from(),
            crate::sso::describe_config(self),
            crate::certs::describe_config(self),
        )
    }
}
