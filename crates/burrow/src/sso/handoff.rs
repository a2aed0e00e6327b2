//! The one-time code that carries a finished SSO sign-in to the web UI: the callback puts it
//! in the URL fragment (never sent to a server, never in logs), the page trades it once for
//! the JWT (`POST /api/v1/auth/oidc/exchange`). Random (256 bits), 60 s, single use, kept
//! hashed in the edge's login-code table (shared by the nodes of a cluster), under a scope
//! no tunnel host can have, so edge codes and these never redeem as each other.
//!
//! The code is bound to the browser the callback answered (a random value in an `HttpOnly`
//! cookie, its hash stored with the code), so a link carrying someone else's code cannot sign
//! a victim's browser in to that someone's account (login CSRF).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use burrow_store::{LoginCode, Store, StoreError};
use sha2::{Digest, Sha256};

/// The pseudo host of UI handoff codes (no DNS name starts with `@`).
const SCOPE: &str = "@sso-ui";
/// How long the page has to trade the code.
const TTL_SECS: i64 = 60;
/// Outstanding codes per user (with their edge login codes); more drop the oldest.
const KEEP_PER_USER: i64 = 20;

fn hash(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The cookie that binds a code to its browser, and its path, for the deployment's scheme.
pub fn bind_cookie_name_and_path(https: bool) -> (&'static str, &'static str) {
    if https {
        ("__Host-burrow_sso_bind", "/")
    } else {
        ("__burrow_sso_bind", "/api/v1/auth/oidc")
    }
}

/// How long the binding cookie lives (the code's lifetime).
pub const BIND_TTL_SECS: i64 = TTL_SECS;

/// A fresh binding value for [`mint`] (the binding cookie's value).
pub fn new_binding() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// A fresh code for `user_id`, redeemable only with `binding`.
pub async fn mint(store: &dyn Store, user_id: i64, binding: &str) -> Result<String, StoreError> {
    let code = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let now = chrono::Utc::now();
    let row = LoginCode {
        code_hash: hash(&code),
        user_id,
        host: SCOPE.to_string(),
        state_hash: hash(binding),
        expires_at: now + chrono::Duration::seconds(TTL_SECS),
        created_at: now,
    };
    store.insert_login_code(&row, KEEP_PER_USER).await?;
    Ok(code)
}

/// The user of `code` if it is an outstanding, unexpired UI code presented with one of the
/// `bindings` it was minted for; spent by this call whatever the answer.
pub async fn redeem(
    store: &dyn Store,
    code: &str,
    bindings: &[&str],
) -> Result<Option<i64>, StoreError> {
    let well_formed = code.len() == 43
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Ok(None);
    }
    let Some(row) = store.take_login_code(&hash(code)).await? else {
        return Ok(None);
    };
    let bound = bindings.iter().any(|b| hash(b) == row.state_hash);
    let ok = row.host == SCOPE && bound && row.expires_at > chrono::Utc::now();
    Ok(ok.then_some(row.user_id))
}
