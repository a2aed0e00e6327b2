//! Who may use a `require_auth` tunnel: a user JWT (`Authorization: Bearer`, API clients) or
//! this host's session cookie (browsers, after the login handoff), for a user who is a member
//! of the device's project and, when `allowed_user_ids` is set, listed there. Also the tunnel
//! host's own paths: `/__burrow/callback` (one-time code → cookie) and `/__burrow/logout`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use burrow_api::{issued_after, JwtKeys};
use burrow_store::StoreError;
use http::header::{AUTHORIZATION, SET_COOKIE};
use http::{HeaderMap, Response, StatusCode};

use crate::backend::{EdgeBackend, UserDirectory};
use crate::cache::TtlCache;
use crate::codes::{new_state, valid_state, CodeStore};
use crate::headers::{is_bearer, EdgeUser};
use crate::host::HostInfo;
use crate::pages::{error_page, redirect, EdgeError};
use crate::route::Route;
use crate::session_cookie::{
    cookie_values, session_cookie_name, set_cookie, state_cookie_name, SessionKey,
};
use crate::url::{encode, query_param, valid_return};

/// Why a request was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No credentials (or an invalid/expired cookie): browsers are sent to log in.
    NeedLogin,
    /// A bearer token that is invalid, expired, or names no user.
    BadToken,
    /// Authenticated, but not a member / not in `allowed_user_ids`.
    Forbidden,
    Store,
}

pub struct Auth {
    users_dir: Arc<dyn UserDirectory>,
    jwt: JwtKeys,
    pub key: SessionKey,
    pub codes: CodeStore,
    /// Email and "signed out everywhere" time of a user (`None`: no such user).
    users: TtlCache<i64, Option<(String, Option<i64>)>>,
    members: TtlCache<(i64, i64), bool>,
    pub session_ttl: Duration,
    pub https: bool,
    /// `scheme://authority` of the API host (where `/edge/authorize` lives).
    pub api_origin: String,
    pub max_return_len: usize,
}

/// How long a browser has to finish a login it started on a tunnel host.
const STATE_TTL_SECS: i64 = 600;

pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

impl Auth {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        backend: &EdgeBackend,
        jwt: JwtKeys,
        key: SessionKey,
        cache_ttl: Duration,
        code_ttl: Duration,
        session_ttl: Duration,
        https: bool,
        api_origin: String,
        max_return_len: usize,
    ) -> Self {
        Auth {
            codes: CodeStore::new(backend.codes.clone(), code_ttl),
            users_dir: backend.users.clone(),
            jwt,
            key,
            users: TtlCache::new(cache_ttl, 10_000),
            members: TtlCache::new(cache_ttl, 50_000),
            session_ttl,
            https,
            api_origin,
            max_return_len,
        }
    }

    /// The email of user `id` if there is such a user (still, and not disabled) and a
    /// credential of theirs issued at `issued_at` has not been revoked by "sign out
    /// everywhere".
    pub async fn user_email(&self, id: i64, issued_at: i64) -> Result<Option<String>, StoreError> {
        let state = match self.users.get(&id) {
            Some(hit) => hit,
            None => {
                let state = match self.users_dir.user_by_id(id).await? {
                    Some(u) if !u.disabled => {
                        Some((u.email, self.users_dir.sessions_valid_after(id).await?))
                    }
                    Some(_) => None,
                    None => None,
                };
                self.users.insert(id, state.clone());
                state
            }
        };
        Ok(state
            .filter(|(_, after)| issued_after(issued_at, *after))
            .map(|(email, _)| email))
    }

    /// When a session cookie expiring at `exp` was issued.
    pub fn cookie_issued_at(&self, exp: i64) -> i64 {
        let ttl = i64::try_from(self.session_ttl.as_secs()).unwrap_or(i64::MAX / 4);
        exp.saturating_sub(ttl)
    }

    /// Member of the device's project and, if the tunnel lists users, one of them.
    pub async fn may_access(&self, route: &Route, user_id: i64) -> Result<bool, StoreError> {
        let allowed = &route.tunnel.allowed_user_ids;
        if !allowed.is_empty() && !allowed.contains(&user_id) {
            return Ok(false);
        }
        let key = (route.device.project_id, user_id);
        if let Some(hit) = self.members.get(&key) {
            return Ok(hit);
        }
        let member = self.users_dir.is_member(key.0, user_id).await?;
        self.members.insert(key, member);
        Ok(member)
    }

    /// Whether `token` is a credential burrow issued (signed with its JWT key, expired or not).
    pub fn issued(&self, token: &str) -> bool {
        token.len() > 20
            && token.bytes().filter(|b| *b == b'.').count() == 2
            && self.jwt.signed_by_us(token)
    }

    /// The user of a valid bearer JWT: `Ok(None)` when the header carries no bearer token.
    pub async fn bearer_user(&self, headers: &HeaderMap) -> Result<Option<EdgeUser>, Denied> {
        let Some(value) = headers.get_all(AUTHORIZATION).iter().find(|v| is_bearer(v)) else {
            return Ok(None);
        };
        let token = value.to_str().map_err(|_| Denied::BadToken)?[7..].trim();
        let claims = self.jwt.verify(token).ok_or(Denied::BadToken)?;
        let id: i64 = claims.sub.parse().map_err(|_| Denied::BadToken)?;
        let email = self
            .user_email(id, claims.iat)
            .await
            .map_err(|_| Denied::Store)?;
        let email = email.ok_or(Denied::BadToken)?;
        Ok(Some(EdgeUser {
            id,
            email,
            via_bearer: true,
            issued_at: claims.iat,
        }))
    }

    /// Authenticates and authorizes a request for a `require_auth` tunnel. A bearer that is a
    /// valid user JWT wins (and is consumed); one that is not may be the device app's own
    /// token, so a valid session cookie still admits the request (and the header is passed
    /// on untouched). Neither → `BadToken` if a bearer was sent, else `NeedLogin`.
    pub async fn check(
        &self,
        route: &Route,
        host: &HostInfo,
        headers: &HeaderMap,
    ) -> Result<EdgeUser, Denied> {
        let bearer = self.bearer_user(headers).await;
        let user = match bearer {
            Ok(Some(u)) => u,
            Err(Denied::Store) => return Err(Denied::Store),
            other => match self.cookie_user(host, headers).await? {
                Some(u) => u,
                None if other.is_err() => return Err(Denied::BadToken),
                None => return Err(Denied::NeedLogin),
            },
        };
        match self.may_access(route, user.id).await {
            Ok(true) => Ok(user),
            Ok(false) => Err(Denied::Forbidden),
            Err(_) => Err(Denied::Store),
        }
    }

    /// The user of a valid session cookie for this host, if any.
    async fn cookie_user(
        &self,
        host: &HostInfo,
        headers: &HeaderMap,
    ) -> Result<Option<EdgeUser>, Denied> {
        let now = now_unix();
        let Some((id, exp)) = cookie_values(headers, session_cookie_name(self.https))
            .into_iter()
            .find_map(|v| self.key.verify_exp(v, &host.name, now))
        else {
            return Ok(None);
        };
        let issued_at = self.cookie_issued_at(exp);
        let email = self
            .user_email(id, issued_at)
            .await
            .map_err(|_| Denied::Store)?;
        Ok(email.map(|email| EdgeUser {
            id,
            email,
            via_bearer: false,
            issued_at,
        }))
    }

    /// Sends a browser without a session to the API host's authorize step, which logs the
    /// user in if needed and comes back with a one-time code. The browser keeps (or gets) a
    /// login-state cookie on this host; the code will only be taken together with it.
    pub fn login_redirect(
        &self,
        host: &HostInfo,
        ret: &str,
        headers: &HeaderMap,
    ) -> Response<Body> {
        let ret = if valid_return(ret, self.max_return_len) {
            ret
        } else {
            "/"
        };
        let name = state_cookie_name(self.https);
        // Reused while it lasts, so parallel tabs and stray requests do not undo each other.
        let state = cookie_values(headers, name)
            .into_iter()
            .find(|s| valid_state(s))
            .map_or_else(new_state, str::to_string);
        let mut resp = redirect(&format!(
            "{}/edge/authorize?host={}&return={}&state={state}",
            self.api_origin,
            encode(&host.authority()),
            encode(ret)
        ));
        resp.headers_mut().append(
            SET_COOKIE,
            set_cookie(name, &state, "/", STATE_TTL_SECS, self.https),
        );
        resp
    }

    /// The tunnel host's reserved paths (`/__burrow/...`).
    pub async fn reserved(
        &self,
        path: &str,
        query: Option<&str>,
        host: &HostInfo,
        headers: &HeaderMap,
        json: bool,
    ) -> Response<Body> {
        match path {
            "/__burrow/callback" => self.callback(query, host, headers, json).await,
            "/__burrow/logout" => {
                let mut resp = error_page(
                    StatusCode::OK,
                    "signed_out",
                    "you are signed out of this tunnel",
                    json,
                );
                let clear = set_cookie(session_cookie_name(self.https), "", "/", 0, self.https);
                resp.headers_mut().append(SET_COOKIE, clear);
                resp
            }
            _ => EdgeError::NotFound.response(json),
        }
    }

    /// `/__burrow/callback?code=..&return=..`: spends the code (bound to this host), sets the
    /// host-only session cookie and goes to `return` (a path on this host).
    async fn callback(
        &self,
        query: Option<&str>,
        host: &HostInfo,
        headers: &HeaderMap,
        json: bool,
    ) -> Response<Body> {
        let ret = query_param(query, "return").unwrap_or_else(|| "/".to_string());
        if !valid_return(&ret, self.max_return_len) {
            return EdgeError::BadRequest("return must be a path on this host").response(json);
        }
        let code = query_param(query, "code").unwrap_or_default();
        let states = cookie_values(headers, state_cookie_name(self.https));
        let user_id = match self.codes.redeem(&code, &host.name, &states).await {
            Ok(Some(user_id)) => user_id,
            Ok(None) => {
                return EdgeError::BadRequest("the login code is invalid, expired or already used")
                    .response(json)
            }
            Err(_) => return EdgeError::Unavailable("temporarily unavailable").response(json),
        };
        let ttl = i64::try_from(self.session_ttl.as_secs()).unwrap_or(i64::MAX / 4);
        let value = self
            .key
            .sign(user_id, &host.name, now_unix().saturating_add(ttl));
        let mut resp = redirect(&ret);
        resp.headers_mut().append(
            SET_COOKIE,
            set_cookie(
                session_cookie_name(self.https),
                &value,
                "/",
                ttl,
                self.https,
            ),
        );
        resp.headers_mut().append(
            SET_COOKIE,
            set_cookie(state_cookie_name(self.https), "", "/", 0, self.https),
        );
        resp
    }
}
