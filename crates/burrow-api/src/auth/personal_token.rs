//! Personal access tokens (`bpat_...`): long-lived bearer credentials for the CLI and
//! automation, instead of the short session JWT. Only their SHA-256 is stored; a `read` token
//! may only read.

use burrow_store::{PersonalToken, User};

use crate::error::ApiResult;
use crate::sharing::secret::hash_secret;
use crate::AppState;

/// Every personal access token starts with this (secret scanners recognise leaked ones).
pub const PREFIX: &str = "bpat_";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `GET` and `HEAD` only.
    Read,
    /// Everything its user may do.
    Full,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "full" => Some(Scope::Full),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Full => "full",
        }
    }

    /// Whether a request with `method` is within the scope.
    pub fn allows(self, method: &http::Method) -> bool {
        self == Scope::Full || matches!(*method, http::Method::GET | http::Method::HEAD)
    }
}

/// The user and scope of a live token: not revoked, not expired, its user present and not
/// disabled. Records the use (throttled by the store).
pub async fn authenticate(state: &AppState, token: &str) -> ApiResult<Option<(User, Scope)>> {
    let Some(row) = state
        .store
        .personal_token_by_hash(&hash_secret(token))
        .await?
    else {
        return Ok(None);
    };
    let now = chrono::Utc::now();
    if !live(&row, now) {
        return Ok(None);
    }
    let Some(scope) = Scope::parse(&row.scope) else {
        return Ok(None);
    };
    let Some(user) = state.store.user_by_id(row.user_id).await? else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    state.store.touch_personal_token(row.id, now).await?;
    Ok(Some((user, scope)))
}

fn live(row: &PersonalToken, now: chrono::DateTime<chrono::Utc>) -> bool {
    row.revoked_at.is_none() && row.expires_at > now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_tokens_only_read() {
        assert!(Scope::Read.allows(&http::Method::GET));
        assert!(Scope::Read.allows(&http::Method::HEAD));
        assert!(!Scope::Read.allows(&http::Method::POST));
        assert!(!Scope::Read.allows(&http::Method::DELETE));
        assert!(Scope::Full.allows(&http::Method::DELETE));
        assert_eq!(Scope::parse("write"), None);
    }
}
