//! A minimal built-in login form on the API host (`GET/POST /edge/login`), for deployments
//! whose web UI does not (yet) take part in the handoff: point `EdgeConfig::login_url` at
//! `<api origin>/edge/login`. It checks the password like the API's login (argon2, same user
//! table), sets the API-host edge-login cookie, and continues to `next`, which must be an
//! `/edge/authorize?...` URL on this host.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use http::header::{CONTENT_TYPE, ORIGIN, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Response, StatusCode, Uri};

use burrow_api::{retry_after_secs, ClientIp, LoginRefused};

use crate::auth::now_unix;
use crate::edge::Edge;
use crate::pages::{escape, redirect};
use crate::session_cookie::{login_cookie, set_cookie, API_SCOPE};
use crate::url::query_param;

const MAX_FORM: usize = 8 * 1024;

fn valid_next(next: &str) -> bool {
    next.starts_with("/edge/authorize?")
        && next.bytes().all(|b| b > 0x20 && b != 0x7f && b != b'\\')
}

fn form(edge: &Edge, next: &str, error: Option<&str>, status: StatusCode) -> Response<Body> {
    let error = error.map_or(String::new(), |e| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))
    });
    // Single sign-on, when configured, carries `next` through the provider and back.
    let sso = crate::sso::sso_button(edge.config.sso_label.as_deref(), next);
    let password = if edge.config.password_login {
        format!(
            "<form method=\"post\" action=\"/edge/login\">\
             <input type=\"hidden\" name=\"next\" value=\"{next}\">\
             <label>Email<input name=\"email\" type=\"email\" autocomplete=\"username\" required></label>\
             <label>Password<input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <button type=\"submit\">Sign in</button></form>",
            next = escape(next),
        )
    } else {
        String::new()
    };
    let html = crate::look::page(
        "Sign in",
        &format!("<p>Sign in to open this tunnel.</p>{error}{sso}{password}"),
    );
    let mut resp = Response::new(Body::from(html));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    resp
}

/// The sign-in form (HTML).
#[utoipa::path(get, path = "/edge/login", operation_id = "edge_login_form", tag = "edge",
    params(("next" = String, Query, description = "Where to continue: an `/edge/authorize?...` URL",
        pattern = r"^/edge/authorize\?[^\x00-\x20\x7f\\]*$",
        example = "/edge/authorize?host=device-abc123.localhost&return=%2F")),
    responses((status = 200, description = "the form", content_type = "text/html"),
        (status = 400, description = "`next` is not valid", content_type = "text/html")))]
pub async fn login_form(State(edge): State<Arc<Edge>>, uri: Uri) -> Response<Body> {
    let next = query_param(uri.query(), "next").unwrap_or_default();
    if !valid_next(&next) {
        return form(
            &edge,
            "",
            Some("this sign-in link is not valid"),
            StatusCode::BAD_REQUEST,
        );
    }
    form(&edge, &next, None, StatusCode::OK)
}

/// The form again with a 429 (`Retry-After`) or 503 when the login guard refused.
fn refused(edge: &Edge, next: &str, r: LoginRefused) -> Response<Body> {
    let (status, why, wait) = match r {
        LoginRefused::Throttled(wait) => (
            StatusCode::TOO_MANY_REQUESTS,
            "too many attempts; try again later",
            retry_after_secs(wait),
        ),
        LoginRefused::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many sign-ins at once; try again",
            1,
        ),
    };
    let mut resp = form(edge, next, Some(why), status);
    resp.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from(wait));
    resp
}

/// The form's fields.
#[derive(utoipa::ToSchema)]
#[schema(as = EdgeLoginForm, example = json!({"email": "admin@example.com",
    "password": "change-me-please",
    "next": "/edge/authorize?host=device-abc123.localhost&return=%2F"}))]
#[allow(dead_code)] // Read from the raw form (see `login_submit`); here for the document.
pub(crate) struct LoginForm {
    email: String,
    password: String,
    /// Where to continue: an `/edge/authorize?...` URL.
    #[schema(pattern = r"^/edge/authorize\?[^\x00-\x20\x7f\\]*$")]
    next: String,
}

/// Signs in with email and password: sets the edge-login cookie and continues to `next`.
#[utoipa::path(post, path = "/edge/login", operation_id = "edge_login", tag = "edge",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "signed in: the cookie is set, on to `next`",
            headers(("location" = String), ("set-cookie" = String))),
        (status = 400, description = "`next` is not valid", content_type = "text/html"),
        (status = 401, description = "wrong email or password (the form again)",
            content_type = "text/html"),
        (status = 403, description = "a cross-site form post", content_type = "text/html"),
        (status = 413, description = "the form is too large", content_type = "text/html"),
        (status = 429, description = "too many failed sign-ins from this client or for this \
            account (`Retry-After`)", content_type = "text/html", headers(("retry-after" = u64))),
        (status = 503, description = "too many sign-ins at once, or temporarily unavailable \
            (`Retry-After`)", content_type = "text/html")))]
pub async fn login_submit(
    State(edge): State<Arc<Edge>>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    // A cross-site form post cannot log a browser in (login CSRF).
    if let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) {
        if origin != edge.auth.api_origin {
            return form(
                &edge,
                "",
                Some("cross-site sign-in refused"),
                StatusCode::FORBIDDEN,
            );
        }
    }
    if !edge.config.password_login {
        return form(
            &edge,
            "",
            Some("password sign-in is disabled on this server; sign in with SSO"),
            StatusCode::FORBIDDEN,
        );
    }
    if body.len() > MAX_FORM {
        return form(
            &edge,
            "",
            Some("form too large"),
            StatusCode::PAYLOAD_TOO_LARGE,
        );
    }
    let text = String::from_utf8_lossy(&body);
    let field = |name: &str| query_param(Some(&text), name).unwrap_or_default();
    let (email, password, next) = (
        field("email").trim().to_ascii_lowercase(),
        field("password"),
        field("next"),
    );
    if !valid_next(&next) {
        return form(
            &edge,
            "",
            Some("this sign-in link is not valid"),
            StatusCode::BAD_REQUEST,
        );
    }
    if let Err(r) = edge.login_guard.check_address(ip) {
        return refused(&edge, &next, r);
    }
    let user = match edge.backend.users.user_by_email(&email).await {
        Ok(u) => u,
        Err(_) => {
            return form(
                &edge,
                &next,
                Some("temporarily unavailable"),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    };
    if let Some(Err(r)) = user.as_ref().map(|u| edge.login_guard.check_account(u.id)) {
        return refused(&edge, &next, r);
    }
    let phc = user.as_ref().map(|u| u.password_hash.clone());
    // argon2 is slow and big on purpose: bounded, on the guard's threads; unknown emails
    // cost the same.
    let ok = match edge.login_guard.verify(password, phc).await {
        Ok(ok) => ok,
        Err(r) => return refused(&edge, &next, r),
    };
    let account = user.as_ref().map(|u| u.id);
    let Some(user) = user.filter(|_| ok) else {
        if let Err(r) = edge.login_guard.failed(ip, account) {
            return refused(&edge, &next, r);
        }
        return form(
            &edge,
            &next,
            Some("invalid email or password"),
            StatusCode::UNAUTHORIZED,
        );
    };
    if user.disabled {
        return form(
            &edge,
            &next,
            Some("this account is disabled"),
            StatusCode::FORBIDDEN,
        );
    }
    let ttl = i64::try_from(edge.config.session_ttl.as_secs()).unwrap_or(i64::MAX / 4);
    let value = edge
        .auth
        .key
        .sign(user.id, API_SCOPE, now_unix().saturating_add(ttl));
    let mut resp = redirect(&next);
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let (name, path) = login_cookie(edge.config.https);
    resp.headers_mut().append(
        SET_COOKIE,
        set_cookie(name, &value, path, ttl, edge.config.https),
    );
    resp
}
