//! The API-host half of the browser login handoff.
//!
//! - `GET /edge/authorize?host=H&return=R&state=S`: with the API-host edge-login cookie,
//!   checks that the user may use tunnel host `H`, mints a one-time code and redirects to
//!   `<scheme>://H[:public port]/__burrow/callback?code=..&return=R`; without it, redirects to
//!   the login page with `next=/edge/authorize?...`.
//! - `POST /edge/authorize?host=H&return=R&state=S` with `Authorization: Bearer`: the same
//!   check, answers `{"redirect": url}` (for a UI that holds the JWT).
//! - `POST /edge/session` with `Authorization: Bearer`: sets the edge-login cookie (host-only,
//!   `Path=/edge`, or `__Host-` and `Path=/` over HTTPS, `HttpOnly`, `SameSite=Lax`);
//!   `DELETE /edge/session` clears it.
//!
//! - `GET/POST /edge/login`: a minimal built-in login form (see `login.rs`), for when the UI's
//!   login page does not call `POST /edge/session`.
//!
//! `R` must be a path on `H` and `H` a tunnel host of this server, on its public port: no open
//! redirect. Every step carries `state=S`, the value of the state cookie the tunnel host gave
//! the browser when it sent it to log in; the code is bound to it, so a code minted in another
//! browser (an attacker's own login) is refused at the callback (login CSRF).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use http::header::{CONTENT_TYPE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Response, StatusCode, Uri};

use crate::auth::{now_unix, Denied};
use crate::codes::valid_state;
use crate::edge::Edge;
use crate::host::{normalize, HostInfo, HostKind};
use crate::pages::{redirect, wants_json, EdgeError};
use crate::route::Route;
use crate::session_cookie::{cookie_values, login_cookie, set_cookie, API_SCOPE};
use crate::url::{encode, query_param, valid_return};

pub fn router(edge: Arc<Edge>) -> Router {
    Router::new()
        .route("/edge/authorize", get(authorize_get).post(authorize_post))
        .route("/edge/session", post(session_post).delete(session_delete))
        .route(
            "/edge/login",
            get(crate::login::login_form).post(crate::login::login_submit),
        )
        .with_state(edge)
}

/// The tunnel a login is for.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Read from the raw query (see `target`); here for the document.
struct AuthorizeQuery {
    /// The tunnel host (its `public_url`), with a port when not the default.
    #[param(example = "device-abc123.localhost")]
    host: String,
    /// Where to land on the tunnel host: a path (default `/`).
    #[param(example = "/")]
    r#return: Option<String>,
    /// The login state the tunnel host gave the browser (its state cookie there): the code
    /// minted here works only together with that cookie.
    #[param(
        example = "q2V0b3b1cnJvdy1sb2dpbi1zdGF0ZQ",
        pattern = r"^[A-Za-z0-9_-]{16,128}$",
        min_length = 16,
        max_length = 128
    )]
    state: String,
}

/// Where to send the browser: the tunnel's callback with a one-time code.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct AuthorizeRedirect {
    pub redirect: String,
}

struct Target {
    host: HostInfo,
    ret: String,
    /// The login state the tunnel host gave the browser (its state cookie there).
    state: String,
    route: Arc<Route>,
}

async fn target(edge: &Edge, query: Option<&str>) -> Result<Target, EdgeError> {
    let raw = query_param(query, "host").ok_or(EdgeError::BadRequest("host is required"))?;
    let host =
        normalize(&raw, edge.default_port()).ok_or(EdgeError::BadRequest("host is not valid"))?;
    if edge.matcher.classify(&host.name) != HostKind::Tunnel {
        return Err(EdgeError::BadRequest(
            "host is not a tunnel host of this server",
        ));
    }
    // The browser only ever goes back to the tunnel's public origin, never another port.
    if host.port.is_some() && host.port != edge.public_port() {
        return Err(EdgeError::BadRequest(
            "host must be the tunnel's public address",
        ));
    }
    let state = query_param(query, "state").unwrap_or_default();
    if !valid_state(&state) {
        return Err(EdgeError::BadRequest(
            "state is missing or invalid; open the tunnel's address to sign in",
        ));
    }
    let ret = query_param(query, "return").unwrap_or_else(|| "/".to_string());
    if !valid_return(&ret, edge.config.max_uri_len) {
        return Err(EdgeError::BadRequest(
            "return must be a path on the tunnel host",
        ));
    }
    let route = match edge.routes.resolve(&host.name).await {
        Ok(Some(r)) if r.tunnel.is_enabled => r,
        Ok(_) => return Err(EdgeError::NotFound),
        Err(_) => return Err(EdgeError::Unavailable("temporarily unavailable")),
    };
    Ok(Target {
        host,
        ret,
        state,
        route,
    })
}

/// Mints a code for `user_id` if they may use the target, and builds the callback URL.
async fn grant(edge: &Edge, t: &Target, user_id: i64) -> Result<String, EdgeError> {
    match edge.auth.may_access(&t.route, user_id).await {
        Ok(true) => {}
        Ok(false) => return Err(EdgeError::Forbidden),
        Err(_) => return Err(EdgeError::Unavailable("temporarily unavailable")),
    }
    let code = edge
        .auth
        .codes
        .mint(user_id, &t.host.name, &t.state)
        .await
        .map_err(|_| EdgeError::Unavailable("temporarily unavailable"))?;
    Ok(format!(
        "{}/__burrow/callback?code={code}&return={}",
        edge.public_origin(&t.host.name),
        encode(&t.ret)
    ))
}

/// Browser step of the tunnel login handoff: with the edge-login cookie, a redirect to the
/// tunnel host's callback with a one-time code; without it, a redirect to the login page.
#[utoipa::path(get, path = "/edge/authorize", operation_id = "edge_authorize_redirect",
    tag = "edge", params(AuthorizeQuery),
    responses(
        (status = 302, description = "to the tunnel's callback (signed in) or to the login page",
            headers(("location" = String, description = "where to go next"))),
        (status = 400, description = "host, return or state is not valid", content(
            (burrow_api::ErrorBody = "application/json"), ("text/html"))),
        (status = 403, description = "the user may not use this tunnel", content(
            (burrow_api::ErrorBody = "application/json"), ("text/html"))),
        (status = 404, description = "no enabled tunnel at this host", content(
            (burrow_api::ErrorBody = "application/json"), ("text/html"))),
        (status = 503, description = "temporarily unavailable", content(
            (burrow_api::ErrorBody = "application/json"), ("text/html")))),
    security((), ("edge_login" = [])))]
async fn authorize_get(
    State(edge): State<Arc<Edge>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let json = wants_json(&headers);
    let t = match target(&edge, uri.query()).await {
        Ok(t) => t,
        Err(e) => return e.response(json),
    };
    let now = now_unix();
    let mut user = None;
    for v in cookie_values(&headers, login_cookie(edge.config.https).0) {
        if let Some((id, exp)) = edge.auth.key.verify_exp(v, API_SCOPE, now) {
            let issued_at = edge.auth.cookie_issued_at(exp);
            if let Ok(Some(_)) = edge.auth.user_email(id, issued_at).await {
                user = Some(id);
                break;
            }
        }
    }
    let Some(user_id) = user else {
        let next = format!(
            "/edge/authorize?host={}&return={}&state={}",
            encode(&t.host.authority()),
            encode(&t.ret),
            t.state
        );
        let login = &edge.config.login_url;
        let sep = if login.contains('?') { '&' } else { '?' };
        return redirect(&format!("{login}{sep}next={}", encode(&next)));
    };
    match grant(&edge, &t, user_id).await {
        Ok(url) => redirect(&url),
        Err(e) => e.response(json),
    }
}

fn json_response(status: StatusCode, value: impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_string(&value).unwrap_or_default();
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn denied(d: Denied) -> Response<Body> {
    match d {
        Denied::Store => EdgeError::Unavailable("temporarily unavailable").response(true),
        _ => EdgeError::Unauthorized("a valid bearer token is required").response(true),
    }
}

/// The same check for API clients holding a JWT (the web UI): answers where to send the
/// browser instead of redirecting.
#[utoipa::path(post, path = "/edge/authorize", operation_id = "edge_authorize", tag = "edge",
    params(AuthorizeQuery),
    responses(
        (status = 200, description = "the tunnel's callback URL with a one-time code",
            body = AuthorizeRedirect),
        (status = 400, description = "host, return or state is not valid"),
        (status = 403, description = "the user may not use this tunnel"),
        (status = 404, description = "no enabled tunnel at this host"),
        (status = 503, description = "temporarily unavailable")),
    security(("bearer" = [])))]
async fn authorize_post(
    State(edge): State<Arc<Edge>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let user = match edge.auth.bearer_user(&headers).await {
        Ok(Some(u)) => u,
        Ok(None) => return denied(Denied::NeedLogin),
        Err(d) => return denied(d),
    };
    let t = match target(&edge, uri.query()).await {
        Ok(t) => t,
        Err(e) => return e.response(true),
    };
    match grant(&edge, &t, user.id).await {
        Ok(redirect) => json_response(StatusCode::OK, AuthorizeRedirect { redirect }),
        Err(e) => e.response(true),
    }
}

/// Sets the edge-login cookie on the API host (what a login page calls), so that tunnel
/// logins need no second password prompt.
#[utoipa::path(post, path = "/edge/session", operation_id = "create_edge_session", tag = "edge",
    responses((status = 204, description = "signed in: the cookie is set",
            headers(("set-cookie" = String, description = "the edge-login cookie"))),
        (status = 503, description = "temporarily unavailable")),
    security(("bearer" = [])))]
async fn session_post(State(edge): State<Arc<Edge>>, headers: HeaderMap) -> Response<Body> {
    let user = match edge.auth.bearer_user(&headers).await {
        Ok(Some(u)) => u,
        Ok(None) => return denied(Denied::NeedLogin),
        Err(d) => return denied(d),
    };
    let ttl = i64::try_from(edge.config.session_ttl.as_secs()).unwrap_or(i64::MAX / 4);
    let value = edge
        .auth
        .key
        .sign(user.id, API_SCOPE, now_unix().saturating_add(ttl));
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let (name, path) = login_cookie(edge.config.https);
    resp.headers_mut().append(
        SET_COOKIE,
        set_cookie(name, &value, path, ttl, edge.config.https),
    );
    resp
}

/// Clears the edge-login cookie.
#[utoipa::path(delete, path = "/edge/session", operation_id = "delete_edge_session", tag = "edge",
    responses((status = 204, description = "signed out: the cookie is cleared",
        headers(("set-cookie" = String, description = "the expired edge-login cookie")))))]
async fn session_delete(State(edge): State<Arc<Edge>>) -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let (name, path) = login_cookie(edge.config.https);
    resp.headers_mut()
        .append(SET_COOKIE, set_cookie(name, "", path, 0, edge.config.https));
    resp
}
