//! The web UI: a login page, the Reverse Tunnels page, the Devices page, a tunnel's detail
//! view (with its sharing and custom domains panels), a project's traffic overview, projects
//! and their members, invitations, the user's account and the administrators' list of users,
//! served by `burrow server` itself. One HTML shell, its scripts and stylesheets, embedded in
//! the binary so that neither building nor running burrow needs Node.js; the script talks to
//! the REST API with the user's JWT (kept in sessionStorage, sent as a bearer token), so the
//! UI has no server-side session of its own.

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const SHARING_JS: &str = include_str!("assets/sharing.js");
/// The tunnel detail page's Domains panel (custom hostnames and their DNS records).
const DOMAINS_JS: &str = include_str!("assets/domains.js");
/// The account page and the administrators' list of users.
const ACCOUNTS_JS: &str = include_str!("assets/accounts.js");
/// The projects list and a project's members and invitations.
const MEMBERS_JS: &str = include_str!("assets/members.js");
/// An invitation link: sign up, or sign in and accept.
const INVITE_JS: &str = include_str!("assets/invite.js");
const APP_CSS: &str = include_str!("assets/app.css");
const ICON_SVG: &str = include_str!("assets/icon.svg");
/// The tunnel detail page's charts and limits form.
const TRAFFIC_JS: &str = include_str!("assets/traffic.js");
/// The project traffic overview page (busiest tunnels and devices, usage per user × device).
const OVERVIEW_JS: &str = include_str!("assets/overview.js");
/// uPlot, from the npm registry (see `assets/vendor/README.md`).
const UPLOT_JS: &str = include_str!("assets/vendor/uplot.iife.min.js");
const UPLOT_CSS: &str = include_str!("assets/vendor/uplot.min.css");

/// Pages are rendered by the script from the path, so every page path serves the shell.
const PAGES: &[&str] = &[
    "/login",
    "/reverse-tunnels",
    "/reverse-tunnels/{dsn}/{id}",
    "/devices",
    "/traffic",
    "/projects",
    "/projects/{id}/members",
    "/account",
    "/invite",
    "/admin/users",
];

/// The UI's routes; merged into the main port's API router (no fallback of its own, so the
/// API's JSON 404 stays the answer for unknown paths).
pub fn router() -> Router {
    let mut r = Router::new()
        .route("/", get(|| async { Redirect::to("/reverse-tunnels") }))
        .route("/ui/app.js", get(app_js))
        .route("/ui/sharing.js", get(sharing_js))
        .route("/ui/domains.js", get(domains_js))
        .route("/ui/accounts.js", get(accounts_js))
        .route("/ui/members.js", get(members_js))
        .route("/ui/invite.js", get(invite_js))
        .route("/ui/app.css", get(app_css))
        .route("/ui/icon.svg", get(icon_svg))
        .route("/ui/traffic.js", get(traffic_js))
        .route("/ui/overview.js", get(overview_js))
        .route("/ui/uplot.js", get(uplot_js))
        .route("/ui/uplot.css", get(uplot_css));
    for p in PAGES {
        r = r.route(p, get(index));
    }
    r
}

async fn index() -> Response {
    let mut resp = asset(INDEX_HTML, "text/html; charset=utf-8", None);
    let h = resp.headers_mut();
    // Everything the page needs comes from this origin; no inline script, no framing.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

async fn app_js(headers: HeaderMap) -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8", Some(&headers))
}

async fn sharing_js(headers: HeaderMap) -> Response {
    asset(SHARING_JS, "text/javascript; charset=utf-8", Some(&headers))
}

async fn domains_js(headers: HeaderMap) -> Response {
    asset(DOMAINS_JS, "text/javascript; charset=utf-8", Some(&headers))
}

async fn accounts_js(headers: HeaderMap) -> Response {
    asset(
        ACCOUNTS_JS,
        "text/javascript; charset=utf-8",
        Some(&headers),
    )
}

async fn members_js(headers: HeaderMap) -> Response {
    asset(MEMBERS_JS, "text/javascript; charset=utf-8", Some(&headers))
}

async fn invite_js(headers: HeaderMap) -> Response {
    asset(INVITE_JS, "text/javascript; charset=utf-8", Some(&headers))
}

async fn traffic_js(headers: HeaderMap) -> Response {
    asset(TRAFFIC_JS, "text/javascript; charset=utf-8", Some(&headers))
}

async fn overview_js(headers: HeaderMap) -> Response {
    asset(
        OVERVIEW_JS,
        "text/javascript; charset=utf-8",
        Some(&headers),
    )
}

async fn uplot_js(headers: HeaderMap) -> Response {
    asset(UPLOT_JS, "text/javascript; charset=utf-8", Some(&headers))
}

async fn uplot_css(headers: HeaderMap) -> Response {
    asset(UPLOT_CSS, "text/css; charset=utf-8", Some(&headers))
}

async fn app_css(headers: HeaderMap) -> Response {
    asset(APP_CSS, "text/css; charset=utf-8", Some(&headers))
}

async fn icon_svg(headers: HeaderMap) -> Response {
    asset(ICON_SVG, "image/svg+xml", Some(&headers))
}

/// An embedded file. Browsers revalidate on every load (`no-cache`) with an ETag of the
/// content, so a new binary's assets are picked up at once and unchanged ones cost a 304.
fn asset(body: &'static str, content_type: &'static str, req: Option<&HeaderMap>) -> Response {
    let etag = format!("\"{:016x}\"", fnv1a(body.as_bytes()));
    let fresh = req
        .and_then(|h| h.get(header::IF_NONE_MATCH))
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(body))
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

/// FNV-1a, 64 bit: a content tag for caching, not a security hash.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn get(path: &str, etag: Option<&str>) -> Response {
        let mut req = axum::http::Request::get(path);
        if let Some(e) = etag {
            req = req.header(header::IF_NONE_MATCH, e);
        }
        router()
            .oneshot(req.body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    #[tokio::test]
    async fn pages_serve_the_shell_and_assets_revalidate() {
        for p in [
            "/login",
            "/reverse-tunnels",
            "/devices",
            "/reverse-tunnels/ABC/1",
            "/projects",
            "/projects/7/members",
            "/account",
            "/invite",
            "/admin/users",
        ] {
            let r = get(p, None).await;
            assert_eq!(r.status(), StatusCode::OK, "{p}");
            assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        }
        for js in [
            "/ui/sharing.js",
            "/ui/domains.js",
            "/ui/accounts.js",
            "/ui/members.js",
            "/ui/invite.js",
        ] {
            assert_eq!(get(js, None).await.status(), StatusCode::OK, "{js}");
        }
        let r = get("/ui/app.js", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        let etag = r.headers()[header::ETAG]
            .to_str()
            .expect("etag")
            .to_string();
        assert_eq!(
            get("/ui/app.js", Some(&etag)).await.status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(get("/", None).await.status(), StatusCode::SEE_OTHER);
    }
}
