//! The configuration flags of `burrow server` and `burrow doctor` (the last layer of
//! [`Config::load`]: file → environment → flags).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::config::{Config, ConfigError, FlagOverrides};

#[derive(Args)]
pub struct ConfigArgs {
    /// Config file (TOML); default ./burrow.toml when present. Env: BURROW_CONFIG.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address of the HTTP listener. Env: BURROW_LISTEN.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Data directory (SQLite database, keys). Env: BURROW_DATA_DIR.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Domain below which tunnels get their names. Env: BURROW_BASE_DOMAIN.
    #[arg(long)]
    pub base_domain: Option<String>,
    /// Address of the devices' mutual-TLS listener. Env: BURROW_DEVICE_LISTEN.
    #[arg(long)]
    pub device_listen: Option<SocketAddr>,
    /// What enrolled devices dial for the device listener: https://HOST[:PORT], several
    /// comma-separated. Env: BURROW_DEVICE_URL.
    #[arg(long)]
    pub device_url: Option<String>,
    /// Address of a listener for /metrics, /healthz and /readyz only. Env:
    /// BURROW_METRICS_LISTEN.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Single sign-on: the OpenID Connect issuer URL (the client secret goes in the file or
    /// BURROW_OIDC_CLIENT_SECRET, never on a command line). Env: BURROW_OIDC_ISSUER.
    #[arg(long)]
    pub oidc_issuer: Option<String>,
    /// Single sign-on: this server's client id at the provider. Env: BURROW_OIDC_CLIENT_ID.
    #[arg(long)]
    pub oidc_client_id: Option<String>,
    /// Whether email and password sign in (false: SSO only). Env: BURROW_PASSWORD_LOGIN.
    #[arg(long)]
    pub password_login: Option<bool>,
}

impl ConfigArgs {
    pub fn load(&self) -> Result<Config, ConfigError> {
        let flags = FlagOverrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            base_domain: self.base_domain.clone(),
            device_listen: self.device_listen,
            device_url: self.device_url.clone(),
            metrics_listen: self.metrics_listen,
            oidc_issuer: self.oidc_issuer.clone(),
            oidc_client_id: self.oidc_client_id.clone(),
            password_login: self.password_login,
        };
        Config::load(self.config.as_deref(), flags)
    }
}
