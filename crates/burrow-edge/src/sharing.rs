//! Who else may use a tunnel than its project's members: a machine with one of the tunnel's
//! API keys (`Authorization: Bearer bk_...` or `X-Burrow-Key`), and a browser holding the
//! session of one of its share links. Keys and links are looked up in the store on every use
//! (no cache), so a revocation takes effect at once; failed attempts are counted per client
//! address ([`burrow_api::GuessGuard`]): 429 once a client keeps failing.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use burrow_api::sharing::{hash_secret, is_key_shaped, is_link_shaped, method_allowed, same_hash};
use burrow_api::GuessGuard;
use burrow_store::{ShareLink, TunnelKey, VisitorAdmission};
use http::header::{AUTHORIZATION, SET_COOKIE};
use http::{HeaderMap, Response};

use crate::auth::now_unix;
use crate::backend::Credentials;
use crate::cache::TtlCache;
use crate::headers::is_bearer;
use crate::host::HostInfo;
use crate::pages::{redirect, EdgeError};
use crate::route::Route;
use crate::session_cookie::{set_cookie, SessionKey};
use crate::share_cookie::{self, new_visitor, share_cookie_name, ShareSession};

/// The header a machine may send its key in (any `x-burrow-*` header is removed before the
/// device, this one included).
pub const X_BURROW_KEY: &str = "x-burrow-key";

/// How often a key's `last_used_at` is written at most.
const TOUCH_EVERY: Duration = Duration::from_secs(30);

pub struct Sharing {
    store: Arc<dyn Credentials>,
    pub guard: GuessGuard,
    key: SessionKey,
    https: bool,
    /// Keys whose `last_used_at` was written recently.
    touched: TtlCache<i64, ()>,
}

/// The key a request presents, if it presents one.
pub enum Presented {
    None,
    Key(String),
    /// An `X-Burrow-Key` that is not even text.
    Malformed,
}

/// Whether a bearer token is one of ours (a tunnel key): such a token is consumed by the edge
/// and never reaches the device.
pub fn is_tunnel_key(token: &str) -> bool {
    token.starts_with(burrow_api::sharing::KEY_PREFIX)
}

pub fn presented_key(headers: &HeaderMap) -> Presented {
    if let Some(v) = headers.get(X_BURROW_KEY) {
        return match v.to_str() {
            Ok(s) => Presented::Key(s.trim().to_string()),
            Err(_) => Presented::Malformed,
        };
    }
    for v in headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter(|v| is_bearer(v))
    {
        if let Ok(s) = v.to_str() {
            let token = s[7..].trim();
            if is_tunnel_key(token) {
                return Presented::Key(token.to_string());
            }
        }
    }
    Presented::None
}

fn key_valid(k: &TunnelKey, hash: &str, tunnel_id: i64) -> bool {
    same_hash(&k.key_hash, hash)
        && k.reverse_tunnel_id == tunnel_id
        && k.revoked_at.is_none()
        && k.expires_at.is_none_or(|e| e > chrono::Utc::now())
}

/// Why a share link does not (or no longer does) admit.
fn link_ended(l: &ShareLink, tunnel_id: i64) -> Option<EdgeError> {
    if l.reverse_tunnel_id != tunnel_id {
        return Some(EdgeError::NotFound);
    }
    if l.revoked_at.is_some() {
        return Some(EdgeError::Gone("this share link was revoked"));
    }
    if l.expires_at <= chrono::Utc::now() {
        return Some(EdgeError::Gone("this share link has expired"));
    }
    None
}

impl Sharing {
    pub fn new(
        store: Arc<dyn Credentials>,
        key: SessionKey,
        https: bool,
        cache_ttl: Duration,
    ) -> Self {
        Sharing {
            store,
            guard: GuessGuard::default(),
            key,
            https,
            touched: TtlCache::new(TOUCH_EVERY.max(cache_ttl), 100_000),
        }
    }

    fn throttled(&self, client: IpAddr) -> Result<(), EdgeError> {
        self.guard.check(client).map_err(EdgeError::Throttled)
    }

    /// Counts a failure; the error to answer (429 once over the quota).
    fn failed(&self, client: IpAddr, otherwise: EdgeError) -> EdgeError {
        match self.guard.failed(client) {
            Ok(()) => otherwise,
            Err(wait) => EdgeError::Throttled(wait),
        }
    }

    /// Admits a request that presents `key`: the key must be one of this tunnel's, unrevoked
    /// and unexpired (401 otherwise), and allow the method (403 otherwise).
    pub async fn check_key(
        &self,
        route: &Route,
        key: &str,
        client: IpAddr,
        method: &str,
    ) -> Result<TunnelKey, EdgeError> {
        self.throttled(client)?;
        let invalid = EdgeError::Unauthorized("invalid, expired or revoked API key");
        if !is_key_shaped(key) {
            return Err(self.failed(client, invalid));
        }
        let hash = hash_secret(key);
        let found = self
            .store
            .tunnel_key_by_hash(&hash)
            .await
            .map_err(|_| EdgeError::Unavailable("temporarily unavailable"))?;
        let Some(k) = found.filter(|k| key_valid(k, &hash, route.tunnel.id)) else {
            return Err(self.failed(client, invalid));
        };
        if !method_allowed(&k.methods, method) {
            return Err(EdgeError::NotPermitted(
                "this API key may not use this method",
            ));
        }
        if self.touched.get(&k.id).is_none() {
            self.touched.insert(k.id, ());
            let (store, id) = (self.store.clone(), k.id);
            tokio::spawn(async move {
                if let Err(e) = store.touch_tunnel_key(id, chrono::Utc::now()).await {
                    tracing::debug!(error = %e, "edge: could not record a key's last use");
                }
            });
        }
        Ok(k)
    }

    /// Whether key `hash` still admits to tunnel `tunnel_id` (an open connection's re-check;
    /// a store error keeps the connection).
    pub async fn key_still_valid(&self, hash: &str, tunnel_id: i64) -> bool {
        match self.store.tunnel_key_by_hash(hash).await {
            Ok(Some(k)) => key_valid(&k, hash, tunnel_id),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// Whether share link `id` still admits to tunnel `tunnel_id`.
    pub async fn link_still_valid(&self, id: i64, tunnel_id: i64) -> bool {
        match self.store.share_link_by_id(id).await {
            Ok(Some(l)) => link_ended(&l, tunnel_id).is_none(),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// The share link session of a request: `Ok(None)` without a (valid) share cookie;
    /// `Err` with a clear answer when the link ended or does not allow the method.
    pub async fn session(
        &self,
        route: &Route,
        host: &HostInfo,
        headers: &HeaderMap,
        method: &str,
    ) -> Result<Option<ShareLink>, EdgeError> {
        let Some(s) = share_cookie::from_headers(&self.key, headers, self.https, &host.name) else {
            return Ok(None);
        };
        if s.exp <= now_unix() {
            return Err(EdgeError::Gone("this share link has expired"));
        }
        let link = self
            .store
            .share_link_by_id(s.link_id)
            .await
            .map_err(|_| EdgeError::Unavailable("temporarily unavailable"))?
            .ok_or(EdgeError::Gone("this share link was revoked"))?;
        if let Some(e) = link_ended(&link, route.tunnel.id) {
            return Err(e);
        }
        if !method_allowed(&link.methods, method) {
            return Err(EdgeError::NotPermitted(
                "this share link may not use this method",
            ));
        }
        Ok(Some(link))
    }

    /// `GET /__burrow/share/<secret>`: checks the link, counts the visitor (a browser that
    /// already holds a session of this link is not counted again), sets the share session
    /// cookie until the link's expiry and goes to `/`.
    pub async fn redeem(
        &self,
        route: &Route,
        host: &HostInfo,
        secret: &str,
        headers: &HeaderMap,
        client: IpAddr,
    ) -> Result<Response<Body>, EdgeError> {
        self.throttled(client)?;
        let invalid = EdgeError::NotPermitted("this share link is not valid");
        if !is_link_shaped(secret) {
            return Err(self.failed(client, invalid));
        }
        let hash = hash_secret(secret);
        let found = self
            .store
            .share_link_by_hash(&hash)
            .await
            .map_err(|_| EdgeError::Unavailable("temporarily unavailable"))?;
        let Some(link) = found
            .filter(|l| same_hash(&l.secret_hash, &hash) && l.reverse_tunnel_id == route.tunnel.id)
        else {
            return Err(self.failed(client, invalid));
        };
        if let Some(e) = link_ended(&link, route.tunnel.id) {
            return Err(e);
        }
        let visitor = share_cookie::from_headers(&self.key, headers, self.https, &host.name)
            .filter(|s| s.link_id == link.id)
            .map_or_else(new_visitor, |s| s.visitor);
        let admitted = self
            .store
            .admit_share_link_visitor(link.id, &visitor, chrono::Utc::now())
            .await
            .map_err(|_| EdgeError::Unavailable("temporarily unavailable"))?;
        if admitted == VisitorAdmission::Full {
            return Err(EdgeError::NotPermitted(
                "this share link has been used by as many visitors as it allows",
            ));
        }
        let exp = link.expires_at.timestamp();
        let value = share_cookie::sign(
            &self.key,
            &ShareSession {
                link_id: link.id,
                visitor,
                exp,
            },
            &host.name,
        );
        let mut resp = redirect("/");
        resp.headers_mut().append(
            SET_COOKIE,
            set_cookie(
                share_cookie_name(self.https),
                &value,
                "/",
                exp.saturating_sub(now_unix()).max(1),
                self.https,
            ),
        );
        Ok(resp)
    }
}
