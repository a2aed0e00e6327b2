//! Why a single sign-on failed, as the API's JSON error body or as a page for a browser.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::Json;
use burrow_api::ErrorBody;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, StatusCode};

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

/// Whether the client asked for HTML (a browser on its way back from the provider).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}
