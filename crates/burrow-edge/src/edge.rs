//! The edge: one entry point (`handle`) for every request whose host is a tunnel host.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use burrow_api::JwtKeys;
use burrow_store::PrincipalKind;
use bytes::Bytes;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, Method, Request, Response};

use crate::auth::{Auth, Denied};
use crate::backend::EdgeBackend;
use crate::config::EdgeConfig;
use crate::counting::{CountOut, Counters, Pending};
use crate::dialer::TunnelDialer;
use crate::forward::{forward, Client};
use crate::host::{normalize, request_host, HostInfo, HostKind, HostMatcher};
use crate::limits::check_request;
use crate::origin::{is_unsafe, same_origin};
use crate::pages::{wants_json, EdgeError};
use crate::pool::Pool;
use crate::recheck::{Principal, Recheck};
use crate::route::{Route, RouteTable};
use crate::session_cookie::SessionKey;
use crate::sharing::{presented_key, Presented, Sharing};
use crate::traffic::Who;
use crate::upstream::Connector;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request let in: the user, the principal, whether a cookie carried it, who it counts for.
type Admitted = (Option<crate::headers::EdgeUser>, Principal, bool, Who);

pub struct Edge {
    pub(crate) backend: EdgeBackend,
    pub(crate) dialer: Arc<dyn TunnelDialer>,
    pub(crate) config: EdgeConfig,
    pub(crate) matcher: HostMatcher,
    pub(crate) routes: RouteTable,
    pub(crate) auth: Auth,
    pub(crate) counters: Arc<Counters>,
    pub(crate) pool: Arc<Pool>,
    pub(crate) connector: Connector,
    pub(crate) login_guard: Arc<burrow_api::LoginGuard>,
    pub(crate) sharing: Sharing,
    /// Rate, bandwidth and connection limits of the tunnels that have them.
    pub(crate) guards: crate::traffic::Guards,
}

impl Edge {
    /// `backend`: the SQL store (`Arc<dyn Store>`) on a server, or any [`EdgeBackend`].
    pub fn new(
        backend: impl Into<EdgeBackend>,
        jwt: JwtKeys,
        dialer: Arc<dyn TunnelDialer>,
        config: EdgeConfig,
    ) -> Arc<Self> {
        let key = match &config.session_key {
            Some(k) => SessionKey::new(k),
            None => SessionKey::derive_from_jwt(&jwt),
        };
        let backend: EdgeBackend = backend.into();
        let api_origin = crate::url::origin(&config.login_url).unwrap_or_default();
        let sharing = Sharing::new(
            backend.credentials.clone(),
            key.clone(),
            config.https,
            config.lookup_cache_ttl,
        );
        let auth = Auth::new(
            &backend,
            jwt,
            key,
            config.lookup_cache_ttl,
            config.code_ttl,
            config.session_ttl,
            config.https,
            api_origin,
            config.max_uri_len,
        );
        let tls = crate::tls::connector(config.upstream_tls.clone());
        if tls.is_none() {
            tracing::error!(
                "edge: could not build the upstream TLS client; https tunnels will fail"
            );
        }
        Arc::new(Edge {
            matcher: HostMatcher::new(&config.base_domain, config.api_host.as_deref()),
            routes: RouteTable::new(backend.tunnels.clone(), config.lookup_cache_ttl),
            counters: Arc::new(Counters::new(config.access_log_capacity, config.analytics)),
            pool: Arc::new(Pool::new(config.pool_idle_per_tunnel)),
            connector: Connector {
                connect_timeout: config.connect_timeout,
                idle_timeout: config.idle_timeout,
                tls,
            },
            auth,
            sharing,
            backend,
            dialer,
            login_guard: config.login_guard.clone().unwrap_or_default(),
            guards: crate::traffic::Guards::default(),
            config,
        })
    }

    pub fn config(&self) -> &EdgeConfig {
        &self.config
    }

    pub(crate) fn default_port(&self) -> u16 {
        if self.config.https {
            443
        } else {
            80
        }
    }

    /// `scheme://authority` of a tunnel host, as browsers write it in `Origin`.
    pub(crate) fn origin_of(&self, host: &HostInfo) -> String {
        let scheme = if self.config.https { "https" } else { "http" };
        format!("{scheme}://{}", host.authority())
    }

    /// The port browsers reach tunnel hosts on (`None`: the scheme's default).
    pub(crate) fn public_port(&self) -> Option<u16> {
        self.config
            .public_port
            .filter(|p| *p != self.default_port())
    }

    /// `scheme://<name>[:public port]`: the only origin the login handoff sends a browser to.
    pub(crate) fn public_origin(&self, name: &str) -> String {
        let scheme = if self.config.https { "https" } else { "http" };
        match self.public_port() {
            Some(p) => format!("{scheme}://{name}:{p}"),
            None => format!("{scheme}://{name}"),
        }
    }

    /// Whether a long-lived connection opened on tunnel host `name` by `principal` from
    /// `client` is still allowed: the tunnel still exists and is enabled, its IP rules still
    /// admit the client, and the credential still holds — a user still exists, has not signed
    /// out everywhere since their credential was issued, is a member and is listed (when the
    /// tunnel requires auth); a key or share link is still unrevoked and unexpired. Tunnel,
    /// user and membership lookups go through the same short caches as requests; keys and
    /// links are read from the store. A store error keeps the connection.
    pub(crate) async fn still_allowed(
        &self,
        name: &str,
        principal: &Principal,
        client: std::net::IpAddr,
    ) -> bool {
        let route = match self.routes.resolve(name).await {
            Ok(Some(r)) if r.tunnel.is_enabled => r,
            Ok(_) => return false,
            Err(_) => return true,
        };
        if !route.rules.admits(client) {
            return false;
        }
        let (id, issued_at) = match principal {
            Principal::Key { hash } => {
                return self.sharing.key_still_valid(hash, route.tunnel.id).await
            }
            _ if !route.tunnel.require_auth => return true,
            Principal::Share { link_id } => {
                return self
                    .sharing
                    .link_still_valid(*link_id, route.tunnel.id)
                    .await
            }
            Principal::Public => return false,
            Principal::User { id, issued_at } => (*id, *issued_at),
        };
        match self.auth.user_email(id, issued_at).await {
            Ok(Some(_)) => {}
            Ok(None) => return false,
            Err(_) => return true,
        }
        self.auth.may_access(&route, id).await.unwrap_or(true)
    }

    /// Requests to tunnel hosts the edge refused itself (counted, not logged one row each).
    pub fn refused_requests(&self) -> u64 {
        self.counters.refused()
    }

    /// The normalised host name if `host` (`name[:port]`, any case, trailing dot allowed) is a
    /// tunnel host: a name under `base_domain` other than the API host.
    pub fn tunnel_host(&self, host: &str) -> Option<String> {
        let info = normalize(host, self.default_port())?;
        (self.matcher.classify(&info.name) == HostKind::Tunnel).then_some(info.name)
    }

    /// The custom hostnames served as tunnel hosts (kept current by the server).
    pub fn custom_hosts(&self) -> &Arc<crate::host::CustomHosts> {
        self.matcher.custom_hosts()
    }

    /// Forgets cached routes (a custom domain came or went; tunnels keep their TTL otherwise).
    pub fn forget_routes(&self) {
        self.routes.clear();
    }

    /// Writes the usage counters and access log gathered since the last flush.
    pub async fn flush(&self) {
        self.counters.flush(self.backend.usage.as_ref()).await;
        self.counters.metrics.upkeep();
        self.guards.upkeep();
    }

    /// Writes everything gathered, the rollup buckets still open included (shutdown; tests
    /// that read analytics at once).
    pub async fn flush_all(&self) {
        self.counters
            .flush_upto(self.backend.usage.as_ref(), true)
            .await;
    }

    /// Flushes every `every` until dropped (spawn it; call [`Edge::flush`] once more at shutdown).
    pub fn flush_task(
        self: &Arc<Self>,
        every: Duration,
    ) -> impl Future<Output = ()> + Send + 'static {
        let edge = self.clone();
        async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                edge.flush().await;
            }
        }
    }

    /// Closes the idle keep-alive connections of broker tunnel `tunnel_id` (rotated out, so
    /// that its drain waits only for connections in use).
    pub fn evict_idle(&self, tunnel_id: &str) -> usize {
        self.pool.evict(tunnel_id)
    }

    /// Idle keep-alive connections parked for broker tunnel `tunnel_id`.
    pub fn idle_connections(&self, tunnel_id: &str) -> usize {
        self.pool.idle_count(tunnel_id)
    }

    /// The edge's Prometheus metrics (requests, bytes, latency per tunnel).
    pub fn metrics(&self) -> &crate::traffic::EdgeMetrics {
        &self.counters.metrics
    }

    /// Access log entries dropped because the store fell behind.
    pub fn dropped_log_entries(&self) -> u64 {
        self.counters.dropped()
    }

    /// API-host routes of the browser login handoff (`/edge/authorize`, `/edge/session`).
    pub fn auth_router(self: &Arc<Self>) -> axum::Router {
        crate::authorize::router(self.clone())
    }

    /// Serves one request for a tunnel host. Requests for other hosts get the edge's 404.
    pub async fn handle<B>(self: &Arc<Self>, req: Request<B>, peer: SocketAddr) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let req = req.map(Body::new);
        let json = wants_json(req.headers());
        if let Err(e) = check_request(&req, &self.config) {
            return e.response(json);
        }
        let host = match request_host(&req, self.default_port()) {
            Ok(h) => h,
            Err(_) => {
                return EdgeError::BadRequest("missing, invalid or conflicting Host").response(json)
            }
        };
        if self.matcher.classify(&host.name) != HostKind::Tunnel {
            return EdgeError::NotFound.response(json);
        }
        let route = match self.routes.resolve(&host.name).await {
            Ok(Some(route)) => route,
            Ok(None) => return EdgeError::NotFound.response(json),
            Err(e) => {
                tracing::warn!(error = %e, "edge: tunnel lookup failed");
                return EdgeError::Unavailable("temporarily unavailable").response(json);
            }
        };
        let mut pending = Pending::new(route.tunnel.id, req.method().as_str(), req.uri().path());
        pending.client = Some(peer.ip());
        pending.user_agent = crate::traffic::user_agent(req.headers());
        let resp = self
            .serve(&route, &host, req, peer, &mut pending, json)
            .await;
        let status = resp.status().as_u16();
        let counters = self.counters.clone();
        // Shaped inside the counting, so that the log's duration includes the shaping.
        let shaper = pending.download.take();
        resp.map(|b| {
            let b = match shaper {
                Some(s) => Body::new(crate::traffic::Shaped::new(b, s)),
                None => b,
            };
            Body::new(CountOut::new(b, status, counters, pending))
        })
    }

    async fn serve(
        self: &Arc<Self>,
        route: &Route,
        host: &HostInfo,
        req: Request<Body>,
        peer: SocketAddr,
        pending: &mut Pending,
        json: bool,
    ) -> Response<Body> {
        // Whatever the edge answers itself is counted, not logged one row each.
        pending.refused = true;
        if !route.tunnel.is_enabled {
            return EdgeError::NotFound.response(json);
        }
        // IP rules come before any credential: a refused network learns nothing more.
        if !route.rules.admits(peer.ip()) {
            return EdgeError::IpRefused.response(json);
        }
        if req.uri().path().starts_with("/__burrow/") {
            if let Some(secret) = req.uri().path().strip_prefix(burrow_api::SHARE_PATH) {
                return match self
                    .sharing
                    .redeem(route, host, secret, req.headers(), peer.ip())
                    .await
                {
                    Ok(resp) => resp,
                    Err(e) => e.response(json),
                };
            }
            // Parts across the await: the body is not `Sync`.
            let (parts, _) = req.into_parts();
            return self
                .auth
                .reserved(
                    parts.uri.path(),
                    parts.uri.query(),
                    host,
                    &parts.headers,
                    json,
                )
                .await;
        }
        // Parts, not the request, across the awaits: the body is not `Sync`.
        let (parts, body) = req.into_parts();
        let admitted = match self.admit(route, host, &parts, peer).await {
            Ok(a) => a,
            Err(resp) => return *resp,
        };
        let req = Request::from_parts(parts, body);
        let (user, principal, via_cookie, who) = admitted;
        // Known from here on: a request refused by the limits below counts for its principal.
        pending.who = who;
        if via_cookie
            && is_unsafe(req.method(), req.headers())
            && !same_origin(req.headers(), &self.origin_of(host))
        {
            return EdgeError::CrossOrigin.response(json);
        }
        // Limits apply to requests that would reach the device: a refused one costs a 429.
        let mut limits = crate::traffic::PipeLimits::default();
        let req = match self.guards.of(&route.tunnel) {
            None => req,
            Some(g) => match g.admit(peer.ip()) {
                Ok(slot) => {
                    pending.slot = slot.map(Arc::new);
                    pending.download = g.download.clone();
                    // A WebSocket's pipe keeps the slot and is shaped like the bodies.
                    limits = crate::traffic::PipeLimits {
                        slot: pending.slot.clone(),
                        upload: g.upload.clone(),
                        download: g.download.clone(),
                    };
                    match g.upload.clone() {
                        Some(s) => req.map(|b| Body::new(crate::traffic::Shaped::new(b, s))),
                        None => req,
                    }
                }
                Err(refusal) => {
                    self.counters.metrics.rate_limited(route.tunnel.id);
                    return refusal.response(json);
                }
            },
        };
        pending.refused = false;
        pending.user_id = user.as_ref().map(|u| u.id);
        let authority = host.authority();
        let client = Client {
            authority: &authority,
            peer: peer.ip(),
            recheck: Recheck {
                edge: self.clone(),
                host: host.name.clone(),
                principal,
                client: peer.ip(),
            },
            user: user.as_ref(),
            bytes_in: pending.bytes_in.clone(),
            phases: pending.phases.clone(),
            limits,
        };
        match forward(self, route, req, client).await {
            Ok(resp) => resp,
            Err(e) => e.response(json),
        }
    }

    /// Who the request is: a tunnel API key when it presents one (and nothing else is then
    /// tried); else, on a `require_auth` tunnel, a user (JWT or session cookie) or, failing
    /// that, a share link's session. Answers the user (told to the device), the principal (for
    /// re-checks), whether a cookie carried it (cross-origin checks) and who it is for the
    /// usage counts, or the refusal.
    async fn admit(
        &self,
        route: &Route,
        host: &HostInfo,
        req: &http::request::Parts,
        peer: SocketAddr,
    ) -> Result<Admitted, Box<Response<Body>>> {
        let json = wants_json(&req.headers);
        let method = req.method.as_str();
        match presented_key(&req.headers) {
            Presented::Key(key) => {
                return match self.sharing.check_key(route, &key, peer.ip(), method).await {
                    Ok(k) => {
                        let who = Who {
                            kind: PrincipalKind::Key,
                            id: k.id,
                        };
                        Ok((None, Principal::Key { hash: k.key_hash }, false, who))
                    }
                    Err(e) => Err(Box::new(self.edge_refusal(e, json))),
                };
            }
            Presented::Malformed => {
                let e = EdgeError::Unauthorized("invalid, expired or revoked API key");
                return Err(Box::new(self.edge_refusal(e, json)));
            }
            Presented::None => {}
        }
        if !route.tunnel.require_auth {
            return Ok((None, Principal::Public, false, Who::ANONYMOUS));
        }
        let denied = match self.auth.check(route, host, &req.headers).await {
            Ok(u) => {
                let principal = Principal::User {
                    id: u.id,
                    issued_at: u.issued_at,
                };
                let cookie = !u.via_bearer;
                let who = Who {
                    kind: PrincipalKind::User,
                    id: u.id,
                };
                return Ok((Some(u), principal, cookie, who));
            }
            Err(Denied::Store) => Denied::Store,
            Err(d) => match self
                .sharing
                .session(route, host, &req.headers, method)
                .await
            {
                Ok(Some(link)) => {
                    let who = Who {
                        kind: PrincipalKind::Share,
                        id: link.id,
                    };
                    return Ok((None, Principal::Share { link_id: link.id }, true, who));
                }
                Ok(None) => d,
                Err(e) => return Err(Box::new(e.response(json))),
            },
        };
        Err(Box::new(self.denied(denied, host, req, json)))
    }

    /// An edge refusal of a key, with `WWW-Authenticate` on 401.
    fn edge_refusal(&self, e: EdgeError, json: bool) -> Response<Body> {
        let mut resp = e.response(json);
        if matches!(e, EdgeError::Unauthorized(_)) {
            resp.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"burrow\""),
            );
        }
        resp
    }

    fn denied(
        &self,
        d: Denied,
        host: &HostInfo,
        req: &http::request::Parts,
        json: bool,
    ) -> Response<Body> {
        let browser = !json && matches!(req.method, Method::GET | Method::HEAD);
        let err = match d {
            Denied::NeedLogin if browser => {
                let ret = req.uri.path_and_query().map_or("/", |pq| pq.as_str());
                return self.auth.login_redirect(host, ret, &req.headers);
            }
            Denied::NeedLogin => EdgeError::Unauthorized("authentication required"),
            Denied::BadToken => EdgeError::Unauthorized("invalid or expired token"),
            Denied::Forbidden => EdgeError::Forbidden,
            Denied::Store => EdgeError::Unavailable("temporarily unavailable"),
        };
        let mut resp = err.response(json);
        if matches!(err, EdgeError::Unauthorized(_)) {
            resp.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"burrow\""),
            );
        }
        resp
    }
}
