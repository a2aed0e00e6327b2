//! Access keys: issuance, listing and revocation for project members (bearer JWT), and the
//! derivation of a key's secret. The secret is never stored: it is
//! HMAC-SHA256(server key, "burrow-aws-secret\0" || access_key_id || "\0" || nonce), base64, 40
//! characters; only the random nonce is kept in the store.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine;
use burrow_api::{ApiError, ApiResult};
use burrow_store::{ApiKey, User};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Serialize;
use sha2::Sha256;

use crate::AwsState;

const KEY_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// `AKIA` and 16 random characters of the base32 alphabet (20 in all, as AWS's).
pub fn new_access_key_id() -> String {
    let mut rng = rand::thread_rng();
    let tail: String = (0..16)
        .map(|_| KEY_ID_ALPHABET[rng.gen_range(0..KEY_ID_ALPHABET.len())] as char)
        .collect();
    format!("AKIA{tail}")
}

pub fn new_nonce() -> String {
    hex::encode(rand::thread_rng().gen::<[u8; 16]>())
}

/// The 40-character secret access key of `access_key_id` with `nonce`.
pub fn derive_secret(server_key: &[u8], access_key_id: &str, nonce: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(server_key).expect("HMAC takes any key length");
    mac.update(b"burrow-aws-secret\0");
    mac.update(access_key_id.as_bytes());
    mac.update(b"\0");
    mac.update(nonce.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(mac.finalize().into_bytes());
    b64[..40].to_string()
}

#[derive(Serialize)]
struct KeyView {
    access_key_id: String,
    project_id: i64,
    user_id: i64,
    description: Option<String>,
    created_at: burrow_store::Timestamp,
    revoked_at: Option<burrow_store::Timestamp>,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        KeyView {
            access_key_id: k.access_key_id.clone(),
            project_id: k.project_id,
            user_id: k.user_id,
            description: k.description.clone(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Serialize)]
struct IssuedKey {
    access_key_id: String,
    secret_access_key: String,
    project_id: i64,
    created_at: burrow_store::Timestamp,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct CreateKey {
    description: Option<String>,
}

async fn user(state: &AwsState, headers: &HeaderMap) -> ApiResult<User> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized("missing bearer token"))?;
    state
        .inner
        .api
        .user_for_token(token.trim())
        .await?
        .ok_or(ApiError::Unauthorized("invalid or expired token"))
}

async fn member_of(state: &AwsState, user: &User, project_id: i64) -> ApiResult<()> {
    if state.inner.store.is_member(project_id, user.id).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound("project"))
    }
}

/// `POST /api/v1/projects/{id}/aws-keys`: 201 with the secret, shown this once.
pub(crate) async fn create(
    State(state): State<AwsState>,
    Path(project_id): Path<i64>,
    headers: HeaderMap,
    body: Option<Json<CreateKey>>,
) -> ApiResult<impl IntoResponse> {
    let user = user(&state, &headers).await?;
    member_of(&state, &user, project_id).await?;
    let description = body.and_then(|Json(b)| b.description);
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 256)
    {
        return Err(ApiError::BadRequest(
            "description: at most 256 characters".into(),
        ));
    }
    let key = ApiKey {
        access_key_id: new_access_key_id(),
        user_id: user.id,
        project_id,
        nonce: new_nonce(),
        description,
        created_at: chrono::Utc::now(),
        revoked_at: None,
    };
    state.inner.store.create_api_key(&key).await?;
    tracing::info!(access_key_id = %key.access_key_id, project_id, "aws access key issued");
    let secret = derive_secret(&state.inner.server_key, &key.access_key_id, &key.nonce);
    Ok((
        StatusCode::CREATED,
        Json(IssuedKey {
            access_key_id: key.access_key_id,
            secret_access_key: secret,
            project_id,
            created_at: key.created_at,
        }),
    ))
}

/// `GET /api/v1/projects/{id}/aws-keys`: the caller's keys of the project, without secrets.
pub(crate) async fn list(
    State(state): State<AwsState>,
    Path(project_id): Path<i64>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let user = user(&state, &headers).await?;
    member_of(&state, &user, project_id).await?;
    let keys = state.inner.store.list_api_keys_for_user(user.id).await?;
    let views: Vec<KeyView> = keys
        .iter()
        .filter(|k| k.project_id == project_id)
        .map(KeyView::from)
        .collect();
    Ok(Json(serde_json::json!({ "keys": views })))
}

/// `DELETE /api/v1/aws-keys/{access_key_id}`: 204; any member of the key's project may revoke.
pub(crate) async fn revoke(
    State(state): State<AwsState>,
    Path(access_key_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let user = user(&state, &headers).await?;
    let key = state
        .inner
        .store
        .api_key(&access_key_id)
        .await?
        .ok_or(ApiError::NotFound("aws key"))?;
    if !state.inner.store.is_member(key.project_id, user.id).await? {
        return Err(ApiError::NotFound("aws key"));
    }
    if key.revoked_at.is_none() {
        state
            .inner
            .store
            .revoke_api_key(&access_key_id, chrono::Utc::now())
            .await?;
        tracing::info!(access_key_id = %access_key_id, "aws access key revoked");
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_have_aws_shapes() {
        let id = new_access_key_id();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("AKIA"));
        let s = derive_secret(b"k", &id, "n");
        assert_eq!(s.len(), 40);
        assert_eq!(s, derive_secret(b"k", &id, "n"));
        assert_ne!(s, derive_secret(b"k", &id, "m"));
        assert_ne!(s, derive_secret(b"other", &id, "n"));
    }
}
