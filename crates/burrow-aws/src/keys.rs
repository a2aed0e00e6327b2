//! Access keys: issuance, listing and revocation for project members (bearer JWT), and the
//! derivation of a key's secret. The secret is never stored: it is
//! HMAC-SHA256(server key, "burrow-aws-secret\0" || access_key_id || "\0" || nonce), base64, 40
//! characters; only the random nonce is kept in the store.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine;
use burrow_api::access::{role_of, Action};
use burrow_api::{parse_id, ApiError, ApiResult, ValidJson};
use burrow_store::{ApiKey, User};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Serialize;
use sha2::Sha256;
use utoipa::ToSchema;

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

/// An access key as listed (never its secret).
#[derive(Serialize, ToSchema)]
#[schema(as = AwsKey)]
pub(crate) struct KeyView {
    #[schema(example = "AKIAIOSFODNN7EXAMPLE")]
    access_key_id: String,
    project_id: i64,
    user_id: i64,
    description: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    created_at: burrow_store::Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    revoked_at: Option<burrow_store::Timestamp>,
}

/// The caller's keys of a project.
#[derive(Serialize, ToSchema)]
#[schema(as = AwsKeyList)]
pub(crate) struct KeyList {
    keys: Vec<KeyView>,
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

/// A new access key with its secret, shown this once.
#[derive(Serialize, ToSchema)]
#[schema(as = IssuedAwsKey)]
pub(crate) struct IssuedKey {
    #[schema(example = "AKIAIOSFODNN7EXAMPLE")]
    access_key_id: String,
    /// 40 characters; sign AWS requests with it (SigV4). Never shown again.
    secret_access_key: String,
    project_id: i64,
    #[schema(value_type = String, format = DateTime)]
    created_at: burrow_store::Timestamp,
}

#[derive(serde::Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateAwsKey, example = json!({"description": "CI pipeline"}))]
pub(crate) struct CreateKey {
    /// At most 256 characters.
    #[schema(max_length = 256)]
    description: Option<String>,
}

async fn user(
    state: &AwsState,
    headers: &HeaderMap,
    method: &axum::http::Method,
) -> ApiResult<User> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized("missing bearer token"))?;
    state.inner.api.authenticate(token.trim(), method).await
}

/// The caller may mint and revoke keys in the project: 404 for non-members, 403 for roles
/// below admin (docs/accounts.md).
async fn may_mint(state: &AwsState, user: &User, project_id: i64) -> ApiResult<()> {
    match role_of(state.inner.store.as_ref(), project_id, user.id).await? {
        None => Err(ApiError::NotFound("project")),
        Some(r) if r.may(Action::MintKeys) => Ok(()),
        Some(_) => Err(ApiError::Forbidden(Action::MintKeys.denied())),
    }
}

/// Issue an access key for the AWS-compatible API, scoped to the project; its secret is
/// answered this once.
#[utoipa::path(post, path = "/api/v1/projects/{id}/aws-keys", operation_id = "create_aws_key",
    tag = "aws-keys", params(("id" = i64, Path, description = "The project's id", example = 1)),
    request_body(content = Option<CreateKey>, description = "Optional"),
    responses((status = 201, description = "the key and its secret", body = IssuedKey)),
    security(("bearer" = [])))]
pub(crate) async fn create(
    State(state): State<AwsState>,
    Path(project_id): Path<String>,
    headers: HeaderMap,
    // No body, `null` and `{}` all mean no description.
    body: Option<ValidJson<Option<CreateKey>>>,
) -> ApiResult<impl IntoResponse> {
    let user = user(&state, &headers, &axum::http::Method::POST).await?;
    let project_id = parse_id(&project_id)?;
    may_mint(&state, &user, project_id).await?;
    let description = body.and_then(|ValidJson(b)| b?.description);
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 256)
    {
        return Err(ApiError::validation(
            "description",
            "description must be at most 256 characters",
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

/// The caller's access keys of the project, without secrets.
#[utoipa::path(get, path = "/api/v1/projects/{id}/aws-keys", operation_id = "list_aws_keys",
    tag = "aws-keys", params(("id" = i64, Path, description = "The project's id", example = 1)),
    responses((status = 200, description = "the keys", body = KeyList)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<AwsState>,
    Path(project_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<KeyList>> {
    let user = user(&state, &headers, &axum::http::Method::GET).await?;
    let project_id = parse_id(&project_id)?;
    if !state.inner.store.is_member(project_id, user.id).await? {
        return Err(ApiError::NotFound("project"));
    }
    let keys = state.inner.store.list_api_keys_for_user(user.id).await?;
    let views: Vec<KeyView> = keys
        .iter()
        .filter(|k| k.project_id == project_id)
        .map(KeyView::from)
        .collect();
    Ok(Json(KeyList { keys: views }))
}

/// Revoke an access key (any member of the key's project may): AWS requests signed with it
/// are refused from now on.
#[utoipa::path(delete, path = "/api/v1/aws-keys/{access_key_id}", operation_id = "revoke_aws_key",
    tag = "aws-keys", params(("access_key_id" = String, Path, description = "The key's id",
        example = "AKIAIOSFODNN7EXAMPLE")),
    responses((status = 204, description = "revoked (or already revoked)")),
    security(("bearer" = [])))]
pub(crate) async fn revoke(
    State(state): State<AwsState>,
    Path(access_key_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let user = user(&state, &headers, &axum::http::Method::DELETE).await?;
    let key = state
        .inner
        .store
        .api_key(&access_key_id)
        .await?
        .ok_or(ApiError::NotFound("aws key"))?;
    if !state.inner.store.is_member(key.project_id, user.id).await? {
        return Err(ApiError::NotFound("aws key"));
    }
    may_mint(&state, &user, key.project_id).await?;
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
