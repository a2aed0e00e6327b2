//! Authenticates an AWS JSON request: SigV4 over what arrived, with the secret derived for
//! the access key named in the credential scope.

use axum::http::request::Parts;
use burrow_api::access::{role_of, Action};
use burrow_store::ApiKey;

use crate::errors::AwsError;
use crate::keys::derive_secret;
use crate::sigv4::{self, AuthHeader, Request};
use crate::AwsState;

/// Headers a signature must cover: without them a signed request could be replayed to
/// another host or as another operation.
const REQUIRED_SIGNED: [&str; 3] = ["host", "x-amz-date", "x-amz-target"];

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) async fn authenticate(
    state: &AwsState,
    parts: &Parts,
    body: &[u8],
) -> Result<ApiKey, AwsError> {
    let auth = header(parts, "authorization")
        .ok_or_else(|| AwsError::missing_auth("Missing Authentication Token"))?;
    let auth = AuthHeader::parse(auth).ok_or_else(|| {
        AwsError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "IncompleteSignatureException",
            "The Authorization header is not a valid AWS4-HMAC-SHA256 signature",
        )
    })?;
    let key = state
        .inner
        .store
        .api_key(&auth.access_key_id)
        .await?
        .filter(|k| k.revoked_at.is_none())
        .ok_or_else(AwsError::unrecognized_client)?;
    // A key acts for its creator: it stops when they may no longer mint keys in its project
    // (demoted, removed) or are disabled (docs/accounts.md).
    let role = role_of(state.inner.store.as_ref(), key.project_id, key.user_id).await?;
    let creator = state.inner.store.user_by_id(key.user_id).await?;
    if !role.is_some_and(|r| r.may(Action::MintKeys)) || creator.is_none_or(|u| u.disabled) {
        return Err(AwsError::unrecognized_client());
    }

    let amz_date = header(parts, "x-amz-date")
        .ok_or_else(|| AwsError::missing_auth("X-Amz-Date header is required"))?;
    let at = sigv4::parse_amz_date(amz_date).ok_or_else(|| {
        AwsError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "IncompleteSignatureException",
            "X-Amz-Date must be YYYYMMDDTHHMMSSZ",
        )
    })?;
    let now = chrono::Utc::now();
    if !sigv4::within_skew(at, now) {
        return Err(AwsError::new(
            axum::http::StatusCode::FORBIDDEN,
            "InvalidSignatureException",
            format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
                (now - sigv4::MAX_SKEW).format("%Y%m%dT%H%M%SZ"),
                now.format("%Y%m%dT%H%M%SZ")
            ),
        ));
    }
    if !amz_date.starts_with(&auth.date)
        || REQUIRED_SIGNED
            .iter()
            .any(|h| !auth.signed_headers.iter().any(|s| s == h))
    {
        return Err(AwsError::bad_signature());
    }

    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let req = Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body,
    };
    let secret = derive_secret(&state.inner.server_key, &key.access_key_id, &key.nonce);
    if !sigv4::verify(&req, &auth, amz_date, &secret) {
        tracing::debug!(access_key_id = %key.access_key_id, "aws api: signature mismatch");
        return Err(AwsError::bad_signature());
    }
    Ok(key)
}
