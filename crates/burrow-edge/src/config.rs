//! The edge's settings.

use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct EdgeConfig {
    /// Tunnel hosts are the names under this domain (`localhost` in development).
    pub base_domain: String,
    /// The host that serves the API and UI; `None` means the bare `base_domain`, `localhost`,
    /// `127.0.0.1` and `[::1]`. Never routed to a tunnel.
    pub api_host: Option<String>,
    /// Public scheme is https: cookie `Secure` flag, `X-Forwarded-Proto`, redirect URLs,
    /// default port (443 instead of 80).
    pub https: bool,
    /// A tunnel connection (or an upgraded WebSocket pipe) with no traffic for this long is
    /// closed. There is no total-request timeout.
    pub idle_timeout: Duration,
    /// Time a client has to send a request head (hyper server setting, see `server_builder`).
    pub header_read_timeout: Duration,
    /// Maximum size of the request header section (431 above it).
    pub max_header_bytes: usize,
    /// Maximum number of request header fields (431 above it).
    pub max_headers: usize,
    /// Maximum length of the request target (414 above it).
    pub max_uri_len: usize,
    /// Concurrent connections per client address ([`crate::ConnLimiter`]); 0 = no limit.
    pub max_conns_per_client: usize,
    /// The API host's login page (absolute URL), e.g. `http://localhost:8080/login`; it is
    /// given `?next=/edge/authorize?...`. Its scheme and authority are also the API origin the
    /// edge sends browsers to.
    pub login_url: String,
    /// Time to open a tunnel connection to the device (504 after it).
    pub connect_timeout: Duration,
    /// Lifetime of a tunnel-host session cookie and of the API-host edge-login cookie.
    pub session_ttl: Duration,
    /// Lifetime of a one-time login code.
    pub code_ttl: Duration,
    /// How long tunnel, device, user and membership lookups are cached (0 = no cache).
    pub lookup_cache_ttl: Duration,
    /// Key for session cookies; `None` derives one from the JWT signing key (the same on every
    /// node that shares it).
    pub session_key: Option<Vec<u8>>,
    /// TLS client settings for `https`/`wss` tunnels; `None` accepts any certificate, which is
    /// what the device's own loopback service usually presents (self-signed).
    pub upstream_tls: Option<Arc<rustls::ClientConfig>>,
    /// Idle keep-alive connections kept per tunnel. Large enough that concurrent clients
    /// reuse tunnel connections (a new one costs a CONNECTION_START and a TCP connect on the
    /// device); idle ones close after `idle_timeout`.
    pub pool_idle_per_tunnel: usize,
    /// HTTP/2 concurrent streams per client connection.
    pub max_h2_streams: u32,
    /// Access log entries buffered between flushes; the oldest are dropped (and counted) above.
    pub access_log_capacity: usize,
    /// Per-request analytics: minute/hour rollups, usage per principal and the access log
    /// (`false`: only the seed's `total_requests`/`last_accessed_at` and Prometheus metrics).
    pub analytics: bool,
    /// Throttles the login form's password checks; share the API's so both endpoints count
    /// against the same quotas. `None`: the edge makes its own.
    pub login_guard: Option<Arc<burrow_api::LoginGuard>>,
    /// The port tunnel hosts are served on for browsers (`None`: the scheme's default). The
    /// login handoff only ever sends a browser to `scheme://<tunnel host>[:public_port]`.
    pub public_port: Option<u16>,
    /// How often an open WebSocket re-checks that its user may still use the tunnel (closed
    /// within this plus `lookup_cache_ttl` after access is taken away).
    pub access_recheck: Duration,
    /// Proxies whose `X-Forwarded-For` names the client (login throttling, what the device is
    /// told); any other peer is the client itself.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The login form takes email and password (`false`: single sign-on only).
    pub password_login: bool,
    /// With single sign-on configured: the SSO button's text on the login form.
    pub sso_label: Option<String>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            base_domain: "localhost".to_string(),
            api_host: None,
            https: false,
            idle_timeout: Duration::from_secs(300),
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_uri_len: 8 * 1024,
            max_conns_per_client: 256,
            login_url: "http://localhost:8080/login".to_string(),
            connect_timeout: Duration::from_secs(10),
            session_ttl: Duration::from_secs(12 * 3600),
            code_ttl: Duration::from_secs(60),
            lookup_cache_ttl: Duration::from_secs(2),
            session_key: None,
            upstream_tls: None,
            pool_idle_per_tunnel: 256,
            max_h2_streams: 100,
            access_log_capacity: 10_000,
            analytics: true,
            login_guard: None,
            public_port: None,
            access_recheck: Duration::from_secs(2),
            trusted_proxies: Vec::new(),
            password_login: true,
            sso_label: None,
        }
    }
}

impl std::fmt::Debug for EdgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeConfig")
            .field("base_domain", &self.base_domain)
            .field("api_host", &self.api_host)
            .field("https", &self.https)
            .field("idle_timeout", &self.idle_timeout)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("max_header_bytes", &self.max_header_bytes)
            .field("max_headers", &self.max_headers)
            .field("max_uri_len", &self.max_uri_len)
            .field("max_conns_per_client", &self.max_conns_per_client)
            .field("login_url", &self.login_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("session_ttl", &self.session_ttl)
            .field("code_ttl", &self.code_ttl)
            .field("lookup_cache_ttl", &self.lookup_cache_ttl)
            .field("session_key", &self.session_key.as_ref().map(|_| "***"))
            .field(
                "upstream_tls",
                &self.upstream_tls.as_ref().map(|_| "custom"),
            )
            .field("pool_idle_per_tunnel", &self.pool_idle_per_tunnel)
            .field("max_h2_streams", &self.max_h2_streams)
            .field("access_log_capacity", &self.access_log_capacity)
            .field("public_port", &self.public_port)
            .field("access_recheck", &self.access_recheck)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("password_login", &self.password_login)
            .field("sso_label", &self.sso_label)
            .finish()
    }
}
