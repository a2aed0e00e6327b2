//! `GET /api/v1/auth/oidc/start` and `GET /api/v1/auth/oidc/callback`: the authorization
//! code flow (see the module docs of `sso`).

use axum::extract::State;
use axum::response::Response;
use burrow_api::ErrorBody;
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, Uri};
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RequestTokenError, Scope, TokenResponse,
};
use sha2::{Digest, Sha256};

use super::account::{self, Identity};
use super::browser::{cookie, cookie_values, local_next, query_param, redirect, DEFAULT_NEXT};
use super::error::{wants_html, SsoError};
use super::flight::{cookie_name_and_path, Flight, FLIGHT_TTL_SECS};
use super::handoff;
use super::provider::Provider;
use super::Sso;

/// `next` values that continue an edge (tunnel host) login instead of the web UI's.
const EDGE_AUTHORIZE: &str = "/edge/authorize?";

/// A host-only `HttpOnly; SameSite=Lax` cookie (`Lax`: the provider's redirect back is a
/// top-level navigation, which carries it).
fn flight_cookie(https: bool, value: &str, max_age: i64) -> HeaderValue {
    let (name, path) = cookie_name_and_path(https);
    cookie(https, name, path, value, max_age)
}

/// Whether browsers reach this server over HTTPS (`Secure`, `__Host-` cookies).
pub(super) fn https(sso: &Sso) -> bool {
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
    let identity = verified_identity(provider, code, &flight).await?;
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

/// Trades `code` (with the flight's PKCE verifier) and verifies the ID token: signature,
/// issuer, audience, expiry and nonce (the crate), and `at_hash` when present.
async fn verified_identity(
    provider: &Provider,
    code: String,
    flight: &Flight,
) -> Result<Identity, SsoError> {
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
    Ok(Identity {
        email: claims.email().map(|e| e.as_str().to_string()),
        email_verified: claims.email_verified(),
    })
}
