//! What single sign-on (in the `burrow` binary) needs from the edge: the API-host
//! edge-login cookie for a user signed in elsewhere, and the SSO button of the login form.

use http::HeaderValue;

use crate::auth::now_unix;
use crate::edge::Edge;
use crate::pages::escape;
use crate::session_cookie::{login_cookie, set_cookie, API_SCOPE};
use crate::url::encode;

/// Where the login form's SSO button starts a sign-in (see `burrow::sso`).
pub const SSO_START: &str = "/api/v1/auth/oidc/start";

impl Edge {
    /// The edge-login cookie `POST /edge/session` sets, for `user_id`: tunnel hosts then
    /// sign the browser in without asking again.
    pub fn edge_login_cookie(&self, user_id: i64) -> HeaderValue {
        let ttl = i64::try_from(self.config.session_ttl.as_secs()).unwrap_or(i64::MAX / 4);
        let value = self
            .auth
            .key
            .sign(user_id, API_SCOPE, now_unix().saturating_add(ttl));
        let (name, path) = login_cookie(self.config.https);
        set_cookie(name, &value, path, ttl, self.config.https)
    }
}

/// The login form's SSO button (a link carrying `next`), or nothing without SSO.
pub fn sso_button(label: Option<&str>, next: &str) -> String {
    label.map_or(String::new(), |label| {
        format!(
            "<p><a class=\"button\" id=\"sso\" href=\"{SSO_START}?next={}\">{}</a></p>",
            escape(&encode(next)),
            escape(label),
        )
    })
}
