//! The SSO endpoints (see the module docs of `sso`).

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use burrow_api::{ApiError, ApiResult, ErrorBody, LoginResponse, ValidJson};
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RequestTokenError, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::account::{self, Identity};
use super::flight::{cookie_name_and_path, Flight, FLIGHT_TTL_SECS};
use super::handoff;
use super::provider::Provider;
use super::Sso;

/// Where the browser goes after signing in when `next` is absent or not a local path.
const DEFAULT_NEXT: &str = "/";
/// `next` values that continue an edge (tunnel host) login instead of the web UI's.
const EDGE_AUTHORIZE: &str = "/edge/authorize?";

/// Why a sign-in through the provider failed (the callback answers a page or JSON).
#[derive(Debug)]
pub enum SsoError {
    NotConfigured,
    BadRequest(&'static str),
    Forbidden(&'static str),
    /// The provider refused (its `error` parameter, or its token endpoint).
    Refused(String),
    /// The ID token did not verify (signature, issuer, audience, expiry, nonce).
    InvalidToken(String),
    Unavailable(&'static str),
    Internal(anyhow::Error),
}

impl SsoError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            SsoError::NotConfigured => (
                StatusCode::NOT_FOUND,
                "not_found",
                "single sign-on is not configured on this server".into(),
            ),
            SsoError::BadRequest(why) => (StatusCode::BAD_REQUEST, "bad_request", (*why).into()),
            SsoError::Forbidden(why) => (StatusCode::FORBIDDEN, "forbidden", (*why).into()),
            SsoError::Refused(why) => (
                StatusCode::BAD_REQUEST,
                "sso_refused",
                format!("the identity provider refused the sign-in: {why}"),
            ),
            SsoError::InvalidToken(why) => (
                StatusCode::FORBIDDEN,
                "sso_invalid_token",
                format!("the identity provider's answer is not valid: {why}"),
            ),
            SsoError::Unavailable(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                (*why).into(),
            ),
            SsoError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "single sign-on failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".into(),
                )
            }
        }
    }

    /// The error as JSON (the API's error body), or as a page for a browser.
    pub fn respond(self, html: bool) -> Response {
        let (status, code, detail) = self.parts();
        if html {
            return page(status, &detail);
        }
        let body = ErrorBody {
            detail,
            code: code.to_string(),
            field: None,
        };
        (status, Json(body)).into_response()
    }
}

impl From<burrow_store::StoreError> for SsoError {
    fn from(e: burrow_store::StoreError) -> Self {
        SsoError::Internal(e.into())
    }
}

/// A minimal error page with the way back to the sign-in page.
fn page(status: StatusCode, detail: &str) -> Response {
    let detail = detail
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Sign-in failed · burrow</title></head><body>\
         <h1>Sign-in failed</h1><p id=\"sso-error\" role=\"alert\">{detail}</p>\
         <p><a href=\"/login\">Back to sign in</a></p></body></html>"
    );
    let mut resp = Response::new(Body::from(html));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The first value of `name` in a query string, decoded.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    openidconnect::url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `next` if it is a path on this host (no scheme, no `//host`, no backslash or control
/// characters that browsers might read as another origin), else the default.
fn local_next(next: Option<String>) -> String {
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && n.len() <= 2048
            && n.bytes().all(|b| b > 0x20 && b != 0x7f && b != b'\\')
    })
    .unwrap_or_else(|| DEFAULT_NEXT.to_string())
}

fn redirect(to: &str) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A host-only `HttpOnly; SameSite=Lax` cookie (`Lax`: the provider's redirect back is a
/// top-level navigation, which carries it).
fn flight_cookie(https: bool, value: &str, max_age: i64) -> HeaderValue {
    let (name, path) = cookie_name_and_path(https);
    cookie(https, name, path, value, max_age)
}

fn cookie(https: bool, name: &str, path: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if https { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("__burrow_invalid=1"))
}

fn https(sso: &Sso) -> bool {
    sso.settings
        .oidc
        .as_ref()
        .is_some_and(|o| o.redirect_uri.starts_with("https://"))
}

fn provider(sso: &Sso) -> Result<&Provider, SsoError> {
    sso.provider.as_deref().ok_or(SsoError::NotConfigured)
}

const UNREACHABLE: &str =
    "the identity provider cannot be reached right now; try again in a few seconds";

/// How to sign in here (for login pages).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"password_login": true,
    "oidc": {"enabled": true, "label": "Sign in with SSO"}}))]
pub struct AuthConfig {
    /// Whether `POST /api/v1/auth/login` (email and password) is open.
    pub password_login: bool,
    pub oidc: OidcConfig,
}

#[derive(Serialize, ToSchema)]
pub struct OidcConfig {
    /// Whether single sign-on (`GET /api/v1/auth/oidc/start`) is configured.
    pub enabled: bool,
    /// The SSO button's text.
    pub label: String,
}

/// The ways to sign in on this server: email and password, single sign-on, or both.
#[utoipa::path(get, path = "/api/v1/auth/config", operation_id = "get_auth_config", tag = "auth",
    responses((status = 200, description = "the sign-in options", body = AuthConfig)))]
pub async fn auth_config(State(sso): State<Sso>) -> Json<AuthConfig> {
    Json(AuthConfig {
        password_login: sso.settings.password_login,
        oidc: OidcConfig {
            enabled: sso.settings.oidc.is_some(),
            label: sso
                .settings
                .label()
                .unwrap_or(super::settings::DEFAULT_LABEL)
                .to_string(),
        },
    })
}

/// Starts a single sign-on: redirects the browser to the identity provider (authorization
/// code flow, PKCE S256, `state` and `nonce`; the login in flight is kept in a sealed
/// cookie for 10 minutes).
#[utoipa::path(get, path = "/api/v1/auth/oidc/start", operation_id = "start_oidc_login",
    tag = "auth",
    params(("next" = Option<String>, Query,
        description = "Where to land after signing in: a path on this host (default `/`); an \
            `/edge/authorize?...` URL continues a tunnel host's login",
        example = "/devices")),
    responses(
        (status = 303, description = "to the identity provider",
            headers(("location" = String), ("set-cookie" = String,
                description = "the sealed login state"))),
        (status = 404, description = "single sign-on is not configured"),
        (status = 503, description = "the identity provider cannot be reached")))]
pub async fn start(State(sso): State<Sso>, uri: Uri) -> Response {
    match start_flight(&sso, uri.query()).await {
        Ok(resp) => resp,
        Err(e) => e.respond(false),
    }
}

async fn start_flight(sso: &Sso, query: Option<&str>) -> Result<Response, SsoError> {
    let provider = provider(sso)?;
    let client = provider
        .client()
        .await
        .ok_or(SsoError::Unavailable(UNREACHABLE))?;
    let next = local_next(query_param(query, "next"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let flight = Flight {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        next,
        exp: chrono::Utc::now().timestamp() + FLIGHT_TTL_SECS,
    };
    let sealed = sso.flight_key.seal(&flight).map_err(SsoError::Internal)?;
    let mut resp = redirect(url.as_str());
    resp.headers_mut().append(
        SET_COOKIE,
        flight_cookie(https(sso), &sealed, FLIGHT_TTL_SECS),
    );
    Ok(resp)
}

/// Where the identity provider sends the browser back: checks the state against the sealed
/// cookie, trades the code (with the PKCE verifier), verifies the ID token (signature,
/// issuer, audience, expiry, nonce), requires a verified email of an allowed domain, finds
/// or creates that user, and signs the browser in: the edge-login cookie, then either the
/// web UI (`<next>#sso=<one-time code>`, see `exchange`) or the tunnel login in `next`.
#[utoipa::path(get, path = "/api/v1/auth/oidc/callback", operation_id = "finish_oidc_login",
    tag = "auth",
    params(
        ("code" = Option<String>, Query, description = "the authorization code"),
        ("state" = Option<String>, Query, description = "the state `start` sent"),
        ("error" = Option<String>, Query, description = "the provider's refusal, if any")),
    responses(
        (status = 303, description = "signed in: to `next` (the web UI gets `#sso=<code>`)",
            headers(("location" = String), ("set-cookie" = String,
                description = "the edge-login cookie; the login state cleared"))),
        (status = 400, description = "no sign-in in progress, a wrong state, or the provider \
            refused", content((ErrorBody = "application/json"), ("text/html"))),
        (status = 403, description = "the ID token is not valid, or the email is missing, \
            unverified or of a domain not allowed",
            content((ErrorBody = "application/json"), ("text/html"))),
        (status = 404, description = "single sign-on is not configured",
            content((ErrorBody = "application/json"), ("text/html"))),
        (status = 503, description = "the identity provider cannot be reached",
            content((ErrorBody = "application/json"), ("text/html")))))]
pub async fn callback(State(sso): State<Sso>, uri: Uri, headers: HeaderMap) -> Response {
    let mut resp = match finish(&sso, uri.query(), &headers).await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::info!(error = ?e, "single sign-on refused");
            e.respond(wants_html(&headers))
        }
    };
    // Whatever happened, this login's state is spent.
    if sso.provider.is_some() {
        resp.headers_mut()
            .append(SET_COOKIE, flight_cookie(https(&sso), "", 0));
    }
    resp
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Values of every cookie named `name` in the request.
fn cookie_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .collect()
}

/// The flight of this browser whose state is `state`.
fn flight_for(sso: &Sso, headers: &HeaderMap, state: &str) -> Result<Flight, SsoError> {
    let (name, _) = cookie_name_and_path(https(sso));
    let now = chrono::Utc::now().timestamp();
    let flights: Vec<Flight> = cookie_values(headers, name)
        .into_iter()
        .filter_map(|v| sso.flight_key.open(v, now))
        .collect();
    if flights.is_empty() {
        return Err(SsoError::BadRequest(
            "no sign-in in progress in this browser (it expires after 10 minutes, or \
             cookies are blocked); start again",
        ));
    }
    // Hashes compared: no timing hint about the expected state.
    flights
        .into_iter()
        .find(|f| sha256(&f.state) == sha256(state))
        .ok_or(SsoError::BadRequest(
            "the sign-in state does not match this browser's; start again",
        ))
}

async fn finish(sso: &Sso, query: Option<&str>, headers: &HeaderMap) -> Result<Response, SsoError> {
    let provider = provider(sso)?;
    if let Some(error) = query_param(query, "error") {
        // Echoed only when it is a plain error code (RFC 6749 §4.1.2.1).
        let shown = if !error.is_empty()
            && error.len() <= 64
            && error
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            error
        } else {
            "(unreadable error)".into()
        };
        return Err(SsoError::Refused(shown));
    }
    // RFC 9207: a provider that names itself must be the one configured (mix-up attacks).
    if query_param(query, "iss").is_some_and(|iss| iss != provider.settings.issuer) {
        return Err(SsoError::InvalidToken(
            "the answer comes from another issuer".into(),
        ));
    }
    let (Some(code), Some(state)) = (query_param(query, "code"), query_param(query, "state"))
    else {
        return Err(SsoError::BadRequest("code and state are required"));
    };
    let flight = flight_for(sso, headers, &state)?;
    let client = provider
        .client()
        .await
        .ok_or(SsoError::Unavailable(UNREACHABLE))?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|_| SsoError::Unavailable("the identity provider has no token endpoint"))?
        .set_pkce_verifier(PkceCodeVerifier::new(flight.pkce_verifier.clone()))
        .request_async(&provider.http)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => SsoError::Refused(r.error().to_string()),
            other => {
                tracing::warn!(error = %other, "the identity provider's token endpoint failed");
                SsoError::Unavailable(UNREACHABLE)
            }
        })?;
    let id_token = token
        .id_token()
        .ok_or_else(|| SsoError::InvalidToken("no ID token".into()))?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(flight.nonce.clone()))
        .map_err(|e| SsoError::InvalidToken(e.to_string()))?;
    // An ID token minted for another access token must not sign this one in.
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token
            .signing_alg()
            .map_err(|e| SsoError::InvalidToken(e.to_string()))?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(|e| SsoError::InvalidToken(e.to_string()))?;
        let actual = AccessTokenHash::from_token(token.access_token(), alg, key)
            .map_err(|e| SsoError::InvalidToken(e.to_string()))?;
        if actual != *expected {
            return Err(SsoError::InvalidToken("at_hash does not match".into()));
        }
    }
    let identity = Identity {
        email: claims.email().map(|e| e.as_str().to_string()),
        email_verified: claims.email_verified(),
    };
    let email = account::checked_email(&identity, &provider.settings)?;
    let user = account::find_or_create(sso.api.store.as_ref(), &email).await?;
    if !account::may_sign_in(&user) {
        return Err(SsoError::Forbidden("this account is disabled"));
    }
    tracing::info!(user_id = user.id, "signed in through single sign-on");
    let https = https(sso);
    let mut binding = None;
    let to = if flight.next.starts_with(EDGE_AUTHORIZE) {
        flight.next.clone()
    } else {
        let bind = handoff::new_binding();
        let code = handoff::mint(sso.api.store.as_ref(), user.id, &bind).await?;
        binding = Some(bind);
        let path = flight.next.split('#').next().unwrap_or(DEFAULT_NEXT);
        format!("{path}#sso={code}")
    };
    let mut resp = redirect(&to);
    if let Some(bind) = binding {
        let (name, path) = handoff::bind_cookie_name_and_path(https);
        resp.headers_mut().append(
            SET_COOKIE,
            cookie(https, name, path, &bind, handoff::BIND_TTL_SECS),
        );
    }
    // Signed in to the edge too: tunnel hosts need no second sign-in.
    resp.headers_mut()
        .append(SET_COOKIE, sso.edge.edge_login_cookie(user.id));
    Ok(resp)
}

/// The one-time code from the callback's `#sso=` fragment.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "q2V0b3b1cnJvdy1sb2dpbi1zdGF0ZQq2V0b3b1cnJvdy"}))]
pub struct ExchangeRequest {
    pub code: String,
}

/// Trades the one-time code a single sign-on left in the web UI's URL fragment for a bearer
/// JWT (the answer of `POST /api/v1/auth/login`). Each code works once, within 60 seconds,
/// and only in the browser the sign-in finished in (with its binding cookie).
#[utoipa::path(post, path = "/api/v1/auth/oidc/exchange", operation_id = "exchange_oidc_code",
    tag = "auth", request_body = ExchangeRequest,
    responses(
        (status = 200, description = "a bearer token", body = LoginResponse),
        (status = 400, description = "the code is unknown, used, expired, or from another \
            browser"),
        (status = 403, description = "the account is disabled"),
        (status = 404, description = "single sign-on is not configured"),
        (status = 415, description = "the body is not `application/json`"),
        (status = 422, description = "the body is not valid: `field` names the culprit when \
            known")))]
pub async fn exchange(
    State(sso): State<Sso>,
    headers: HeaderMap,
    ValidJson(req): ValidJson<ExchangeRequest>,
) -> ApiResult<Json<LoginResponse>> {
    if sso.provider.is_none() {
        return Err(ApiError::NotFound("single sign-on"));
    }
    let store = sso.api.store.as_ref();
    let (bind_name, _) = handoff::bind_cookie_name_and_path(https(&sso));
    let bindings = cookie_values(&headers, bind_name);
    let user = match handoff::redeem(store, &req.code, &bindings).await? {
        Some(id) => store.user_by_id(id).await?,
        None => None,
    };
    let Some(user) = user else {
        return Err(ApiError::BadRequest(
            "this sign-in code is not valid (unknown, used or expired); sign in again".into(),
        ));
    };
    if !account::may_sign_in(&user) {
        return Err(ApiError::Forbidden("this account is disabled"));
    }
    let token = sso
        .api
        .jwt
        .issue(user.id, &user.email, chrono::Utc::now())
        .map_err(ApiError::internal)?;
    Ok(Json(LoginResponse {
        access_token: token,
        token_type: "bearer",
        expires_in: sso.api.jwt.ttl().num_seconds(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_local_path_or_the_default() {
        assert_eq!(local_next(Some("/devices?x=1".into())), "/devices?x=1");
        assert_eq!(
            local_next(Some("/edge/authorize?host=a.localhost".into())),
            "/edge/authorize?host=a.localhost"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "devices",
            "/a b",
            "",
        ] {
            assert_eq!(local_next(Some(bad.into())), "/", "{bad}");
        }
        assert_eq!(local_next(None), "/");
    }
}
